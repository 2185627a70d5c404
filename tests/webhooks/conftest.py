"""A real webhook receiver on a free loopback port, and a live mock on the virtual clock."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from mock_server.engine.clock import EPOCH
from mock_server.engine.policies import Policy
from mock_server.settings import MockSettings
from mock_server.testing import LiveServer
from tests.conftest import AUTH, LIPSYNC_INPUT

WEBHOOK_TIMEOUT = 0.5
"""The live mock's attempt timeout (fal's is 15 s): a hanging receiver costs a test little."""


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def timestamp(self) -> int:
        return int(self.headers["X-Fal-Webhook-Timestamp"])


class Receiver:
    """A webhook receiver: a real HTTP server on 127.0.0.1. It fails its first ``fail_first``
    requests with ``fail_status`` (every request when ``fail_first`` is None) and may hang
    ``hang`` seconds before answering."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.fail_first: int | None = 0
        self.fail_status = 500
        self.hang = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.received.append(Received(self.path, dict(self.headers), body))
                if receiver.hang:
                    time.sleep(receiver.hang)
                failing = (
                    receiver.fail_first is None or len(receiver.received) <= receiver.fail_first
                )
                self.send_response(receiver.fail_status if failing else 200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/fal"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


@pytest.fixture(scope="module")
def _webhook_server() -> Iterator[LiveServer]:
    settings = MockSettings(port=0, policy="virtual", seed=0, webhook_timeout=WEBHOOK_TIMEOUT)
    with LiveServer(settings) as server:
        yield server


@pytest.fixture
def live(_webhook_server: LiveServer) -> Iterator[LiveServer]:
    """A live mock on the virtual clock (seed 0), reset before and after each test."""
    _webhook_server.engine.reset(seed=0, policy=Policy.parse("virtual"), engine="placeholder")
    yield _webhook_server
    _webhook_server.engine.reset()


@pytest.fixture
def mock(live: LiveServer) -> Iterator[httpx.Client]:
    """HTTP to the live mock: fal's hosts and its control plane."""
    with httpx.Client(base_url=live.base_url, headers=AUTH, timeout=30) as client:
        yield client


def submit(mock: httpx.Client, webhook: str, **headers: str) -> str:
    answer = mock.post(
        "/queue/fal-ai/lipsync",
        params={"fal_webhook": webhook},
        json=LIPSYNC_INPUT,
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    request_id: str = answer.json()["request_id"]
    return request_id


def advance(mock: httpx.Client, seconds: float) -> float:
    """Move the virtual clock, then wait until every attempt due has been made."""
    clock = mock.post("/_mock/clock/advance", json={"seconds": seconds}).json()["clock"]
    settle(mock)
    return float(clock)


def settle(mock: httpx.Client) -> dict[str, Any]:
    answer = mock.post("/_mock/webhooks/settle", json={"timeout": 20})
    assert answer.status_code == 200, answer.text
    view: dict[str, Any] = answer.json()
    return view


def finished_at(mock: httpx.Client, request_id: str) -> float:
    """When the request completed, from its status history (not from the outbox)."""
    history = mock.get(f"/_mock/requests/{request_id}").json()["history"]
    assert history[-1]["status"] == "COMPLETED", history
    return float(history[-1]["time"])


def unix(clock: float) -> int:
    """A reading of the mock's virtual clock as the Unix time webhooks are stamped with."""
    return math.floor(EPOCH.timestamp() + clock)


def mock_now(mock: httpx.Client) -> int:
    return unix(mock.get("/_mock/state").json()["clock"])
