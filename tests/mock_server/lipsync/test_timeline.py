"""The five sync modes: output lengths, frame mappings, exact audio lengths, constant-cost plans."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

from contracts.schemas import SYNC_MODES, SyncMode
from mock_server.lipsync.timeline import Timeline, audio_length_in_frames, plan_timeline

FPS = 25.0
RATE = 16_000
SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps


def plan(mode: SyncMode, video_frames: int, audio_frames: float) -> Timeline:
    return plan_timeline(mode, video_frames, FPS, round(audio_frames * SAMPLES_PER_FRAME), RATE)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("cut_off", [0, 1, 2, 3, 4]),
        ("silence", [0, 1, 2, 3, 4]),
        ("loop", [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]),
        ("bounce", [0, 1, 2, 3, 4, 3, 2, 1, 0, 1, 2, 3]),
        ("remap", [0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4, 4]),
    ],
)
def test_short_video_long_audio(mode: SyncMode, expected: list[int]) -> None:
    timeline = plan(mode, video_frames=5, audio_frames=12)
    assert timeline.output_frames == len(expected)
    assert list(timeline.iter_source_frames()) == expected
    assert timeline.source_frames().tolist() == expected
    assert [timeline.source_frame(i) for i in range(len(expected))] == expected
    assert timeline.audio_samples_out == len(expected) * SAMPLES_PER_FRAME


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("cut_off", [0, 1, 2, 3, 4]),
        ("loop", [0, 1, 2, 3, 4]),
        ("bounce", [0, 1, 2, 3, 4]),
        ("silence", list(range(12))),
        ("remap", [0, 3, 6, 8, 11]),  # round(i * 11 / 4), halves up
    ],
)
def test_long_video_short_audio(mode: SyncMode, expected: list[int]) -> None:
    timeline = plan(mode, video_frames=12, audio_frames=5)
    assert list(timeline.iter_source_frames()) == expected
    assert timeline.source_frames().tolist() == expected
    assert timeline.audio_samples_out == len(expected) * SAMPLES_PER_FRAME


def test_single_frame_video_repeats_it() -> None:
    for mode in ("loop", "bounce", "remap"):
        assert plan(mode, video_frames=1, audio_frames=4).source_frames().tolist() == [0] * 4


@pytest.mark.parametrize("mode", SYNC_MODES)
@pytest.mark.parametrize(("video_frames", "audio_frames"), [(1, 1), (2, 7), (7, 2), (13, 40)])
def test_mapping_forms_agree_and_stay_in_range(
    mode: SyncMode, video_frames: int, audio_frames: int
) -> None:
    timeline = plan(mode, video_frames, audio_frames)
    frames = timeline.source_frames()
    assert frames.tolist() == list(timeline.iter_source_frames())
    assert frames.min() >= 0 and frames.max() < video_frames
    assert timeline.source_frames(2, 5).tolist() == frames[2:5].tolist()
    if timeline.reads_source_in_order:
        assert (np.diff(frames) >= 0).all()
    if mode == "remap":
        assert frames[0] == 0 and frames[-1] == (video_frames - 1 if audio_frames > 1 else 0)


def test_out_of_range_output_frame() -> None:
    timeline = plan("cut_off", 5, 5)
    with pytest.raises(IndexError):
        timeline.source_frame(5)
    with pytest.raises(IndexError):
        timeline.source_frame(-1)


def test_audio_length_rounds_half_up_and_never_to_zero() -> None:
    assert audio_length_in_frames(12 * 640 + 319, RATE, FPS) == 12
    assert audio_length_in_frames(12 * 640 + 320, RATE, FPS) == 13
    # Shorter than half a frame: still one frame, the audio padded to it.
    timeline = plan_timeline("cut_off", 10, FPS, 1, RATE)
    assert timeline.output_frames == 1 and timeline.audio_samples_out == 640


@pytest.mark.parametrize("mode", SYNC_MODES)
@pytest.mark.parametrize(
    ("fps", "rate"), [(30000 / 1001, 44_100), (23.976, 48_000), (60.0, 22_050)]
)
@pytest.mark.parametrize(("video_frames", "audio_samples"), [(1, 1), (97, 123_457), (1001, 9_999)])
def test_durations_match_within_a_sample(
    mode: SyncMode, fps: float, rate: int, video_frames: int, audio_samples: int
) -> None:
    timeline = plan_timeline(mode, video_frames, fps, audio_samples, rate)
    assert abs(timeline.output_frames / fps - timeline.audio_samples_out / rate) < 1 / rate
    assert timeline.duration_s == timeline.output_frames / fps


def test_fit_audio_trims_and_pads_exactly() -> None:
    short = plan("silence", video_frames=10, audio_frames=4)
    samples = np.ones(4 * 640, dtype=np.float32)
    fitted = short.fit_audio(samples)
    assert fitted.shape == (6400,) and fitted.dtype == np.float32
    assert (fitted[:2560] == 1).all() and (fitted[2560:] == 0).all()

    long = plan("cut_off", video_frames=3, audio_frames=10)
    stereo = np.arange(2 * 6400, dtype=np.float64).reshape(2, 6400)
    trimmed = long.fit_audio(stereo)
    assert trimmed.shape == (2, 1920)
    assert (trimmed == stereo[:, :1920]).all()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("cut_off", 0, FPS, 640, RATE), "video has no frames"),
        (("loop", 5, FPS, 0, RATE), "audio has no samples"),
        (("remap", 5, 0.0, 640, RATE), "frame rate"),
        (("remap", 5, float("nan"), 640, RATE), "frame rate"),
        (("bounce", 5, FPS, 640, 0), "sample rate"),
        (("stretch", 5, FPS, 640, RATE), "unknown sync_mode"),
    ],
)
def test_invalid_inputs(arguments: tuple[SyncMode, int, float, int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_timeline(*arguments)


@pytest.mark.parametrize("mode", SYNC_MODES)
def test_ten_hour_plan_costs_constant_time_and_memory(mode: SyncMode) -> None:
    hours = 10
    video_frames = hours * 3600 * 25
    audio_samples = hours * 3600 * 48_000 + 12_345
    tracemalloc.start()
    started = time.perf_counter()
    timeline = plan_timeline(mode, video_frames - 7, FPS, audio_samples, 48_000)
    last = timeline.source_frame(timeline.output_frames - 1)
    tail = timeline.source_frames(timeline.output_frames - 3)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 0.05 and peak < 64_000
    assert tail[-1] == last and 0 <= last < video_frames - 7
    assert abs(timeline.duration_s - timeline.audio_samples_out / 48_000) < 1 / 48_000
