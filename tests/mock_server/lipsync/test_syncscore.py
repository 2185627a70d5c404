"""The sync score on clips made here: a crude test-only renderer draws a dark mouth interior whose
height follows the audio, in sync, 8 frames late, or driven by another sentence; and controls.

The crude renderer is deliberately not the reference renderer: the score has to recognise sync
in any output, and must not be tuned to one renderer's look.
"""

from __future__ import annotations

import functools
import json
import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from mock_server.lipsync.audio import _band_level_db, decode_audio, mouth_openness
from mock_server.lipsync.face import MouthGeometry, track_mouths
from mock_server.lipsync.syncscore import ExpectedOutput, SyncReport, score_file
from mock_server.lipsync.syncscore_measure import (
    floor_envelope,
    pearson,
    scan_lags,
    speech_level_db,
)
from mock_server.lipsync.video import Mp4Writer, iter_frames

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "fixtures" / "media"
RATE = 16_000
FPS = 25
DELAY = 8
FACE_FRAMES = 75  # the example clip shows a face on frames 0-74, none on 75-99


def media(name: str) -> Path:
    """The example clip and speech are moving from fixtures/media into the package: either."""
    for folder in (ROOT / "mock_server" / "lipsync" / "examples", FIXTURES):
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(name)


@functools.cache
def source() -> tuple[list[NDArray[np.uint8]], list[MouthGeometry | None]]:
    """The example clip's frames (100 at 360x360: 39 MB) and its mouth track, made once."""
    frames = list(iter_frames(media("face_talking.mp4")))
    return frames, track_mouths(frames)


def render_test_clip(
    path: Path, *, drive: Path, mux: Path, delay: int = 0, length: int = 100
) -> Path:
    """The example face with a dark mouth interior ``drive``'s openness tall, ``delay`` frames
    late, and ``mux``'s audio in the file; the first ``length`` frames. A few lines of OpenCV,
    not the reference renderer."""
    frames, track = (part[:length] for part in source())
    openness = mouth_openness(decode_audio(drive, RATE), RATE, FPS, len(frames))
    with Mp4Writer(path, 360, 360, Fraction(FPS), RATE) as writer:
        for index, (frame, mouth) in enumerate(zip(frames, track, strict=True)):
            image = frame.copy()
            amount = openness[index - delay] if index >= delay else 0.0
            height = amount * 0.45 * mouth.width if mouth is not None else 0.0
            if mouth is not None and height >= 1:
                # The jaw drops: the gap opens mostly below the lip line.
                centre = (round(mouth.centre_x), round(mouth.centre_y + height / 4))
                axes = (round(0.3 * mouth.width), round(height / 2))
                angle = math.degrees(mouth.angle)
                cv2.ellipse(image, centre, axes, angle, 0, 360, (35, 25, 45), -1, cv2.LINE_AA)
            writer.write_frame(image)
        writer.write_audio(decode_audio(mux, RATE))
    return path


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SyncReport]:
    folder = tmp_path_factory.mktemp("sync")
    speech, other = media("speech.wav"), FIXTURES / "speech_other.wav"
    # The controls stop where the face does: face-less frames cost the tracker twice as much.
    short = functools.partial(render_test_clip, mux=speech, length=FACE_FRAMES)
    clips = {
        "synced": render_test_clip(folder / "synced.mp4", drive=speech, mux=speech),
        "late": short(folder / "late.mp4", drive=speech, delay=DELAY),
        "other": short(folder / "other.mp4", drive=other),
        "untouched": short(folder / "untouched.mp4", drive=speech, delay=FACE_FRAMES),
    }
    return {name: score_file(path) for name, path in clips.items()}


