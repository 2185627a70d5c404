"""The reference lip-sync end to end on the committed clip: lengths, sizes, bytes, pass-through."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from contracts.schemas import SYNC_MODES, SyncMode
from mock_server.lipsync import pipeline
from mock_server.lipsync.audio import decode_audio
from mock_server.lipsync.pipeline import AUDIO_RATE, Cancelled, LipsyncSummary, run_lipsync
from mock_server.lipsync.syncscore import score_file
from mock_server.lipsync.timeline import plan_timeline
from mock_server.lipsync.video import Mp4Writer, iter_frames, probe_video

ROOT = Path(__file__).resolve().parents[3]


def _media(name: str) -> Path:
    for folder in (ROOT / "mock_server" / "lipsync" / "examples", ROOT / "fixtures" / "media"):
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(name)


FACE = _media("face_talking.mp4")
SPEECH = _media("speech.wav")  # 4.0 s, as long as the clip
SPEECH_LONG = _media("speech_long.wav")  # 7.8 s: the modes that follow the audio make it longer
FACE_FRAMES = 75  # frames 0-74 show the face, 75-99 do not


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[SyncMode, LipsyncSummary]:
    folder = tmp_path_factory.mktemp("lipsync")
    return {
        mode: run_lipsync(FACE, SPEECH_LONG, folder / f"{mode}.mp4", sync_mode=mode)
        for mode in SYNC_MODES
    }


def _durations(path: Path) -> tuple[int, float, float]:
    """(video frames, video seconds, audio seconds) as a decoder sees the file."""
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264" and audio.codec_context.name == "aac"
        assert video.codec_context.pix_fmt == "yuv420p"
        frames = sum(1 for _ in container.decode(video))
        assert video.duration is not None and audio.duration is not None
        assert video.time_base is not None and audio.time_base is not None
        return (
            frames,
            float(video.duration * video.time_base),
            float(audio.duration * audio.time_base),
        )


@pytest.mark.parametrize("mode", SYNC_MODES)
def test_output_length_follows_the_sync_mode(
    outputs: dict[SyncMode, LipsyncSummary], mode: SyncMode
) -> None:
    summary = outputs[mode]
    audio_samples = decode_audio(SPEECH_LONG, AUDIO_RATE).size
    plan = plan_timeline(mode, 100, 25.0, audio_samples, AUDIO_RATE)
    expected = {"cut_off": 100, "silence": 100, "loop": 195, "bounce": 195, "remap": 195}[mode]
    assert plan.output_frames == summary.frames == expected
    frames, video_s, audio_s = _durations(summary.output)
    assert frames == expected
    frame_s = 1 / 25
    assert abs(video_s - expected * frame_s) <= frame_s
    # AAC priming and frame padding aside, the audio ends with the video.
    assert abs(audio_s - video_s) <= frame_s


def test_resolution_and_frame_rate_are_preserved(outputs: dict[SyncMode, LipsyncSummary]) -> None:
    source, result = probe_video(FACE), probe_video(outputs["cut_off"].output)
    assert (result.width, result.height, result.fps) == (source.width, source.height, source.fps)


def test_faces_are_counted_per_output_frame(outputs: dict[SyncMode, LipsyncSummary]) -> None:
    assert outputs["cut_off"].face_frames == FACE_FRAMES
    assert outputs["silence"].face_frames == FACE_FRAMES
    # Looping plays the face stretch twice (0-74, then 0-74 of the second pass: 100 + 95 frames).
    assert outputs["loop"].face_frames == FACE_FRAMES + FACE_FRAMES


def test_cut_off_with_long_audio_equals_silence(outputs: dict[SyncMode, LipsyncSummary]) -> None:
    """Both give the video's length when the audio is longer: the same frames, the same bytes."""
    assert outputs["cut_off"].output.read_bytes() == outputs["silence"].output.read_bytes()


