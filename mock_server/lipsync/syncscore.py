"""The sync score: does an mp4's mouth move with its own audio? Runs on any file, ours or fal's.

LIPSYNC.md, "An automatable sync check". Three parts, all from the file alone:

1. **Structure**: an mp4/mov container, H.264 ``yuv420p`` video, AAC audio, the caller's
   expected size, frame rate and duration, and audio and video no more than 1.5 frames apart.
2. **Sync**: the speech-band level of the file's audio per video frame (``syncscore_measure``
   says why the raw level rather than the renderer's openness curve), against three mouth
   measures read from the pixels after an independent detector pass over the output itself
   (``face.MouthTracker``): the inner-lip opening, the share of dark pixels in the mouth box,
   and the mouth's change from frame to frame (against the level's change). Each is correlated
   (Pearson) at lags of -max_lag..+max_lag frames; frames without a face are left out.
3. **Verdict**: passed iff the structure is right, the best measure's r at its best lag is at
   least ``min_score`` and that lag is within ``max_offset`` frames of zero.

Lag sign: lag L pairs the audio at frame t with the mouth at frame t + L, so **a positive lag
means the mouth lags the audio** (the picture is late), a negative one that it leads.

Frames are decoded twice (tracking needs the whole clip to smooth the track before the mouth
is measured) and never held: memory is a few scalars per frame.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av
import numpy as np
from av.container import InputContainer
from numpy.typing import NDArray

from mock_server.lipsync.face import MouthTracker
from mock_server.lipsync.syncscore_measure import (
    MEASURES,
    MouthMeasurer,
    envelope_problem,
    floor_envelope,
    scan_lags,
    speech_level_db,
)
from mock_server.lipsync.video import iter_frames, probe_video

__all__ = [
    "DEFAULT_MAX_LAG",
    "DEFAULT_MAX_OFFSET",
    "DEFAULT_MIN_SCORE",
    "ExpectedOutput",
    "MeasureResult",
    "StructureCheck",
    "SyncReport",
    "score_file",
]

DEFAULT_MIN_SCORE: Final = 0.8
"""A renderer that follows the audio scores ~0.95; the controls (untouched face, a different
sentence, a mouth 8 frames late at lag 0) score below 0.3 (LIPSYNC.md, the tests)."""
DEFAULT_MAX_LAG: Final = 10
DEFAULT_MAX_OFFSET: Final = 1
"""Frames of audio/video offset still called in sync (40 ms at 25 fps: below what viewers see)."""
MAX_AV_GAP_FRAMES: Final = 1.5
"""Largest audio/video duration difference accepted, in frame periods (one AAC frame of padding
plus rounding to the frame grid)."""
FPS_TOLERANCE: Final = 0.01
_EPSILON: Final = 1e-9  # a limit reached exactly (1.5 frames) must not fail on rounding


@dataclass(frozen=True, slots=True)
class ExpectedOutput:
    """What the caller knows the output should be; None skips that check."""

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    duration_s: float | None = None
    """Checked to within MAX_AV_GAP_FRAMES frame periods (the sync_mode fixes it to a frame)."""


@dataclass(frozen=True, slots=True)
class StructureCheck:
    name: str
    passed: bool
    message: str


@dataclass(frozen=True, slots=True)
class MeasureResult:
    """One mouth measure against the audio. r values are None where undefined (a constant
    series, fewer than ten frame pairs)."""

    name: str
    r: float | None
    """r at ``best_lag``."""
    best_lag: int | None
    r_at_zero: float | None
    frames_used: int
    """Frame pairs correlated at ``best_lag`` (at lag 0 when there is no best lag)."""
    r_by_lag: tuple[tuple[int, float | None], ...]


@dataclass(frozen=True, slots=True)
class SyncReport:
    path: str
    passed: bool
    score: float
    """The best measure's r at its best lag; 0.0 when nothing could be correlated."""
    best_measure: str | None
    best_lag: int | None
    """Positive: the mouth lags the audio by this many frames; negative: it leads."""
    r_at_zero: float | None
    """The best measure's r at lag 0."""
    fps: float
    frames: int
    frames_with_face: int
    frames_used: int
    structure: tuple[StructureCheck, ...]
    measures: dict[str, MeasureResult]
    reasons: tuple[str, ...]
    """Why the verdict is a fail (empty when passed); also notes on degenerate input."""
    min_score: float = DEFAULT_MIN_SCORE
    max_offset: int = DEFAULT_MAX_OFFSET
    structure_ok: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "structure_ok", all(c.passed for c in self.structure))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: undefined numbers are None (never NaN), tuples become lists."""
        data = asdict(self)
        data["lag_sign"] = "positive = mouth lags audio"
        for measure in data["measures"].values():
            measure["r_by_lag"] = {str(lag): r for lag, r in measure["r_by_lag"]}
        return data

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        best = f"{self.best_measure} at lag {_lag(self.best_lag)}; " if self.best_measure else ""
        lines = [
            f"{self.path}: {verdict}  sync score {self.score:.3f} ({best}min {self.min_score:g})"
        ]
        lines.append("structure:")
        width = max((len(c.name) for c in self.structure), default=0)
        for check in self.structure:
            mark = "ok  " if check.passed else "FAIL"
            lines.append(f"  {mark} {check.name:<{width}}  {check.message}")
        lines.append(
            f"sync: {self.frames} frames, {self.frames_with_face} with a face, "
            f"{self.frames_used} used; lag > 0 means the mouth lags the audio"
        )
        for name, m in self.measures.items():
            best = "" if self.best_measure != name else "  <- best"
            lines.append(
                f"  {name:<10}  r {_fmt(m.r)} at lag {_lag(m.best_lag)}, "
                f"r at lag 0 {_fmt(m.r_at_zero)}, {m.frames_used} frames{best}"
            )
        lines += [f"  ! {reason}" for reason in self.reasons]
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:+.3f}"


def _lag(value: int | None) -> str:
    return "n/a" if value is None else f"{value:+d}"


@dataclass(frozen=True, slots=True)
class _Streams:
    """Container facts read from the headers, without decoding."""

    format_name: str
    video_codec: str
    pix_fmt: str | None
    video_duration_s: float | None
    audio_codec: str | None
    audio_duration_s: float | None
    av_offset_s: float
    """When the audio starts on the video's clock (stream start times)."""


