"""Helpers for the hardening tests: in-process clients with a chosen peer address, live
servers with short client deadlines, and raw sockets for what httpx refuses to send."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mock_server.app import create_app
from mock_server.settings import MockSettings
from mock_server.testing import LiveServer

AUTH = {"Authorization": "Key test-key"}
BODY = {"video_url": "https://example.com/face.mp4", "audio_url": "https://example.com/a.mp3"}
SUBMIT = "/queue/fal-ai/lipsync"


def app_client(
    app: FastAPI, peer: str = "127.0.0.1", base_url: str = "http://mock.test", **kwargs: Any
) -> httpx.AsyncClient:
    """An in-process client whose requests arrive from ``peer``."""
    transport = httpx.ASGITransport(app, client=(peer, 4321))
    return httpx.AsyncClient(transport=transport, base_url=base_url, **kwargs)


def make_app(**settings: Any) -> FastAPI:
    return create_app(MockSettings(**{"policy": "polls:1", "seed": 0, **settings}))


@pytest.fixture
def live() -> Iterator[LiveServer]:
    """A live mock whose client deadlines are short enough to watch them fire."""
    settings = MockSettings(
        port=0,
        policy="polls:1",
        seed=0,
        stream_tick=0.01,
        client_head_timeout=0.5,
        client_body_timeout=1.0,
        client_write_timeout=1.0,
    )
    with LiveServer(settings) as server:
        yield server


def connect(live: LiveServer, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_until_closed(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection (fails if it never does)."""
    sock.settimeout(timeout)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        except TimeoutError:
            raise AssertionError(f"the server did not close within {timeout} s") from None
        if not chunk:
            break
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise AssertionError(f"the server did not close within {timeout} s")
    return b"".join(chunks)


def read_response(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """One response (head and Content-Length body), or what came before the server closed."""
    sock.settimeout(timeout)
    data = b""
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(rest) >= length:
                return data
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        except TimeoutError:
            raise AssertionError(f"no response within {timeout} s: {data[:200]!r}") from None
        if not chunk:
            return data
        data += chunk


def status_of(raw: bytes) -> int:
    """The status code of the (first) response in ``raw``."""
    line = raw.split(b"\r\n", 1)[0]
    assert line.startswith(b"HTTP/1.1 "), raw[:200]
    return int(line.split()[1])


def body_of(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[1]


def still_serving(live: LiveServer) -> None:
    """A normal client is answered normally."""
    response = httpx.post(f"{live.base_url}{SUBMIT}", json=BODY, headers=AUTH, timeout=5)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "IN_QUEUE"
