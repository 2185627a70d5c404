"""``--fal-target``: the same tests, sent to another server instead of the in-process mock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mock_server.settings import MockSettings
from mock_server.testing import LiveServer
from tests.plugin.conftest import module

SUITE = module(
    """
def test_sync_and_journal(fal_mock):
    out = fal_client.subscribe(APP, arguments=ARGS)
    assert httpx.get(out["video"]["url"]).content[4:8] == b"ftyp"
    (request_id,) = fal_mock.request_ids  # from the target's control plane
    assert fal_mock.history(request_id)[-1].status == "COMPLETED"
    assert fal_mock.journal[0].method == "POST"

async def test_async(fal_mock):
    out = await fal_client.AsyncClient().run(APP, arguments=ARGS)
    assert out["video"]["file_size"] > 0

@pytest.mark.fal_mock(policy="virtual")
def test_steering_through_the_control_plane(fal_mock):
    handle = fal_client.submit(APP, arguments=ARGS)
    assert isinstance(handle.status(), fal_client.Queued)
    fal_mock.advance(3600)
    assert isinstance(handle.status(), fal_client.Completed)

def test_recorded_client_side(fal_mock):
    fal_client.run(APP, arguments=ARGS)
    (exchange,) = [e for e in fal_mock.transcript() if e.method == "POST"]
    assert (exchange.host, exchange.path, exchange.status_code) == ("run", "/fal-ai/lipsync", 200)

def test_client_fetches_early(fal_mock):
    handle = fal_client.submit(APP, arguments=ARGS)  # polls:1: queued until polled
    assert handle.client.get(handle.response_url).status_code == 400

def test_escape(fal_mock):
    httpx.get("https://example.org/")

def test_live_fixture_is_the_target(fal_mock_server):
    assert fal_mock_server.target.remote
"""
)


@pytest.fixture(scope="module")
def target_server() -> Iterator[LiveServer]:
    with LiveServer(MockSettings(port=0, policy="polls:1", stream_tick=0.01)) as server:
        yield server


@pytest.mark.parametrize("suffix", ["", "/api/fal/proxy"], ids=["mock-layout", "proxy"])
def test_suite_against_a_fal_mock_target(
    inner: pytest.Pytester, target_server: LiveServer, suffix: str
) -> None:
    inner.makepyfile(SUITE)
    url = target_server.base_url + suffix
    result = inner.runpytest(f"--fal-target={url}")
    result.assert_outcomes(passed=6, failed=1, errors=1)
    result.stdout.fnmatch_lines(["fal-mock: target *" + url + "*"])
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_client_fetches_early*", "*result_fetched_only_after*"]
    )
    result.stdout.fnmatch_lines(["*UnmockedHostError*'example.org' is neither a fal host nor*"])


class _NoControlPlane:
    """A fal-mock whose /_mock is gone: stands in for a server that is not a fal-mock."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/_mock"):
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


def test_suite_against_a_server_without_control_plane(inner: pytest.Pytester) -> None:
    server = LiveServer(MockSettings(port=0, policy="polls:1"))
    server.app = _NoControlPlane(server.app)  # type: ignore[assignment]
    with server:
        inner.makepyfile(SUITE)
        result = inner.runpytest(f"--fal-target={server.base_url}", "-rs")
    # Control-plane steps skip, naming the target; the client-side checks still run.
    result.assert_outcomes(passed=4, skipped=2, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*the list of requests needs the mock's control plane; server http://127.0.0.1:*"
            "which has no fal-mock control plane*",
            "*@pytest.mark.fal_mock(policy=...) needs the mock's control plane*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_client_fetches_early*", "*result_fetched_only_after*"]
    )
