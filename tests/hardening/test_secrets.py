"""Keys and the control token: compared in constant time on every path that checks them, and
never echoed, journaled or logged (uvicorn's access and error logs included)."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Iterator

import httpx
import pytest

from mock_server.cli import main as cli_main
from mock_server.settings import MockSettings
from mock_server.testing import LiveServer
from tests.hardening.conftest import BODY, SUBMIT, app_client, connect, make_app, read_response

KEYS = "real-key-one,real-key-two,real-key-three"
WRONG = "Key wrong-key-7d1e2f"
TOKEN = "ctl-token-9b8c7d"
STATUS = "/queue/fal-ai/lipsync/requests/{id}/status"


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Every pair hmac.compare_digest is asked about, from now on."""
    seen: list[tuple[bytes, bytes]] = []
    real: Callable[[bytes, bytes], bool] = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    return seen


def offered(seen: list[tuple[bytes, bytes]], value: bytes) -> int:
    return sum(1 for a, b in seen if value in (a, b))


async def test_keys_are_compared_in_constant_time_on_every_route(
    compared: list[tuple[bytes, bytes]],
) -> None:
    app = make_app(keys=KEYS)
    async with app_client(app, headers={"Authorization": "Key real-key-two"}) as client:
        request_id = (await client.post(SUBMIT, json=BODY)).json()["request_id"]  # thin submit
    wrong = b"wrong-key-7d1e2f"
    async with app_client(app, headers={"Authorization": WRONG}) as client:
        calls = [
            client.post(SUBMIT, json=BODY),  # the thin submit route, then the FastAPI route
            client.post(SUBMIT + "?fal_webhook=https://example.com/hook", json=BODY),
            client.get(STATUS.format(id=request_id)),  # the thin status route, then FastAPI
            client.get(f"/queue/fal-ai/lipsync/requests/{request_id}"),
            client.put(f"/queue/fal-ai/lipsync/requests/{request_id}/cancel"),
            client.post("/rest/storage/auth/token", json={}),
            client.post("/cdn/files/upload", content=b"x"),
        ]
        for call in calls:
            before = offered(compared, wrong)
            response = await call
            assert response.status_code == 401
            # Against every key (no early exit on a mismatch in length or a first match).
            assert offered(compared, wrong) - before >= 3
            assert b"wrong-key" not in response.content


async def test_the_control_token_is_compared_in_constant_time(
    compared: list[tuple[bytes, bytes]],
) -> None:
    async with app_client(make_app(control_token=TOKEN)) as client:
        for headers in (
            {"Authorization": "Bearer guess-1"},
            {"X-Mock-Control-Token": "guess-2"},
            {"Authorization": f"Bearer {TOKEN}"},
        ):
            await client.get("/_mock/state", headers=headers)
    assert offered(compared, b"guess-1") == 1 and offered(compared, b"guess-2") == 1
    assert sum(1 for a, b in compared if a == b == TOKEN.encode()) == 1


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logged_live() -> Iterator[tuple[LiveServer, Captured]]:
    settings = MockSettings(port=0, keys=KEYS, access_log=True, control_token=TOKEN)
    with LiveServer(settings) as live:
        captured = Captured()
        loggers = [logging.getLogger(name) for name in ("uvicorn.access", "uvicorn.error")]
        for logger in loggers:
            logger.addHandler(captured)
        try:
            yield live, captured
        finally:
            for logger in loggers:
                logger.removeHandler(captured)


def test_secrets_stay_out_of_answers_journal_and_logs(
    logged_live: tuple[LiveServer, Captured],
) -> None:
    live, captured = logged_live
    key = {"Authorization": "Key real-key-three"}
    control = {"X-Mock-Control-Token": TOKEN}
    answers: list[httpx.Response] = []
    with httpx.Client(base_url=live.base_url, timeout=10) as client:
        submitted = client.post(SUBMIT, json=BODY, headers=key)
        answers.append(submitted)
        status_path = STATUS.format(id=submitted.json()["request_id"])
        answers.append(client.get(status_path, headers=key))
        answers.append(client.get(status_path, headers={"Authorization": WRONG}))
        answers.append(client.post(f"{SUBMIT}?fal_webhook=http://127.0.0.1:9/h", json=BODY,
                                   headers={**key, **control}))  # fmt: skip
        token = client.post("/rest/storage/auth/token", json={}, headers=key).json()["token"]
        answers.append(client.post("/cdn/files/upload", content=b"x",
                                   headers={"Authorization": f"Bearer {token}"}))  # fmt: skip
        answers.append(client.get("/_mock/state", headers={"Authorization": f"Bearer {TOKEN}x"}))
        journal = client.get("/_mock/journal", headers=control)
    with connect(live) as sock:  # a broken request that carries the key: uvicorn warns about it
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Key real-key-one\r\nBad\r\n\r\n")
        read_response(sock)

    assert journal.status_code == 200
    entries = journal.json()["entries"]
    assert len(entries) >= 5
    assert all(e["request_headers"]["authorization"] == "<redacted>" for e in entries)
    # (The CDN token the mock issued is in its own answer, and so in the journal: it is part of
    # the transcript, like any response body. As a request header it is redacted.)
    assert all("Bearer" not in json.dumps(e["request_headers"]) for e in entries)
    secrets = ["real-key-one", "real-key-two", "real-key-three", "wrong-key-7d1e2f", TOKEN]
    written = [json.dumps(entries), *(a.text for a in answers), *captured.lines]
    assert any('"GET /queue/fal-ai/lipsync/requests/' in line for line in captured.lines)
    assert any("Invalid HTTP request" in line for line in captured.lines)
    for secret in secrets:
        assert not [text for text in written if secret in text], secret


def test_invalid_settings_are_reported_without_their_values(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli_main(["serve", "--keys", "good-secret-key,bad secret", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "keys must be non-empty" in err and "secret" not in err
    monkeypatch.setenv("FAL_MOCK_CONTROL_TOKEN", "leaky token")
    assert cli_main(["serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "control token must contain no whitespace" in err and "leaky" not in err


def test_the_banner_never_shows_the_token() -> None:
    from mock_server.cli import banner

    text = banner(MockSettings(control_token=TOKEN, keys=KEYS))
    assert "its token required" in text
    assert TOKEN not in text and "real-key" not in text