def score_file(
    path: str | Path,
    *,
    expected: ExpectedOutput | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
    max_lag: int = DEFAULT_MAX_LAG,
    max_offset: int = DEFAULT_MAX_OFFSET,
) -> SyncReport:
    """Check the structure of the media file at ``path`` and how well its mouth follows its audio.

    Raises ``ValueError`` when the file is not decodable media (also when decoding fails part
    way) or has no video stream, and ``OSError`` when it cannot be opened. Everything else (no
    audio, no face, silence, a still mouth) is a failed report with its reason, not an exception.
    """
    if max_lag < 0 or max_offset < 0:
        raise ValueError(f"lags must not be negative, got max_lag={max_lag}, {max_offset=}")
    info = probe_video(path, max_seconds=math.inf)
    streams = _read_streams(path)
    fps = info.fps

    tracker = MouthTracker()
    frames = 0
    shape: tuple[int, ...] = ()
    for frame in iter_frames(path, fps):
        shape = shape or frame.shape
        tracker.update(frame)
        frames += 1
    track = tracker.finish()
    measurer = MouthMeasurer()
    values = np.full((frames, len(MEASURES)), np.nan)
    for index, (frame, mouth) in enumerate(zip(iter_frames(path, fps), track, strict=False)):
        values[index] = measurer.measure(frame, mouth)
    with_face = sum(mouth is not None for mouth in track)

    reasons: list[str] = []
    envelope = np.full(frames, np.nan)
    decoded_audio_s: float | None = None
    if streams.audio_codec is not None:
        level, decoded_audio_s = speech_level_db(path, fps, streams.av_offset_s)
        if (problem := envelope_problem(level)) is not None:
            reasons.append(problem)
        else:
            floored = floor_envelope(level)[:frames]
            envelope[: floored.size] = floored
    else:
        reasons.append("no audio stream: nothing to be in sync with")

    video_s = streams.video_duration_s or frames / float(fps)
    audio_s = streams.audio_duration_s or decoded_audio_s
    size = (shape[1], shape[0]) if shape else (info.width, info.height)  # as displayed
    structure = _structure(streams, size, fps, video_s, audio_s, expected)

    measures = _correlate(envelope, values, max_lag)
    if with_face == 0:
        reasons.append("no face found in any frame")
    elif all(m.r is None for m in measures.values()) and not reasons:
        reasons.append(
            f"nothing to correlate: {with_face} frames with a face, and no mouth measure varies"
        )
    best = max(
        (m for m in measures.values() if m.r is not None),
        key=lambda m: m.r if m.r is not None else -math.inf,
        default=None,
    )
    score = best.r if best is not None and best.r is not None else 0.0
    best_lag = best.best_lag if best is not None else None
    if not all(check.passed for check in structure):
        failed = ", ".join(c.name for c in structure if not c.passed)
        reasons.insert(0, f"structure: {failed}")
    if best is not None and score < min_score:
        reasons.append(f"sync score {score:.3f} is below {min_score:g} ({best.name})")
    if best_lag is not None and abs(best_lag) > max_offset:
        side = "lags" if best_lag > 0 else "leads"
        reasons.append(
            f"the mouth {side} the audio by {abs(best_lag)} frames "
            f"({abs(best_lag) / float(fps) * 1000:.0f} ms; at most {max_offset} allowed)"
        )
    passed = not reasons and best is not None
    return SyncReport(
        path=str(path),
        passed=passed,
        score=score,
        best_measure=best.name if best is not None else None,
        best_lag=best_lag,
        r_at_zero=best.r_at_zero if best is not None else None,
        fps=float(fps),
        frames=frames,
        frames_with_face=with_face,
        frames_used=best.frames_used if best is not None else 0,
        structure=structure,
        measures=measures,
        reasons=tuple(reasons),
        min_score=min_score,
        max_offset=max_offset,
    )


