"""The input resolver's sources: each kind of URL, remote fetching, the byte limits.

The content checks (what a file is, durations, the error body) are in test_inputs_content.py.
"""

from __future__ import annotations

import base64
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.schemas import EXAMPLE_AUDIO_URL, EXAMPLE_VIDEO_URL, ValidationErrorBody
from mock_server.lipsync.examples import EXAMPLE_AUDIO_PATH, EXAMPLE_VIDEO_PATH
from mock_server.lipsync.inputs import (
    InputConfig,
    InputError,
    InputField,
    ResolvedMedia,
    resolve_input,
    resolve_inputs,
)
from mock_server.storage import FileStore
from tests.local_http import LoopbackServer

REMOTE_VIDEO = "https://media.example/clip.mp4"


def data_uri(path: Path, mime: str = "application/octet-stream") -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def expect_error(field: InputField, error_type: str, url: str, **kwargs: object) -> InputError:
    """Resolve ``url`` and check the error and its fal 422 body; returns the error."""
    with pytest.raises(InputError) as caught:
        resolve_input(field, url, **kwargs)  # type: ignore[arg-type]
    error = caught.value
    assert (error.field, error.type) == (field, error_type), error.msg
    body = error.to_body()
    assert ValidationErrorBody.model_validate(body).detail[0].type == error_type
    [item] = body["detail"]
    assert item["loc"] == ["body", field] and item["msg"] == error.msg and error.msg
    assert item["url"] == f"https://docs.fal.ai/errors/#{error_type}"
    assert set(item) <= {"loc", "msg", "type", "url", "ctx"}
    return error


def leftovers(work_dir: Path) -> list[str]:
    return sorted(p.name for p in work_dir.iterdir()) if work_dir.exists() else []


# -- sources ----------------------------------------------------------------------------------


def test_the_documented_example_works_offline(work_dir: Path) -> None:
    video, audio = resolve_inputs(EXAMPLE_VIDEO_URL, EXAMPLE_AUDIO_URL, work_dir=work_dir)
    assert video == ResolvedMedia(
        EXAMPLE_VIDEO_PATH,
        "video",
        EXAMPLE_VIDEO_PATH.stat().st_size,
        4.0,
        "example face_talking.mp4",
    )
    assert (audio.path, audio.kind, audio.duration_s) == (EXAMPLE_AUDIO_PATH, "audio", 4.0)
    assert leftovers(work_dir) == []  # bundled files are used in place


def test_base64_data_uris(work_dir: Path) -> None:
    video, audio = resolve_inputs(
        data_uri(EXAMPLE_VIDEO_PATH, "video/mp4"),
        data_uri(EXAMPLE_AUDIO_PATH, "audio/wav"),
        work_dir=work_dir,
    )
    assert video.path == work_dir / "video_url.media" and audio.path == work_dir / "audio_url.media"
    assert video.path.read_bytes() == EXAMPLE_VIDEO_PATH.read_bytes()
    assert audio.path.read_bytes() == EXAMPLE_AUDIO_PATH.read_bytes()
    assert video.source == "data: URI (video/mp4, base64)" and video.duration_s == 4.0
    assert leftovers(work_dir) == ["audio_url.media", "video_url.media"]  # no temporary files


def test_percent_encoded_data_uris(work_dir: Path) -> None:
    raw = EXAMPLE_AUDIO_PATH.read_bytes()
    plain = "data:audio/wav," + urllib.parse.quote_from_bytes(raw)
    assert resolve_input("audio_url", plain, work_dir=work_dir).path.read_bytes() == raw
    # Base64 whose "+", "/" and "=" were percent-encoded on the way.
    quoted = "data:audio/wav;base64," + urllib.parse.quote(base64.b64encode(raw).decode(), safe="")
    assert "%2B" in quoted or "%2F" in quoted
    assert resolve_input("audio_url", quoted, work_dir=work_dir).size == len(raw)


def test_files_in_the_mock_storage(work_dir: Path, store: FileStore) -> None:
    stored = store.put(EXAMPLE_VIDEO_PATH.read_bytes(), "video/mp4", "face.mp4")
    urls = [
        stored.ref,
        f"http://127.0.0.1:8443/cdn/files/{stored.file_id}/face.mp4",
        f"https://v3.fal.media/files/{stored.file_id}/face.mp4",
    ]
    for url in urls:  # remote fetching is off, yet the mock's own file URLs resolve
        resolved = resolve_input("video_url", url, work_dir=work_dir, store=store)
        assert resolved.path.read_bytes() == EXAMPLE_VIDEO_PATH.read_bytes()
        assert resolved.source == f"mock storage {stored.file_id}/face.mp4"


