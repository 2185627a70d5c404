"""Benchmark clips made at run time from the bundled example, so nothing is downloaded.

The example (``EXAMPLE_VIDEO_PATH``: 360x360, 25 fps, 4 s) shows a face on frames 0-74 and none
on 75-99. A benchmark clip scales that square to the canvas height, centres it on a blurred copy
of itself (a flat colour would make x264's job unrealistically easy) and loops it to the wanted
length, so every clip keeps the example's 75 % face frames. Speech loops the
longest speech file at hand. Clips are cached by name in one folder, so the 60 s clip is made
once per run however many benchmarks use it.
"""

from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from mock_server.lipsync.audio import decode_audio
from mock_server.lipsync.examples import EXAMPLE_AUDIO_PATH, EXAMPLE_VIDEO_PATH
from mock_server.lipsync.video import Mp4Writer, iter_frames, probe_video

__all__ = ["FACE_SHARE", "MediaCache"]

_REPO_SPEECH: Final = Path(__file__).resolve().parents[1] / "fixtures" / "media" / "speech_long.wav"
SPEECH_SOURCE: Final = _REPO_SPEECH if _REPO_SPEECH.is_file() else EXAMPLE_AUDIO_PATH
"""7.8 s of speech in a checkout; the 4 s example when only the installed package is there."""
SPEECH_RATE: Final = 16_000
FACE_SHARE: Final = 0.75
"""Share of the example's frames that show a face (0-74 of 100); every clip keeps it."""


class MediaCache:
    """Makes benchmark clips in ``folder`` on first use and hands back the same path after."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._source: list[npt.NDArray[np.uint8]] | None = None
        self._fps: Fraction | None = None

    def video(self, width: int, height: int, seconds: float) -> Path:
        """A ``width`` x ``height`` face clip of ``seconds`` at the example's 25 fps."""
        path = self.folder / f"face_{width}x{height}_{seconds:g}s.mp4"
        if path.exists():
            return path
        source, fps = self._source_frames()
        count = max(round(seconds * fps), 2)
        canvases = [_on_canvas(frame, width, height) for frame in source]
        # The writer needs a sample rate; it pads the clip with silence, as a phone clip would
        # carry room tone. The lip-sync ignores the video's own audio.
        with Mp4Writer(path, width, height, fps, SPEECH_RATE) as writer:
            for index in range(count):
                writer.write_frame(canvases[index % len(canvases)])
        return path

    def speech(self, seconds: float) -> Path:
        """``seconds`` of speech (16 kHz mono wav), the speech source looped and cut."""
        path = self.folder / f"speech_{seconds:g}s.wav"
        if path.exists():
            return path
        samples = decode_audio(SPEECH_SOURCE, SPEECH_RATE)
        count = round(seconds * SPEECH_RATE)
        looped = np.resize(samples, count)  # np.resize repeats the array to fill the length
        pcm = np.clip(np.rint(looped * 32767.0), -32768, 32767).astype("<i2")
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(SPEECH_RATE)
            out.writeframes(pcm.tobytes())
        return path

    def _source_frames(self) -> tuple[list[npt.NDArray[np.uint8]], Fraction]:
        if self._source is None or self._fps is None:
            self._fps = probe_video(EXAMPLE_VIDEO_PATH).fps
            self._source = list(iter_frames(EXAMPLE_VIDEO_PATH, self._fps))
        return self._source, self._fps


def _on_canvas(frame: npt.NDArray[np.uint8], width: int, height: int) -> npt.NDArray[np.uint8]:
    """``frame`` scaled to fit ``height`` x ``width``, centred on a blurred copy of itself.

    The blurred fill (as phones pad a portrait clip) moves with the clip, so the encoder has
    real work there, and shows no second face: mirrored edges would, and would feed the tracker.
    """
    side = min(width, height)
    scaled = cv2.resize(frame, (side, side), interpolation=cv2.INTER_AREA)
    cover = max(width, height)
    # Blur at 1/16 size, then scale up: the same look as a wide blur, at a fraction of the cost.
    small = cv2.resize(frame, (max(cover // 16, 1),) * 2, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=2.0)
    canvas = cv2.resize(small, (cover, cover), interpolation=cv2.INTER_LINEAR)
    x0, y0 = (cover - width) // 2, (cover - height) // 2
    canvas = np.ascontiguousarray(canvas[y0 : y0 + height, x0 : x0 + width])
    left, top = (width - side) // 2, (height - side) // 2
    canvas[top : top + side, left : left + side] = scaled
    return canvas.astype(np.uint8, copy=False)
