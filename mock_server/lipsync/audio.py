"""Audio for the reference lip-sync: decode anything to mono float32, then mouth openness per frame.

:func:`mouth_openness` is a loudness gauge, not a viseme model. It shrinks speech to one number
per video frame: how loud the speech band (about 250-4000 Hz, where voiced speech carries its
energy and mains hum and rumble do not) is, relative to the rest of the same clip. Its limits:

* it tracks energy, not articulation: an "m" at full voice opens the mouth, and closures inside
  a word shorter than about a frame are smoothed away;
* any sound in the band counts: music or loud noise reads as speech;
* normalisation is per clip: a whispered clip opens the mouth as wide as a shouted one, and a
  level with no dynamics at all (a steady tone, constant noise) reads as closed;
* it needs the whole clip in memory (percentiles are global): 64 kB per second at 16 kHz.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import BinaryIO, Final

import av
import numpy as np
from av.container import InputContainer
from numpy.typing import NDArray

__all__ = ["decode_audio", "mouth_openness"]

SPEECH_BAND_HZ: Final = (250.0, 4000.0)
WINDOW_FRAMES: Final = 2.0
"""Analysis window, in frame periods: long enough to hold a couple of pitch periods of a low
voice at 60 fps, short enough that a syllable (~150-250 ms) still rises and falls."""
SILENCE_DB: Final = -70.0
"""Band power (dB re. a full-scale sine's power) below which a clip counts as silent."""
MIN_DYNAMIC_RANGE_DB: Final = 6.0
"""A clip whose band level varies less than this has no syllables to follow: it reads closed."""
MAX_DYNAMIC_RANGE_DB: Final = 40.0
"""Range considered below the peak; quieter frames (room tone, digital silence) are all floor.
Without the cap, digital silence (-inf dB) would stretch the scale and make noise look open."""
FLOOR_PERCENTILE: Final = 10.0
PEAK_PERCENTILE: Final = 95.0
GATE: Final = 0.3
"""Share of the floor-to-peak range that still reads as closed (background noise, breaths)."""
SMOOTHING_S: Final = 0.03
"""Gaussian sigma of the zero-phase smoothing: removes frame-to-frame flicker, keeps syllables."""
CHUNK_FRAMES: Final = 1024
"""Windows per FFT batch, so memory stays ~10 MB however long the clip."""


def decode_audio(source: str | Path | BinaryIO, sample_rate: int = 16_000) -> NDArray[np.float32]:
    """Decode the first audio stream of ``source`` to mono float32 at ``sample_rate``.

    ``source`` is a path or a readable binary file object; the format is found from the content.
    Channels are mixed down by FFmpeg's standard matrix (stereo: each channel at -3 dB, so a
    signal identical in both channels comes out 3 dB louder than either; float, so no clipping).
    Raises ``ValueError`` when the data is not media, has no audio stream, fails to decode or
    decodes to no samples; a path that cannot be opened raises the usual ``OSError``.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    name = str(source) if isinstance(source, str | Path) else "<file object>"
    try:
        with av.open(str(source) if isinstance(source, Path) else source, "r") as container:
            assert isinstance(container, InputContainer)
            chunks = _decode_mono(container, sample_rate, name)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise  # about the path, not the content: the caller's OSError, not "not media"
    except av.FFmpegError as error:
        raise ValueError(f"{name}: not decodable media: {error}") from error
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    if samples.size == 0:
        raise ValueError(f"{name}: the audio stream decodes to zero samples")
    return samples


def _decode_mono(
    container: InputContainer, sample_rate: int, name: str
) -> list[NDArray[np.float32]]:
    if not container.streams.audio:
        raise ValueError(f"{name}: no audio stream (streams: {_describe(container)})")
    stream = container.streams.audio[0]
    # Packed float mono: each resampled frame is one (1, n) row, no planar juggling.
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    chunks: list[NDArray[np.float32]] = []
    for frame in container.decode(stream):
        for out in resampler.resample(frame):
            chunks.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
    # The resampler holds back a filter's worth of samples until flushed.
    for out in resampler.resample(None):
        chunks.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
    return chunks


def _describe(container: InputContainer) -> str:
    kinds = [stream.type for stream in container.streams]
    return ", ".join(kinds) if kinds else "none"


def mouth_openness(
    samples: NDArray[np.floating] | NDArray[np.integer], sample_rate: int, fps: float, n_frames: int
) -> NDArray[np.float64]:
    """Mouth openness in [0, 1] for each of ``n_frames`` video frames, from mono ``samples``.

    Frame ``i`` is on screen during ``[i / fps, (i + 1) / fps)``; its value comes from a Hann
    window of two frame periods centred on the middle of that interval. Frames whose middle is
    past the end of the audio read as closed. Silence gives all zeros; same input, same output.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"frame rate must be a positive number, got {fps}")
    if n_frames < 0:
        raise ValueError(f"frame count must not be negative, got {n_frames}")
    signal = np.asarray(samples, dtype=np.float64)
    if signal.ndim != 1:
        raise ValueError(f"expected mono samples (a 1-D array), got shape {signal.shape}")
    if not np.isfinite(signal).all():
        raise ValueError("samples contain NaN or infinity")
    if n_frames == 0:
        return np.zeros(0)

    level_db = _band_level_db(signal, sample_rate, fps, n_frames)
    return _smooth(_normalise(level_db), sigma_frames=SMOOTHING_S * fps)


