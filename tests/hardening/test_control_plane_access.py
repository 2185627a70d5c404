"""The control plane: loopback clients only without a token, the token from everyone with one."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import ValidationError

from mock_server.asgi_bridge import AppThread, AsgiBridge
from mock_server.cli import build_parser
from mock_server.controls import NoControl, RemoteControl, remote_control
from mock_server.settings import MockSettings
from mock_server.targets import Target
from mock_server.testing import LiveServer
from tests.hardening.conftest import AUTH, BODY, SUBMIT, app_client, make_app

TOKEN = "ctl-5f3a9c-secret"
CONTROL_CALLS = [
    ("GET", "/_mock/state", None),
    ("GET", "/_mock/journal", None),
    ("DELETE", "/_mock/journal", None),
    ("GET", "/_mock/requests", None),
    ("POST", "/_mock/reset", {}),
    ("POST", "/_mock/seed", {"seed": 3}),
    ("POST", "/_mock/policy", {"policy": "immediate"}),
    ("POST", "/_mock/clock/advance", {"seconds": 1}),
]


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"])
async def test_loopback_clients_use_the_control_plane_without_a_token(peer: str) -> None:
    async with app_client(make_app(), peer) as client:
        assert (await client.get("/_mock/state")).status_code == 200
        assert (await client.post("/_mock/seed", json={"seed": 5})).json()["seed"] == 5


@pytest.mark.parametrize(("method", "path", "body"), CONTROL_CALLS)
async def test_other_clients_are_refused_and_change_nothing(
    method: str, path: str, body: dict[str, object] | None
) -> None:
    app = make_app()
    async with app_client(app, "127.0.0.1", headers=AUTH) as local:
        assert (await local.post(SUBMIT, json=BODY)).status_code == 200
        before = (await local.get("/_mock/state")).json()
    async with app_client(app, "192.168.1.20") as remote:
        response = await remote.request(method, path, json=body)
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert "loopback clients only" in detail and "192.168.1.20" in detail
    assert "--control-token" in detail
    async with app_client(app, "127.0.0.1") as local:
        assert (await local.get("/_mock/state")).json() == before  # nothing reset or moved


async def test_no_way_in_bypasses_the_guard() -> None:
    app = make_app()
    async with app_client(app, "10.9.8.7", base_url="https://queue.fal.run") as by_host:
        assert (await by_host.get("/_mock/state")).status_code == 403  # fal's host names
        assert (await by_host.get("/%5Fmock/state")).status_code == 403  # percent-encoded
    async with app_client(app, "10.9.8.7") as remote:
        proxied = await remote.get(
            "/api/fal/proxy", headers={"x-fal-target-url": "https://queue.fal.run/_mock/state"}
        )
        assert proxied.status_code in (404, 405) and "seed" not in proxied.text  # a fal path


async def test_fal_routes_stay_open_to_every_client() -> None:
    async with app_client(make_app(), "10.9.8.7", headers=AUTH) as remote:
        assert (await remote.post(SUBMIT, json=BODY)).status_code == 200
        assert (await remote.get("/docs")).status_code == 200


@pytest.mark.parametrize(
    ("host", "headers"),
    [
        ("evil.example:8000", {"Origin": "http://evil.example:8000"}),  # DNS rebinding
        ("127.0.0.1:8000", {"Origin": "https://evil.example"}),  # cross-site form post
        ("evil.example", {"Sec-Fetch-Site": "same-origin"}),  # a rebound page's GET
    ],
)
async def test_browser_requests_from_other_sites_are_refused(
    host: str, headers: dict[str, str]
) -> None:
    async with app_client(make_app(), base_url=f"http://{host}") as client:
        response = await client.post("/_mock/reset", json={}, headers=headers)
    assert response.status_code == 403
    assert "browser requests from other sites" in response.json()["detail"]


@pytest.mark.parametrize(
    ("host", "origin"),
    [("127.0.0.1:8000", "http://127.0.0.1:8000"), ("localhost:8000", "http://localhost:8000"),
     ("[::1]:8000", "http://[::1]:8000")],
)  # fmt: skip
async def test_the_mocks_own_docs_page_may_use_it(host: str, origin: str) -> None:
    async with app_client(make_app(), base_url=f"http://{host}") as client:
        headers = {"Origin": origin, "Sec-Fetch-Site": "same-origin"}
        assert (await client.post("/_mock/reset", json={}, headers=headers)).status_code == 200


@pytest.mark.parametrize("peer", ["127.0.0.1", "203.0.113.9"])
async def test_with_a_token_every_client_must_present_it(peer: str) -> None:
    app = make_app(control_token=TOKEN)
    async with app_client(app, peer) as client:
        missing = await client.get("/_mock/state")
        wrong = await client.get("/_mock/state", headers={"Authorization": f"Bearer {TOKEN}x"})
        as_key = await client.get("/_mock/state", headers={"Authorization": f"Key {TOKEN}"})
        bearer = await client.get("/_mock/state", headers={"Authorization": f"Bearer {TOKEN}"})
        header = await client.get("/_mock/state", headers={"X-Mock-Control-Token": TOKEN})
    for refused in (missing, wrong, as_key):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "X-Mock-Control-Token" in refused.json()["detail"]
        assert TOKEN not in refused.text
    assert bearer.status_code == header.status_code == 200


async def test_the_token_never_reaches_the_journal() -> None:
    app = make_app(control_token=TOKEN)
    headers = {**AUTH, "X-Mock-Control-Token": TOKEN}  # a client sending it everywhere
    async with app_client(app, headers=headers) as client:
        assert (await client.post(SUBMIT, json=BODY)).status_code == 200
        journal = (await client.get("/_mock/journal")).json()
    assert journal["entries"] and TOKEN not in json.dumps(journal)
    assert journal["entries"][0]["request_headers"]["x-mock-control-token"] == "<redacted>"


def test_settings_read_the_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_MOCK_CONTROL_TOKEN", TOKEN)
    settings = MockSettings()
    assert settings.control_token is not None
    assert settings.control_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.model_dump())
    monkeypatch.setenv("FAL_MOCK_CONTROL_TOKEN", "")
    assert MockSettings().control_token is None
    with pytest.raises(ValidationError, match="whitespace"):
        MockSettings(control_token="two words")


def test_the_cli_flag_sets_the_token() -> None:
    args = build_parser().parse_args(["serve", "--control-token", TOKEN])
    assert args.control_token == TOKEN


def test_the_in_process_bridge_counts_as_loopback() -> None:
    thread = AppThread()
    try:
        open_bridge = AsgiBridge(make_app(), thread)
        answer = open_bridge.send(httpx.Request("GET", "https://queue.fal.run/_mock/state"))
        assert answer.status_code == 200
        guarded = AsgiBridge(make_app(control_token=TOKEN), thread)
        refused = guarded.send(httpx.Request("GET", "https://queue.fal.run/_mock/state"))
        assert refused.status_code == 401
    finally:
        thread.stop()


def test_live_server_refuses_forwarded_remote_clients() -> None:
    # uvicorn believes X-Forwarded-For from 127.0.0.1 (a local reverse proxy): a remote client
    # behind one keeps its own address, and is refused.
    with LiveServer(MockSettings(port=0)) as live:
        url = f"{live.base_url}/_mock/state"
        assert httpx.get(url).status_code == 200
        forwarded = httpx.get(url, headers={"X-Forwarded-For": "198.51.100.4"})
        assert forwarded.status_code == 403 and "198.51.100.4" in forwarded.json()["detail"]


def test_remote_control_sends_the_token_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with LiveServer(MockSettings(port=0, control_token=TOKEN)) as live:
        target = Target.parse(live.base_url)
        monkeypatch.delenv("FAL_MOCK_CONTROL_TOKEN", raising=False)
        assert isinstance(remote_control(target), NoControl)  # 401: no control plane for it

        monkeypatch.setenv("FAL_MOCK_CONTROL_TOKEN", TOKEN)
        control = remote_control(target)
        assert isinstance(control, RemoteControl)
        try:
            control.reset(seed=7, policy="virtual")
            assert control.advance(2.5) == 2.5
            assert live.engine.config.seed == 7
        finally:
            control.close()

        explicit = RemoteControl(f"{live.base_url}/_mock", httpx.Client(), token=TOKEN)
        monkeypatch.delenv("FAL_MOCK_CONTROL_TOKEN")
        try:
            assert explicit.request_ids() == []
        finally:
            explicit.close()
