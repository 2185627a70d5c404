"""Bad input always gets a clear error in fal's shape: never a 500, never a hang."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mock_server.app import create_app
from mock_server.settings import MockSettings
from tests.conftest import AUTH, LIPSYNC_INPUT

SUBMIT = "/queue/fal-ai/lipsync"


def assert_fal_422(response: httpx.Response, *locs: tuple[str | int, ...]) -> None:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail
    for item in detail:
        assert isinstance(item["msg"], str) and item["msg"]
        assert isinstance(item["type"], str)
    seen = {tuple(item["loc"][: len(locs[0])]) for item in detail} if locs else set()
    for loc in locs:
        assert loc in seen, (loc, detail)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"audio_url": "https://a.b/c.mp3"}, ("body", "video_url")),
        ({**LIPSYNC_INPUT, "video_url": "not a url"}, ("body", "video_url")),
        ({**LIPSYNC_INPUT, "video_url": "ftp://host/x.mp4"}, ("body", "video_url")),
        ({**LIPSYNC_INPUT, "audio_url": "file:///etc/passwd"}, ("body", "audio_url")),
        ({**LIPSYNC_INPUT, "audio_url": 42}, ("body", "audio_url")),
        ({**LIPSYNC_INPUT, "sync_mode": "stretch"}, ("body", "sync_mode")),
        ([LIPSYNC_INPUT], ("body",)),
    ],
)
@pytest.mark.parametrize("path", [SUBMIT, "/run/fal-ai/lipsync"])
async def test_invalid_inputs_are_422(
    client: httpx.AsyncClient, path: str, body: Any, loc: tuple[str, ...]
) -> None:
    assert_fal_422(await client.post(path, json=body), loc)


async def test_unsupported_scheme_says_so(client: httpx.AsyncClient) -> None:
    response = await client.post(SUBMIT, json={**LIPSYNC_INPUT, "video_url": "ftp://h/x"})
    assert "unsupported URL scheme 'ftp'" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize("raw", [b"{", b"", b"\xff\xfe", b"null", b'{"video_url": '])
async def test_malformed_json_is_422(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post(SUBMIT, content=raw, headers={"content-type": "application/json"})
    assert_fal_422(response)


async def test_unknown_fields_are_ignored_as_fal_does(client: httpx.AsyncClient) -> None:
    response = await client.post(SUBMIT, json={**LIPSYNC_INPUT, "prompt": "x", "n": 3})
    assert response.status_code == 200


async def test_data_uris_are_accepted(client: httpx.AsyncClient) -> None:
    body = {"video_url": "data:video/mp4;base64,AAAA", "audio_url": "data:audio/wav;base64,UklG"}
    assert (await client.post(SUBMIT, json=body)).status_code == 200


@pytest.mark.parametrize(
    ("headers", "query", "loc"),
    [
        ({"x-fal-queue-priority": "urgent"}, {}, ("header", "x-fal-queue-priority")),
        ({"x-fal-request-timeout": "0.5"}, {}, ("header", "x-fal-request-timeout")),
        ({"x-fal-request-timeout": "soon"}, {}, ("header", "x-fal-request-timeout")),
        ({"x-mock-policy": "eventually"}, {}, ("header", "x-mock-policy")),
        ({}, {"fal_webhook": "not-a-url"}, ("query", "fal_webhook")),
    ],
)
async def test_invalid_submit_options_are_422(
    client: httpx.AsyncClient, headers: dict[str, str], query: dict[str, str], loc: tuple[str, ...]
) -> None:
    response = await client.post(SUBMIT, json=LIPSYNC_INPUT, headers=headers, params=query)
    assert_fal_422(response, loc)


async def test_valid_submit_options_are_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        SUBMIT,
        json=LIPSYNC_INPUT,
        params={"fal_webhook": "http://inbox.fal-mock.invalid/x?a=1"},  # an allowed target
        headers={
            "x-fal-queue-priority": "low",
            "x-fal-runner-hint": "h1",
            "x-fal-request-timeout": "30.0",
            "x-mock-policy": "immediate",
        },
    )
    assert response.status_code == 200
    status = await client.get(response.json()["status_url"])
    assert status.json()["status"] == "COMPLETED"  # the per-request policy applied


@pytest.mark.parametrize("flag", ["yes", "True", "2"])
async def test_bad_logs_flag_is_422(client: httpx.AsyncClient, flag: str) -> None:
    request_id = (await client.post(SUBMIT, json=LIPSYNC_INPUT)).json()["request_id"]
    response = await client.get(
        f"/queue/fal-ai/lipsync/requests/{request_id}/status", params={"logs": flag}
    )
    assert_fal_422(response, ("query", "logs"))


@pytest.mark.parametrize("body", [b"null", b"[1]", b'"x"', b"{"])
async def test_cdn_token_body_must_be_an_object(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(
        "/rest/storage/auth/token", content=body, headers={"content-type": "application/json"}
    )
    assert_fal_422(response, ("body",))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/queue/fal-ai/other"),
        ("POST", "/queue/someone/lipsync"),
        ("GET", "/queue/fal-ai/other/requests/x/status"),
        ("POST", "/run/fal-ai/other"),
        ("POST", "/queue/fal-ai/lipsync/extra/path"),
    ],
)
async def test_unknown_apps_are_404_in_fals_shape(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path, json=LIPSYNC_INPUT)
    assert response.status_code == 404
    assert isinstance(response.json()["detail"], str)


async def test_oversized_bodies_are_413() -> None:
    app = create_app(MockSettings(max_body_bytes=2048, max_upload_bytes=4096, policy="polls:1"))
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://m", headers=AUTH) as c:
        big = {**LIPSYNC_INPUT, "video_url": "data:video/mp4;base64," + "A" * 4000}
        response = await c.post(SUBMIT, json=big)
        assert response.status_code == 413
        assert "limit is 2048 bytes" in response.json()["detail"]
        # Uploads have their own, larger limit.
        assert (await c.post("/cdn/files/upload", content=b"x" * 3000)).status_code == 200
        assert (await c.post("/cdn/files/upload", content=b"x" * 5000)).status_code == 413

        async def chunks() -> Any:  # no Content-Length: the limit holds on the stream too
            for _ in range(10):
                yield b"x" * 1000

        assert (await c.post("/cdn/files/upload", content=chunks())).status_code == 413
        assert (await c.get("/_mock/state")).json()["files"] == 1  # nothing half-written
