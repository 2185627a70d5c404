"""No path traversal through the file routes: whatever the path or the file name a client sends,
the answer is a stored file it uploaded or a 404 in fal's shape, in memory and with a state dir,
and names that come back (URLs, Content-Disposition) are safe."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mock_server.settings import MockSettings
from mock_server.testing import LiveServer
from tests.hardening.conftest import AUTH, body_of, connect, read_response, status_of

SECRET = b"top secret: must never be served"


@pytest.fixture(params=["memory", "state-dir"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    (tmp_path / "secret.txt").write_bytes(SECRET)
    state_dir = tmp_path / "state" if request.param == "state-dir" else None
    with LiveServer(MockSettings(port=0, state_dir=state_dir)) as live:
        yield live


def upload(live: LiveServer, name: str | bytes = "clip.mp4", data: bytes = b"file bytes") -> str:
    response = httpx.post(
        f"{live.base_url}/cdn/files/upload",
        content=data,
        headers={**AUTH, "Content-Type": "video/mp4", "X-Fal-File-Name": name},
    )
    assert response.status_code == 200, response.text
    url: str = response.json()["access_url"]
    return url.removeprefix(live.base_url)


def raw_get(live: LiveServer, target: bytes) -> bytes:
    with connect(live) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return read_response(sock)


def assert_not_served(answer: bytes) -> None:
    assert SECRET not in answer and b"file bytes" not in answer
    status = status_of(answer)
    assert status in (400, 404), answer[:300]
    if status == 404:
        assert "detail" in json.loads(body_of(answer))


@pytest.mark.parametrize(
    "tail",
    [
        b"/../../../../../../{tmp}/secret.txt",
        b"/..%2f..%2f..%2f..%2f..%2f{tmp}%2fsecret.txt",
        b"/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/{tmp}/secret.txt",
        b"/%252e%252e%252fsecret.txt",  # double-encoded
        b"/..\\..\\..\\secret.txt",
        b"/{tmp}/secret.txt",  # absolute
        b"//{tmp}/secret.txt",
        b"/clip.mp4%00.txt",  # NUL
        b"/clip.mp4\x00",  # a raw NUL in the request line
        b"/" + b"a" * 12_000,  # a very long name
    ],
)
def test_traversal_paths_are_404s(server: LiveServer, tmp_path: Path, tail: bytes) -> None:
    good = upload(server)
    file_id = good.split("/")[3]
    tail = tail.replace(b"{tmp}", str(tmp_path).lstrip("/").encode())
    for prefix in (b"/cdn/files/" + file_id.encode(), b"/cdn/files", b"/cdn"):
        assert_not_served(raw_get(server, prefix + tail))
    assert raw_get(server, good.encode()).endswith(b"file bytes")  # the real one still works


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("/abs/path/clip.mp4", "clip.mp4"),
        ("..", "upload.bin"),
        ("clip\t.mp4", "clip_.mp4"),  # (a NUL cannot be in a header at all)
        ('a"; filename="evil.sh', "a_filename_evil.sh"),
        ("a" * 5000 + ".mp4", "a" * 200),
        ("видео.mp4", "mp4"),
    ],
)
def test_uploaded_names_are_made_safe(server: LiveServer, name: str, safe: str) -> None:
    path = upload(server, name.encode())  # UTF-8 bytes on the wire
    assert path.endswith("/" + safe)
    response = httpx.get(f"{server.base_url}{path}")
    assert response.status_code == 200 and response.content == b"file bytes"
    assert response.headers["content-disposition"] == f'inline; filename="{safe}"'


@pytest.mark.parametrize("name", ["../../x.mp4", "..%2f..%2fx.mp4", "/etc/passwd", "a\x00b"])
def test_initiated_uploads_get_safe_urls(server: LiveServer, name: str) -> None:
    initiated = httpx.post(
        f"{server.base_url}/rest/storage/upload/initiate",
        json={"content_type": "video/mp4", "file_name": name},
        headers=AUTH,
    ).json()
    for url in (initiated["upload_url"], initiated["file_url"]):
        path = url.removeprefix(server.base_url)
        assert "/../" not in path and "%2f" not in path.lower() and "\x00" not in path
    put = httpx.put(initiated["upload_url"], content=b"file bytes")
    assert put.status_code == 200
    assert httpx.get(initiated["file_url"]).content == b"file bytes"


@pytest.mark.parametrize(
    "target",
    [
        b"/cdn/uploads/..%2f..%2fsecret.txt",
        b"/cdn/uploads/../../secret.txt",
        b"/cdn/uploads/%2e%2e/1",
    ],
)
def test_upload_targets_cannot_be_traversed(server: LiveServer, target: bytes) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"PUT " + target + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            b"Connection: close\r\n\r\nabc"
        )
        answer = read_response(sock)
    assert status_of(answer) in (404, 405), answer[:300]
    assert "detail" in json.loads(body_of(answer))
