"""The broken servers: middleware around the real mock, each breaking one property."""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from tests.broken_servers.harness import (
    FILE_PATH,
    RESULT_PATH,
    STATUS_PATH,
    STREAM_PATH,
    SUBMIT_PATH,
    ASGIApp,
    ResponseRewriter,
    rewriting_json,
)

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
