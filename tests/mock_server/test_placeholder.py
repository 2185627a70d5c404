"""The placeholder mp4: deterministic bytes, and the properties its constants promise."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mock_server.media import placeholder
from mock_server.media.placeholder import make_placeholder_mp4
from mock_server.media.probe import probe_mp4

REPO_ROOT = Path(__file__).resolve().parents[2]


def _fresh(seed: int) -> bytes:
    """Encode again, bypassing the cache, so equality means the encoder is deterministic."""
    return make_placeholder_mp4.__wrapped__(seed)


def _top_level_boxes(data: bytes) -> list[bytes]:
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        boxes.append(data[offset + 4 : offset + 8])
        if size == 1:  # 64-bit size follows the type
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        assert size >= 8, f"malformed box at offset {offset}"
        offset += size
    return boxes


def test_same_seed_gives_the_same_bytes_in_process() -> None:
    assert _fresh(7) == _fresh(7)
    assert make_placeholder_mp4(7) is make_placeholder_mp4(7)  # cached


def test_same_seed_gives_the_same_bytes_in_another_process() -> None:
    code = textwrap.dedent(
        """
        import hashlib
        from mock_server.media.placeholder import make_placeholder_mp4
        print(hashlib.sha256(make_placeholder_mp4(7)).hexdigest())
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=60,
    )
    assert result.stdout.strip() == hashlib.sha256(make_placeholder_mp4(7)).hexdigest()


def test_different_seeds_give_different_bytes() -> None:
    seeds = [0, 1, 2, -1, 2**70]
    digests = {hashlib.sha256(make_placeholder_mp4(seed)).digest() for seed in seeds}
    assert len(digests) == len(seeds)


def test_probe_matches_the_advertised_properties() -> None:
    info = probe_mp4(make_placeholder_mp4(3))

    assert "mp4" in info.format_names
    assert (info.video_codec, info.pix_fmt, info.audio_codec) == ("h264", "yuv420p", "aac")
    assert (info.width, info.height) == (placeholder.WIDTH, placeholder.HEIGHT)
    assert info.fps == pytest.approx(placeholder.FPS)
    assert info.frame_count == placeholder.FRAMES == 25
    assert info.video_duration_s == pytest.approx(placeholder.DURATION_S)
    assert info.audio_sample_rate == placeholder.SAMPLE_RATE
    assert info.audio_duration_s is not None
    assert abs(info.video_duration_s - info.audio_duration_s) < 1.5 / placeholder.FPS


def test_file_is_fast_start_and_carries_no_muxer_version() -> None:
    data = make_placeholder_mp4(3)
    boxes = _top_level_boxes(data)
    assert boxes.index(b"moov") < boxes.index(b"mdat"), boxes
    assert b"Lavf" not in data  # +bitexact keeps the FFmpeg version out of the bytes


def test_probe_rejects_bytes_that_are_not_media() -> None:
    with pytest.raises(ValueError, match="not decodable media"):
        probe_mp4(b"not media")
