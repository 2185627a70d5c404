"""Source frames in timeline order, with memory bounded whatever the clip length.

``cut_off``, ``silence`` and ``remap`` read the source in non-decreasing order: one decoding
pass, one frame held. ``loop`` and ``bounce`` revisit frames. When the whole clip fits in the
memory budget it is decoded once and kept; otherwise every forward run is a fresh decoding pass
and every backward run (``bounce``) is served block by block from the end, each block decoded
by a pass that stops at the block's end. Decoding is cheap next to rendering (LIPSYNC.md:
~600 fps at 720p), so trading passes for memory is the right way round.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from mock_server.lipsync.timeline import Timeline
from mock_server.lipsync.video import iter_frames

__all__ = ["DEFAULT_MEMORY_BUDGET", "timeline_frames"]

Image = npt.NDArray[np.uint8]

DEFAULT_MEMORY_BUDGET: Final = 256 * 1024 * 1024
"""Bytes of decoded frames that ``loop``/``bounce`` may hold at once."""


def timeline_frames(
    video: Path,
    fps: Fraction,
    timeline: Timeline,
    frame_bytes: int,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> Iterator[tuple[int, Image]]:
    """Yield ``(source_index, frame)`` for every output frame of ``timeline``, in order.

    Frames may be shared between yields (a looped frame is the same array): callers must not
    modify them in place.
    """
    if timeline.reads_source_in_order:
        yield from _in_order(video, fps, timeline)
        return
    capacity = max(memory_budget // max(frame_bytes, 1), 2)
    if timeline.video_frames <= capacity:
        cached = list(iter_frames(video, fps))
        for source_index in timeline.iter_source_frames():
            yield source_index, cached[min(source_index, len(cached) - 1)]
        return
    for start, stop, step in _runs(timeline):
        if step > 0:
            yield from _forward(video, fps, start, stop)
        else:
            yield from _backward(video, fps, start, stop, capacity)


def _in_order(video: Path, fps: Fraction, timeline: Timeline) -> Iterator[tuple[int, Image]]:
    frames = iter_frames(video, fps)
    position, current = -1, None
    for source_index in timeline.iter_source_frames():
        while position < source_index:
            frame = next(frames, None)
            if frame is None:  # the decoder found fewer frames than the plan: hold the last
                break
            position, current = position + 1, frame
        if current is None:
            raise ValueError(f"{video}: the video has no frames")
        yield source_index, current


def _runs(timeline: Timeline) -> Iterator[tuple[int, int, int]]:
    """Maximal runs of the source sequence that step by +1 or -1: ``(first, last, step)``."""
    indices = timeline.iter_source_frames()
    first = last = next(indices)
    step = 0
    for index in indices:
        delta = index - last
        if delta in (1, -1) and step in (0, delta):
            step, last = delta, index
            continue
        yield first, last, step or 1
        first = last = index
        step = 0
    yield first, last, step or 1


def _forward(video: Path, fps: Fraction, first: int, last: int) -> Iterator[tuple[int, Image]]:
    for index, frame in enumerate(iter_frames(video, fps)):
        if index > last:
            return
        if index >= first:
            yield index, frame


def _backward(
    video: Path, fps: Fraction, first: int, last: int, capacity: int
) -> Iterator[tuple[int, Image]]:
    """Frames ``first, first-1, ..., last`` (``first > last``), ``capacity`` at a time."""
    top = first
    while top >= last:
        bottom = max(last, top - capacity + 1)
        block = [frame for _, frame in _forward(video, fps, bottom, top)]
        for offset in range(len(block) - 1, -1, -1):
            yield bottom + offset, block[offset]
        top = bottom - 1
