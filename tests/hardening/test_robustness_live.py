"""A live uvicorn mock against clients that misbehave, with raw sockets where httpx would refuse
to send the bytes: each gets a 4xx or a closed connection, never a 5xx, a crash or a hang, and
the server keeps serving everyone else meanwhile."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time

import httpx
import pytest

from mock_server.engine.policies import Policy
from mock_server.testing import LiveServer
from tests.hardening.conftest import (
    AUTH,
    BODY,
    SUBMIT,
    body_of,
    connect,
    read_response,
    read_until_closed,
    status_of,
    still_serving,
)

JSON_HEADERS = "Authorization: Key test-key\r\nContent-Type: application/json\r\n"


def send_raw(live: LiveServer, data: bytes) -> bytes:
    """The first response to ``data`` (or b"" if the server just closed)."""
    with connect(live) as sock:
        sock.sendall(data)
        return read_response(sock)


def open_connections(live: LiveServer) -> int:
    assert live._server is not None
    return len(live._server.server_state.connections)


def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 40 + b"\r\n\r\n",  # TLS to http
        b"GARBAGE\r\n\r\n",
        b"GET /queue/fal-ai/lipsync HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        b"GET / HTTP/1.1\r\nHost: x\r\nNo-Colon-Here\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad\x00Name: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: new\nline\r\n\r\n",
        b"POST " + SUBMIT.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
        b"POST " + SUBMIT.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Content-Length: 6\r\n\r\nhello!",
        b"POST " + SUBMIT.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\nnot hex\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000,  # 16 KiB and no end yet
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Many: a\r\n" * 200_000 + b"\r\n",  # 2.4 MB
    ],
    ids=[
        "tls-handshake",
        "garbage",
        "http-9.9",
        "no-host",
        "header-without-colon",
        "nul-in-name",
        "bare-newline",
        "non-numeric-length",
        "conflicting-lengths",
        "broken-chunks",
        "head-over-16k",
        "head-of-megabytes",
    ],
)
def test_malformed_http_is_a_400_and_a_closed_connection(
    live: LiveServer, request_bytes: bytes
) -> None:
    answer = send_raw(live, request_bytes)
    assert answer == b"" or 400 <= status_of(answer) < 500, answer[:300]
    still_serving(live)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"video_url": "https://x/a.mp4", '),  # truncated JSON
        ("application/json", b"\xff\xfe{not utf-8}"),
        ("application/json", b"[1, 2, 3]"),
        ("application/json", b"null"),
        ("application/json", b'{"video_url": ' + b"[" * 5000 + b"]" * 5000 + b"}"),  # deep
        ("application/json", b'{"video_url": 1e999999, "audio_url": NaN}'),
        ("text/plain", json.dumps(BODY).encode()),
        ("multipart/form-data; boundary=zz", b"--zz\r\nbroken"),
        ("application/x-www-form-urlencoded", b"video_url=a&audio_url=b"),
        ("", b""),
    ],
)
def test_bad_bodies_get_fal_shaped_4xx(live: LiveServer, content_type: str, body: bytes) -> None:
    headers = {**AUTH, "Content-Type": content_type} if content_type else AUTH
    response = httpx.post(f"{live.base_url}{SUBMIT}", content=body, headers=headers, timeout=5)
    assert 400 <= response.status_code < 500, response.text
    assert "detail" in response.json()
    still_serving(live)


@pytest.mark.parametrize(
    "authorization",
    [b"Key \xff\xfe\x80", b"Bearer \xc3\x28", b"Key " + b"k" * 8000, b"Key", b"\x01\x02"],
)
def test_odd_authorization_headers_are_401s(authorization: bytes) -> None:
    keyed = LiveServer(port=0, keys="real-key")
    with keyed:
        status = "/queue/fal-ai/lipsync/requests/00000000-0000-0000-0000-000000000000/status"
        head = f"GET {status} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode()
        answer = send_raw(keyed, head + b"Authorization: " + authorization + b"\r\n\r\n")
    assert status_of(answer) == 401, answer[:300]
    assert "detail" in json.loads(body_of(answer))


def test_a_truncated_upload_stores_nothing(live: LiveServer) -> None:
    with connect(live) as sock:
        sock.sendall(
            b"POST /cdn/files/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Key k\r\n"
            b"Content-Type: video/mp4\r\nContent-Length: 100000\r\n\r\n" + b"\0" * 1000
        )
        time.sleep(0.1)
    wait_for(lambda: open_connections(live) == 0)
    assert len(live.engine.store) == 0
    still_serving(live)


def test_an_sse_client_that_vanishes_mid_stream_is_let_go(live: LiveServer) -> None:
    live.engine.set_policy(Policy.parse("polls:1000"))  # the stream stays open
    submitted = httpx.post(f"{live.base_url}{SUBMIT}", json=BODY, headers=AUTH).json()
    path = submitted["status_url"].removeprefix(live.base_url) + "/stream"
    sock = connect(live)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{JSON_HEADERS}\r\n".encode())
    first = sock.recv(4096)
    assert b"200" in first.split(b"\r\n", 1)[0] and b"text/event-stream" in first
    assert open_connections(live) == 1
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset, not a goodbye
    wait_for(lambda: open_connections(live) == 0)
    still_serving(live)


def test_a_head_sent_byte_by_byte_times_out_while_others_are_served(live: LiveServer) -> None:
    sock = connect(live)
    head = f"GET /_mock/state HTTP/1.1\r\nHost: x\r\n{JSON_HEADERS}".encode()
    started = time.monotonic()
    for byte in head[:20]:
        sock.sendall(bytes([byte]))
        time.sleep(0.01)
    still_serving(live)  # meanwhile
    answer = read_until_closed(sock)
    sock.close()
    assert status_of(answer) == 408
    assert json.loads(body_of(answer)) == {"detail": "The request head did not arrive within 0.5 s"}
    assert time.monotonic() - started < 4


def test_idle_connections_are_closed_and_do_not_block_others(live: LiveServer) -> None:
    idle = [connect(live) for _ in range(50)]
    wait_for(lambda: open_connections(live) == 50)
    still_serving(live)
    for sock in idle:
        assert read_until_closed(sock) == b""  # closed without a word: it never asked anything
        sock.close()
    wait_for(lambda: open_connections(live) == 0)


def test_a_body_trickled_byte_by_byte_times_out(live: LiveServer) -> None:
    payload = json.dumps(BODY).encode()
    sock = connect(live)
    sock.sendall(
        f"POST {SUBMIT} HTTP/1.1\r\nHost: x\r\n{JSON_HEADERS}"
        f"Content-Length: {len(payload)}\r\n\r\n".encode()
    )
    stop = threading.Event()

    def trickle() -> None:
        for byte in payload:
            if stop.wait(0.05):
                return
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return

    sender = threading.Thread(target=trickle)
    sender.start()
    still_serving(live)  # meanwhile
    answer = read_until_closed(sock)
    stop.set()
    sender.join()
    sock.close()
    assert status_of(answer) == 408
    assert "request body did not arrive within 1 s" in json.loads(body_of(answer))["detail"]
    assert len(live.engine.request_ids()) == 1  # only still_serving's submit was queued


def test_a_client_that_never_reads_is_cut_off(live: LiveServer) -> None:
    size = 32 * 1024 * 1024  # more than every buffer between the app and the client
    upload = httpx.post(
        f"{live.base_url}/cdn/files/upload",
        content=b"\1" * size,
        headers={**AUTH, "Content-Type": "video/mp4"},
        timeout=30,
    ).json()
    path = upload["access_url"].removeprefix(live.base_url)
    sock = connect(live, timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    still_serving(live)  # while the download is stuck
    time.sleep(2.5)  # past the write deadline (1 s), with a margin
    received = read_until_closed(sock, timeout=10)  # a reset: the server gave up on it
    sock.close()
    assert len(received) < size
    wait_for(lambda: open_connections(live) == 0)
    still_serving(live)
