"""One reference lip-sync request, as run inside a worker process of the server's pool.

The server (``mock_server.engine.reference``) sends a plain dict and gets a plain dict back, so
nothing but built-in types crosses the pipe. Every problem with the inputs, found while
resolving them or later while decoding, comes back as fal's 422 body for the field at fault;
anything else is a bug and propagates (the pool reports it as a failed job).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from mock_server.lipsync.inputs import InputConfig, InputError, ResolvedMedia, resolve_inputs
from mock_server.lipsync.pipeline import Stage, run_lipsync
from mock_server.storage import StoredFile

__all__ = ["PROGRESS_STEPS", "run_reference_job"]

PROGRESS_STEPS: Final = 10
"""Progress lines per pass: one at every tenth of the frames (few enough to read)."""

_STAGE_NAMES: Final[dict[Stage, str]] = {"track": "Tracking the face", "render": "Rendering"}

Log = Callable[[str, str], None]


class _Prefetched:
    """The stored files the request names, copied out of the server's store before the job."""

    def __init__(self, files: dict[str, tuple[StoredFile, bytes]]) -> None:
        self._by_url = files
        self._by_id = {stored.file_id: (stored, data) for stored, data in files.values()}

    def lookup_ref(self, url: str) -> StoredFile | None:
        found = self._by_url.get(url)
        return None if found is None else found[0]

    def get(self, file_id: str) -> tuple[StoredFile, bytes] | None:
        return self._by_id.get(file_id)


def run_reference_job(
    payload: dict[str, Any], log: Log, should_stop: Callable[[], bool]
) -> dict[str, Any]:
    """Resolve the inputs, lip-sync them into ``work_dir/output.mp4``, describe the result.

    Returns ``{"kind": "ok", "path", "summary"}`` or ``{"kind": "input_error", "msg",
    "body"}``. On any other way out the work dir is removed, so nothing is left half-written.
    """
    work_dir = Path(payload["work_dir"])
    try:
        return _run(payload, work_dir, log, should_stop)
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise


def _run(
    payload: dict[str, Any], work_dir: Path, log: Log, should_stop: Callable[[], bool]
) -> dict[str, Any]:
    config = InputConfig(**payload["input_config"])
    store = _Prefetched(payload["stored"])
    try:
        video, audio = resolve_inputs(
            payload["video_url"],
            payload["audio_url"],
            work_dir=work_dir,
            store=store,
            config=config,
        )
    except InputError as error:
        return _input_error(error, work_dir)
    log("INFO", f"Inputs accepted: {_describe(video)}; {_describe(audio)}")
    log("INFO", f"Lip-syncing with sync_mode={payload['sync_mode']}")

    next_report: dict[Stage, int] = {"track": 1, "render": 1}

    def progress(stage: Stage, done: int, total: int) -> None:
        step = next_report[stage]
        if done * PROGRESS_STEPS >= step * total or done == total:
            next_report[stage] = done * PROGRESS_STEPS // max(total, 1) + 1
            log("INFO", f"{_STAGE_NAMES[stage]}: {done}/{total} frames")

    try:
        summary = run_lipsync(
            video.path,
            audio.path,
            work_dir / "output.mp4",
            sync_mode=payload["sync_mode"],
            backend=payload["backend"],
            progress=progress,
            should_stop=should_stop,
            max_seconds=config.max_seconds,
        )
    except ValueError as error:
        # The resolver checked both files, but a fault deep in a stream shows only when it is
        # decoded in full: still the input's fault, so still a 422 for the field concerned.
        at_fault = "audio_url" if str(audio.path) in str(error) else "video_url"
        kind = "audio" if at_fault == "audio_url" else "video"
        message = (
            str(error).replace(str(video.path), "the video").replace(str(audio.path), "the audio")
        )
        failure = InputError(at_fault, message, f"unsupported_{kind}_format")  # type: ignore[arg-type]
        return _input_error(failure, work_dir)
    log(
        "INFO",
        f"Encoded {summary.frames} frames ({summary.face_frames} with a face), "
        f"{summary.width}x{summary.height} at {summary.fps} fps, {summary.duration_s:.2f} s",
    )
    return {"kind": "ok", "path": str(summary.output), "summary": summary.to_dict()}


def _input_error(error: InputError, work_dir: Path) -> dict[str, Any]:
    shutil.rmtree(work_dir, ignore_errors=True)
    return {"kind": "input_error", "msg": f"{error.field}: {error.msg}", "body": error.to_body()}


def _describe(media: ResolvedMedia) -> str:
    return f"{media.kind} {media.duration_s:.2f} s, {media.size} bytes ({media.source})"
