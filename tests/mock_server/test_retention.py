"""Retention: completed requests go ``result_retention`` seconds after they finish, with their
files; files nobody holds go ``file_retention`` seconds after they were stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from contracts.schemas import LipsyncInput
from mock_server.app import create_app
from mock_server.cli import build_parser
from mock_server.engine import EngineConfig, Policy, QueueEngine, SubmitOptions, Success
from mock_server.engine.retention import output_file_ids
from mock_server.settings import MockSettings
from mock_server.storage import MAX_PENDING_UPLOADS, FileStore, MemoryBlobs, StorageError
from tests.conftest import AUTH, LIPSYNC_INPUT

INPUT = LipsyncInput(**LIPSYNC_INPUT)
TIMINGS = {"queue_delay": (1.0, 1.0), "inference_time": (2.0, 2.0)}


def make(policy: str = "virtual", **overrides: object) -> QueueEngine:
    config = replace(EngineConfig(policy=Policy.parse(policy), **TIMINGS), **overrides)  # type: ignore[arg-type]
    return QueueEngine(config)


def submit(engine: QueueEngine) -> str:
    return engine.submit(INPUT, "fal-ai/lipsync", SubmitOptions()).request_id


def output_ids(engine: QueueEngine, request_id: str) -> list[str]:
    found = engine.outcome(request_id)
    assert found is not None and isinstance(found[1], Success)
    return list(output_file_ids(found[1], engine.store))


def test_a_completed_request_is_forgotten_when_its_retention_ends() -> None:
    engine = make(result_retention=100.0)
    request_id = submit(engine)
    engine.advance_clock(3.0)  # ready at 1, runs 2 s: finished at 3
    files = output_ids(engine, request_id)
    assert len(files) == 1
    engine.advance_clock(99.75)
    view = engine.observe(request_id)
    assert view is not None and view.status == "COMPLETED"
    assert engine.store.get(files[0]) is not None
    engine.advance_clock(0.25)  # finished at 3 + 100 s: gone, as if never seen
    assert engine.observe(request_id) is None
    assert engine.peek(request_id) is None
    assert engine.outcome(request_id) is None
    assert engine.cancel(request_id) == "NOT_FOUND"
    assert engine.request_ids() == []
    assert engine.store.get(files[0]) is None


def test_unfinished_requests_are_kept_however_long_they_wait() -> None:
    engine = make("polls:1", result_retention=10.0)
    request_id = submit(engine)
    engine.advance_clock(1_000.0)
    view = engine.observe(request_id)
    assert view is not None and view.status == "IN_QUEUE"


def test_the_expiry_is_seen_on_the_first_lookup_after_it() -> None:
    """The realtime clock moves on its own: no trim runs until someone asks, and that first
    question already gets the 404 (the lookup comes after the trim)."""
    engine = make("immediate", result_retention=5.0)
    request_id = submit(engine)
    assert engine.observe(request_id).status == "COMPLETED"  # type: ignore[union-attr]
    engine.clock.advance(5.0)  # type: ignore[attr-defined]  # the clock alone: no catch-up ran
    assert request_id in engine._jobs  # nothing was trimmed yet...
    assert engine.outcome(request_id) is None  # ...and the first lookup does not find it


def test_files_nobody_holds_age_out_and_held_files_wait_for_their_request() -> None:
    engine = make(result_retention=50.0, file_retention=20.0)
    upload = engine.store.put(b"uploaded bytes", "text/plain", "in.txt")
    request_id = submit(engine)
    engine.advance_clock(3.0)
    (output,) = output_ids(engine, request_id)
    engine.advance_clock(16.75)
    assert engine.store.get(upload.file_id) is not None
    engine.advance_clock(0.25)  # stored at 0, kept 20 s
    assert engine.store.get(upload.file_id) is None
    engine.advance_clock(30.0)  # 50 s: the output is older than 20 s but its request holds it
    assert engine.store.get(output) is not None
    engine.advance_clock(3.0)  # its request is forgotten at 3 + 50
    assert engine.store.get(output) is None
    assert len(engine.store) == 0


def test_a_job_running_longer_than_the_file_retention_keeps_its_output() -> None:
    """The placeholder's output exists from the job's start: held from then on, not aged out."""
    engine = make("polls:1", file_retention=10.0)
    request_id = submit(engine)
    assert engine.observe(request_id).status == "IN_QUEUE"  # type: ignore[union-attr]
    assert engine.observe(request_id).status == "IN_PROGRESS"  # type: ignore[union-attr]
    engine.advance_clock(1_000.0)
    assert engine.observe(request_id).status == "COMPLETED"  # type: ignore[union-attr]
    (output,) = output_ids(engine, request_id)
    assert engine.store.get(output) is not None


def test_files_sharing_bytes_outlive_each_other() -> None:
    """The placeholder stores the same bytes for every job: one blob, dropped with the last."""
    blobs = MemoryBlobs()
    counter = iter(range(100))
    store = FileStore(lambda: f"{next(counter):032x}", 1000, blobs=blobs)
    first = store.put(b"same", "text/plain", "a")
    second = store.put(b"same", "text/plain", "b")
    store.hold(first.file_id, "r1")
    store.release(["r1"])
    assert store.get(first.file_id) is None
    assert store.get(second.file_id) == (second, b"same")
    store.expire(stored_by=0.0)  # the store's default clock reads 0: second goes
    assert store.get(second.file_id) is None and blobs._blobs == {}


def test_the_count_limit_still_applies() -> None:
    engine = make("immediate", finished_limit=3)
    ids = [submit(engine) for _ in range(5)]
    assert engine.request_ids() == ids[2:]


def test_memory_stays_flat_once_retention_expires() -> None:
    """Round after round of requests and uploads: once each round has expired, nothing of it
    is left, so a mock left running keeps the same size."""
    engine = make(result_retention=60.0, file_retention=120.0)
    sizes = []
    for _ in range(5):
        for _ in range(20):
            engine.store.put(b"upload", "text/plain", "u.txt")
            submit(engine)
        engine.advance_clock(200.0)  # every job done (2 runners, 3 s each) and expired
        assert (len(engine.request_ids()), len(engine.store)) == (0, 0)
        assert engine.store.blobs._blobs == {}  # type: ignore[attr-defined]
        # The ages of files dropped with their request wait until they would have aged out
        # (or a rebuild): one round's worth at most, never growing.
        sizes.append(len(engine.store._ages))
    assert sizes == [20] * 5


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = MockSettings(policy="virtual", result_retention=30, file_retention=60, **TIMINGS)
    app = create_app(settings)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://m", headers=AUTH) as c:
        yield c


async def test_status_result_and_files_answer_404_once_forgotten(
    client: httpx.AsyncClient,
) -> None:
    job = (await client.post("/queue/fal-ai/lipsync", json=LIPSYNC_INPUT)).json()
    await client.post("/_mock/clock/advance", json={"seconds": 3})
    result = await client.get(job["response_url"])
    video_url = result.json()["video"]["url"]
    assert (await client.get(video_url)).status_code == 200
    await client.post("/_mock/clock/advance", json={"seconds": 30})
    for url in (job["status_url"], job["response_url"], video_url):
        answer = await client.get(url)
        assert answer.status_code == 404, url
        assert "not found" in answer.json()["detail"]
    cancel = await client.put(job["cancel_url"])
    assert cancel.status_code == 404
    state = (await client.get("/_mock/state")).json()
    assert (state["requests"], state["files"]) == (0, 0)


def test_settings_and_flags() -> None:
    args = build_parser().parse_args(
        ["serve", "--result-retention", "60", "--file-retention", "600", "--state-dir", "/tmp/x"]
    )
    assert (args.result_retention, args.file_retention, str(args.state_dir)) == (
        60.0,
        600.0,
        "/tmp/x",
    )
    config = MockSettings(result_retention=60, file_retention=600).engine_config()
    assert (config.result_retention, config.file_retention) == (60.0, 600.0)
    assert MockSettings().engine_config().result_retention == 3600.0  # fal's hour


def test_retention_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_MOCK_RESULT_RETENTION", "120")
    monkeypatch.setenv("FAL_MOCK_FILE_RETENTION", "240")
    assert (MockSettings().result_retention, MockSettings().file_retention) == (120.0, 240.0)
    monkeypatch.setenv("FAL_MOCK_RESULT_RETENTION", "0")
    with pytest.raises(ValueError, match="greater than 0"):
        MockSettings()


def test_uploads_begun_and_never_finished_expire_and_stay_bounded() -> None:
    engine = make(file_retention=20.0)
    abandoned = engine.store.reserve("video/mp4", "a.mp4", multipart=True)
    engine.store.put_part(abandoned.upload_id, 1, b"x" * 1024)
    engine.advance_clock(10.0)
    later = engine.store.reserve("video/mp4", "b.mp4", multipart=False)
    engine.advance_clock(10.5)  # the first was begun 20.5 s ago, the second 10.5 s ago
    engine.peek("nothing")  # any look at the engine runs the expiry
    with pytest.raises(StorageError, match="No upload in progress"):
        engine.store.pending(abandoned.upload_id)
    assert engine.store.pending(later.upload_id) is later
    for _ in range(MAX_PENDING_UPLOADS + 5):
        engine.store.reserve("video/mp4", None, multipart=False)
    with pytest.raises(StorageError):  # the oldest went first
        engine.store.pending(later.upload_id)
    assert len(engine.store._pending) == MAX_PENDING_UPLOADS
