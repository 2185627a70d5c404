"""The knobs behind the pytest handles: the engine itself, a remote control plane, or nothing.

* :class:`EngineControl`: the in-process app's engine, or a live server's in this process.
* :class:`RemoteControl`: another fal-mock's ``/_mock`` control plane, over HTTP (a
  ``--fal-target`` that is a fal-mock, or a proxy in front of one).
* :class:`NoControl`: a target with no control plane (fal itself, a proxy to fal). What needs
  one skips the test, naming the target: a test that sets a policy cannot mean anything there.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NoReturn, Protocol

import httpx
import pytest

from contracts.faults import FaultPlan
from mock_server.engine.jobs import HistoryEntry
from mock_server.engine.journal import JournalEntry
from mock_server.engine.policies import Policy
from mock_server.engine.queue import QueueEngine
from mock_server.engine.results import ENGINES
from mock_server.http.control_guard import control_token_headers
from mock_server.inprocess import FORWARDED, ssl_context
from mock_server.targets import Target

__all__ = ["Control", "EngineControl", "NoControl", "RemoteControl", "remote_control"]


class Control(Protocol):
    description: str

    def journal(self) -> list[JournalEntry]: ...
    def history(self, request_id: str) -> list[HistoryEntry] | None: ...
    def request_ids(self) -> list[str]: ...
    def reset(
        self, *, seed: int | None = None, policy: str | None = None, engine: str | None = None
    ) -> None: ...
    def set_policy(self, policy: str) -> None: ...
    def set_faults(self, plan: FaultPlan) -> None: ...
    def advance(self, seconds: float) -> float: ...
    def close(self) -> None: ...


def check_engine_name(name: str) -> str:
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}: choose one of {sorted(ENGINES)}")
    return name


class EngineControl:
    def __init__(self, engine: QueueEngine, description: str = "the mock's engine") -> None:
        self.engine = engine
        self.description = description

    def journal(self) -> list[JournalEntry]:
        return self.engine.journal.entries()

    def history(self, request_id: str) -> list[HistoryEntry] | None:
        return self.engine.history(request_id)

    def request_ids(self) -> list[str]:
        return self.engine.request_ids()

    def reset(
        self, *, seed: int | None = None, policy: str | None = None, engine: str | None = None
    ) -> None:
        self.engine.reset(
            seed=seed,
            policy=None if policy is None else Policy.parse(policy),
            engine=None if engine is None else check_engine_name(engine),
        )

    def set_policy(self, policy: str) -> None:
        self.engine.set_policy(Policy.parse(policy))

    def set_faults(self, plan: FaultPlan) -> None:
        self.engine.set_faults(plan)

    def advance(self, seconds: float) -> float:
        return self.engine.advance_clock(seconds)

    def close(self) -> None:
        pass


class RemoteControl:
    """A fal-mock's control plane at ``url`` (``.../_mock``).

    A mock started with a control token wants it on every call: ``token``, else
    ``$FAL_MOCK_CONTROL_TOKEN``, is sent as ``X-Mock-Control-Token`` (it leaves ``Authorization``
    to the client's fal key). Without a token, the mock answers loopback clients only.
    """

    def __init__(self, url: str, client: httpx.Client, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.description = f"the control plane at {self.url}"
        self._client = client
        client.headers.update(control_token_headers(token))

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._client.request(
            method,
            f"{self.url}{path}",
            json=body,
            extensions={FORWARDED: True},  # past the plugin's own routes, if they are on
        )
        if response.status_code >= 400:
            raise RuntimeError(
                f"{method} {self.url}{path} answered {response.status_code}: {response.text}"
            )
        return response.json()

    def journal(self) -> list[JournalEntry]:
        names = {f.name for f in dataclasses.fields(JournalEntry)}
        return [
            JournalEntry(**{k: v for k, v in entry.items() if k in names})
            for entry in self._call("GET", "/journal")["entries"]
        ]

    def history(self, request_id: str) -> list[HistoryEntry] | None:
        known = {entry["request_id"]: entry for entry in self._call("GET", "/requests")["requests"]}
        if request_id not in known:
            return None
        return [
            HistoryEntry(status=h["status"], queue_position=h["queue_position"], time=h["time"])
            for h in known[request_id]["history"]
        ]

    def request_ids(self) -> list[str]:
        return [entry["request_id"] for entry in self._call("GET", "/requests")["requests"]]

    def reset(
        self, *, seed: int | None = None, policy: str | None = None, engine: str | None = None
    ) -> None:
        self._call("POST", "/reset", {"seed": seed, "policy": policy, "engine": engine})

    def set_policy(self, policy: str) -> None:
        self._call("POST", "/policy", {"policy": policy})

    def set_faults(self, plan: FaultPlan) -> None:
        self._call("POST", "/faults", plan.model_dump(mode="json"))

    def advance(self, seconds: float) -> float:
        return float(self._call("POST", "/clock/advance", {"seconds": seconds})["clock"])


class NoControl:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.description = f"{target.describe()}, which has no fal-mock control plane"

    def close(self) -> None:
        pass

    def skip(self, what: str) -> NoReturn:
        pytest.skip(f"fal_mock: {what} needs the mock's control plane; {self.description}")

    def journal(self) -> list[JournalEntry]:
        self.skip("the journal")

    def history(self, request_id: str) -> list[HistoryEntry] | None:
        self.skip("a status history")

    def request_ids(self) -> list[str]:
        self.skip("the list of requests")

    def reset(
        self, *, seed: int | None = None, policy: str | None = None, engine: str | None = None
    ) -> None:
        self.skip("reset/seed/engine")

    def set_policy(self, policy: str) -> None:
        self.skip("a progression policy")

    def set_faults(self, plan: FaultPlan) -> None:
        self.skip("fault injection")

    def advance(self, seconds: float) -> float:
        self.skip("the virtual clock")


def remote_control(target: Target) -> RemoteControl | NoControl:
    """The target's control plane if it answers like a fal-mock's, else :class:`NoControl`."""
    url = target.control_url
    if url is None:
        return NoControl(target)
    client = httpx.Client(timeout=30, verify=ssl_context(), headers=control_token_headers())
    try:
        state = client.get(f"{url}/state", extensions={FORWARDED: True})
        if state.status_code == 200 and "seed" in state.json():
            return RemoteControl(url, client)
    except (httpx.HTTPError, ValueError):
        pass
    client.close()
    return NoControl(target)
