"""Uploads (both clients' flows, multipart) and serving files with Range."""

from __future__ import annotations

import httpx
import pytest


async def initiate(client: httpx.AsyncClient, multipart: bool = False) -> dict[str, str]:
    path = "/rest/storage/upload/initiate" + ("-multipart" if multipart else "")
    response = await client.post(
        path,
        params={"storage_type": "fal-cdn-v3"},
        json={"content_type": "audio/mpeg", "file_name": "a b.mp3"},
    )
    assert response.status_code == 200
    body: dict[str, str] = response.json()
    return body


async def test_initiate_then_put(client: httpx.AsyncClient) -> None:
    urls = await initiate(client)
    assert (await client.get(urls["file_url"])).status_code == 404  # not there before the PUT
    put = await client.put(
        urls["upload_url"], content=b"ID3data", headers={"content-type": "audio/mpeg"}
    )
    assert put.status_code == 200
    got = await client.get(urls["file_url"])
    assert got.content == b"ID3data" and got.headers["content-type"] == "audio/mpeg"
    assert got.headers["content-length"] == "7"
    assert urls["file_url"].endswith("/a_b.mp3")  # a name safe in a URL
    again = await client.put(urls["upload_url"], content=b"x")
    assert again.status_code == 404  # an upload URL is good for one PUT


async def test_js_multipart_flow(client: httpx.AsyncClient) -> None:
    urls = await initiate(client, multipart=True)
    etags = []
    for number, chunk in ((2, b"world"), (1, b"hello ")):
        response = await client.put(f"{urls['upload_url']}/{number}", content=chunk)
        assert response.status_code == 200
        assert response.json()["partNumber"] == number
        assert response.headers["etag"] == response.json()["etag"]
        etags.append({"partNumber": number, "etag": response.json()["etag"]})
    done = await client.post(f"{urls['upload_url']}/complete", json={"parts": etags})
    assert done.status_code == 200
    assert (await client.get(urls["file_url"])).content == b"hello world"


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ([{"partNumber": 1, "etag": '"wrong"'}], "does not match"),
        ([{"partNumber": 2, "etag": '"x"'}], "never uploaded"),
        ([], "at least 1"),
    ],
)
async def test_multipart_complete_rejects_bad_part_lists(
    client: httpx.AsyncClient, parts: list[dict[str, object]], message: str
) -> None:
    urls = await initiate(client, multipart=True)
    await client.put(f"{urls['upload_url']}/1", content=b"data")
    response = await client.post(f"{urls['upload_url']}/complete", json={"parts": parts})
    assert response.status_code in (400, 422)
    assert message in response.text
    assert (await client.get(urls["file_url"])).status_code == 404  # nothing half-written


async def test_single_put_to_a_multipart_upload_is_409(client: httpx.AsyncClient) -> None:
    urls = await initiate(client, multipart=True)
    assert (await client.put(urls["upload_url"], content=b"x")).status_code == 409


async def test_python_cdn_multipart_flow(client: httpx.AsyncClient) -> None:
    token = (await client.post("/rest/storage/auth/token")).json()
    assert token["expires_at"].endswith("+00:00")
    auth = {
        "Authorization": f"Bearer {token['token']}",
        "x-fal-file-name": "v.mp4",
        "content-type": "video/mp4",
    }
    started = (await client.post("/cdn/files/upload/multipart", headers=auth)).json()
    base = f"{started['access_url']}/multipart/{started['uploadId']}"
    part = await client.put(f"{base}/1", content=b"abc")
    assert part.headers["etag"]
    done = await client.post(
        f"{base}/complete", json={"parts": [{"partNumber": 1, "etag": part.headers["etag"]}]}
    )
    assert done.json()["access_url"] == started["access_url"]
    got = await client.get(started["access_url"])
    assert got.content == b"abc" and got.headers["content-type"] == "video/mp4"


@pytest.mark.parametrize(
    ("range_header", "status", "body", "content_range"),
    [
        ("bytes=0-3", 206, b"0123", "bytes 0-3/10"),
        ("bytes=7-", 206, b"789", "bytes 7-9/10"),
        ("bytes=-2", 206, b"89", "bytes 8-9/10"),
        ("bytes=5-100", 206, b"56789", "bytes 5-9/10"),
        ("bytes=10-", 416, None, None),
        ("bytes=3-1", 416, None, None),
        ("pages=1-2", 416, None, None),
    ],
)
async def test_range_requests(
    client: httpx.AsyncClient,
    range_header: str,
    status: int,
    body: bytes | None,
    content_range: str | None,
) -> None:
    stored = (
        await client.post(
            "/cdn/files/upload", content=b"0123456789", headers={"content-type": "text/plain"}
        )
    ).json()
    response = await client.get(stored["access_url"], headers={"range": range_header})
    assert response.status_code == status
    if body is not None:
        assert response.content == body
        assert response.headers["content-range"] == content_range
    else:
        assert "not satisfiable" in response.json()["detail"]
        assert response.headers["content-range"] == "bytes */10"


async def test_files_answer_head_and_unknown_files_404(client: httpx.AsyncClient) -> None:
    stored = (
        await client.post(
            "/cdn/files/upload", content=b"abc", headers={"x-fal-file-name": "../../etc/passwd"}
        )
    ).json()
    assert stored["file_name"] == "passwd"  # no traversal survives into a name
    head = await client.head(stored["access_url"])
    assert head.status_code == 200 and head.headers["content-length"] == "3"
    assert head.headers["accept-ranges"] == "bytes"
    wrong_name = stored["access_url"].rsplit("/", 1)[0] + "/other"
    assert (await client.get(wrong_name)).status_code == 404
    assert (await client.get("/cdn/files/0123456789abcdef/x")).status_code == 404
    assert (await client.get("/cdn/files/%2e%2e/%2e%2e")).status_code == 404