def test_faceless_frames_pass_through_and_progress_covers_both_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed: list[npt.NDArray[np.uint8]] = []
    write_frame = Mp4Writer.write_frame

    def capture(writer: Mp4Writer, bgr: npt.NDArray[np.uint8]) -> None:
        handed.append(bgr.copy())
        write_frame(writer, bgr)

    monkeypatch.setattr(Mp4Writer, "write_frame", capture)
    seen: list[tuple[str, int, int]] = []
    summary = run_lipsync(FACE, SPEECH, tmp_path / "out.mp4", progress=lambda *p: seen.append(p))
    source = list(iter_frames(FACE))
    # What reaches the encoder for a face-less frame is the decoded input frame, bit for bit.
    for index in range(FACE_FRAMES, 100):
        assert np.array_equal(handed[index], source[index]), f"frame {index} was changed"
    # And after the lossy encode it is still the same picture.
    result = list(iter_frames(summary.output))
    for index in range(FACE_FRAMES, 100):
        error = np.mean((result[index].astype(float) - source[index].astype(float)) ** 2)
        psnr = 10 * math.log10(255**2 / max(float(error), 1e-9))
        assert psnr > 38, f"frame {index}: {psnr:.1f} dB"
    mouth_changed = [not np.array_equal(handed[i], source[i]) for i in range(FACE_FRAMES)]
    assert sum(mouth_changed) > 30  # speech opens the mouth on most face frames

    track = [p for p in seen if p[0] == "track"]
    render = [p for p in seen if p[0] == "render"]
    assert track[-1][1] == 100 and render[-1][1:] == (100, 100)
    assert [p[1] for p in render] == list(range(1, 101))


def test_bounce_streaming_matches_the_cached_path(
    outputs: dict[SyncMode, LipsyncSummary], tmp_path: Path
) -> None:
    """With a budget of 7 frames bounce re-decodes its forward runs and serves its backward
    runs block by block instead of caching the clip: the same bytes."""
    small = run_lipsync(
        FACE,
        SPEECH_LONG,
        tmp_path / "small.mp4",
        sync_mode="bounce",
        memory_budget=360 * 360 * 3 * 7,
    )
    assert small.output.read_bytes() == outputs["bounce"].output.read_bytes()


def test_same_bytes_in_another_process(
    outputs: dict[SyncMode, LipsyncSummary], tmp_path: Path
) -> None:
    target = tmp_path / "other.mp4"
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from mock_server.lipsync.pipeline import run_lipsync
        run_lipsync(Path({str(FACE)!r}), Path({str(SPEECH_LONG)!r}), Path({str(target)!r}),
                    sync_mode="remap")
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, timeout=120)
    assert target.read_bytes() == outputs["remap"].output.read_bytes()


@pytest.mark.parametrize("stop_after", [10, 150])  # during tracking, during rendering
def test_cancel_leaves_no_file(tmp_path: Path, stop_after: int) -> None:
    calls = 0

    def should_stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > stop_after

    with pytest.raises(Cancelled):
        run_lipsync(FACE, SPEECH, tmp_path / "out.mp4", should_stop=should_stop)
    assert list(tmp_path.iterdir()) == []


def test_unknown_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backend"):
        run_lipsync(FACE, SPEECH, tmp_path / "out.mp4", backend="nonsense")


def test_output_passes_the_sync_score_and_the_untouched_control_does_not(
    outputs: dict[SyncMode, LipsyncSummary], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for mode in ("cut_off", "remap"):
        report = score_file(outputs[mode].output)
        assert report.passed, report.summary()
        assert report.score >= 0.8 and report.best_lag is not None and abs(report.best_lag) <= 1
    # Control: the same pipeline with the warp switched off (untouched video, same audio).
    monkeypatch.setattr(pipeline, "render_mouth", lambda frame, mouth, openness: frame)
    control = run_lipsync(FACE, SPEECH_LONG, tmp_path / "control.mp4")
    report = score_file(control.output)
    assert not report.passed
    assert all(m.r is None or abs(m.r) < 0.3 for m in report.measures.values()), report.summary()
