"""The official Python client, unmodified, against a live mock on a free port.

fal-client is the judge: if it does not work against the mock, the mock is wrong.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fal_client
import fal_client.client as fal_module
import httpx
import pytest

from mock_server.clients import point_fal_client
from mock_server.engine.policies import Policy
from mock_server.pytest_fixtures import forget_fal_client_state
from mock_server.testing import LiveServer
from tests.conftest import LIPSYNC_INPUT

APP = "fal-ai/lipsync"


@pytest.fixture
def fal(live_mock: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.setenv("FAL_KEY", "test-key")
    forget_fal_client_state()
    with point_fal_client(live_mock.base_url):
        yield live_mock
    forget_fal_client_state()
    gc.collect()  # surface leaked sockets in the test that leaked them


# fal-client 1.0.3 makes an httpx client for each CDN upload (``_get_cdn_client``) and never
# closes it: the ResourceWarning is the client's, not the mock's.
leaks_cdn_client = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def journal(server: LiveServer) -> list[tuple[str, str, str, int]]:
    return [(e.host, e.method, e.path, e.status_code) for e in server.engine.journal.entries()]


def assert_downloadable_video(output: dict[str, Any]) -> bytes:
    video = output["video"]
    assert video["content_type"] == "video/mp4"
    assert video["file_name"].endswith(".mp4")
    response = httpx.get(video["url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert len(response.content) == video["file_size"] > 0
    assert response.content[4:8] == b"ftyp"  # an mp4 container
    return response.content


def test_subscribe_without_callback(fal: LiveServer) -> None:
    output = fal_client.subscribe(APP, arguments=LIPSYNC_INPUT)
    assert_downloadable_video(output)
    paths = [(method, path) for _, method, path, _ in journal(fal)]
    request_id = fal.engine.request_ids()[0]
    assert paths[0] == ("POST", "/fal-ai/lipsync")
    assert paths[-2][1] == f"/fal-ai/lipsync/requests/{request_id}"  # the result fetch
    assert all(p[1].endswith("/status") for p in paths[1:-2])


def test_subscribe_with_logs_sees_every_status(fal: LiveServer) -> None:
    fal.engine.set_policy(Policy.parse("polls:2"))
    updates: list[fal_client.Status] = []
    enqueued: list[str] = []
    output = fal_client.subscribe(
        APP,
        arguments=LIPSYNC_INPUT,
        with_logs=True,
        on_enqueue=enqueued.append,
        on_queue_update=updates.append,
    )
    assert_downloadable_video(output)
    assert enqueued == fal.engine.request_ids()
    kinds = [type(u).__name__ for u in updates]
    assert kinds[0] == "Queued" and kinds[-1] == "Completed" and "InProgress" in kinds
    assert kinds == sorted(kinds, key=["Queued", "InProgress", "Completed"].index)
    completed = updates[-1]
    assert isinstance(completed, fal_client.Completed)
    assert completed.error is None and completed.metrics["inference_time"] > 0
    messages = [line["message"] for line in completed.logs]
    assert len(messages) == len(set(messages)) >= 3  # logs grow, never repeat


async def test_subscribe_async(fal: LiveServer) -> None:
    # A fresh AsyncClient: its cached httpx client belongs to this test's event loop.
    client = fal_client.AsyncClient(key="test-key")
    updates: list[fal_client.Status] = []
    try:
        output = await client.subscribe(
            APP, arguments=LIPSYNC_INPUT, with_logs=True, on_queue_update=updates.append
        )
        handle = await client.submit(APP, arguments=LIPSYNC_INPUT)
        assert isinstance(await handle.status(), fal_client.Queued)
        assert (await handle.get())["video"]["content_type"] == "video/mp4"
    finally:
        await (await client._client).aclose()
    assert output["video"]["file_size"] > 0
    assert isinstance(updates[-1], fal_client.Completed)


def test_submit_status_result(fal: LiveServer) -> None:
    handle = fal_client.submit(
        APP,
        arguments=LIPSYNC_INPUT,
        priority="low",
        hint="gpu-a",
        start_timeout=30,
        webhook_url="http://inbox.fal-mock.invalid/cb",  # the mock's inbox (targets are restricted)
    )
    assert handle.request_id == fal.engine.request_ids()[0]
    assert handle.status_url.startswith(fal.base_url + "/queue/")
    first = handle.status()
    assert isinstance(first, fal_client.Queued) and first.position == 0
    assert isinstance(handle.status(with_logs=True), fal_client.InProgress)
    done = fal_client.status(APP, handle.request_id, with_logs=True)
    assert isinstance(done, fal_client.Completed)
    assert fal_client.result(APP, handle.request_id) == handle.get()
    submit = fal.engine.journal.entries()[0]
    assert submit.query == "fal_webhook=http%3A%2F%2Finbox.fal-mock.invalid%2Fcb"
    assert submit.request_headers["x-fal-queue-priority"] == "low"
    assert submit.request_headers["x-fal-request-timeout"] == "30.0"


def test_iter_events_ends_with_completed(fal: LiveServer) -> None:
    fal.engine.set_policy(Policy.parse("polls:3"))
    handle = fal_client.submit(APP, arguments=LIPSYNC_INPUT)
    events = list(handle.iter_events(with_logs=True, interval=0.01))
    assert isinstance(events[-1], fal_client.Completed)
    assert [type(e).__name__ for e in events].count("Queued") == 3


def test_cancel_queued_request(fal: LiveServer) -> None:
    fal.engine.set_policy(Policy.parse("polls:50"))
    handle = fal_client.submit(APP, arguments=LIPSYNC_INPUT)
    handle.cancel()
    status = handle.status()
    assert isinstance(status, fal_client.Completed)
    assert status.error == "Request was cancelled" and status.error_type == "request_cancelled"
    with pytest.raises(fal_client.FalClientHTTPError) as raised:
        handle.get()
    assert raised.value.status_code == 400
    with pytest.raises(fal_client.FalClientHTTPError) as again:
        handle.cancel()
    assert again.value.status_code == 400 and "ALREADY_COMPLETED" in again.value.message


def test_run(fal: LiveServer) -> None:
    output = fal_client.run(APP, arguments=LIPSYNC_INPUT)
    assert_downloadable_video(output)
    assert journal(fal)[0] == ("run", "POST", "/fal-ai/lipsync", 200)


def test_stream_on_run_host(fal: LiveServer) -> None:
    events = list(fal_client.stream(APP, arguments=LIPSYNC_INPUT))
    assert len(events) == 1 and events[0]["video"]["content_type"] == "video/mp4"


@leaks_cdn_client
def test_upload_file_through_cdn_v3(fal: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "speech.mp3"
    path.write_bytes(b"ID3" + bytes(range(256)) * 40)
    url = fal_client.upload_file(path)
    downloaded = httpx.get(url)
    assert downloaded.content == path.read_bytes()
    assert downloaded.headers["content-type"] == "audio/mpeg"
    calls = [(host, method, p) for host, method, p, _ in journal(fal)]
    # The v3 flow, not the silent fallback to the "fal" repository.
    assert calls == [
        ("rest", "POST", "/storage/auth/token"),
        ("cdn", "POST", "/files/upload"),
        ("cdn", "GET", url.split("/cdn", 1)[1]),
    ]


@leaks_cdn_client
def test_upload_bytes_and_gcs_fallback_flow(fal: LiveServer) -> None:
    url = fal_client.upload(b"\x00\x01data", "application/octet-stream", "blob.bin")
    assert httpx.get(url).content == b"\x00\x01data"
    legacy = fal_client.upload(b"legacy", "text/plain", "a.txt", repository="fal")
    assert httpx.get(legacy).content == b"legacy"
    paths = [p for _, _, p, _ in journal(fal)]
    assert "/storage/upload/initiate" in paths


@leaks_cdn_client
def test_multipart_upload(fal: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # fal-client switches to multipart above 100 MiB; lower the bar to run its real code path.
    monkeypatch.setattr(fal_module, "MULTIPART_THRESHOLD", 64 * 1024)
    monkeypatch.setattr(fal_module, "MULTIPART_CHUNK_SIZE", 32 * 1024)
    data = hashlib.sha256(b"seed").digest() * 5000  # 160 000 bytes: 5 parts
    url = fal_client.upload(data, "video/mp4", "big.mp4")
    assert httpx.get(url).content == data
    parts = [p for _, m, p, _ in journal(fal) if m == "PUT"]
    assert len(parts) == 5 and all("/multipart/" in p for p in parts)


def test_unknown_request_is_404(fal: LiveServer) -> None:
    with pytest.raises(fal_client.FalClientHTTPError) as raised:
        fal_client.status(APP, "00000000-0000-4000-8000-000000000000")
    assert raised.value.status_code == 404


def test_result_before_completion_is_400(fal: LiveServer) -> None:
    fal.engine.set_policy(Policy.parse("polls:50"))
    handle = fal_client.submit(APP, arguments=LIPSYNC_INPUT)
    # fal-client never fetches early by itself; send the fetch through its own HTTP machinery.
    response = handle.client.get(handle.response_url)  # the httpx client fal-client made
    with pytest.raises(fal_client.FalClientHTTPError) as raised:
        fal_module._raise_for_status(response)
    assert raised.value.status_code == 400
    assert raised.value.message == "Request is still in progress"


def test_invalid_input_is_422_in_fals_shape(fal: LiveServer) -> None:
    with pytest.raises(fal_client.FalClientHTTPError) as raised:
        fal_client.submit(APP, arguments={"video_url": "ftp://x/y.mp4"})
    assert raised.value.status_code == 422
    fields = {tuple(item["loc"]) for item in raised.value.message}
    assert fields == {("body", "video_url"), ("body", "audio_url")}
