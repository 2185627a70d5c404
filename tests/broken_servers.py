"""A catalogue of deliberately broken fal servers and clients, for tests only.

Each entry breaks exactly one property that a check in ``contracts.checks`` asserts, so the
tests can show that every check fires (and, on the real mock, stays quiet). A broken server is
ASGI middleware around the real mock (``create_app``) that rewrites what the client is sent; a
broken client is a flow that misuses a correct server.

The transcript of a broken server is recorded *outside* the broken layer by ``Recorder``: the
mock's own journal sits inside it and never sees the rewritten answers, exactly as a client
talking to a broken fal would not be seeing the mock's journal.
"""

from __future__ import annotations

import functools
import gc
import io
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import fal_client
import httpx

from contracts.checks import CheckOptions
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


# -- the broken servers ------------------------------------------------------------------------


def status_goes_backwards() -> Callable[[ASGIApp], ASGIApp]:
    """After a request was answered IN_PROGRESS, the next IN_PROGRESS answer says IN_QUEUE."""
    in_progress: set[str] = set()

    def change(request_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
        if body.get("status") != "IN_PROGRESS":
            return None
        if request_id not in in_progress:
            in_progress.add(request_id)
            return None
        urls = {k: body[k] for k in ("request_id", "response_url", "status_url", "cancel_url")}
        return {**urls, "status": "IN_QUEUE", "queue_position": 0}

    return rewriting_json(STATUS_PATH, change)


def status_failed() -> Callable[[ASGIApp], ASGIApp]:
    """A finished request is answered ``FAILED``, a status fal never sends."""

    def change(request_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
        return {**body, "status": "FAILED"} if body.get("status") == "COMPLETED" else None

    return rewriting_json(STATUS_PATH, change)


def in_progress_without_logs() -> Callable[[ASGIApp], ASGIApp]:
    """IN_PROGRESS answers leave out ``logs`` (fal-client then fails with a KeyError)."""

    def change(request_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
        if body.get("status") != "IN_PROGRESS":
            return None
        return {k: v for k, v in body.items() if k != "logs"}

    return rewriting_json(STATUS_PATH, change)


def queue_position_increases() -> Callable[[ASGIApp], ASGIApp]:
    """Each IN_QUEUE status answer puts the request one place further back."""
    answers: dict[str, int] = {}

    def change(request_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
        if body.get("status") != "IN_QUEUE":
            return None
        answers[request_id] = answers.get(request_id, 0) + 1
        return {**body, "queue_position": answers[request_id]}

    return rewriting_json(STATUS_PATH, change)


def logs_drop_a_line() -> Callable[[ASGIApp], ASGIApp]:
    """Once a request has three log lines, its second one disappears from status answers."""

    def change(request_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
        logs = body.get("logs")
        if not isinstance(logs, list) or len(logs) < 3:
            return None
        return {**body, "logs": [logs[0], *logs[2:]]}

    return rewriting_json(STATUS_PATH, change)


def stream_events_out_of_order() -> Callable[[ASGIApp], ASGIApp]:
    """A status stream sends its last two events the wrong way round (COMPLETED first)."""

    def rewrite(scope: dict[str, Any], status: int, body: bytes) -> tuple[int, bytes]:
        blocks = re.split(rb"\r?\n\r?\n", body)
        data = [i for i, block in enumerate(blocks) if block.startswith(b"data:")]
        if len(data) >= 2:
            a, b = data[-2], data[-1]
            blocks[a], blocks[b] = blocks[b], blocks[a]
        return status, b"\r\n\r\n".join(blocks)

    return lambda app: ResponseRewriter(app, STREAM_PATH, rewrite)


def wrong_file_size() -> Callable[[ASGIApp], ASGIApp]:
    """The result says the video is one byte longer than it is."""

    def change(request_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
        video = body.get("video")
        if not isinstance(video, dict):
            return None
        return {**body, "video": {**video, "file_size": video["file_size"] + 1}}

    return rewriting_json(RESULT_PATH, change)


def wrong_content_type() -> Callable[[ASGIApp], ASGIApp]:
    """The result says the mp4 is a WebM."""

    def change(request_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
        video = body.get("video")
        if not isinstance(video, dict):
            return None
        return {**body, "video": {**video, "content_type": "video/webm"}}

    return rewriting_json(RESULT_PATH, change)


def garbage_file_bytes() -> Callable[[ASGIApp], ASGIApp]:
    """Files download as zeros of the right length: size and name fit, the bytes are no mp4."""

    def rewrite(scope: dict[str, Any], status: int, body: bytes) -> tuple[int, bytes]:
        return status, bytes(len(body)) if status == 200 else body

    return lambda app: ResponseRewriter(app, FILE_PATH, rewrite)


@functools.cache
def silent_short_mp4() -> bytes:
    """Half a second of H.264 with no audio track."""
    import av
    import numpy as np

    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(12):
            frame = av.VideoFrame.from_ndarray(
                np.full((48, 64, 3), index * 20, dtype=np.uint8), format="rgb24"
            )
            frame.pts, frame.time_base = index, Fraction(1, 25)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def silent_short_video() -> Callable[[ASGIApp], ASGIApp]:
    """The output is a valid, truthfully described mp4, but half a second long and silent."""
    data = silent_short_mp4()

    def change(request_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
        video = body.get("video")
        if not isinstance(video, dict):
            return None
        return {**body, "video": {**video, "file_size": len(data)}}

    def swap(scope: dict[str, Any], status: int, body: bytes) -> tuple[int, bytes]:
        return status, data if status == 200 else body

    def wrap(app: ASGIApp) -> ASGIApp:
        return ResponseRewriter(rewriting_json(RESULT_PATH, change)(app), FILE_PATH, swap)

    return wrap


class OffSpecStatusUrl:
    """The submit answer's ``status_url`` is ``.../requests/<id>/state``, a path the contract
    does not have, and the server answers it: a client that follows the URL it was given ends
    up making requests that match no operation."""

    OFF_SPEC = re.compile(r"^(/queue/fal-ai/lipsync/requests/[^/]+)/state$")

    def __init__(self, app: ASGIApp) -> None:
        def change(request_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
            return {**body, "status_url": body["status_url"].removesuffix("/status") + "/state"}

        self.app = rewriting_json(SUBMIT_PATH, change)(app)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        match = self.OFF_SPEC.match(scope.get("path", ""))
        if match:
            path = f"{match.group(1)}/status"
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)


def off_spec_status_url() -> Callable[[ASGIApp], ASGIApp]:
    return OffSpecStatusUrl


# -- the broken clients ----------------------------------------------------------------------


def submit(base_url: str, client: httpx.Client) -> dict[str, Any]:
    response = client.post(f"{base_url}/queue/{APP}", json=LIPSYNC_INPUT, headers=AUTH)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def poll_until_completed(client: httpx.Client, status_url: str, interval: float) -> None:
    while True:
        answer = client.get(status_url, headers=AUTH).json()
        if answer["status"] == "COMPLETED":
            return
        time.sleep(interval)


def fetches_result_early(served: Served) -> None:
    """Fetches the result right after submitting, then again once COMPLETED."""
    with httpx.Client() as client:
        queued = submit(served.base_url, client)
        client.get(queued["response_url"], headers=AUTH)  # 400: still in progress
        poll_until_completed(client, queued["status_url"], 0.0)
        client.get(queued["response_url"], headers=AUTH).raise_for_status()


def polls_without_sleeping(served: Served) -> None:
    """The official client, told to poll with no interval at all."""
    fal_client.subscribe(APP, arguments=LIPSYNC_INPUT, interval=0.0)


def sends_invalid_body(served: Served) -> None:
    """A number where the video URL goes (the mock answers 422)."""
    with httpx.Client() as client:
        bad = {**LIPSYNC_INPUT, "video_url": 42}
        client.post(f"{served.base_url}/queue/{APP}", json=bad, headers=AUTH)


def forgets_credentials(served: Served) -> None:
    """No Authorization header (the mock answers 401)."""
    with httpx.Client() as client:
        client.post(f"{served.base_url}/queue/{APP}", json=LIPSYNC_INPUT)


def deletes_a_request(served: Served) -> None:
    """DELETE on a request, which the contract has no operation for (cancel is PUT .../cancel)."""
    with httpx.Client() as client:
        queued = submit(served.base_url, client)
        client.delete(queued["response_url"], headers=AUTH)


# -- flows of a correct client ---------------------------------------------------------------


def subscribe_with_logs(served: Served) -> None:
    fal_client.subscribe(APP, arguments=LIPSYNC_INPUT, with_logs=True, on_queue_update=_ignore)


def subscribe_expecting_an_error(served: Served) -> None:
    """For servers that make the official client fail: the transcript is what matters."""
    with suppress(KeyError, ValueError, fal_client.client.FalClientHTTPError):
        subscribe_with_logs(served)


def stream_status(served: Served) -> None:
    """What @fal-ai/client's streaming mode does: submit, one status stream, the result."""
    with httpx.Client() as client:
        queued = submit(served.base_url, client)
        url = f"{queued['status_url']}/stream?logs=1"
        with client.stream("GET", url, headers=AUTH) as response:
            response.read()
        client.get(queued["response_url"], headers=AUTH).raise_for_status()


def _ignore(update: object) -> None:
    return None


# -- the catalogue ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Broken:
    """One broken server or client, and the check that must catch it."""

    name: str
    breaks: str
    """The name of the check that fires (``contracts.checks.CHECK_NAMES``)."""
    drive: Callable[[Served], None]
    wrap: Callable[[], Callable[[ASGIApp], ASGIApp]] | None = None
    """Makes the broken server's middleware (fresh state per test); None: the real mock."""
    options: CheckOptions = field(default_factory=CheckOptions)
    policy: str = "polls:2"
    files_over_http: bool = False
    """Download output files through the (broken) server rather than from the store."""
    expect_in_report: tuple[str, ...] = ()
    """Text the failure report must contain."""
    also_breaks: tuple[str, ...] = ()
    """Other checks that fire as a consequence (each entry breaks as little as it can)."""


CATALOGUE: tuple[Broken, ...] = (
    Broken(
        "status_goes_backwards",
        "status_never_goes_backwards",
        subscribe_with_logs,
        status_goes_backwards,
        expect_in_report=("sent IN_QUEUE after it had been sent IN_PROGRESS",),
    ),
    Broken(
        "status_failed",
        "status_never_goes_backwards",
        subscribe_expecting_an_error,
        status_failed,
        also_breaks=("responses_conform_to_openapi",),
        expect_in_report=("'FAILED', which fal never sends",),
    ),
    Broken(
        "in_progress_without_logs",
        "responses_conform_to_openapi",
        subscribe_expecting_an_error,
        in_progress_without_logs,
        expect_in_report=(
            "getRequestStatus 202: the body does not match its schema: 'logs' is a required",
        ),
    ),
    Broken(
        "stream_events_out_of_order",
        "status_never_goes_backwards",
        stream_status,
        stream_events_out_of_order,
        expect_in_report=("sent IN_PROGRESS after it had been sent COMPLETED", "event"),
    ),
    Broken(
        "queue_position_increases",
        "queue_position_never_increases",
        subscribe_with_logs,
        queue_position_increases,
        policy="polls:3",
        expect_in_report=("queue_position went from 0", "to 1"),
    ),
    Broken(
        "logs_drop_a_line",
        "logs_only_grow",
        subscribe_with_logs,
        logs_drop_a_line,
        expect_in_report=("line 1 was",),
    ),
    Broken(
        "wrong_file_size",
        "output_files_are_valid",
        subscribe_with_logs,
        wrong_file_size,
        expect_in_report=("file_size says",),
    ),
    Broken(
        "wrong_content_type",
        "output_files_are_valid",
        subscribe_with_logs,
        wrong_content_type,
        expect_in_report=("content_type says 'video/webm', the bytes are video/mp4",),
    ),
    Broken(
        "garbage_file_bytes",
        "output_files_are_valid",
        subscribe_with_logs,
        garbage_file_bytes,
        files_over_http=True,
        expect_in_report=("the bytes are not an mp4", "not a decodable video"),
    ),
    Broken(
        "silent_short_video",
        "output_files_are_valid",
        subscribe_with_logs,
        silent_short_video,
        options=CheckOptions(expected_duration_s=1.0),
        files_over_http=True,
        expect_in_report=("there is no audio stream", "lasts 0.48 s, expected 1 s"),
    ),
    Broken(
        # The real mock, but its placeholder engine does no lip-sync: a broken *lip-sync* server.
        "placeholder_is_not_lipsynced",
        "output_files_are_valid",
        subscribe_with_logs,
        options=CheckOptions(sync_score=True),
        expect_in_report=("its mouth is not in sync with its audio", "no face found"),
    ),
    Broken(
        "off_spec_status_url",
        "requests_conform_to_openapi",
        subscribe_with_logs,
        off_spec_status_url,
        # The client's polls go to the off-spec path, so no status answer it was sent counts.
        also_breaks=("result_fetched_only_after_completed",),
        expect_in_report=("no operation of openapi.yaml has the path", "/state"),
    ),
    Broken(
        "client_fetches_result_early",
        "result_fetched_only_after_completed",
        fetches_result_early,
        expect_in_report=("before any status answer said COMPLETED",),
    ),
    Broken(
        "client_polls_without_sleeping",
        "polling_not_faster_than",
        polls_without_sleeping,
        options=CheckOptions(poll_interval_s=0.05),
        policy="polls:5",
        expect_in_report=("shorter than 0.05 s",),
    ),
    Broken(
        "client_sends_invalid_body",
        "requests_conform_to_openapi",
        sends_invalid_body,
        expect_in_report=("['video_url'] 42 is not of type 'string'",),
    ),
    Broken(
        "client_forgets_credentials",
        "requests_conform_to_openapi",
        forgets_credentials,
        expect_in_report=("the Authorization header is missing",),
    ),
    Broken(
        "client_deletes_a_request",
        "requests_conform_to_openapi",
        deletes_a_request,
        expect_in_report=("DELETE is not an operation",),
    ),
)
