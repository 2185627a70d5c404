"""The sync score's measurements: an audio envelope and mouth measures per video frame, and the
lagged correlation between them. Everything streams: memory holds a few scalars per frame.

The envelope is the raw speech-band level in dB (the same band and window as
:func:`mock_server.lipsync.audio.mouth_openness`), floored a fixed range below the clip's peak
and nothing else: no gate, no clipping at the top, no smoothing. The renderer's own openness
curve would be the easier target (a renderer that follows it exactly scores 1.0 against it),
but it bakes in the renderer's choices; the raw level is what any lip-sync model, ours or fal's,
hears, so it judges them alike. The floor only stops digital silence (-200 dB) from turning the
correlation into "sound or no sound".
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final

import av
import cv2
import numpy as np
from av.container import InputContainer
from numpy.typing import NDArray

from mock_server.lipsync.audio import (
    MAX_DYNAMIC_RANGE_DB,
    MIN_DYNAMIC_RANGE_DB,
    PEAK_PERCENTILE,
    SILENCE_DB,
    SPEECH_BAND_HZ,
    WINDOW_FRAMES,
)
from mock_server.lipsync.face import MouthGeometry
from mock_server.lipsync.mouth import as_image

__all__ = [
    "ENVELOPE_RATE",
    "MEASURES",
    "LagScan",
    "MouthMeasurer",
    "envelope_problem",
    "floor_envelope",
    "scan_lags",
    "speech_level_db",
]

ENVELOPE_RATE: Final = 16_000
"""Audio is resampled to this rate: the speech band (up to 4 kHz) fits with room to spare."""

MEASURES: Final = ("opening", "dark_share", "change")
"""Mouth measures, in report order. ``opening``: the dark gap between the lips, top to bottom,
in mouth widths; ``dark_share``: share of dark pixels in the mouth box; ``change``: mean
absolute change of the mouth box from the previous frame (paired with the envelope's change)."""

# The mouth box, in mouth widths around the lip-line centre, turned by the mouth's roll. Above
# -0.35 the nostrils (dark) would count; below 0.65 the chin's shadow would. A jaw drop moves
# the lower lip down by a fraction of the mouth width, so the box holds any plausible opening.
_BOX_X: Final = (-0.55, 0.55)
_BOX_Y: Final = (-0.35, 0.65)
# The opening is read in the middle half of the mouth, away from the corners' shadows.
_OPENING_HALF_WIDTH: Final = 0.25
_PATCH_MOUTH_PX: Final = 48
"""Every mouth is resampled to this width, so measures and costs do not depend on resolution."""
_DARK_FRACTION: Final = 0.5
"""A pixel is dark below this share of the face's median grey: a mouth interior or a deep
shadow, not a lip (lips are ~0.6-0.8 of skin) nor the lip seam seen at a normal exposure."""

_MIN_PAIRS: Final = 10
"""Fewer frame pairs than this give no correlation: a handful of frames can correlate by chance."""


def speech_level_db(
    source: str | Path, fps: Fraction, av_offset_s: float = 0.0
) -> tuple[NDArray[np.float64], float]:
    """Speech-band level in dB per video frame (until the audio ends) and the audio's seconds.

    Frame ``i`` is on screen during ``[i / fps, (i + 1) / fps)``; its level comes from a Hann
    window two frame periods long centred on the middle of that interval, as in
    ``mouth_openness``. ``av_offset_s`` is when the audio starts on the video's clock (from the
    streams' start times): audio that starts late is preceded by silence, early audio is cut.
    The mean is removed per window (a DC offset carries no speech), so nothing global is needed.
    Raises ``ValueError`` when there is no audio stream or it does not decode.
    """
    rate = ENVELOPE_RATE
    window_len = max(round(WINDOW_FRAMES * rate / float(fps)), 32)
    fft_len = 1 << (window_len - 1).bit_length()
    frequencies = np.fft.rfftfreq(fft_len, d=1.0 / rate)
    band = (frequencies >= SPEECH_BAND_HZ[0]) & (frequencies <= SPEECH_BAND_HZ[1])
    hann = np.hanning(window_len)
    # Parseval, one-sided: a full-scale sine in the band reads 0 dB, whatever the window.
    scale = 4.0 / (fft_len * np.sum(hann**2))
    samples_per_frame = rate / float(fps)

    def level(window: NDArray[np.float64]) -> float:
        spectrum = np.fft.rfft((window - window.mean()) * hann, n=fft_len)
        power = float(np.sum(np.abs(spectrum[band]) ** 2)) * scale
        return 10.0 * math.log10(power + 1e-20)

    levels: list[float] = []
    buffer = np.zeros(0)
    buffer_start = 0  # index, in the whole stream, of buffer[0]
    skip = max(round(-av_offset_s * rate), 0)
    lead = np.zeros(max(round(av_offset_s * rate), 0))
    total = 0
    for chunk in _mono_chunks(source, rate, lead):
        if skip:
            cut = min(skip, chunk.size)
            chunk, skip = chunk[cut:], skip - cut
        buffer = np.concatenate([buffer, chunk])
        total += chunk.size
        while True:
            start = max(round((len(levels) + 0.5) * samples_per_frame - window_len / 2), 0)
            if start + window_len > total:
                break
            levels.append(level(buffer[start - buffer_start : start - buffer_start + window_len]))
        # Keep only what the next window still needs.
        keep_from = max(round((len(levels) + 0.5) * samples_per_frame - window_len / 2), 0)
        # ...and at least a window's worth, for the last frames' windows at the end.
        drop = min(max(keep_from - buffer_start, 0), max(buffer.size - window_len, 0))
        buffer, buffer_start = buffer[drop:], buffer_start + drop
    # Frames whose middle is still inside the audio: the window slides back inside the audio
    # rather than meet padding (a hum cut off by zeros would click, and a click is broadband).
    while (len(levels) + 0.5) * samples_per_frame < total:
        tail = buffer[-window_len:]
        levels.append(level(np.pad(tail, (window_len - tail.size, 0))))
    return np.asarray(levels, dtype=np.float64), total / rate


def _mono_chunks(
    source: str | Path, rate: int, lead: NDArray[np.float64]
) -> Iterator[NDArray[np.float64]]:
    if lead.size:
        yield lead
    try:
        with av.open(str(source), "r") as container:
            assert isinstance(container, InputContainer)
            if not container.streams.audio:
                raise ValueError(f"{source}: no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1).astype(np.float64)
            for out in resampler.resample(None):  # the resampler holds back a filter's worth
                yield out.to_ndarray().reshape(-1).astype(np.float64)
    except av.FFmpegError as error:
        raise ValueError(f"{source}: the audio does not decode: {error}") from error


def envelope_problem(level_db: NDArray[np.float64]) -> str | None:
    """Why this level curve cannot be followed by a mouth (silent, flat), or None if it can."""
    if level_db.size == 0:
        return "the audio holds no frame's worth of samples"
    peak = float(np.percentile(level_db, PEAK_PERCENTILE))
    if peak < SILENCE_DB:
        return f"the audio is silent (speech-band peak {peak:.0f} dB)"
    floored = floor_envelope(level_db)
    if float(floored.max() - floored.min()) < MIN_DYNAMIC_RANGE_DB:
        return "the audio's level is flat: no syllables to follow"
    return None


def floor_envelope(level_db: NDArray[np.float64]) -> NDArray[np.float64]:
    """Levels more than MAX_DYNAMIC_RANGE_DB below the clip's peak all read as the floor."""
    if level_db.size == 0:
        return level_db
    peak = float(np.percentile(level_db, PEAK_PERCENTILE))
    return np.maximum(level_db, peak - MAX_DYNAMIC_RANGE_DB)


class MouthMeasurer:
    """Measures the mouth in one frame after another, given each frame's mouth geometry."""

    def __init__(self) -> None:
        self._previous: NDArray[np.float32] | None = None
        width = _PATCH_MOUTH_PX
        self._size = (
            round((_BOX_X[1] - _BOX_X[0]) * width),
            round((_BOX_Y[1] - _BOX_Y[0]) * width),
        )
        centre = -_BOX_X[0] * width
        half = _OPENING_HALF_WIDTH * width
        self._columns = slice(round(centre - half), round(centre + half))

    def measure(
        self, frame: NDArray[np.uint8], mouth: MouthGeometry | None
    ) -> tuple[float, float, float]:
        """(opening, dark share, change) for this frame; NaN where there is nothing to measure.

        ``change`` is NaN on a frame whose previous frame had no mouth.
        """
        if mouth is None:
            self._previous = None
            return (math.nan, math.nan, math.nan)
        gray = frame if frame.ndim == 2 else as_image(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
        reference = _face_grey(gray, mouth)
        patch = self._patch(gray, mouth).astype(np.float32) / max(reference, 1.0)
        dark = patch < _DARK_FRACTION
        opening = float(np.median(_longest_runs(dark[:, self._columns]))) / _PATCH_MOUTH_PX
        dark_share = float(dark.mean())
        change = math.nan
        if self._previous is not None:
            change = float(np.mean(np.abs(patch - self._previous)))
        self._previous = patch
        return (opening, dark_share, change)

    def _patch(self, gray: NDArray[np.uint8], mouth: MouthGeometry) -> NDArray[np.uint8]:
        """The mouth box, upright, resampled so the mouth is _PATCH_MOUTH_PX wide."""
        scale = _PATCH_MOUTH_PX / max(mouth.width, 1.0)
        cos, sin = math.cos(mouth.angle) * scale, math.sin(mouth.angle) * scale
        # Frame -> patch: rotate by -angle about the lip centre, scale, then move the centre to
        # its place in the patch (the box's top-left is the patch's origin).
        ox, oy = -_BOX_X[0] * _PATCH_MOUTH_PX, -_BOX_Y[0] * _PATCH_MOUTH_PX
        cx, cy = mouth.centre_x, mouth.centre_y
        matrix = np.array(
            [
                [cos, sin, ox - cos * cx - sin * cy],
                [-sin, cos, oy + sin * cx - cos * cy],
            ]
        )
        return as_image(
            cv2.warpAffine(
                gray, matrix, self._size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
            )
        )


def _face_grey(gray: NDArray[np.uint8], mouth: MouthGeometry) -> float:
    """Median grey of the face box: the exposure the dark threshold is relative to.

    The face changes little when the mouth opens, so the threshold does not follow the mouth
    (a threshold from the mouth box itself would normalise the opening away).
    """
    box = mouth.face
    height, width = gray.shape
    x0, y0 = max(int(box.x), 0), max(int(box.y), 0)
    x1, y1 = min(int(box.x + box.width), width), min(int(box.y + box.height), height)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return float(np.median(gray))
    step = max(int((x1 - x0) // 96), 1)  # ~100 samples a side is plenty for a median
    return float(np.median(gray[y0:y1:step, x0:x1:step]))


def _longest_runs(mask: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Per column, the longest run of True from top to bottom."""
    runs = np.zeros(mask.shape[1], dtype=np.int64)
    current = np.zeros(mask.shape[1], dtype=np.int64)
    for row in mask:
        current = np.where(row, current + 1, 0)
        runs = np.maximum(runs, current)
    return runs


@dataclass(frozen=True, slots=True)
class LagScan:
    """Pearson r of audio against mouth at each lag; None where undefined (too few pairs or a
    constant series). Lag L pairs audio at frame t with the mouth at frame t + L: positive lags
    mean the mouth lags the audio."""

    lags: tuple[int, ...]
    r: tuple[float | None, ...]
    pairs: tuple[int, ...]

    def best(self) -> tuple[int, float] | None:
        """The lag with the highest r (the smallest |lag| among ties), or None if none defined."""
        found: tuple[int, float] | None = None
        for lag, r in sorted(zip(self.lags, self.r, strict=True), key=lambda x: abs(x[0])):
            if r is not None and (found is None or r > found[1]):
                found = (lag, r)
        return found

    def at(self, lag: int) -> tuple[float | None, int]:
        index = self.lags.index(lag)
        return self.r[index], self.pairs[index]


def scan_lags(audio: Sequence[float], mouth: Sequence[float], max_lag: int) -> LagScan:
    """Correlate ``audio[t]`` with ``mouth[t + lag]`` for lags -max_lag..max_lag.

    NaN in either series marks a frame without a value (no face, no audio): such pairs are left
    out. Missing audio at the end counts as missing, not as silence.
    """
    a = np.asarray(audio, dtype=np.float64)
    m = np.asarray(mouth, dtype=np.float64)
    n = min(a.size, m.size)
    lags, rs, counts = [], [], []
    for lag in range(-max_lag, max_lag + 1):
        lo, hi = max(0, -lag), min(n, n - lag)
        x, y = a[lo:hi], m[lo + lag : hi + lag]
        keep = np.isfinite(x) & np.isfinite(y)
        lags.append(lag)
        counts.append(int(keep.sum()))
        rs.append(pearson(x[keep], y[keep]))
    return LagScan(tuple(lags), tuple(rs), tuple(counts))


def pearson(x: NDArray[np.float64], y: NDArray[np.float64]) -> float | None:
    """Pearson r, or None for fewer than _MIN_PAIRS pairs or a (numerically) constant series."""
    if x.size < _MIN_PAIRS:
        return None
    dx, dy = x - x.mean(), y - y.mean()
    sx, sy = float(np.sqrt(np.sum(dx * dx))), float(np.sqrt(np.sum(dy * dy)))
    # Relative to the values' size, so a constant series with rounding noise is still constant.
    if sx <= 1e-9 * (1.0 + float(np.abs(x).max())) or sy <= 1e-9 * (1.0 + float(np.abs(y).max())):
        return None
    return float(np.clip(np.sum(dx * dy) / (sx * sy), -1.0, 1.0))
