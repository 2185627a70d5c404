"""A client-side transcript: what the code under test exchanged with a ``--fal-target``.

Against another server the mock's journal is not there to read (fal itself has none), so the
plugin records what went over the wire on the client's side, in the form the contract checks
read (``contracts.transcript``). Status histories come from the target's control plane when it
has one (another fal-mock); otherwise the transcript has none, and the checks that need them
find nothing to check.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from typing import Final

import httpx

from contracts.transcript import TRUNCATION_MARK, Exchange, StatusPoint, Transcript

__all__ = ["BODY_LIMIT", "Recorder"]

BODY_LIMIT: Final = 64 * 1024
"""Bodies above this are kept truncated, as the mock's own journal keeps them."""

_REQUEST_ID_IN_PATH: Final = re.compile(r"/requests/([^/?]+)")
_SECRET_HEADERS: Final = frozenset({"authorization", "x-fal-cdn-token", "x-mock-control-token"})


class Recorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []

    def record(
        self,
        request: httpx.Request,
        *,
        host: str,
        path: str,
        query: str,
        response: httpx.Response,
        body: bytes,
    ) -> None:
        """One finished exchange; ``host`` is the logical host, ``path`` host-relative."""
        request_id = _request_id(path, response, body)
        with self._lock:
            self._exchanges.append(
                Exchange(
                    seq=len(self._exchanges) + 1,
                    wall_time=time.monotonic(),
                    host=host,
                    method=request.method,
                    path=path,
                    query=query,
                    request_headers=_headers(request.headers),
                    request_body=_text(request.content),
                    status_code=response.status_code,
                    response_headers=_headers(response.headers),
                    response_body=_text(body),
                    request_id=request_id,
                )
            )

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def transcript(
        self, histories: Mapping[str, tuple[StatusPoint, ...]] | None = None
    ) -> Transcript:
        return Transcript(exchanges=tuple(self.exchanges), histories=dict(histories or {}))


def _request_id(path: str, response: httpx.Response, body: bytes) -> str | None:
    match = _REQUEST_ID_IN_PATH.search(path)
    if match:
        return match.group(1)
    if response.headers.get("content-type", "").startswith("application/json"):
        try:
            value = json.loads(body)
        except ValueError:
            return None
        if isinstance(value, dict) and isinstance(value.get("request_id"), str):
            return str(value["request_id"])
    return None


def _headers(headers: httpx.Headers) -> dict[str, str]:
    return {
        key: "<redacted>" if key in _SECRET_HEADERS else value
        for key, value in ((k.lower(), v) for k, v in headers.multi_items())
    }


def _text(data: bytes) -> str | None:
    if not data:
        return None
    text = data[:BODY_LIMIT].decode("utf-8", errors="replace")
    return text if len(data) <= BODY_LIMIT else f"{text}{TRUNCATION_MARK}{len(data)} bytes in all>"
