"""Video I/O: probing, constant-rate BGR decoding, deterministic H.264 + AAC mp4 writing."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from numpy.typing import NDArray

from mock_server.lipsync.examples import EXAMPLE_VIDEO_PATH
from mock_server.lipsync.video import Mp4Writer, iter_frames, probe_video, transcode, upright
from mock_server.media.probe import probe_mp4

FIXTURES = Path(__file__).parents[3] / "fixtures" / "media"
FACE = EXAMPLE_VIDEO_PATH


def pattern(index: int, width: int, height: int) -> NDArray[np.uint8]:
    """A frame whose mean brightness encodes ``index`` (10 grey levels apart), plus a gradient."""
    image = np.full((height, width, 3), 20 + 10 * index, dtype=np.uint8)
    image[:, :, 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    return image


def write_clip(
    path: Path,
    pts: list[int],
    time_base: Fraction,
    size: tuple[int, int] = (64, 48),
    rotation: float | None = None,
) -> None:
    """Encode one pattern frame per timestamp (in ``time_base`` units) with PyAV."""
    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"x264-params": "bframes=0"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = time_base
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for index, timestamp in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(pattern(index, width, height), format="bgr24")
            frame.pts, frame.time_base = timestamp, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def level(image: NDArray[np.uint8]) -> int:
    """Which pattern index an (upright or not) decoded frame shows."""
    return round((float(image[:, :, 1].mean()) - 20) / 10)


def test_probe_fixture() -> None:
    info = probe_video(FACE)
    assert (info.width, info.height, info.fps, info.frame_count) == (360, 360, Fraction(25), 100)
    assert info.duration_s == pytest.approx(4.0)
    assert info.rotation == 0 and info.has_audio


def test_round_trip_preserves_size_fps_frames_and_is_faststart_h264_aac(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    transcode(FACE, out)
    media = probe_mp4(out.read_bytes())
    assert (media.width, media.height, media.frame_count) == (360, 360, 100)
    assert media.fps == pytest.approx(25.0)
    assert (media.video_codec, media.pix_fmt, media.audio_codec) == ("h264", "yuv420p", "aac")
    assert media.audio_duration_s is not None
    assert abs(media.audio_duration_s - media.video_duration_s) <= 1.5 / 25
    data = out.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")  # fast start: index first
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temp file left over


def test_frames_round_trip_close_to_source(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    transcode(FACE, out)
    for original, copy in zip(iter_frames(FACE), iter_frames(out), strict=True):
        error = np.abs(original.astype(np.int16) - copy.astype(np.int16)).mean()
        assert error < 4.0


def test_same_bytes_in_two_processes(tmp_path: Path) -> None:
    """The key promise: a fresh interpreter writes the very same file."""
    script = (
        "import sys; from mock_server.lipsync.video import transcode; "
        "transcode(sys.argv[1], sys.argv[2])"
    )
    digests = []
    for run in range(2):
        out = tmp_path / f"run{run}.mp4"
        subprocess.run([sys.executable, "-c", script, str(FACE), str(out)], check=True)
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_simd_cap_is_really_applied(tmp_path: Path) -> None:
    # x264 silently falls back to plain C on a misspelt asm= list: different bytes prove it is read.
    transcode(FACE, tmp_path / "avx2.mp4", x264_simd="avx2")
    transcode(FACE, tmp_path / "c.mp4", x264_simd="none")
    assert (tmp_path / "avx2.mp4").read_bytes() != (tmp_path / "c.mp4").read_bytes()


def test_variable_frame_rate_comes_out_constant(tmp_path: Path) -> None:
    # 1 ms time base, 25 fps grid (40 ms): frame 1 lasts three slots, 2 and 3 share one slot.
    clip = tmp_path / "vfr.mp4"
    write_clip(clip, [0, 40, 160, 170, 200, 240], Fraction(1, 1000))
    frames = list(iter_frames(clip, Fraction(25)))
    assert [level(frame) for frame in frames] == [0, 1, 1, 1, 3, 4, 5]
    out = tmp_path / "cfr.mp4"
    with Mp4Writer(out, 64, 48, Fraction(25), 16_000) as writer:
        for frame in frames:
            writer.write_frame(frame)
    media = probe_mp4(out.read_bytes())
    assert media.frame_count == 7 and media.fps == pytest.approx(25.0)


def test_repeated_frames_are_independent_copies(tmp_path: Path) -> None:
    clip = tmp_path / "gap.mp4"
    write_clip(clip, [0, 120], Fraction(1, 1000))
    first, repeat, *_ = iter_frames(clip, Fraction(25))
    first[:] = 0
    assert level(repeat) == 0 and repeat.any()


def test_rotation_metadata_gives_upright_frames(tmp_path: Path) -> None:
    clip = tmp_path / "rotated.mp4"
    # -90 in the display matrix (counter-clockwise degrees) = a phone's "rotate=90": turn clockwise.
    write_clip(clip, [0, 1, 2], Fraction(1, 25), size=(64, 48), rotation=-90)
    info = probe_video(clip)
    assert (info.width, info.height, info.rotation) == (48, 64, 270)
    frame = next(iter_frames(clip))
    assert frame.shape == (64, 48, 3)
    # The stored frame's blue gradient rises left to right; turned clockwise it rises downward.
    assert frame[-1, :, 0].mean() > frame[0, :, 0].mean() + 100


def test_upright_turns_like_the_display_matrix() -> None:
    image = np.zeros((2, 3, 3), dtype=np.uint8)
    image[0, 0] = 255  # top-left marker
    assert upright(image, -90)[0, -1].all()  # clockwise: top-left goes top-right
    assert upright(image, 90)[-1, 0].all()  # counter-clockwise: to bottom-left
    assert upright(image, 180)[-1, -1].all()
    assert upright(image, 0) is image


def test_odd_dimensions_are_cropped_to_even(tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    with Mp4Writer(out, 161, 121, Fraction(25), 16_000) as writer:
        for index in range(5):
            writer.write_frame(pattern(index, 161, 121))
        writer.write_audio(np.zeros(3_000, dtype=np.float32))
    media = probe_mp4(out.read_bytes())
    assert (media.width, media.height, media.frame_count) == (160, 120, 5)
    assert media.audio_duration_s is not None
    assert abs(media.audio_duration_s - media.video_duration_s) <= 1.5 / 25


def test_audio_in_chunks_longer_than_the_video_is_trimmed(tmp_path: Path) -> None:
    out = tmp_path / "chunks.mp4"
    tone = (0.1 * np.sin(np.arange(48_000) / 10)).astype(np.float32)
    with Mp4Writer(out, 64, 48, Fraction(30000, 1001), 48_000) as writer:
        for index in range(30):
            writer.write_frame(pattern(index % 5, 64, 48))
            writer.write_audio(tone[index * 1000 : (index + 1) * 1000])
        writer.write_audio(tone[30_000:])
    media = probe_mp4(out.read_bytes())
    assert media.frame_count == 30 and media.audio_duration_s is not None
    assert abs(media.audio_duration_s - media.video_duration_s) <= 1.5 * 1001 / 30000


def write_one_frame_then_fail(out: Path) -> None:
    with Mp4Writer(out, 64, 48, Fraction(25), 16_000) as writer:
        writer.write_frame(pattern(0, 64, 48))
        raise RuntimeError("render failed")


def test_exception_inside_with_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="render failed"):
        write_one_frame_then_fail(tmp_path / "never.mp4")
    assert list(tmp_path.iterdir()) == []


def test_no_frames_is_an_error_and_leaves_no_file(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="no video frames"),
        Mp4Writer(tmp_path / "empty.mp4", 64, 48, Fraction(25), 16_000),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


def test_wrong_frame_shape_is_rejected(tmp_path: Path) -> None:
    with Mp4Writer(tmp_path / "x.mp4", 64, 48, Fraction(25), 16_000) as writer:
        with pytest.raises(ValueError, match=r"\(48, 64, 3\)"):
            writer.write_frame(np.zeros((10, 10, 3), dtype=np.uint8))
        writer.write_frame(pattern(0, 64, 48))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("not_media.mp4", "not decodable media"),
        ("empty.mp4", "not decodable media"),
        ("corrupt_header.mp4", "not decodable media"),
        ("audio_only.m4a", "no video stream"),
        ("image.png", "still image"),
    ],
)
def test_broken_inputs_are_rejected_by_probe(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        probe_video(FIXTURES / "broken" / name)
    if name != "image.png":  # a still image decodes fine; probe_video is the gate for it
        with pytest.raises(ValueError, match=message):
            list(iter_frames(FIXTURES / "broken" / name))


def test_truncated_file_fails_mid_stream_with_value_error() -> None:
    truncated = FIXTURES / "broken" / "truncated.mp4"
    assert probe_video(truncated).frame_count == 100  # the container still claims 100
    with pytest.raises(ValueError, match="decoding failed after"):
        list(iter_frames(truncated))


def test_video_only_is_a_fine_video() -> None:
    info = probe_video(FIXTURES / "broken" / "video_only.mp4")
    assert not info.has_audio and info.frame_count == 25


def test_too_long_is_rejected() -> None:
    with pytest.raises(ValueError, match="longer than the 1 s limit"):
        probe_video(FACE, max_seconds=1.0)


def test_file_objects_work(tmp_path: Path) -> None:
    with FACE.open("rb") as handle:
        assert probe_video(handle).frame_count == 100
        assert sum(1 for _ in iter_frames(handle)) == 100
