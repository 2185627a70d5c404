"""SIGKILL a live ``fal-mock serve --state-dir`` mid-work, start it again on the directory, and
check that nothing accepted was lost: uploads, queued, running and completed requests, pending
webhook retries; and, under load, killed at random instants, that every request answered 200
is still there.

Webhooks are delivered at least once, as fal's: an attempt the receiver answered just before
the kill, and that the mock had not recorded yet, is made again after the restart. Nothing is
delivered again once recorded as delivered.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fal_client
import httpx
import pytest

from contracts.webhooks import verify_webhook
from mock_server.clients import point_fal_client
from mock_server.engine.clock import EPOCH
from mock_server.lipsync.examples import EXAMPLE_AUDIO_PATH, EXAMPLE_VIDEO_PATH
from mock_server.pytest_fixtures import forget_fal_client_state
from tests.conftest import LIPSYNC_INPUT
from tests.persistence.process import MockProcess, Receiver

APP = "fal-ai/lipsync"
Serve = Callable[..., MockProcess]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """Start ``fal-mock serve --state-dir`` with these flags and ``FAL_MOCK_*`` environment."""
    started: list[MockProcess] = []

    def start(*args: str, **env: str) -> MockProcess:
        process = MockProcess(tmp_path / "state", tmp_path, *args, **env)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def fal(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """fal-client with a key and none of its cached clients or tokens from other tests."""
    monkeypatch.setenv("FAL_KEY", "test-key")
    forget_fal_client_state()
    yield
    forget_fal_client_state()


# fal-client 1.0.3 makes an httpx client for each CDN upload and never closes it.
leaks_cdn_client = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def wait_for(
    client: httpx.Client, status_url: str, wanted: str, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(status_url, params={"logs": 1}).json()
        if body["status"] == wanted or time.monotonic() > deadline:
            assert body["status"] == wanted, body
            return body
        time.sleep(0.05)


def integrity(state_dir: Path) -> str:
    """SQLite's own check of the database as the kill left it (before any restart)."""
    db = sqlite3.connect(state_dir / "state.db")
    try:
        result: str = db.execute("PRAGMA integrity_check").fetchone()[0]
        return result
    finally:
        db.close()


@leaks_cdn_client
@pytest.mark.usefixtures("fal")
def test_killed_mid_work_loses_nothing(serve: Serve) -> None:
    mock = serve(
        "--policy", "realtime", "--runners", "2", "--seed", "5",
        FAL_MOCK_QUEUE_DELAY="[0, 0]", FAL_MOCK_INFERENCE_TIME="[3, 3]",
    )  # fmt: skip
    with point_fal_client(mock.base_url), mock.client() as client:
        upload_url = fal_client.upload(b"uploaded before the kill", "text/plain", "note.txt")
        done = [
            fal_client.submit(APP, arguments=LIPSYNC_INPUT, headers={"X-Mock-Policy": "immediate"})
            for _ in range(2)
        ]
        results = [handle.get() for handle in done]
        videos = [client.get(result["video"]["url"]).content for result in results]
        running = [fal_client.submit(APP, arguments=LIPSYNC_INPUT) for _ in range(2)]
        queued = [fal_client.submit(APP, arguments=LIPSYNC_INPUT) for _ in range(2)]
        assert [type(h.status()).__name__ for h in running + queued] == [
            "InProgress", "InProgress", "Queued", "Queued"
        ]  # fmt: skip
        journal = client.get("/_mock/journal").json()["entries"]
        clock = client.get("/_mock/state").json()["clock"]
    mock.kill()
    assert integrity(mock.state_dir) == "ok"

    mock.start()
    # Five files: the upload and the outputs of the two completed and the two running ones.
    assert "(restart 1; found 2 queued, 2 running, 2 completed, 5 files" in mock.log()
    with point_fal_client(mock.base_url), mock.client() as client:
        accepted = [h.request_id for h in done + running + queued]
        state = client.get("/_mock/state").json()
        assert state["requests"] == len(accepted) and state["clock"] >= clock
        # Completed: the same results and the same bytes.
        for handle, result, video in zip(done, results, videos, strict=True):
            assert fal_client.result(APP, handle.request_id) == result
            assert client.get(result["video"]["url"]).content == video
        assert httpx.get(upload_url).content == b"uploaded before the kill"
        # Running ones restarted (still IN_PROGRESS), queued ones still wait: all complete.
        assert [type(h.status()).__name__ for h in running] == ["InProgress", "InProgress"]
        for handle in running + queued:
            assert handle.get()["video"]["file_size"] > 0
        # The journal went on from where it stopped; new ids are new.
        after = client.get("/_mock/journal").json()["entries"]
        assert after[: len(journal)] == journal
        assert [e["seq"] for e in after] == list(range(1, len(after) + 1))
        assert fal_client.submit(APP, arguments=LIPSYNC_INPUT).request_id not in accepted


