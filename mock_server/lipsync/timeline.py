"""Which source frame each output frame shows, and how long the audio must be, per ``sync_mode``.

The five modes of fal's sync-lipsync family, for a video of ``n`` frames and an audio track:

* ``cut_off`` (default): output = the shorter of the two; frames play in order.
* ``loop``: output = audio length; the video repeats ``0 .. n-1, 0 .. n-1, ...``.
* ``bounce``: output = audio length; the video ping-pongs ``0 .. n-1, n-2 .. 1, 0, 1 ...``
  (the end frames are not doubled, so the motion does not stall at the turns).
* ``silence``: output = video length; the audio is padded with silence (or trimmed if longer).
* ``remap``: output = audio length; the video is time-stretched: output frame ``i`` shows source
  frame ``round(i * (n - 1) / (out - 1))``, so the first and last frames line up.

Audio length in frames is rounded to the nearest frame (half up), so no mode pads or trims the
audio by more than half a frame unless the mode itself asks for it (``cut_off``, ``silence``).
Audio shorter than half a frame still gives one output frame: an empty video cannot be
encoded, and one frame with the audio padded to it is the closest faithful answer.

A :class:`Timeline` is a handful of integers: the frame mapping is computed per index on demand,
so planning a ten-hour clip costs the same as planning a one-second one. ``cut_off``,
``silence`` and ``remap`` read source frames in non-decreasing order (one decoding pass,
holding only the current frame); ``loop`` and ``bounce`` revisit frames, so a renderer must
keep (or re-decode) at most the ``video_frames`` source frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from contracts.schemas import SYNC_MODES, SyncMode

__all__ = ["Timeline", "audio_length_in_frames", "plan_timeline"]

ScalarT = TypeVar("ScalarT", bound=np.generic)


@dataclass(frozen=True, slots=True)
class Timeline:
    """The plan for one output: its length, its frame mapping and its exact audio length."""

    mode: SyncMode
    video_frames: int
    """Frames in the source video."""
    fps: float
    sample_rate: int
    output_frames: int
    audio_samples_out: int
    """``round(output_frames / fps * sample_rate)``: the output audio length in samples."""

    @property
    def duration_s(self) -> float:
        return self.output_frames / self.fps

    @property
    def reads_source_in_order(self) -> bool:
        """True when source frames are requested in non-decreasing order (stream once).

        False for ``loop`` and ``bounce`` when they wrap, which revisit earlier frames.
        """
        if self.mode in ("loop", "bounce"):
            return self.output_frames <= self.video_frames
        return True

    def source_frame(self, output_index: int) -> int:
        """The source video frame shown at output frame ``output_index``."""
        if not 0 <= output_index < self.output_frames:
            raise IndexError(
                f"output frame {output_index} out of range 0..{self.output_frames - 1}"
            )
        n = self.video_frames
        if self.mode in ("cut_off", "silence"):
            # Both play the video in order; neither makes the output longer than the video.
            return output_index
        if self.mode == "loop":
            return output_index % n
        if self.mode == "bounce":
            if n == 1:
                return 0
            period = 2 * (n - 1)
            phase = output_index % period
            return phase if phase < n else period - phase
        # remap: integer round-half-up of i * (n - 1) / (out - 1), exact for any length.
        last = self.output_frames - 1
        if last == 0:
            return 0
        return (2 * output_index * (n - 1) + last) // (2 * last)

    def iter_source_frames(self, start: int = 0, stop: int | None = None) -> Iterator[int]:
        """Yield the source frame of each output frame in ``[start, stop)``, lazily."""
        end = self.output_frames if stop is None else min(stop, self.output_frames)
        for output_index in range(max(start, 0), end):
            yield self.source_frame(output_index)

    def source_frames(self, start: int = 0, stop: int | None = None) -> NDArray[np.int64]:
        """The source frames of output frames ``[start, stop)`` as an array (for one chunk).

        Vectorised version of :meth:`source_frame`; ask for chunks, not for a whole long clip.
        """
        end = self.output_frames if stop is None else min(stop, self.output_frames)
        index = np.arange(max(start, 0), max(end, max(start, 0)), dtype=np.int64)
        n = self.video_frames
        if self.mode in ("cut_off", "silence"):
            return index
        if self.mode == "loop":
            return index % n
        if self.mode == "bounce":
            if n == 1:
                return np.zeros_like(index)
            period = 2 * (n - 1)
            phase = index % period
            return np.where(phase < n, phase, period - phase)
        last = self.output_frames - 1
        if last == 0:
            return np.zeros_like(index)
        return (2 * index * (n - 1) + last) // (2 * last)

    def fit_audio(self, samples: NDArray[ScalarT]) -> NDArray[ScalarT]:
        """Trim or zero-pad ``samples`` along the last axis to exactly ``audio_samples_out``.

        Works on mono ``(n,)`` and planar ``(channels, n)`` arrays; keeps the dtype. The input
        must already be at ``sample_rate``.
        """
        length = samples.shape[-1]
        target = self.audio_samples_out
        if length >= target:
            return samples[..., :target]
        padding = [(0, 0)] * (samples.ndim - 1) + [(0, target - length)]
        return np.pad(samples, padding)


def audio_length_in_frames(audio_samples: int, sample_rate: int, fps: float) -> int:
    """Audio length in video frames, rounded half up, and at least 1 for non-empty audio."""
    frames = math.floor(audio_samples * fps / sample_rate + 0.5)
    return max(frames, 1) if audio_samples > 0 else 0


def plan_timeline(
    mode: SyncMode, video_frames: int, fps: float, audio_samples: int, sample_rate: int
) -> Timeline:
    """Plan the output for ``mode``: constant time and memory whatever the clip lengths.

    Raises ``ValueError`` for an unknown mode, an empty video or audio, or a non-positive or
    non-finite frame rate or sample rate.
    """
    if mode not in SYNC_MODES:
        raise ValueError(f"unknown sync_mode {mode!r}; expected one of {', '.join(SYNC_MODES)}")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"video frame rate must be a positive number, got {fps!r}")
    if sample_rate <= 0:
        raise ValueError(f"audio sample rate must be positive, got {sample_rate!r}")
    if video_frames <= 0:
        raise ValueError(f"the video has no frames ({video_frames}); nothing to lip-sync")
    if audio_samples <= 0:
        raise ValueError(f"the audio has no samples ({audio_samples}); nothing to lip-sync to")

    audio_frames = audio_length_in_frames(audio_samples, sample_rate, fps)
    if mode == "cut_off":
        output_frames = min(video_frames, audio_frames)
    elif mode == "silence":
        output_frames = video_frames
    else:  # loop, bounce, remap: the audio sets the length
        output_frames = audio_frames

    return Timeline(
        mode=mode,
        video_frames=video_frames,
        fps=fps,
        sample_rate=sample_rate,
        output_frames=output_frames,
        # Half up, so |video duration - audio duration| <= half a sample.
        audio_samples_out=math.floor(output_frames * sample_rate / fps + 0.5),
    )