def test_a_missing_stored_file(work_dir: Path, store: FileStore) -> None:
    error = expect_error(
        "video_url", "file_download_error", f"fal-mock-file://{'ab' * 16}/gone.mp4",
        work_dir=work_dir, store=store,
    )  # fmt: skip
    assert "not in the mock's storage" in error.msg


def test_file_urls_under_the_root_are_used_in_place(work_dir: Path, root: Path) -> None:
    config = InputConfig(file_root=root)
    video, audio = resolve_inputs(
        (root / "clip.mp4").as_uri(),
        (root / "speech.wav").as_uri(),
        work_dir=work_dir,
        config=config,
    )
    assert (video.path, audio.path) == (root / "clip.mp4", root / "speech.wav")
    assert leftovers(work_dir) == []
    alias = "file://localhost" + urllib.parse.quote(str(root / "sub" / ".." / "clip.mp4"))
    assert resolve_input("video_url", alias, work_dir=work_dir, config=config).path == video.path
    (root / "link.mp4").symlink_to(root / "clip.mp4")  # a symlink that stays inside is fine
    linked = resolve_input(
        "video_url", (root / "link.mp4").as_uri(), work_dir=work_dir, config=config
    )
    assert linked.path == video.path


def test_file_urls_are_refused_without_a_root(work_dir: Path, root: Path) -> None:
    error = expect_error(
        "video_url", "file_download_error", (root / "clip.mp4").as_uri(), work_dir=work_dir
    )
    assert "no file root" in error.msg


@pytest.mark.parametrize(
    "url",
    [
        "file://{root}/../outside.mp4",
        "file://{root}/%2e%2e/outside.mp4",
        "file://{root}/link.mp4",  # a symlink out of the root
        "file://{root}/linkdir/outside.mp4",  # through a symlinked directory
        "file://{root}-sibling/outside.mp4",  # a sibling whose name starts like the root
    ],
)
def test_file_urls_cannot_escape_the_root(
    work_dir: Path, root: Path, url: str, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(EXAMPLE_VIDEO_PATH.read_bytes())
    sibling = tmp_path / "root-sibling"
    sibling.mkdir()
    (sibling / "outside.mp4").write_bytes(outside.read_bytes())
    (root / "link.mp4").symlink_to(outside)
    (root / "linkdir").symlink_to(tmp_path)
    config = InputConfig(file_root=root)
    error = expect_error(
        "video_url", "file_download_error", url.format(root=root), work_dir=work_dir, config=config
    )
    assert "outside the allowed file root" in error.msg


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file://elsewhere/clip.mp4", "not a local absolute file:// URL"),
        ("file:clip.mp4", "not a local absolute file:// URL"),
        ("file://{root}/missing.mp4", "no such file"),
        ("file://{root}", "not a regular file"),  # the root itself
    ],
)
def test_file_url_problems(work_dir: Path, root: Path, url: str, message: str) -> None:
    config = InputConfig(file_root=root)
    error = expect_error(
        "video_url", "file_download_error", url.format(root=root), work_dir=work_dir, config=config
    )
    assert message in error.msg


@pytest.mark.parametrize("url", ["ftp://example.com/clip.mp4", "clip.mp4", "s3://bucket/clip.mp4"])
def test_unsupported_schemes(work_dir: Path, url: str) -> None:
    error = expect_error("video_url", "file_download_error", url, work_dir=work_dir)
    assert "unsupported URL scheme" in error.msg


# -- remote -----------------------------------------------------------------------------------


def remote(handler: Callable[[httpx.Request], httpx.Response], **config: Any) -> dict[str, Any]:
    """Resolver arguments: remote fetching on, every request answered by ``handler``."""
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return {"config": InputConfig(allow_remote=True, **config), "http_client": client}


def test_remote_fetching_is_off_by_default(work_dir: Path) -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request may leave the resolver")

    off = remote(unreachable) | {"config": InputConfig()}
    error = expect_error("video_url", "file_download_error", REMOTE_VIDEO, work_dir=work_dir, **off)
    assert "remote URLs is disabled" in error.msg


