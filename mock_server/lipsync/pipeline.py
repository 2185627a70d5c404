"""The reference lip-sync, end to end: a face video and a speech track in, an mp4 out.

1. probe the video, decode the audio (mono, 44.1 kHz);
2. pass 1: track the mouth on every source frame (per-frame geometry only is kept);
3. plan the output timeline for the ``sync_mode``; fit the audio to it exactly;
4. openness per output frame from the audio fitted the same way, at 16 kHz (padding reads
   as a closed mouth);
5. pass 2: decode again in timeline order, open the mouth, encode H.264 + AAC.

Same inputs, same bytes: x264 runs single-threaded with fixed parameters (``video.py``) and
OpenCV is pinned to one thread here, so nothing depends on scheduling. Memory holds one frame at
a time for ``cut_off``/``silence``/``remap`` and at most a fixed budget for ``loop``/``bounce``;
the audio (at most ``MAX_SECONDS``) and a few scalars per frame are kept whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from contracts.schemas import SyncMode
from mock_server.lipsync.audio import decode_audio, mouth_openness
from mock_server.lipsync.backends import make_tracker
from mock_server.lipsync.face import MouthGeometry
from mock_server.lipsync.frame_source import DEFAULT_MEMORY_BUDGET, timeline_frames
from mock_server.lipsync.render import render_mouth
from mock_server.lipsync.timeline import plan_timeline
from mock_server.lipsync.video import MAX_SECONDS, Mp4Writer, iter_frames, probe_video

__all__ = ["AUDIO_RATE", "Cancelled", "LipsyncSummary", "Progress", "Stage", "run_lipsync"]

AUDIO_RATE: Final = 44_100
"""Output audio rate."""
ANALYSIS_RATE: Final = 16_000
"""Rate the openness analysis runs at: the speech band ends at 4 kHz, and at 44.1 kHz the
analysis' working copies grew with the clip (~190 MB extra at 120 s, measured in bench/)."""

Stage = Literal["track", "render"]
Progress = Callable[[Stage, int, int], None]
"""Called as ``(stage, frames_done, frames_total)`` after every frame of each pass."""


class Cancelled(Exception):
    """The caller's ``should_stop`` said stop; no output file was left behind."""


@dataclass(frozen=True, slots=True)
class LipsyncSummary:
    output: Path
    sync_mode: SyncMode
    backend: str
    width: int
    height: int
    fps: Fraction
    source_frames: int
    frames: int
    face_frames: int
    """Output frames whose mouth was rendered from a tracked face."""
    duration_s: float
    seconds: float
    """Wall time of the whole run (not part of the output, which never depends on time)."""

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values.update(output=str(self.output), fps=str(self.fps))
        return values


def run_lipsync(
    video: Path,
    audio: Path,
    output: Path,
    *,
    sync_mode: SyncMode = "cut_off",
    backend: str = "haar",
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_seconds: float = MAX_SECONDS,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> LipsyncSummary:
    """Lip-sync ``video`` to ``audio`` into ``output`` (written atomically).

    Raises ``ValueError`` for media that cannot be used (with a message naming the problem),
    :class:`Cancelled` when ``should_stop`` returns true; the output then does not exist.
    """
    started = time.perf_counter()
    cv2.setNumThreads(1)  # determinism first; the server runs one job per worker process
    report = progress or _ignore_progress
    stop = should_stop or _never

    info = probe_video(video, max_seconds=max_seconds)
    samples = decode_audio(audio, AUDIO_RATE)
    if samples.size / AUDIO_RATE > max_seconds:
        raise ValueError(f"{audio}: the audio is longer than the {max_seconds:g} s limit")

    track = _track(video, info.fps, info.frame_count, backend, report, stop)
    timeline = plan_timeline(sync_mode, len(track), float(info.fps), samples.size, AUDIO_RATE)
    fitted = timeline.fit_audio(samples)
    openness = _openness(audio, timeline.output_frames, info.fps)

    total = timeline.output_frames
    face_frames = 0
    frame_bytes = info.width * info.height * 3
    with Mp4Writer(output, info.width, info.height, info.fps, AUDIO_RATE) as writer:
        frames = timeline_frames(video, info.fps, timeline, frame_bytes, memory_budget)
        for done, (source_index, frame) in enumerate(frames, start=1):
            if stop():
                raise Cancelled
            mouth = track[source_index]
            face_frames += mouth is not None
            writer.write_frame(render_mouth(frame, mouth, float(openness[done - 1])))
            # Audio goes in step with the video so the writer never queues the whole track.
            writer.write_audio(
                fitted[_audio_index(done - 1, info.fps) : _audio_index(done, info.fps)]
            )
            report("render", done, total)

    return LipsyncSummary(
        output=output,
        sync_mode=sync_mode,
        backend=backend,
        width=writer.width,
        height=writer.height,
        fps=info.fps,
        source_frames=len(track),
        frames=writer.frames_written,
        face_frames=face_frames,
        duration_s=writer.frames_written / float(info.fps),
        seconds=time.perf_counter() - started,
    )


def _track(
    video: Path,
    fps: Fraction,
    estimated_frames: int,
    backend: str,
    report: Progress,
    stop: Callable[[], bool],
) -> list[MouthGeometry | None]:
    tracker = make_tracker(backend)
    for count, frame in enumerate(iter_frames(video, fps), start=1):
        if stop():
            raise Cancelled
        tracker.update(frame)
        report("track", count, max(estimated_frames, count))
    return tracker.finish()


def _openness(audio: Path, frames: int, fps: Fraction) -> NDArray[np.float64]:
    """Openness per output frame from the audio fitted to the output (padding reads closed)."""
    samples = decode_audio(audio, ANALYSIS_RATE)
    wanted = int((Fraction(frames) / fps * ANALYSIS_RATE + Fraction(1, 2)) // 1)
    fitted = (
        samples[:wanted] if samples.size >= wanted else np.pad(samples, (0, wanted - samples.size))
    )
    return mouth_openness(fitted, ANALYSIS_RATE, float(fps), frames)


def _audio_index(frame: int, fps: Fraction) -> int:
    """First audio sample of video frame ``frame`` (round half up, as the writer counts)."""
    return int((Fraction(frame) / fps * AUDIO_RATE + Fraction(1, 2)) // 1)


def _ignore_progress(stage: Stage, done: int, total: int) -> None:
    return None


def _never() -> bool:
    return False