@leaks_cdn_client
@pytest.mark.usefixtures("fal")
def test_a_real_running_job_restarts_and_completes(serve: Serve) -> None:
    """The reference lip-sync, killed while a worker process is rendering it."""
    mock = serve("--policy", "realtime", "--engine", "reference", "--runners", "1")
    with point_fal_client(mock.base_url), mock.client() as client:
        arguments = {
            "video_url": fal_client.upload_file(EXAMPLE_VIDEO_PATH),
            "audio_url": fal_client.upload_file(EXAMPLE_AUDIO_PATH),
        }
        handle = fal_client.submit(APP, arguments=arguments)
        status = wait_for(client, handle.status_url, "IN_PROGRESS")
        assert status["status"] == "IN_PROGRESS"
    mock.kill()

    mock.start()
    with point_fal_client(mock.base_url), mock.client() as client:
        assert type(handle.status()).__name__ == "InProgress"  # started again, not re-queued
        output = handle.get()
        video = client.get(output["video"]["url"])
        assert video.status_code == 200 and video.content[4:8] == b"ftyp"
        assert len(video.content) == output["video"]["file_size"]


def test_a_pending_webhook_retry_is_sent_after_a_restart(serve: Serve) -> None:
    mock = serve(
        "--policy", "virtual", FAL_MOCK_QUEUE_DELAY="[1, 1]", FAL_MOCK_INFERENCE_TIME="[1, 1]"
    )
    receiver = Receiver()
    try:
        with mock.client() as client:
            submitted = client.post(
                "/queue/fal-ai/lipsync", json=LIPSYNC_INPUT, params={"fal_webhook": receiver.url}
            ).json()
            client.post("/_mock/clock/advance", json={"seconds": 2})  # completes: attempt 1
            client.post("/_mock/clock/advance", json={"seconds": 15})  # attempt 2
            _wait_attempts(client, 2)
        mock.kill()
        assert [r.answered for r in receiver.received] == [500, 500]

        receiver.status = 200
        mock.start()
        with mock.client() as client:
            client.post("/_mock/clock/advance", json={"seconds": 60})  # attempt 3, delivered
            delivery = _wait_attempts(client, 3)
            assert delivery["status"] == "delivered"
            client.post("/_mock/clock/advance", json={"seconds": 7200})
            time.sleep(0.3)  # the dispatcher looks at the virtual clock every 10 ms
            assert _wait_attempts(client, 3)["status"] == "delivered"  # no attempt after it
            jwks = client.get("/rest/.well-known/jwks.json").json()
            now = EPOCH.timestamp() + client.get("/_mock/state").json()["clock"]
        assert [r.answered for r in receiver.received] == [500, 500, 200]
        assert len({r.body for r in receiver.received}) == 1  # the same payload every time
        for received in receiver.received:
            verified = verify_webhook(received.headers, received.body, jwks, now=now, tolerance=1e5)
            assert verified.request_id == submitted["request_id"]
    finally:
        receiver.close()


