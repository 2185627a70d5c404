"""``fal-mock lipsync``: local files in, a synced mp4 and a summary out; clear errors if bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mock_server.cli import main
from mock_server.lipsync.examples import EXAMPLE_AUDIO_PATH, EXAMPLE_VIDEO_PATH

BROKEN = Path(__file__).resolve().parents[2] / "fixtures" / "media" / "broken"


def test_lipsync_writes_a_synced_video_and_a_json_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.mp4"
    code = main(
        ["lipsync", str(EXAMPLE_VIDEO_PATH), str(EXAMPLE_AUDIO_PATH), "-o", str(out), "--json"]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert (summary["frames"], summary["face_frames"]) == (100, 75)
    assert (summary["width"], summary["height"], summary["fps"]) == (360, 360, "25")
    assert summary["sync_score"]["passed"] and summary["sync_score"]["score"] >= 0.8
    assert out.stat().st_size > 0
    # Not a terminal: one progress line per tenth of each pass, on stderr.
    assert "tracking: 100/100 frames" in captured.err
    assert "rendering: 100/100 frames" in captured.err


def test_lipsync_text_summary_with_a_file_url_and_no_score(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.mp4"
    code = main(
        [
            "lipsync",
            EXAMPLE_VIDEO_PATH.as_uri(),
            str(EXAMPLE_AUDIO_PATH),
            "-o",
            str(out),
            "--no-score",
            "--sync-mode",
            "silence",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0
    assert f"wrote {out}" in text and "sync_mode=silence" in text and "sync score" not in text


@pytest.mark.parametrize(
    ("video", "audio", "message"),
    [
        (BROKEN / "image.png", EXAMPLE_AUDIO_PATH, "video_url: "),
        (EXAMPLE_VIDEO_PATH, BROKEN / "video_only.mp4", "audio_url: "),
        (EXAMPLE_VIDEO_PATH, Path("/nonexistent/speech.wav"), "audio_url: "),
    ],
)
def test_lipsync_bad_input_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], video: Path, audio: Path, message: str
) -> None:
    out = tmp_path / "out.mp4"
    assert main(["lipsync", str(video), str(audio), "-o", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_lipsync_unknown_backend_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "lipsync",
        str(EXAMPLE_VIDEO_PATH),
        str(EXAMPLE_AUDIO_PATH),
        "-o",
        str(tmp_path / "o.mp4"),
    ]
    assert main([*args, "--backend", "nonsense"]) == 2
    assert "nonsense" in capsys.readouterr().err


def test_lipsync_remote_urls_are_refused_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "lipsync",
        "https://example.com/v.mp4",
        str(EXAMPLE_AUDIO_PATH),
        "-o",
        str(tmp_path / "o.mp4"),
    ]
    assert main(args) == 2
    assert "fetching remote URLs is disabled" in capsys.readouterr().err
