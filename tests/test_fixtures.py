"""The committed fixture media: unchanged, well-formed, and broken in exactly the intended way.

These read the committed files only (no scikit-image, no espeak-ng); regenerate them with
`python fixtures/make_media.py` and commit the new provenance.json together with the media.
"""

from __future__ import annotations

import hashlib
import json
import wave
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest

from mock_server.lipsync.examples import EXAMPLE_AUDIO_PATH, EXAMPLE_VIDEO_PATH

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
MEDIA = FIXTURES / "media"
BROKEN = MEDIA / "broken"
EXAMPLES = EXAMPLE_VIDEO_PATH.parent
PROVENANCE: dict[str, Any] = json.loads((FIXTURES / "provenance.json").read_text())
FILES: dict[str, dict[str, Any]] = {f["path"]: f for f in PROVENANCE["files"]}
"""Provenance by path relative to the repository root."""


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("rel", sorted(FILES))
def test_file_matches_provenance(rel: str) -> None:
    path = ROOT / rel
    assert path.is_file(), f"{rel} is listed in provenance.json but missing"
    data = path.read_bytes()
    assert len(data) == FILES[rel]["size"]
    assert hashlib.sha256(data).hexdigest() == FILES[rel]["sha256"], (
        f"{rel} changed: regenerate with fixtures/make_media.py and commit provenance.json too"
    )


def test_every_media_file_is_in_provenance() -> None:
    examples = [p for p in EXAMPLES.iterdir() if p.suffix in (".mp4", ".wav")]
    on_disk = {rel(p) for p in [*MEDIA.rglob("*"), *examples] if p.is_file()}
    assert on_disk == set(FILES)


def test_examples_are_package_data() -> None:
    """The wheel ships the examples: the package-data globs cover exactly the media there."""
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["mock_server.lipsync.examples"]
    packaged = {p for pattern in globs for p in EXAMPLES.glob(pattern)}
    assert packaged == {EXAMPLE_VIDEO_PATH, EXAMPLE_AUDIO_PATH}


def test_fixtures_stay_small() -> None:
    assert sum(int(f["size"]) for f in FILES.values()) <= 1_000_000


def test_face_talking_decodes() -> None:
    info = FILES[rel(EXAMPLE_VIDEO_PATH)]
    with av.open(str(EXAMPLE_VIDEO_PATH)) as c:
        assert "mp4" in c.format.name
        video, audio = c.streams.video[0], c.streams.audio[0]
        assert video.codec_context.name == "h264"
        assert video.average_rate == Fraction(25)
        assert audio.codec_context.name == "aac"
        assert audio.duration is not None and audio.time_base is not None
        assert abs(float(audio.duration * audio.time_base) - 4.0) < 0.05
        frames = [(f.width, f.height, f.format.name) for f in c.decode(video)]
    assert frames == [(360, 360, "yuv420p")] * 100
    assert info["face_frames"] == [0, 74] and info["faceless_frames"] == [75, 99]


@pytest.mark.parametrize(
    ("path", "seconds"),
    [
        (EXAMPLE_AUDIO_PATH, 4.0),
        (MEDIA / "speech_other.wav", 4.0),
        (MEDIA / "speech_long.wav", 7.8),
    ],
    ids=lambda value: value.name if isinstance(value, Path) else str(value),
)
def test_speech_wav_format(path: Path, seconds: float) -> None:
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert abs(w.getnframes() - seconds * 16000) <= 1
        pcm = w.readframes(w.getnframes())
    assert pcm.count(0) < len(pcm)  # not silent


def test_speech_differs_from_control() -> None:
    assert EXAMPLE_AUDIO_PATH.read_bytes() != (MEDIA / "speech_other.wav").read_bytes()


@pytest.mark.parametrize("name", ["not_media.mp4", "empty.mp4", "corrupt_header.mp4"])
def test_unopenable(name: str) -> None:
    with pytest.raises(av.error.InvalidDataError):
        av.open(str(BROKEN / name))


def test_truncated_opens_but_fails_mid_decode() -> None:
    decoded: list[av.VideoFrame] = []
    with av.open(str(BROKEN / "truncated.mp4")) as c:
        video = c.streams.video[0]
        assert video.frames == 100  # the index (moov) is intact, the media data is not
        with pytest.raises(av.error.InvalidDataError):
            decoded.extend(c.decode(video))
    assert 0 < len(decoded) < 100


def test_audio_only_has_no_video() -> None:
    with av.open(str(BROKEN / "audio_only.m4a")) as c:
        assert len(c.streams.video) == 0
        assert [s.codec_context.name for s in c.streams.audio] == ["aac"]


def test_video_only_has_no_audio() -> None:
    with av.open(str(BROKEN / "video_only.mp4")) as c:
        assert len(c.streams.audio) == 0
        video = c.streams.video[0]
        assert video.codec_context.name == "h264"
        assert sum(1 for _ in c.decode(video)) == 25


def test_image_is_a_single_still() -> None:
    with av.open(str(BROKEN / "image.png")) as c:
        assert c.format.name == "png_pipe"
        assert len(c.streams.audio) == 0
        video = c.streams.video[0]
        assert video.codec_context.name == "png"
        assert sum(1 for _ in c.decode(video)) == 1