def _wait_attempts(client: httpx.Client, attempts: int, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        (delivery,) = client.get("/_mock/webhooks").json()["deliveries"]
        done = len(delivery["attempts"]) >= attempts and not delivery["in_flight"]
        if done or time.monotonic() > deadline:
            assert len(delivery["attempts"]) == attempts, delivery
            return dict(delivery)
        time.sleep(0.02)


class Load:
    """Submitters and uploaders on their own threads, until the mock dies under them. What
    got a 200 is recorded: only those are promised to survive."""

    def __init__(self, mock: MockProcess, seed: int) -> None:
        self.mock = mock
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.accepted: dict[str, str] = {}  # request id -> status url
        self.uploads: dict[str, bytes] = {}  # file url -> bytes
        self.results: dict[str, Any] = {}  # request id -> result body seen before a kill
        self.stop = threading.Event()

    def run_until_killed(self, workers: int, kill_after: float) -> None:
        self.stop.clear()
        threads = [threading.Thread(target=self._work, args=(i,)) for i in range(workers)]
        for thread in threads:
            thread.start()
        time.sleep(kill_after)
        self.mock.kill()
        self.stop.set()
        for thread in threads:
            thread.join(10)

    def _work(self, worker: int) -> None:
        with self.mock.client(timeout=5) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                try:
                    if n % 4 == 0:
                        self._upload(client, f"upload {self.mock.starts}/{worker}/{n}".encode())
                    else:
                        self._submit(client)
                    if n % 3 == 0:
                        self._fetch_a_result(client)
                except httpx.TransportError:  # the kill: a request in flight got no answer
                    return

    def _upload(self, client: httpx.Client, data: bytes) -> None:
        answer = client.post("/cdn/files/upload", content=data)
        if answer.status_code == 200:
            with self.lock:
                self.uploads[answer.json()["access_url"]] = data

    def _submit(self, client: httpx.Client) -> None:
        answer = client.post("/queue/fal-ai/lipsync", json=LIPSYNC_INPUT)
        if answer.status_code == 200:
            body = answer.json()
            with self.lock:
                self.accepted[body["request_id"]] = body["status_url"]

    def _fetch_a_result(self, client: httpx.Client) -> None:
        with self.lock:
            if not self.accepted:
                return
            request_id = self.rng.choice(sorted(self.accepted))
        answer = client.get(result_url(self.accepted[request_id]))
        if answer.status_code == 200:
            with self.lock:
                self.results.setdefault(request_id, answer.json())


def result_url(status_url: str) -> str:
    return status_url.removesuffix("/status")


@pytest.mark.slow
def test_killed_at_random_instants_under_load_keeps_every_accepted_request(
    serve: Serve,
) -> None:
    """Killed at a random instant under load, restarted and checked; five times over. Every
    submit answered 200 is there and completes; every upload answered 200 serves its bytes; a
    result seen before a kill is the same after it."""
    mock = serve(
        "--policy", "realtime", "--runners", "4",
        FAL_MOCK_QUEUE_DELAY="[0.01, 0.05]", FAL_MOCK_INFERENCE_TIME="[0.05, 0.3]",
    )  # fmt: skip
    load = Load(mock, seed=20251124)
    for round_number in range(5):
        load.run_until_killed(workers=8, kill_after=load.rng.uniform(0.5, 2.5))
        assert integrity(mock.state_dir) == "ok"
        mock.start()
        with mock.client() as client:
            known = {r["request_id"] for r in client.get("/_mock/requests").json()["requests"]}
            missing = set(load.accepted) - known
            assert not missing, f"round {round_number}: {len(missing)} accepted requests lost"
            for url, data in load.uploads.items():
                assert client.get(url).content == data, url
            for request_id, result in load.results.items():
                assert client.get(result_url(load.accepted[request_id])).json() == result
    assert len(load.accepted) > 100 and load.uploads and load.results  # the load was real
    with mock.client() as client:
        for status_url in load.accepted.values():
            wait_for(client, status_url, "COMPLETED", timeout=30)
