"""The resolver's content checks: what a file is comes from its bytes, never its name or MIME
type; every broken fixture fails in the right field; the duration limit; the 422 error itself.

Sources, fetching and the byte limits are in test_inputs.py (whose helpers are reused here).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from contracts.schemas import EXAMPLE_AUDIO_URL, EXAMPLE_VIDEO_URL
from mock_server.lipsync.examples import EXAMPLE_AUDIO_PATH, EXAMPLE_VIDEO_PATH
from mock_server.lipsync.inputs import (
    InputConfig,
    InputError,
    InputField,
    resolve_input,
    resolve_inputs,
)
from tests.mock_server.lipsync.test_inputs import data_uri, expect_error

MEDIA = Path(__file__).resolve().parents[3] / "fixtures" / "media"
BROKEN = MEDIA / "broken"

# -- duration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "url", "error_type"),
    [
        ("video_url", EXAMPLE_VIDEO_URL, "video_duration_too_long"),
        ("audio_url", EXAMPLE_AUDIO_URL, "audio_duration_too_long"),
    ],
)
def test_duration_limit(work_dir: Path, field: InputField, url: str, error_type: str) -> None:
    config = InputConfig(max_seconds=3.5)
    error = expect_error(field, error_type, url, work_dir=work_dir, config=config)
    assert error.ctx == {"max_duration": 3.5} and "4.0 s long" in error.msg


# -- content, not names -----------------------------------------------------------------------

BROKEN_CASES = [
    ("audio_only.m4a", "video_url", "no video stream"),
    ("corrupt_header.mp4", "video_url", "not decodable media"),
    ("corrupt_header.mp4", "audio_url", "not decodable media"),
    ("empty.mp4", "video_url", "empty"),
    ("empty.mp4", "audio_url", "empty"),
    ("image.png", "video_url", "still image"),
    ("image.png", "audio_url", "no audio stream"),
    ("not_media.mp4", "video_url", "not decodable media"),
    ("not_media.mp4", "audio_url", "not decodable media"),
    ("truncated.mp4", "video_url", "truncated"),
    ("truncated.mp4", "audio_url", "truncated"),
    ("video_only.mp4", "audio_url", "no audio stream"),
]


@pytest.mark.parametrize(("name", "field", "message"), BROKEN_CASES)
@pytest.mark.parametrize("via", ["file", "data"])
def test_broken_fixtures(
    work_dir: Path, name: str, field: InputField, message: str, via: str
) -> None:
    path = BROKEN / name
    url = path.as_uri() if via == "file" else data_uri(path)
    error = expect_error(
        field, f"unsupported_{field[:5]}_format", url,
        work_dir=work_dir, config=InputConfig(file_root=MEDIA),
    )  # fmt: skip
    assert message in error.msg
    assert str(work_dir) not in error.msg and str(MEDIA) not in error.msg


def test_broken_only_for_the_other_field(work_dir: Path) -> None:
    config = InputConfig(file_root=MEDIA)
    video = resolve_input(
        "video_url", (BROKEN / "video_only.mp4").as_uri(), work_dir=work_dir, config=config
    )
    audio = resolve_input(
        "audio_url", (BROKEN / "audio_only.m4a").as_uri(), work_dir=work_dir, config=config
    )
    assert (video.kind, video.duration_s) == ("video", 1.0)
    assert audio.kind == "audio" and abs(audio.duration_s - 4.0) < 0.1


def test_a_video_with_sound_is_an_audio_source(work_dir: Path) -> None:
    resolved = resolve_input("audio_url", EXAMPLE_VIDEO_URL, work_dir=work_dir)
    assert resolved.kind == "audio" and abs(resolved.duration_s - 4.0) < 0.05


def test_extensions_and_mime_types_lie(work_dir: Path, root: Path) -> None:
    (root / "clip.mp4").rename(root / "speech_really.wav")
    (root / "speech.wav").rename(root / "clip_really.mp4")
    config = InputConfig(file_root=root)
    video, audio = resolve_inputs(
        (root / "speech_really.wav").as_uri(),
        (root / "clip_really.mp4").as_uri(),
        work_dir=work_dir,
        config=config,
    )
    assert (video.duration_s, audio.duration_s) == (4.0, 4.0)
    resolve_input("video_url", data_uri(EXAMPLE_VIDEO_PATH, "audio/wav"), work_dir=work_dir)
    expect_error(
        "video_url", "unsupported_video_format", data_uri(EXAMPLE_AUDIO_PATH, "video/mp4"),
        work_dir=work_dir,
    )  # fmt: skip


# -- the error --------------------------------------------------------------------------------


def test_input_error_survives_a_worker_process() -> None:
    error = InputError("audio_url", "too big", "file_too_large", {"max_size": 5})
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is InputError and vars(copy) == vars(error)
    assert str(copy) == "audio_url: too big"
    assert copy.to_body() == {"detail": [{
        "loc": ["body", "audio_url"], "msg": "too big", "type": "file_too_large",
        "url": "https://docs.fal.ai/errors/#file_too_large", "ctx": {"max_size": 5},
    }]}  # fmt: skip
