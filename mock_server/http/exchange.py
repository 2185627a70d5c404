"""Body limits and the journal, at the edge: one place sees every request and response.

The request body is read in full before the app runs (up to its limit): an oversized body is
answered 413 in fal's shape before any route sees it, and the journal gets the exact bytes.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.operations import LogicalHost
from mock_server.engine.journal import JournalEntry
from mock_server.engine.queue import QueueEngine
from mock_server.http.faults import FAULT_KEY, RAW_RECEIVE_KEY
from mock_server.http.hosts import HOST_KEY, PUBLIC_PATH_KEY

JOURNAL_BODY_LIMIT: Final = 64 * 1024
"""Bodies above this are journaled truncated (uploads, videos): the journal stays small."""

_REQUEST_ID_IN_PATH = re.compile(r"/requests/([^/]+)")
_SECRET_HEADERS: Final = frozenset({"authorization", "x-fal-cdn-token", "x-mock-control-token"})


class ExchangeRecorder:
    def __init__(
        self, app: ASGIApp, engine: Callable[[], QueueEngine], body_limit: int, upload_limit: int
    ) -> None:
        self.app = app
        self.engine = engine
        self.body_limit = body_limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host: LogicalHost | None = scope.get(HOST_KEY)
        arrived = time.monotonic()  # the polling-interval check spaces requests by arrival
        scope[RAW_RECEIVE_KEY] = receive  # a dropped-connection fault closes its connection
        limit = self.upload_limit if host is LogicalHost.CDN else self.body_limit
        body = await _read_body(scope, receive, limit)
        if body is None:
            await _too_large(send, limit)
            return
        if isinstance(body, _Disconnected):
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later calls wait for the client to go away (SSE)

        if host is None:  # control plane, docs: not part of the fal transcript
            await self.app(scope, replay, send)
            return

        status = 0
        response_headers: dict[str, str] = {}
        chunks: list[bytes] = []
        size = 0
        recorded = False

        def record() -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                self._record(
                    scope, host, body, status, response_headers, b"".join(chunks), size, arrived
                )

        async def capture(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers.update(
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"]
                )
            elif message["type"] == "http.response.body":
                chunk: bytes = message.get("body", b"")
                if size < JOURNAL_BODY_LIMIT:
                    chunks.append(chunk[: JOURNAL_BODY_LIMIT - size])
                size += len(chunk)
                if not message.get("more_body", False):
                    # Journaled before the last bytes leave: a client that reads the journal
                    # the moment its response ends (a test, in another thread) finds the entry.
                    record()
            await send(message)

        try:
            await self.app(scope, replay, capture)
        finally:
            record()  # a response that never finished (an error, a client gone) is kept too

    def _record(
        self,
        scope: Scope,
        host: LogicalHost,
        body: bytes,
        status: int,
        response_headers: dict[str, str],
        response_body: bytes,
        size: int,
        arrived: float,
    ) -> None:
        engine = self.engine()
        path: str = scope.get(PUBLIC_PATH_KEY, scope["path"])
        request_headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1")
            request_headers[name] = (
                "<redacted>" if name in _SECRET_HEADERS else raw_value.decode("latin-1")
            )
        request_id = response_headers.get("x-fal-request-id")
        if not request_id and (match := _REQUEST_ID_IN_PATH.search(path)):
            request_id = match.group(1)
        engine.journal.append(
            JournalEntry(
                seq=engine.journal.next_seq(),
                time=engine.clock.now(),
                host=host.value,
                method=scope["method"],
                path=path,
                query=scope.get("query_string", b"").decode("latin-1"),
                request_headers=request_headers,
                request_body=_text(body, len(body)),
                status_code=status,
                response_headers=response_headers,
                response_body=_text(response_body, size),
                request_id=request_id or None,
                extra=_extra(scope, arrived),
            )
        )


def _extra(scope: Scope, arrived: float) -> dict[str, object]:
    extra: dict[str, object] = {"wall_time": arrived}
    if (fault := scope.get(FAULT_KEY)) is not None:
        extra["fault"] = fault
    return extra


class _Disconnected:
    pass


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | _Disconnected | None:
    """The whole body, or None when it exceeds ``limit`` (declared or actual)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            return None
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return _Disconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def _too_large(send: Send, limit: int) -> None:
    payload = json.dumps({"detail": f"Request body too large: the limit is {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _text(data: bytes, size: int) -> str | None:
    if not data:
        return None
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return f"<{size} bytes of binary data>"
    return text if size <= len(data) else f"{text}...<truncated, {size} bytes in all>"
