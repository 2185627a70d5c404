"""What ``fal-mock check`` learns about its target before checking it: whether it answers at all,
whether it takes the key, and whether it is a fal-mock (its ``/_mock`` control plane) and with
which policy.

A fal-mock on the ``virtual`` policy only moves when its clock does: while the checks run,
:class:`ClockPump` advances it, so queued requests complete and status streams close as they
would in real time, only faster. Any other target is left alone.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from contracts import operations as ops
from mock_server.http.control_guard import control_token_headers

STATE_PATH = "/_mock/state"
ADVANCE_PATH = "/_mock/clock/advance"


class Unreachable(Exception):
    """The target did not answer HTTP at all."""


class KeyRefused(Exception):
    """The target answers 401/403 to an authenticated call with the run's key."""


@dataclass(frozen=True, slots=True)
class Target:
    policy: str | None
    """The fal-mock's progression policy; None when the target is not a fal-mock."""
    engine: str | None = None

    def describe(self) -> str:
        if self.policy is None:
            return "not a fal-mock: no /_mock control plane"
        pumped = (
            ": its virtual clock is advanced during the run" if self.policy == "virtual" else ""
        )
        return f"fal-mock, policy {self.policy}, engine {self.engine}{pumped}"


def probe_target(client: httpx.Client, base_url: str) -> Target:
    # An authenticated call that changes nothing: an unknown request's status (404 if the key
    # is good). Without this a wrong key passes schemathesis vacuously (401 is an allowed answer).
    unknown = ops.STATUS.prefixed_path.format(request_id=uuid.UUID(int=0))
    try:
        refused = client.get(base_url + unknown)
    except httpx.HTTPError as exc:
        raise Unreachable(f"cannot reach {base_url}: {exc!r}") from None
    if refused.status_code in (401, 403):
        raise KeyRefused(f"{refused.status_code} {refused.text[:200]}")
    try:
        response = client.get(base_url + STATE_PATH, headers=control_token_headers())
        state = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("policy"), str):
        return Target(None)
    return Target(state["policy"], str(state.get("engine")))


class ClockPump:
    """While enabled and entered, advance a virtual-policy mock's clock in the background:
    ``step`` virtual seconds every ``interval`` real seconds (25x real time by default)."""

    def __init__(
        self,
        base_url: str,
        *,
        enabled: bool,
        verify: Any = True,
        step: float = 0.5,
        interval: float = 0.02,
    ) -> None:
        self.enabled = enabled
        self._url = base_url + ADVANCE_PATH
        self._verify = verify
        self.step, self.interval = step, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _pump(self) -> None:
        with httpx.Client(
            verify=self._verify, timeout=10.0, headers=control_token_headers()
        ) as own:
            while not self._stop.wait(self.interval):
                try:
                    own.post(self._url, json={"seconds": self.step})
                except httpx.HTTPError:
                    continue  # the checks report an unreachable target; the pump stays quiet

    def __enter__(self) -> ClockPump:
        if self.enabled:
            self._thread = threading.Thread(target=self._pump, name="fal-mock-clock", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