def test_synced_clip_passes_at_lag_zero(reports: dict[str, SyncReport]) -> None:
    report = reports["synced"]
    assert report.passed, report.summary()
    assert report.score >= 0.9 and report.best_lag == 0 and report.r_at_zero == report.score
    assert report.best_measure in ("opening", "dark_share")
    # Frames 75-99 show no face: left out of the correlation.
    assert (report.frames, report.frames_with_face, report.frames_used) == (100, FACE_FRAMES, 75)
    assert report.structure_ok and report.reasons == ()
    assert "PASS" in report.summary()


def test_mouth_8_frames_late_is_found_at_lag_plus_8_and_fails(
    reports: dict[str, SyncReport],
) -> None:
    report = reports["late"]
    assert report.best_lag == DELAY  # positive: the mouth lags the audio
    assert report.score >= 0.9  # the mouth does follow the audio, only late
    assert report.r_at_zero is not None and report.r_at_zero < 0.3
    assert not report.passed and report.structure_ok
    assert any("lags the audio by 8 frames (320 ms" in reason for reason in report.reasons)


def test_controls_score_low(reports: dict[str, SyncReport]) -> None:
    # The untouched face: the mouth never moves; only head wobble and coding noise remain.
    untouched = reports["untouched"]
    assert abs(untouched.score) < 0.3 and not untouched.passed
    # A mouth that moves to another sentence than the one heard. The two sentences share their
    # length, voice and pauses, so their own levels correlate (~0.45): a mouth following one
    # cannot do better against the other, and must not be called in sync.
    other = reports["other"]
    level, _ = speech_level_db(media("speech.wav"), Fraction(FPS))
    other_level, _ = speech_level_db(FIXTURES / "speech_other.wav", Fraction(FPS))
    ceiling = pearson(
        floor_envelope(level)[:FACE_FRAMES], floor_envelope(other_level)[:FACE_FRAMES]
    )
    assert ceiling is not None and other.score < min(ceiling + 0.1, 0.6) and not other.passed
    for report in (untouched, other):
        assert report.structure_ok and any("below 0.8" in r for r in report.reasons)


def test_report_is_json_safe(reports: dict[str, SyncReport]) -> None:
    for report in reports.values():
        data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
        assert data["passed"] == report.passed
        assert set(data["measures"]) == {"opening", "dark_share", "change"}
        assert len(data["measures"]["opening"]["r_by_lag"]) == 21


def test_silent_audio_fails_with_a_reason_not_an_exception() -> None:
    report = score_file(media("face_talking.mp4"))  # the example clip's AAC track is silence
    assert not report.passed and report.structure_ok
    assert report.score == 0.0 and report.best_lag is None and report.frames_with_face == 75
    assert any("silent" in reason for reason in report.reasons)
    json.dumps(report.to_dict(), allow_nan=False)


def encode(
    path: Path,
    *,
    video_s: float,
    audio_s: float | None,
    codec: str = "libx264",
    size: tuple[int, int] = (64, 48),
) -> Path:
    """A small grey clip written with PyAV directly, free to break the rules Mp4Writer keeps."""
    width, height = size
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream(codec, rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=RATE, layout="mono") if audio_s else None
        for index in range(round(video_s * FPS)):
            image = np.full((height, width, 3), 60 + index, dtype=np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(video.encode(None))
        if audio is not None and audio_s is not None:
            t = np.arange(round(audio_s * RATE)) / RATE
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, tone.size, 1024):
                chunk = tone[start : start + 1024].reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                frame.sample_rate, frame.pts = RATE, start
                container.mux(audio.encode(frame))
            container.mux(audio.encode(None))
    return path


def failed(report: SyncReport) -> set[str]:
    return {check.name for check in report.structure if not check.passed}


def test_no_audio_stream_fails_its_checks(tmp_path: Path) -> None:
    report = score_file(encode(tmp_path / "silent.mp4", video_s=1.0, audio_s=None))
    assert failed(report) == {"audio_codec", "av_duration"}
    assert not report.passed and any("no audio stream" in r for r in report.reasons)
    assert report.reasons[0] == "structure: audio_codec, av_duration"


