"""The three ways in (Host header, path prefix, proxy) and fal's authentication."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from mock_server.app import create_app
from mock_server.settings import MockSettings
from tests.conftest import AUTH, LIPSYNC_INPUT


def in_process(app: FastAPI, base_url: str, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url=base_url, headers={**AUTH, **headers}
    )


async def test_host_dispatch_answers_with_fal_urls(app: FastAPI) -> None:
    async with in_process(app, "https://queue.fal.run") as queue:
        submitted = (await queue.post("/fal-ai/lipsync", json=LIPSYNC_INPUT)).json()
        request_id = submitted["request_id"]
        assert submitted["status_url"] == (
            f"https://queue.fal.run/fal-ai/lipsync/requests/{request_id}/status"
        )
        status = await queue.get(submitted["status_url"])
        assert status.status_code == 202


async def test_backup_domain_keeps_its_own_name(app: FastAPI) -> None:
    async with in_process(app, "https://queue.falrun.com") as queue:
        submitted = (await queue.post("/fal-ai/lipsync", json=LIPSYNC_INPUT)).json()
    assert submitted["response_url"].startswith("https://queue.falrun.com/fal-ai/lipsync/")


async def test_path_prefixes_answer_with_urls_on_the_same_origin(client: httpx.AsyncClient) -> None:
    submitted = (await client.post("/queue/fal-ai/lipsync", json=LIPSYNC_INPUT)).json()
    assert submitted["cancel_url"].startswith("http://mock.test/queue/fal-ai/lipsync/requests/")
    token = (await client.post("/rest/storage/auth/token?storage_type=fal-cdn-v3")).json()
    assert token["base_url"] == "http://mock.test/cdn"


async def test_proxy_route_dispatches_on_the_target_url(app: FastAPI) -> None:
    async with in_process(app, "http://127.0.0.1:3000") as proxy:
        target = {"x-fal-target-url": "https://queue.fal.run/fal-ai/lipsync"}
        submitted = await proxy.post("/api/fal/proxy", json=LIPSYNC_INPUT, headers=target)
        assert submitted.status_code == 200
        # URLs lead back to the mock itself, so a client following them never leaves it.
        status_url = submitted.json()["status_url"]
        assert status_url.startswith("http://127.0.0.1:3000/queue/")
        query_target = {
            "x-fal-target-url": status_url.replace(
                "http://127.0.0.1:3000/queue", "https://queue.fal.run"
            )
            + "?logs=1"
        }
        status = await proxy.get("/api/fal/proxy", headers=query_target)
        assert status.status_code == 202 and status.json()["status"] == "IN_QUEUE"


@pytest.mark.parametrize(
    ("headers", "code", "message"),
    [
        ({}, 400, "Missing the x-fal-target-url header"),
        ({"x-fal-target-url": "https://evil.example/fal-ai/lipsync"}, 412, "is not a fal URL"),
        ({"x-fal-target-url": "not a url"}, 412, "is not a fal URL"),
    ],
)
async def test_proxy_route_rejects_bad_targets(
    app: FastAPI, headers: dict[str, str], code: int, message: str
) -> None:
    async with in_process(app, "http://127.0.0.1:3000") as proxy:
        response = await proxy.post("/api/fal/proxy", json=LIPSYNC_INPUT, headers=headers)
    assert response.status_code == code and message in response.json()["detail"]


async def test_unknown_paths_get_help_in_fals_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/fal-ai/lipsync")
    assert response.status_code == 404
    assert "/queue, /run, /rest and /cdn" in response.json()["detail"]


@pytest.mark.parametrize("authorization", ["Key abc", "Key id:secret", "Bearer tok", "key x"])
async def test_any_non_empty_credential_by_default(app: FastAPI, authorization: str) -> None:
    async with in_process(app, "https://queue.fal.run", Authorization=authorization) as queue:
        assert (await queue.post("/fal-ai/lipsync", json=LIPSYNC_INPUT)).status_code == 200


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "Missing credentials"),
        ("Key ", "Invalid Authorization header format"),
        ("Basic abc", "Invalid Authorization header format"),
    ],
)
async def test_missing_or_malformed_credentials_are_401(
    app: FastAPI, authorization: str | None, message: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, headers=headers) as plain:
        response = await plain.post("https://queue.fal.run/fal-ai/lipsync", json=LIPSYNC_INPUT)
    assert response.status_code == 401 and message in response.json()["detail"]


async def test_configured_keys_reject_others() -> None:
    app = create_app(MockSettings(keys="id:secret,other", policy="polls:1"))
    async with in_process(app, "https://queue.fal.run", Authorization="Key id:secret") as ok:
        assert (await ok.post("/fal-ai/lipsync", json=LIPSYNC_INPUT)).status_code == 200
    async with in_process(app, "https://queue.fal.run", Authorization="Key id:wrong") as bad:
        response = await bad.post("/fal-ai/lipsync", json=LIPSYNC_INPUT)
    assert response.status_code == 401
    assert response.json() == {"detail": "No user found for Key ID and Secret"}


async def test_cdn_tokens_issued_by_the_mock_count_as_credentials() -> None:
    app = create_app(MockSettings(keys="k", policy="polls:1"))
    async with in_process(app, "https://rest.fal.ai", Authorization="Key k") as rest:
        token = (await rest.post("/storage/auth/token")).json()
    bearer = f"{token['token_type']} {token['token']}"
    async with in_process(app, "https://v3.fal.media", Authorization=bearer) as cdn:
        assert (await cdn.post("/files/upload", content=b"x")).status_code == 200
    async with in_process(app, "https://v3.fal.media", Authorization="Bearer forged") as cdn:
        assert (await cdn.post("/files/upload", content=b"x")).status_code == 401


async def test_anonymous_access_can_be_allowed() -> None:
    app = create_app(MockSettings(allow_anonymous=True, policy="polls:1"))
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport) as anonymous:
        response = await anonymous.post("https://queue.fal.run/fal-ai/lipsync", json=LIPSYNC_INPUT)
    assert response.status_code == 200


def test_settings_validate_and_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_MOCK_POLICY", "polls:3")
    monkeypatch.setenv("FAL_MOCK_KEYS", "a, b")
    settings = MockSettings()
    assert settings.policy == "polls:3" and settings.keys == {"a", "b"}
    for bad in (
        {"policy": "sometimes"},
        {"engine": "gpu"},
        {"port": 70000},
        {"queue_delay": (2, 1)},
    ):
        with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
            MockSettings(**bad)  # type: ignore[arg-type]
