"""A state directory, in-process: what survives closing the app and opening it again."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts.faults import FaultPlan, FaultRule
from contracts.schemas import LipsyncInput
from mock_server.app import create_app
from mock_server.engine import Failure, Policy, QueueEngine, Success
from mock_server.engine.jobs import HistoryEntry, Job, LogLine, SubmitOptions
from mock_server.persistence import open_state
from mock_server.persistence.codec import (
    SAVED_JOB_FIELDS,
    UNSAVED_JOB_FIELDS,
    decode_job,
    encode_job,
)
from mock_server.settings import MockSettings
from tests.conftest import AUTH, LIPSYNC_INPUT

TIMINGS = {"queue_delay": (1.0, 1.0), "inference_time": (4.0, 4.0)}


def settings(state_dir: Path, **overrides: Any) -> MockSettings:
    values: dict[str, Any] = {"policy": "virtual", "runners": 1, **TIMINGS, **overrides}
    return MockSettings(state_dir=state_dir, **values)


@asynccontextmanager
async def running(config: MockSettings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app on a state directory, closed at the end as a stopped process would leave it."""
    app = create_app(config)
    try:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://m", headers=AUTH
        ) as client:
            yield app, client
    finally:
        app.state.state_dir.close()


async def submit(client: httpx.AsyncClient, **params: str) -> dict[str, str]:
    response = await client.post("/queue/fal-ai/lipsync", json=LIPSYNC_INPUT, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


async def advance(client: httpx.AsyncClient, seconds: float) -> float:
    state = (await client.post("/_mock/clock/advance", json={"seconds": seconds})).json()
    clock: float = state["clock"]
    return clock


def engine_of(app: FastAPI) -> QueueEngine:
    engine: QueueEngine = app.state.engine
    return engine


# -- the codec ------------------------------------------------------------------------------


def test_every_job_field_is_saved_or_deliberately_not() -> None:
    fields = {f.name for f in dataclasses.fields(Job)}
    assert not SAVED_JOB_FIELDS & UNSAVED_JOB_FIELDS
    assert fields == SAVED_JOB_FIELDS | UNSAVED_JOB_FIELDS, (
        "a Job field is neither saved nor listed as unsaved in mock_server/persistence/codec.py: "
        f"{sorted(fields ^ (SAVED_JOB_FIELDS | UNSAVED_JOB_FIELDS))}"
    )


@pytest.mark.parametrize(
    "outcome",
    [
        Success({"video": {"url": "fal-mock-file://0a/x.mp4", "file_size": 3}}),
        Failure(503, {"detail": "gone", "error_type": "x"}, "gone", "x", {"x-fal-error-type": "x"}),
        None,
    ],
)
def test_a_job_comes_back_as_it_was_saved(outcome: Success | Failure | None) -> None:
    plan = FaultPlan(seed=3, rules=[FaultRule(kind="runner_error", rate=1.0)])
    job = Job(
        request_id="r",
        seq=7,
        app_id="fal-ai/lipsync",
        input=LipsyncInput(**LIPSYNC_INPUT, sync_mode="loop"),
        options=SubmitOptions(
            priority="low",
            hint="h",
            start_timeout=30.0,
            webhook_url="http://127.0.0.1:9/hook",
            policy=Policy.parse("polls:3"),
            faults=plan,
        ),
        policy=Policy.parse("polls:3"),
        task_seed=123,
        submitted_at=1.5,
        ready_at=2.0,
        duration=3.25,
        status="COMPLETED" if outcome else "IN_PROGRESS",
        started_at=2.0,
        finished_at=5.25 if outcome else None,
        outcome=outcome,
        logs=(LogLine("hello", "INFO", "2025-01-01T00:00:02+00:00"),),
        history=[HistoryEntry("IN_QUEUE", 0, 1.5), HistoryEntry("IN_PROGRESS", None, 2.0)],
        fault=plan.rules[0],
    )
    again = decode_job(encode_job(job))
    for name in SAVED_JOB_FIELDS:
        assert getattr(again, name) == getattr(job, name), name


# -- restarts -------------------------------------------------------------------------------


async def test_everything_accepted_is_there_after_a_restart(tmp_path: Path) -> None:
    async with running(settings(tmp_path)) as (app, client):
        upload = await client.post(
            "/cdn/files/upload", content=b"face bytes", headers={"X-Fal-File-Name": "face.mp4"}
        )
        upload_url = upload.json()["access_url"]
        first = [await submit(client) for _ in range(4)]
        await advance(client, 5.0)  # one runner: #0 done at 5, #1 runs until 9, #2 #3 wait
        done = (await client.get(first[0]["response_url"])).json()
        video = (await client.get(done["video"]["url"])).content
        token = (await client.post("/rest/storage/auth/token", json={})).json()["token"]
        before = {r["request_id"]: engine_of(app).peek(r["request_id"]) for r in first}
        journal = (await client.get("/_mock/journal")).json()["entries"]
        clock = (await client.get("/_mock/state")).json()["clock"]
    assert [v.status for v in before.values()] == [  # type: ignore[union-attr]
        "COMPLETED",
        "IN_PROGRESS",
        "IN_QUEUE",
        "IN_QUEUE",
    ]

    async with running(settings(tmp_path)) as (app, client):
        engine = engine_of(app)
        assert app.state.state_dir.restored == {
            "queued": 2,
            "running": 1,
            "completed": 1,
            "files": 3,  # the upload, #0's video, #1's first run's (the restart makes another)
            "journal_entries": len(journal),
            "webhook_deliveries": 0,
        }
        assert engine.request_ids() == [r["request_id"] for r in first]
        state = (await client.get("/_mock/state")).json()
        assert state["clock"] >= clock  # never back
        # The completed one answers as before, byte for byte; so does the upload.
        assert (await client.get(first[0]["response_url"])).json() == done
        assert (await client.get(done["video"]["url"])).content == video
        assert (await client.get(upload_url)).content == b"face bytes"
        assert token in engine._tokens
        # The running one restarted (still IN_PROGRESS: never back to IN_QUEUE); the queued
        # ones wait in their order.
        statuses = [(await client.get(r["status_url"])).json()["status"] for r in first[1:]]
        assert statuses == ["IN_PROGRESS", "IN_QUEUE", "IN_QUEUE"]
        positions = [
            (await client.get(r["status_url"])).json().get("queue_position") for r in first[2:]
        ]
        assert positions == [0, 1]
        # New ids never collide with old ones; the journal goes on numbering.
        new = await submit(client)
        assert new["request_id"] not in before
        entries = (await client.get("/_mock/journal")).json()["entries"]
        assert entries[: len(journal)] == journal
        seqs = [e["seq"] for e in entries]
        assert seqs == list(range(1, len(seqs) + 1))
        # Everything accepted completes.
        await advance(client, 100.0)
        for request in [*first, new]:
            assert (await client.get(request["status_url"])).json()["status"] == "COMPLETED"
            assert (await client.get(request["response_url"])).status_code == 200


async def test_the_first_run_on_a_fresh_directory_is_the_in_memory_run(tmp_path: Path) -> None:
    """Same seed, same ids and bytes: a state directory changes nothing until a restart."""
    transcripts = []
    for state_dir in (tmp_path / "a", None):
        app = create_app(MockSettings(policy="immediate", state_dir=state_dir))
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://m", headers=AUTH) as c:
            ids = [(await submit(c))["request_id"] for _ in range(3)]
            results = [(await c.get(f"/queue/fal-ai/lipsync/requests/{i}")).json() for i in ids]
            transcripts.append((ids, results))
        if state_dir is not None:
            app.state.state_dir.close()
    assert transcripts[0] == transcripts[1]


async def test_a_restart_with_the_wall_clock_counts_the_time_it_was_down(tmp_path: Path) -> None:
    config = settings(tmp_path, policy="realtime", queue_delay=(0.0, 0.0))
    async with running(config) as (app, client):
        await submit(client)
        engine_of(app).clock.now()
    db = sqlite3.connect(tmp_path / "state.db")
    with db:  # as if the mock had been down for an hour
        db.execute("UPDATE meta SET value = value - 3600 WHERE key = 'wall_time'")
    db.close()
    async with running(config) as (app, client):
        assert engine_of(app).clock.now() > 3600


async def test_a_reset_forgets_the_directory_too(tmp_path: Path) -> None:
    async with running(settings(tmp_path, policy="immediate")) as (app, client):
        await submit(client)
        await client.post("/cdn/files/upload", content=b"x")
        await client.post("/_mock/reset", json={})
        kept = await submit(client)
    async with running(settings(tmp_path, policy="immediate")) as (app, client):
        assert engine_of(app).request_ids() == [kept["request_id"]]
        assert app.state.state_dir.restored["files"] == 1  # the placeholder video of `kept`
    assert len(list((tmp_path / "blobs").iterdir())) == 1


async def test_retention_empties_the_directory(tmp_path: Path) -> None:
    """Round after round, once retention has passed, the database and blobs stay the same
    size: a mock left running for days keeps a bounded directory."""
    config = settings(tmp_path, result_retention=60, file_retention=120, journal_limit=50)
    sizes = []
    async with running(config) as (_, client):
        for _ in range(4):
            for _ in range(10):
                await client.post("/cdn/files/upload", content=b"upload " * 100)
                await submit(client)
            await advance(client, 500.0)
            db = sqlite3.connect(tmp_path / "state.db")
            counts = [
                db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("requests", "files", "deliveries")
            ]
            db.close()
            sizes.append((counts, len(list((tmp_path / "blobs").iterdir()))))
    assert sizes == [([0, 0, 0], 0)] * 4


async def test_a_second_mock_cannot_open_a_directory_in_use(tmp_path: Path) -> None:
    async with running(settings(tmp_path)):
        with pytest.raises(ValueError, match="in use by another fal-mock"):
            create_app(settings(tmp_path))


def test_a_directory_of_another_schema_is_refused(tmp_path: Path) -> None:
    create_app(settings(tmp_path)).state.state_dir.close()
    db = sqlite3.connect(tmp_path / "state.db")
    with db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.close()
    with pytest.raises(ValueError, match="schema version 99"):
        create_app(settings(tmp_path))


def test_a_directory_that_cannot_be_used_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ValueError, match=r"cannot use .* as a state directory"):
        create_app(settings(tmp_path / "file"))
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "state.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match="cannot be used: file is not a database"):
        create_app(settings(tmp_path / "garbage"))
    # The lock was let go: once the database is removed, the directory opens.
    (tmp_path / "garbage" / "state.db").unlink()
    create_app(settings(tmp_path / "garbage")).state.state_dir.close()


