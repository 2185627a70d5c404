"""Every size limit answers 413 ``{"detail": ...}`` (fal's shape), before the bytes are kept;
data URIs in inputs are sized before a byte is decoded."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mock_server.lipsync import inputs
from mock_server.lipsync.inputs import InputConfig, InputError, resolve_input
from tests.hardening.conftest import AUTH, BODY, SUBMIT, app_client, make_app

BODY_LIMIT = 4096
UPLOAD_LIMIT = 8192


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(max_body_bytes=BODY_LIMIT, max_upload_bytes=UPLOAD_LIMIT)
    async with app_client(app, headers=AUTH) as test_client:
        yield test_client


def assert_413(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 413, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and str(limit) in detail


async def chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def big_body() -> dict[str, str]:
    return {**BODY, "video_url": "data:video/mp4;base64," + "A" * BODY_LIMIT}


@pytest.mark.parametrize(
    "path",
    [SUBMIT, "/run/fal-ai/lipsync", "/rest/storage/upload/initiate", "/_mock/reset"],
)
async def test_json_bodies_over_the_limit(client: httpx.AsyncClient, path: str) -> None:
    assert_413(await client.post(path, json=big_body()), BODY_LIMIT)


async def test_a_body_without_a_length_is_cut_at_the_limit(client: httpx.AsyncClient) -> None:
    data = httpx.Request("POST", "/", json=big_body()).content
    response = await client.post(
        SUBMIT, content=chunks(data), headers={"Content-Type": "application/json"}
    )
    assert_413(response, BODY_LIMIT)
    assert (await client.get("/_mock/state")).json()["requests"] == 0


async def test_a_declared_length_over_the_limit_is_refused_unread(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        SUBMIT, content=b"{}", headers={"Content-Length": str(BODY_LIMIT + 1)}
    )
    assert_413(response, BODY_LIMIT)


async def test_uploads_in_one_request(client: httpx.AsyncClient) -> None:
    fits = await client.post("/cdn/files/upload", content=b"x" * UPLOAD_LIMIT)
    assert fits.status_code == 200  # uploads have their own, larger limit
    assert_413(await client.post("/cdn/files/upload", content=b"x" * (UPLOAD_LIMIT + 1)),
               UPLOAD_LIMIT)  # fmt: skip
    initiated = (await client.post(
        "/rest/storage/upload/initiate", json={"content_type": "video/mp4", "file_name": "a.mp4"}
    )).json()  # fmt: skip
    put_path = initiated["upload_url"].removeprefix("http://mock.test")
    assert_413(await client.put(put_path, content=b"x" * (UPLOAD_LIMIT + 1)), UPLOAD_LIMIT)
    assert (await client.get("/_mock/state")).json()["files"] == 1


async def test_multipart_parts_and_their_total(client: httpx.AsyncClient) -> None:
    started = (await client.post(
        "/rest/storage/upload/initiate-multipart",
        json={"content_type": "video/mp4", "file_name": "a.mp4"},
    )).json()  # fmt: skip
    part = started["upload_url"].removeprefix("http://mock.test") + "/{n}"
    assert_413(await client.put(part.format(n=1), content=b"x" * (UPLOAD_LIMIT + 1)),
               UPLOAD_LIMIT)  # fmt: skip
    half = UPLOAD_LIMIT // 2
    assert (await client.put(part.format(n=1), content=b"x" * half)).status_code == 200
    assert (await client.put(part.format(n=2), content=b"x" * half)).status_code == 200
    over = await client.put(part.format(n=3), content=b"x")  # each fits; all three do not
    assert_413(over, UPLOAD_LIMIT)
    replaced = await client.put(part.format(n=2), content=b"x" * (half - 1))  # a retry: fine
    assert replaced.status_code == 200


async def test_uploads_through_the_proxy_route_have_the_same_limit(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/fal/proxy",
        content=b"x" * (UPLOAD_LIMIT + 1),
        headers={"x-fal-target-url": "https://v3.fal.media/files/upload"},
    )
    assert_413(response, UPLOAD_LIMIT)


def test_data_uris_are_sized_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_decode(*args: object) -> None:
        raise AssertionError("the data URI was decoded before its size was checked")

    monkeypatch.setattr(inputs, "_b64_chunks", must_not_decode)
    monkeypatch.setattr(inputs.urllib.parse, "unquote_to_bytes", must_not_decode)
    config = InputConfig(max_bytes=4096)
    big = base64.b64encode(b"\0" * 4097).decode()
    for url in (
        f"data:video/mp4;base64,{big}",
        f"data:video/mp4;base64,{big[:4000]}%3D{big[4000:]}",  # percent-escaped base64
        "data:video/mp4," + "%00" * 4097,  # percent-encoded bytes: three characters each
        "data:video/mp4," + "a" * 4097,
    ):
        with pytest.raises(InputError) as caught:
            resolve_input("video_url", url, work_dir=tmp_path, config=config)
        assert caught.value.type == "file_too_large"
        assert caught.value.ctx == {"max_size": 4096}
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("escaped", [False, True])
def test_a_data_uri_at_the_limit_is_decoded(tmp_path: Path, escaped: bool) -> None:
    config = InputConfig(max_bytes=4096)
    encoded = base64.b64encode(b"\0" * 4096).decode()  # ends in "==": padding is no data
    if escaped:
        encoded = encoded.replace("=", "%3D")
    url = "data:video/mp4;base64," + encoded
    with pytest.raises(InputError) as caught:  # not media, but sized, decoded and probed
        resolve_input("video_url", url, work_dir=tmp_path, config=config)
    assert caught.value.type == "unsupported_video_format"
