"""A small, realistic client of fal's ``fal-ai/lipsync``: the kind of code the plugin tests.

``lipsync_file`` uploads a face video and a speech track, queues the job, reports progress
from the logs, and downloads the result next to the inputs. ``lipsync_file_async`` does the
same with fal-client's async API. Errors from fal (a bad input answers 422 on the result)
become :class:`LipsyncError` with fal's message, so callers do not parse HTTP errors.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import fal_client
import httpx

APP = "fal-ai/lipsync"

Progress = Callable[[str], None]


class LipsyncError(Exception):
    """fal refused or failed the job; ``field`` names the input at fault when fal says."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def lipsync_file(
    video: Path,
    audio: Path,
    output: Path,
    *,
    sync_mode: str = "cut_off",
    on_progress: Progress | None = None,
) -> Path:
    """Lip-sync ``video`` to ``audio`` with fal and write the result to ``output``."""
    arguments = {
        "video_url": fal_client.upload_file(video),
        "audio_url": fal_client.upload_file(audio),
        "sync_mode": sync_mode,
    }

    def report(update: fal_client.Status) -> None:
        if on_progress is not None and isinstance(update, fal_client.InProgress):
            for line in update.logs or []:
                on_progress(line["message"])

    try:
        result = fal_client.subscribe(
            APP, arguments=arguments, with_logs=True, on_queue_update=report
        )
    except fal_client.client.FalClientHTTPError as error:
        raise _as_lipsync_error(error) from error
    return _download(result, output)


async def lipsync_file_async(
    video: Path, audio: Path, output: Path, *, sync_mode: str = "cut_off"
) -> Path:
    """The async twin of :func:`lipsync_file` (no progress callback)."""
    arguments = {
        "video_url": await fal_client.upload_file_async(video),
        "audio_url": await fal_client.upload_file_async(audio),
        "sync_mode": sync_mode,
    }
    handle = await fal_client.submit_async(APP, arguments=arguments)
    try:
        result = await handle.get()
    except fal_client.client.FalClientHTTPError as error:
        raise _as_lipsync_error(error) from error
    async with httpx.AsyncClient() as client:
        response = await client.get(result["video"]["url"])
        response.raise_for_status()
    await anyio.Path(output).write_bytes(response.content)  # no blocking I/O on the loop
    return output


def _download(result: dict[str, Any], output: Path) -> Path:
    response = httpx.get(result["video"]["url"])
    response.raise_for_status()
    output.write_bytes(response.content)
    return output


def _as_lipsync_error(error: fal_client.client.FalClientHTTPError) -> LipsyncError:
    detail = error.message
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        location = first.get("loc") or []
        field = location[-1] if location else None
        return LipsyncError(f"{first.get('msg')} ({first.get('type')})", field)
    return LipsyncError(str(detail))
