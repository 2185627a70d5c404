"""The harness: a live mock behind a broken layer, and what the client saw of it.

The transcript of a broken server is recorded *outside* the broken layer by ``Recorder``: the
mock's own journal sits inside it and never sees the rewritten answers, exactly as a client
talking to a broken fal would not be seeing the mock's journal.
"""

from __future__ import annotations

import gc
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import fal_client
import httpx

from contracts.transcript import Exchange, Transcript
from mock_server.checking import transcript_of
from mock_server.clients import point_fal_client
from mock_server.engine.queue import QueueEngine
from mock_server.settings import MockSettings
from mock_server.testing import LiveServer

APP = "fal-ai/lipsync"
LIPSYNC_INPUT = {
    "video_url": "https://example.com/face.mp4",
    "audio_url": "https://example.com/speech.mp3",
}
AUTH = {"Authorization": "Key test-key"}

ASGIApp = Callable[..., Any]
Rewrite = Callable[[dict[str, Any], int, bytes], tuple[int, bytes]]

_HOSTS = ("queue", "run", "rest", "cdn")
_REQUEST_ID = re.compile(r"/requests/([^/]+)")
STATUS_PATH = re.compile(r"^/queue/fal-ai/lipsync/requests/([^/]+)/status$")
STREAM_PATH = re.compile(r"^/queue/fal-ai/lipsync/requests/([^/]+)/status/stream$")
RESULT_PATH = re.compile(r"^/queue/fal-ai/lipsync/requests/([^/]+)$")
SUBMIT_PATH = re.compile(r"^/queue/fal-ai/lipsync$")
FILE_PATH = re.compile(r"^/cdn/files/[^/]+/[^/]+$")


# -- recording what the client saw ------------------------------------------------------------


class Recorder:
    """Outermost ASGI layer of a live mock (single-origin form): every exchange on fal's hosts
    as the client saw it, with the wall time it arrived."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.exchanges: list[Exchange] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        host, _, rest = scope["path"].lstrip("/").partition("/")
        if scope["type"] != "http" or host not in _HOSTS:
            await self.app(scope, receive, send)
            return
        arrived = time.monotonic()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return dict(await receive())

        status = 0
        headers: dict[str, str] = {}
        chunks: list[bytes] = []
        recorded = False

        def record() -> None:
            nonlocal recorded
            if recorded:
                return
            recorded = True
            path = f"/{rest}"
            match = _REQUEST_ID.search(path)
            self.exchanges.append(
                Exchange(
                    seq=len(self.exchanges) + 1,
                    wall_time=arrived,
                    host=host,
                    method=scope["method"],
                    path=path,
                    query=scope.get("query_string", b"").decode(),
                    request_headers={k.decode(): v.decode() for k, v in scope["headers"]},
                    request_body=_text(body),
                    status_code=status,
                    response_headers=headers,
                    response_body=_text(b"".join(chunks)),
                    request_id=headers.get("x-fal-request-id") or (match and match.group(1)),
                )
            )

        async def capture(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.update((k.decode(), v.decode()) for k, v in message["headers"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    # Before the client can see the end of the answer: a transcript taken
                    # as soon as the client returns must already hold this exchange.
                    record()
            await send(message)

        try:
            await self.app(scope, replay, capture)
        finally:
            record()


def _text(data: bytes) -> str | None:
    if not data:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return f"<{len(data)} bytes of binary data>"


@dataclass
class Served:
    """A running (possibly broken) mock: where it is, its engine, and what the client saw."""

    base_url: str
    engine: QueueEngine
    recorder: Recorder

    def client_transcript(self) -> Transcript:
        """As the client saw it, with the server's own histories."""
        return Transcript(tuple(self.recorder.exchanges), transcript_of(self.engine).histories)

    def journal_transcript(self) -> Transcript:
        """As the mock's journal recorded it (inside any broken layer)."""
        return transcript_of(self.engine)

    def fetch_over_http(self, url: str) -> bytes:
        response = httpx.get(url)
        response.raise_for_status()
        return response.content


@contextmanager
def serve(
    wrap: Callable[[ASGIApp], ASGIApp] | None = None,
    *,
    policy: str = "polls:2",
    engine: str = "placeholder",
) -> Iterator[Served]:
    """A live mock on a free port behind ``wrap`` (none: the real mock), fal_client pointed
    at it with a fresh cached client."""
    settings = MockSettings(port=0, policy=policy, seed=0, stream_tick=0.01, engine=engine)
    live = LiveServer(settings)
    inner = live.app
    recorder = Recorder(wrap(inner) if wrap is not None else inner)
    live.app = recorder  # type: ignore[assignment]  # any ASGI app serves; .engine is not used
    forget_fal_client()
    try:
        with live, point_fal_client(live.base_url):
            yield Served(live.base_url, inner.state.engine, recorder)
    finally:
        forget_fal_client()
        gc.collect()


def forget_fal_client() -> None:
    """fal-client caches its httpx client and credentials at module level: start afresh."""
    cached = fal_client.sync_client.__dict__
    for name in ("_client", "_auth", "_token_manager"):
        value = cached.pop(name, None)
        if isinstance(value, httpx.Client):
            value.close()


# -- rewriting answers ------------------------------------------------------------------------


class ResponseRewriter:
    """Buffers the answers to matching requests and lets ``rewrite`` change status and body."""

    def __init__(self, app: ASGIApp, path: re.Pattern[str], rewrite: Rewrite) -> None:
        self.app = app
        self.path = path
        self.rewrite = rewrite

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.path.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def buffer(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            status, body = self.rewrite(scope, start["status"], b"".join(chunks))
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, buffer)


def rewriting_json(
    path: re.Pattern[str], change: Callable[[str, dict[str, Any]], dict[str, Any] | None]
) -> Callable[[ASGIApp], ASGIApp]:
    """Middleware that passes each 2xx JSON answer on ``path`` (and the request id in it)
    through ``change``; None leaves the answer alone."""

    def rewrite(scope: dict[str, Any], status: int, body: bytes) -> tuple[int, bytes]:
        match = path.match(scope["path"])
        request_id = match.group(1) if match and match.groups() else ""
        if not 200 <= status < 300:
            return status, body
        original = json.loads(body)
        changed = change(request_id, original)
        if changed is None:
            return status, body
        if changed.get("status") != original.get("status"):  # fal's code for the new status
            status = 202 if changed.get("status") in ("IN_QUEUE", "IN_PROGRESS") else 200
        return status, json.dumps(changed).encode()

    return lambda app: ResponseRewriter(app, path, rewrite)