def test_mismatched_durations_fail(tmp_path: Path) -> None:
    report = score_file(encode(tmp_path / "long_audio.mp4", video_s=1.0, audio_s=2.0))
    assert failed(report) == {"av_duration"}
    check = next(c for c in report.structure if c.name == "av_duration")
    assert "video 1.000 s, audio 2.000 s: 25.00 frames apart" in check.message


def test_wrong_codec_fails(tmp_path: Path) -> None:
    report = score_file(encode(tmp_path / "mpeg4.mp4", video_s=1.0, audio_s=1.0, codec="mpeg4"))
    assert failed(report) == {"video_codec"}
    assert "mpeg4 yuv420p" in next(c.message for c in report.structure if c.name == "video_codec")


def test_expected_size_fps_and_duration(tmp_path: Path) -> None:
    clip = encode(tmp_path / "clip.mp4", video_s=1.0, audio_s=1.0)
    right = ExpectedOutput(width=64, height=48, fps=25, duration_s=1.0)
    assert failed(score_file(clip, expected=right)) == set()
    wrong = ExpectedOutput(width=640, height=480, fps=30, duration_s=1.1)
    report = score_file(clip, expected=wrong)
    assert failed(report) == {"size", "fps", "duration"}
    assert not report.passed and "64x48 (want 640x480)" in report.summary()
    # 1.5 frame periods (60 ms) off is the limit, still in; 1.75 is out.
    assert failed(score_file(clip, expected=ExpectedOutput(duration_s=1.06))) == set()
    assert failed(score_file(clip, expected=ExpectedOutput(duration_s=0.93))) == {"duration"}


@pytest.mark.parametrize("name", ["not_media.mp4", "empty.mp4", "image.png", "audio_only.m4a"])
def test_non_media_or_no_video_raises_value_error(name: str) -> None:
    with pytest.raises(ValueError, match=r"not decodable media|no video stream|still image"):
        score_file(FIXTURES / "broken" / name)


def test_missing_file_raises_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        score_file(tmp_path / "nowhere.mp4")


def test_pearson_is_nan_safe() -> None:
    ramp = np.arange(20.0)
    assert pearson(ramp, 2 * ramp + 1) == pytest.approx(1.0)
    assert pearson(ramp, -ramp) == pytest.approx(-1.0)
    assert pearson(ramp, np.full(20, 0.3)) is None  # a still mouth: undefined, not NaN
    assert pearson(ramp[:5], ramp[:5]) is None  # too few pairs to mean anything


def test_lag_sign_positive_means_mouth_lags_audio() -> None:
    audio = np.random.default_rng(1).normal(size=60)
    mouth = np.concatenate([np.full(3, np.nan), audio[:-3]])  # mouth[t + 3] = audio[t]
    mouth[20:25] = np.nan  # frames without a face are left out, not zeros
    scan = scan_lags(audio.tolist(), mouth.tolist(), 10)
    assert scan.best() == (3, pytest.approx(1.0))
    assert scan.at(3)[1] == 60 - 3 - 5


@pytest.mark.parametrize("fps", [Fraction(FPS), Fraction(30000, 1001)])
def test_streamed_speech_level_matches_the_whole_clip_computation(fps: Fraction) -> None:
    path = FIXTURES / "speech_long.wav"
    streamed, seconds = speech_level_db(path, fps)
    samples = decode_audio(path, RATE).astype(np.float64)
    frames = int(samples.size / RATE * fps)
    whole = _band_level_db(samples, RATE, float(fps), frames)
    assert seconds == pytest.approx(7.8) and streamed.size in (frames, frames + 1)
    sound = whole > -100  # digital silence differs only in how far below -100 dB it reads
    assert np.abs(streamed[:frames] - whole)[sound].max() < 0.1
    assert np.percentile(whole, 95) - np.percentile(whole, 5) > 30  # words vs pauses