def _band_level_db(
    signal: NDArray[np.float64], sample_rate: int, fps: float, n_frames: int
) -> NDArray[np.float64]:
    """Speech-band power per frame in dB (re. a full-scale sine); silent frames at -inf-ish."""
    window_len = max(round(WINDOW_FRAMES * sample_rate / fps), 32)
    fft_len = 1 << (window_len - 1).bit_length()
    frequencies = np.fft.rfftfreq(fft_len, d=1.0 / sample_rate)
    band = (frequencies >= SPEECH_BAND_HZ[0]) & (frequencies <= SPEECH_BAND_HZ[1])
    if not band.any():
        raise ValueError(f"sample rate {sample_rate} Hz is too low to hold the speech band")
    window = np.hanning(window_len)
    # Parseval, one-sided: a full-scale sine in the band sums to 1 (0 dB), whatever the window.
    scale = 4.0 / (fft_len * np.sum(window**2))

    # A constant offset carries no speech; removing it keeps its leakage out of the band.
    signal = signal - signal.mean() if signal.size else signal
    if signal.size < window_len:
        signal = np.pad(signal, (0, window_len - signal.size))
    centres = (np.arange(n_frames) + 0.5) * (sample_rate / fps)
    # Windows that would cross an end of the audio slide inside it rather than meet padding:
    # a hum or offset cut off by zeros would click, and the click is broadband.
    starts = np.clip(np.round(centres - window_len / 2), 0, signal.size - window_len)
    starts = starts.astype(np.int64)
    past_end = centres >= signal.size

    power = np.empty(n_frames)
    offsets = np.arange(window_len)
    for first in range(0, n_frames, CHUNK_FRAMES):
        chunk_starts = starts[first : first + CHUNK_FRAMES]
        windows = signal[chunk_starts[:, None] + offsets] * window
        spectrum = np.fft.rfft(windows, n=fft_len, axis=1)
        band_energy = np.sum(spectrum.real[:, band] ** 2 + spectrum.imag[:, band] ** 2, axis=1)
        power[first : first + CHUNK_FRAMES] = band_energy * scale
    power[past_end] = 0.0
    # The tiny offset keeps log10 finite; -200 dB is far below any threshold used here.
    return np.asarray(10.0 * np.log10(power + 1e-20), dtype=np.float64)


def _normalise(level_db: NDArray[np.float64]) -> NDArray[np.float64]:
    """Map band levels to [0, 1]: floor and gate read as closed, the clip's peak as fully open."""
    peak = float(np.percentile(level_db, PEAK_PERCENTILE))
    if peak < SILENCE_DB:
        return np.zeros_like(level_db)
    floor = max(float(np.percentile(level_db, FLOOR_PERCENTILE)), peak - MAX_DYNAMIC_RANGE_DB)
    dynamic_range = peak - floor
    if dynamic_range < MIN_DYNAMIC_RANGE_DB:
        return np.zeros_like(level_db)
    gate = floor + GATE * dynamic_range
    return np.clip((level_db - gate) / (peak - gate), 0.0, 1.0)


def _smooth(values: NDArray[np.float64], sigma_frames: float) -> NDArray[np.float64]:
    """Zero-phase Gaussian smoothing (a symmetric kernel shifts nothing in time)."""
    radius = math.ceil(3 * sigma_frames)
    if radius < 1 or values.size < 2:
        return values
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (taps / sigma_frames) ** 2)
    kernel /= kernel.sum()
    # Reflection at the ends keeps an edge value from being pulled toward zero padding.
    padded = np.pad(values, radius, mode="reflect")
    # A convex combination of values in [0, 1] stays in [0, 1]; the clip only absorbs rounding.
    smoothed = np.clip(np.convolve(padded, kernel, mode="valid"), 0.0, 1.0)
    return np.asarray(smoothed, dtype=np.float64)
