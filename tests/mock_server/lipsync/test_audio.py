"""Audio decoding with PyAV, and mouth openness following a synthetic speech envelope."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from av.audio.stream import AudioStream
from av.video.stream import VideoStream
from numpy.typing import NDArray

from mock_server.lipsync.audio import decode_audio, mouth_openness

RATE = 16_000
FPS = 25.0
N_FRAMES = 125  # 5 s
# Frames during which the synthetic voice sounds: syllable-like bursts and pauses of varied length.
BURSTS = [(5, 12), (18, 22), (30, 45), (52, 56), (63, 80), (88, 91), (97, 115)]


def speech_envelope() -> NDArray[np.float64]:
    envelope = np.zeros(N_FRAMES)
    for start, stop in BURSTS:
        envelope[start:stop] = 1.0
    return envelope


def synthetic_speech(seed: int = 0) -> NDArray[np.float32]:
    """A 200 Hz harmonic complex (1/k, up to 3.8 kHz), on during BURSTS, over quiet noise."""
    t = np.arange(round(N_FRAMES / FPS * RATE)) / RATE
    voice = sum(np.sin(2 * np.pi * 200 * k * t) / k for k in range(1, 20))
    gate = np.repeat(speech_envelope(), RATE // int(FPS))
    noise = np.random.default_rng(seed).normal(0.0, 0.002, t.size)
    return np.asarray(0.3 * voice * gate + noise, dtype=np.float32)


def correlation_at_lag(
    values: NDArray[np.float64], reference: NDArray[np.float64], lag: int
) -> float:
    """Pearson r of values[i + lag] against reference[i]."""
    if lag >= 0:
        a, b = values[lag:], reference[: reference.size - lag]
    else:
        a, b = values[:lag], reference[-lag:]
    return float(np.corrcoef(a, b)[0, 1])


def test_openness_follows_the_speech_envelope_at_lag_zero() -> None:
    openness = mouth_openness(synthetic_speech(), RATE, FPS, N_FRAMES)
    envelope = speech_envelope()
    by_lag = {lag: correlation_at_lag(openness, envelope, lag) for lag in range(-5, 6)}
    assert by_lag[0] > 0.8
    assert max(by_lag, key=by_lag.__getitem__) == 0
    # Open inside a burst, closed in the middle of a pause.
    assert openness[38] > 0.8 and openness[26] < 0.05 and openness[120] < 0.05
    assert openness.shape == (N_FRAMES,) and openness.min() >= 0 and openness.max() <= 1


def test_openness_is_deterministic() -> None:
    speech = synthetic_speech()
    first = mouth_openness(speech, RATE, FPS, N_FRAMES)
    assert np.array_equal(first, mouth_openness(speech.copy(), RATE, FPS, N_FRAMES))


@pytest.mark.parametrize(
    "background",
    [
        pytest.param(np.zeros(80_000), id="digital silence"),
        pytest.param(np.full(80_000, 0.25), id="DC offset"),
        pytest.param(0.3 * np.sin(2 * np.pi * 50 * np.arange(80_000) / RATE), id="50 Hz hum"),
        pytest.param(np.random.default_rng(1).normal(0, 1e-5, 80_000), id="dither"),
    ],
)
def test_no_speech_reads_closed(background: NDArray[np.float64]) -> None:
    openness = mouth_openness(background, RATE, FPS, N_FRAMES)
    assert np.isfinite(openness).all() and openness.max() < 0.05


def test_hum_and_offset_under_speech_do_not_disturb_it() -> None:
    t = np.arange(round(N_FRAMES / FPS * RATE)) / RATE
    dirty = synthetic_speech() + 0.2 + 0.2 * np.sin(2 * np.pi * 50 * t)
    openness = mouth_openness(dirty, RATE, FPS, N_FRAMES)
    assert correlation_at_lag(openness, speech_envelope(), 0) > 0.8


def test_frames_past_the_audio_read_closed() -> None:
    speech = np.asarray(synthetic_speech()[: 40 * 640], dtype=np.float32)  # ends inside a burst
    openness = mouth_openness(speech, RATE, FPS, 60)
    assert openness[35] > 0.5 and (openness[42:] < 0.05).all()


def test_openness_edge_cases() -> None:
    assert mouth_openness(synthetic_speech(), RATE, FPS, 0).shape == (0,)
    assert mouth_openness(np.zeros(0), RATE, FPS, 3).tolist() == [0.0, 0.0, 0.0]
    assert mouth_openness(np.zeros(5), RATE, FPS, 1).tolist() == [0.0]
    with pytest.raises(ValueError, match="mono"):
        mouth_openness(np.zeros((2, 100)), RATE, FPS, 3)
    with pytest.raises(ValueError, match="NaN"):
        mouth_openness(np.array([0.0, np.nan]), RATE, FPS, 3)
    with pytest.raises(ValueError, match="frame rate"):
        mouth_openness(np.zeros(100), RATE, 0.0, 3)


def write_audio(path: Path, codec: str, rate: int, seconds: float) -> None:
    """A stereo 440 Hz tone, encoded by PyAV (which converts to the codec's sample format)."""
    samples = round(rate * seconds)
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(samples) / rate)
    planar = np.vstack([tone, tone]).astype(np.float32)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout="stereo")
        assert isinstance(stream, AudioStream)
        step = 1024
        for start in range(0, samples, step):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(planar[:, start : start + step]),
                format="fltp",
                layout="stereo",
            )
            frame.sample_rate = rate
            frame.pts = start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.mark.parametrize(
    ("name", "codec", "tolerance"),
    # AAC frames are 1024 samples and carry encoder priming: allow a few frames either way.
    [("tone.wav", "pcm_s16le", 2), ("tone.m4a", "aac", 3 * 1024 * RATE // 44_100 + 2)],
)
def test_decode_audio_resamples_to_mono(
    tmp_path: Path, name: str, codec: str, tolerance: int
) -> None:
    path = tmp_path / name
    write_audio(path, codec, rate=44_100, seconds=1.5)
    samples = decode_audio(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.size - round(1.5 * RATE)) <= tolerance
    # The tone survives: its pitch (zero crossings) and its level. FFmpeg's downmix adds the
    # two channels at -3 dB each, so identical 0.5-peak channels give a 0.71 peak (RMS 0.5).
    middle = samples[4000:20000]
    assert 0.45 < float(np.sqrt(np.mean(middle**2))) < 0.55
    crossings = np.count_nonzero(np.diff(np.signbit(middle)))
    assert abs(crossings / 2 / (middle.size / RATE) - 440) < 5

    with path.open("rb") as handle:
        from_file = decode_audio(handle, sample_rate=8_000)
    assert abs(from_file.size - 12_000) <= tolerance


def test_decode_audio_rejects_non_media() -> None:
    with pytest.raises(ValueError, match="not decodable media"):
        decode_audio(io.BytesIO(b"not media"))


def test_decode_audio_rejects_video_without_audio(tmp_path: Path) -> None:
    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        assert isinstance(stream, VideoStream)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for index in range(3):
            image = np.full((64, 64, 3), index * 60, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    with pytest.raises(ValueError, match="no audio stream"):
        decode_audio(path)


def test_decode_audio_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        decode_audio(tmp_path / "absent.wav")