def test_remote_download(work_dir: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/old.mp4":
            return httpx.Response(302, headers={"Location": REMOTE_VIDEO})
        return httpx.Response(200, content=EXAMPLE_VIDEO_PATH.read_bytes())

    url = "https://media.example/old.mp4"
    resolved = resolve_input("video_url", url, work_dir=work_dir, **remote(handler))
    assert seen == ["https://media.example/old.mp4", REMOTE_VIDEO]
    assert resolved.path.read_bytes() == EXAMPLE_VIDEO_PATH.read_bytes()
    assert resolved.source == "download https://media.example/old.mp4"


def test_remote_download_from_a_local_server(work_dir: Path) -> None:
    """The resolver's own client (no injected transport), against a real socket."""
    with LoopbackServer(EXAMPLE_AUDIO_PATH.read_bytes()) as server:
        url = f"http://127.0.0.1:{server.port}/speech"
        config = InputConfig(allow_remote=True, allow_private=True)  # a loopback server
        resolved = resolve_input("audio_url", url, work_dir=work_dir, config=config)
    assert resolved.path.read_bytes() == EXAMPLE_AUDIO_PATH.read_bytes()
    assert server.user_agents == ["fal-lipsync-mock input resolver"]


def test_remote_http_error(work_dir: Path) -> None:
    missing = remote(lambda request: httpx.Response(404))
    error = expect_error(
        "video_url", "file_download_error", REMOTE_VIDEO, work_dir=work_dir, **missing
    )
    assert "HTTP 404" in error.msg


def test_remote_network_error(work_dir: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    error = expect_error(
        "video_url", "file_download_error", REMOTE_VIDEO, work_dir=work_dir, **remote(refuse)
    )
    assert "connection refused" in error.msg


def drip(chunks: int, size: int, pause: float = 0.0) -> Iterator[bytes]:
    for _ in range(chunks):
        time.sleep(pause)
        yield b"\0" * size


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_remote_size_limit(work_dir: Path, declared: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if declared:
            return httpx.Response(200, content=b"\0" * 5000)
        return httpx.Response(200, content=drip(100, 1000))  # chunked: no Content-Length

    limited = remote(handler, max_bytes=4096)
    error = expect_error("video_url", "file_too_large", REMOTE_VIDEO, work_dir=work_dir, **limited)
    assert error.ctx == {"max_size": 4096}
    assert leftovers(work_dir) == []  # the partial download is gone


def test_remote_deadline(work_dir: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=drip(50, 10, pause=0.01))

    slow = remote(handler, fetch_timeout_s=0.05)
    error = expect_error(
        "video_url", "file_download_error", REMOTE_VIDEO, work_dir=work_dir, **slow
    )
    assert "took over 0.05 s" in error.msg
    assert leftovers(work_dir) == []


# -- limits -----------------------------------------------------------------------------------


def test_data_uri_size_is_checked_before_decoding(work_dir: Path) -> None:
    config = InputConfig(max_bytes=1000)
    # Not even valid base64: the size check must come first, so this says "too large".
    error = expect_error(
        "video_url", "file_too_large", "data:video/mp4;base64," + "!" * 2000,
        work_dir=work_dir, config=config,
    )  # fmt: skip
    assert error.ctx == {"max_size": 1000} and "1500 bytes" in error.msg
    expect_error(
        "audio_url", "file_too_large", "data:audio/wav," + "%00" * 1001,
        work_dir=work_dir, config=config,
    )  # fmt: skip
    assert leftovers(work_dir) == []


def test_size_limit_for_stored_and_local_files(
    work_dir: Path, store: FileStore, root: Path
) -> None:
    config = InputConfig(max_bytes=1000, file_root=root)
    stored = store.put(EXAMPLE_AUDIO_PATH.read_bytes(), "audio/wav", "speech.wav")
    for url in [stored.ref, (root / "speech.wav").as_uri(), EXAMPLE_AUDIO_URL]:
        expect_error(
            "audio_url", "file_too_large", url, work_dir=work_dir, store=store, config=config
        )


def test_bad_base64(work_dir: Path) -> None:
    error = expect_error("video_url", "file_download_error", "data:;base64,AAA*", work_dir=work_dir)
    assert "not valid base64" in error.msg
    expect_error("video_url", "file_download_error", "data:video/mp4;base64", work_dir=work_dir)


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="positive"):
        InputConfig(max_bytes=0)