def test_leftovers_of_a_crash_are_cleaned_at_start(tmp_path: Path) -> None:
    """A blob renamed in but never recorded, and a temporary file half written: both go."""
    create_app(settings(tmp_path)).state.state_dir.close()
    blobs = tmp_path / "blobs"
    (blobs / ("ab" * 32)).write_bytes(b"orphan")
    (blobs / f"{'cd' * 32}.1.2.partial").write_bytes(b"half")
    app = create_app(settings(tmp_path))
    app.state.state_dir.close()
    assert list(blobs.iterdir()) == []


def test_a_state_directory_needs_a_fresh_engine(tmp_path: Path) -> None:
    app = create_app(MockSettings(policy="immediate"))
    engine = engine_of(app)
    engine.submit(LipsyncInput(**LIPSYNC_INPUT), "fal-ai/lipsync", SubmitOptions())
    with pytest.raises(ValueError, match="fresh engine"):
        open_state(engine, tmp_path)


async def test_pending_webhooks_are_sent_after_a_restart(tmp_path: Path) -> None:
    """A delivery whose first attempt failed is pending; after a restart it is retried on
    the schedule and reaches the receiver (here the mock's inbox)."""
    hook = "http://127.0.0.1:9/hook"  # the discard port: nothing listens, the attempt fails
    config = settings(tmp_path, policy="immediate")
    async with running(config) as (app, client):
        request = await submit(client, fal_webhook=hook)
        await client.get(request["status_url"])
        service = _webhooks(app)
        assert service.wait(10)
        (delivery,) = service.outbox.pending()
        assert len(delivery.attempts) == 1 and delivery.status == "pending"
    async with running(config) as (app, client):
        assert app.state.state_dir.restored["webhook_deliveries"] == 1
        service = _webhooks(app)
        (again,) = service.outbox.pending()
        assert again.attempts == delivery.attempts and again.body == delivery.body
        await advance(client, 7200.0)
        assert service.wait(30)
        final = service.outbox.get(request["request_id"])
        assert final is not None and final.status == "failed" and len(final.attempts) == 10
    db = sqlite3.connect(tmp_path / "state.db")
    assert db.execute("SELECT count(*) FROM deliveries").fetchone() == (0,)
    db.close()


def _webhooks(app: FastAPI) -> Any:
    from mock_server.webhooks import webhooks_of

    service = webhooks_of(engine_of(app))
    assert service is not None
    return service
