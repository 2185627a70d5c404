"""Remote inputs (``--allow-remote-inputs``) never lead the mock to private, loopback,
link-local or metadata addresses unless allowed, redirects included; refusals are fal's 422."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from mock_server.lipsync.examples import EXAMPLE_AUDIO_PATH
from mock_server.lipsync.inputs import InputConfig, InputError, resolve_input
from tests.hardening.conftest import AUTH, SUBMIT, app_client, make_app
from tests.local_http import LoopbackServer

MediaServer = LoopbackServer  # /speech (any path) is real audio, /redirect?to=URL redirects


@pytest.fixture
def media() -> Iterator[LoopbackServer]:
    with LoopbackServer(EXAMPLE_AUDIO_PATH.read_bytes()) as server:
        yield server


def fetch(url: str, work_dir: Path, **config: object) -> InputError | None:
    try:
        resolve_input(
            "audio_url", url, work_dir=work_dir, config=InputConfig(allow_remote=True, **config)
        )
    except InputError as error:
        return error
    return None


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("localhost", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("0.0.0.0", "unspecified"),
    ],
)
def test_loopback_inputs_are_refused_before_any_request(
    media: MediaServer, tmp_path: Path, host: str, why: str
) -> None:
    error = fetch(f"http://{host}:{media.port}/speech", tmp_path)
    assert error is not None and error.type == "file_download_error"
    assert why in error.msg and "--allow-private-inputs" in error.msg
    assert media.paths == []  # refused before connecting


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
        ("http://10.0.0.8/clip.mp4", "private"),
        ("http://192.168.0.1:8080/clip.mp4", "private"),
        ("https://[fe80::1]/clip.mp4", "link-local"),
        ("http://2130706433/clip.mp4", "loopback"),  # 127.0.0.1, spelt as one number
    ],
)
def test_private_and_metadata_inputs_are_refused(tmp_path: Path, url: str, why: str) -> None:
    error = fetch(url, tmp_path)
    assert error is not None and error.type == "file_download_error" and why in error.msg


def test_allow_private_opens_private_and_loopback_only(media: MediaServer, tmp_path: Path) -> None:
    assert fetch(f"http://127.0.0.1:{media.port}/speech", tmp_path, allow_private=True) is None
    assert media.paths == ["/speech"]
    metadata = fetch("http://169.254.169.254/latest/", tmp_path, allow_private=True)
    assert metadata is not None and "metadata" in metadata.msg


def test_allowed_hosts_open_one_host(media: MediaServer, tmp_path: Path) -> None:
    hosts = frozenset({"localhost"})
    assert fetch(f"http://localhost:{media.port}/speech", tmp_path, allowed_hosts=hosts) is None
    other = fetch(f"http://127.0.0.1:{media.port}/speech", tmp_path, allowed_hosts=hosts)
    assert other is not None and "loopback" in other.msg


@pytest.mark.parametrize(
    "hop", ["http://127.0.0.1:{port}/speech", "http://169.254.169.254/latest/meta-data/"]
)
def test_every_redirect_hop_is_checked(media: MediaServer, tmp_path: Path, hop: str) -> None:
    # The first hop is allowed (by name); where it redirects is not.
    target = hop.format(port=media.port)
    first = f"http://localhost:{media.port}/redirect?to={target}"
    error = fetch(first, tmp_path, allowed_hosts=frozenset({"localhost"}))
    assert error is not None and error.type == "file_download_error"
    assert ("127.0.0.1" if "127" in hop else "169.254.169.254") in error.msg
    assert media.paths == [f"/redirect?to={target}"]  # the second hop never left the mock


def test_a_redirect_to_an_allowed_place_is_followed(media: MediaServer, tmp_path: Path) -> None:
    target = f"http://127.0.0.1:{media.port}/speech"
    error = fetch(f"http://127.0.0.1:{media.port}/redirect?to={target}", tmp_path,
                  allow_private=True)  # fmt: skip
    assert error is None and media.paths == [f"/redirect?to={target}", "/speech"]


async def test_a_refused_input_is_a_422_on_the_result(media: MediaServer) -> None:
    """Settings to result: the reference engine's worker refuses the URL, fal's 422 comes back."""
    app = make_app(engine="reference", allow_remote_inputs=True)
    url = f"http://127.0.0.1:{media.port}/speech"
    body = {"video_url": url, "audio_url": url}
    async with app_client(app, headers=AUTH) as client:
        submitted = (await client.post(SUBMIT, json=body)).json()
        status_url = submitted["status_url"].replace("http://mock.test", "")
        for _ in range(400):
            if (await client.get(status_url)).json()["status"] == "COMPLETED":
                break
            await asyncio.sleep(0.05)
        result = await client.get(submitted["response_url"].replace("http://mock.test", ""))
    assert result.status_code == 422
    (item,) = result.json()["detail"]
    assert item["loc"] == ["body", "video_url"] and item["type"] == "file_download_error"
    assert "loopback" in item["msg"]
    assert media.paths == []


def test_settings_carry_the_input_policy_to_the_worker() -> None:
    from mock_server.settings import MockSettings

    settings = MockSettings(allow_private_inputs=True, allowed_input_hosts="media.lan, 10.2.0.0/16")
    options = settings.engine_config().lipsync
    assert options.allow_private_inputs is True
    assert options.allowed_input_hosts == frozenset({"media.lan", "10.2.0.0/16"})
    config = InputConfig(
        allow_remote=True,
        allow_private=options.allow_private_inputs,
        allowed_hosts=options.allowed_input_hosts,
    )
    assert config.destinations().allow_loopback and config.destinations().allow_private