def _correlate(
    envelope: NDArray[np.float64], values: NDArray[np.float64], max_lag: int
) -> dict[str, MeasureResult]:
    results: dict[str, MeasureResult] = {}
    # The change from frame t-1 to t is paired with the audio's change over the same step:
    # a mouth that moves when the sound changes, whichever way.
    audio_change = np.abs(np.diff(envelope, prepend=np.nan))
    for column, name in enumerate(MEASURES):
        audio = audio_change if name == "change" else envelope
        scan = scan_lags(audio.tolist(), values[:, column].tolist(), max_lag)
        best = scan.best()
        r_zero, pairs_zero = scan.at(0)
        lag = best[0] if best is not None else None
        results[name] = MeasureResult(
            name=name,
            r=best[1] if best is not None else None,
            best_lag=lag,
            r_at_zero=r_zero,
            frames_used=scan.at(lag)[1] if lag is not None else pairs_zero,
            r_by_lag=tuple(zip(scan.lags, scan.r, strict=True)),
        )
    return results


def _read_streams(path: str | Path) -> _Streams:
    try:
        with av.open(str(path), "r") as container:
            assert isinstance(container, InputContainer)
            video = container.streams.video[0]  # probe_video has checked there is one
            pix_fmt = video.codec_context.pix_fmt
            if pix_fmt is None:  # not in the headers: the first decoded frame says
                first = next(container.decode(video), None)
                pix_fmt = first.format.name if first is not None else None
            audio = container.streams.audio[0] if container.streams.audio else None
            video_start = _seconds(video.start_time, video.time_base) or 0.0
            audio_start = _seconds(audio.start_time, audio.time_base) if audio is not None else None
            return _Streams(
                format_name=container.format.name,
                video_codec=video.codec_context.name,
                pix_fmt=pix_fmt,
                video_duration_s=_seconds(video.duration, video.time_base) or None,
                audio_codec=audio.codec_context.name if audio is not None else None,
                # The container's duration honours the edit list that hides the AAC encoder's
                # priming and padding; decoding counts the padding too.
                audio_duration_s=(
                    _seconds(audio.duration, audio.time_base) or None if audio is not None else None
                ),
                av_offset_s=(audio_start or 0.0) - video_start,
            )
    except av.FFmpegError as error:
        raise ValueError(f"{path}: not decodable media: {error}") from error


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or not time_base or value < 0:
        return None
    return float(value * time_base)


def _structure(
    streams: _Streams,
    size: tuple[int, int],
    fps: Fraction,
    video_s: float,
    audio_s: float | None,
    expected: ExpectedOutput | None,
) -> tuple[StructureCheck, ...]:
    frame_s = 1 / float(fps)
    limit_s = MAX_AV_GAP_FRAMES * frame_s + _EPSILON
    is_mp4 = bool({"mp4", "mov"} & set(streams.format_name.split(",")))
    video = f"{streams.video_codec} {streams.pix_fmt}"
    checks = [
        StructureCheck("container", is_mp4, f"demuxer {streams.format_name}"),
        StructureCheck("video_codec", video == "h264 yuv420p", f"{video} (want h264 yuv420p)"),
        StructureCheck(
            "audio_codec",
            streams.audio_codec == "aac",
            f"{streams.audio_codec or 'no audio stream'} (want aac)",
        ),
    ]
    if audio_s is None:
        checks.append(StructureCheck("av_duration", False, f"video {video_s:.3f} s, no audio"))
    else:
        gap = abs(video_s - audio_s)
        message = f"video {video_s:.3f} s, audio {audio_s:.3f} s: {gap / frame_s:.2f} frames apart"
        checks.append(StructureCheck("av_duration", gap <= limit_s, f"{message} (at most 1.5)"))
    want = expected or ExpectedOutput()
    if want.width is not None or want.height is not None:
        wanted = (want.width or size[0], want.height or size[1])
        message = f"{size[0]}x{size[1]} (want {wanted[0]}x{wanted[1]})"
        checks.append(StructureCheck("size", size == wanted, message))
    if want.fps is not None:
        ok = abs(float(fps) - want.fps) <= FPS_TOLERANCE
        checks.append(StructureCheck("fps", ok, f"{float(fps):g} fps (want {want.fps:g})"))
    if want.duration_s is not None:
        off = abs(video_s - want.duration_s)
        message = f"{video_s:.3f} s (want {want.duration_s:g} s, {off / frame_s:.2f} frames off)"
        checks.append(StructureCheck("duration", off <= limit_s, message))
    return tuple(checks)
