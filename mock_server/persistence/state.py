"""Opening a state directory: take up what an earlier run left, then keep writing to it.

``<dir>/state.db`` (SQLite, WAL) holds requests, files' records, the journal, issued CDN tokens
and pending webhook deliveries; ``<dir>/blobs/`` the files' bytes; ``<dir>/lock`` keeps a second
mock off the same directory (the lock dies with its process, however it dies).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mock_server.engine.ids import SeededIds
from mock_server.engine.jobs import Job
from mock_server.engine.journal import JournalEntry
from mock_server.engine.retention import output_file_ids
from mock_server.engine.saved import SavedState
from mock_server.persistence.blobs import DiskBlobs, load_files
from mock_server.persistence.codec import decode_job
from mock_server.persistence.database import StateDatabase
from mock_server.persistence.journal import SavedTokens, load_journal
from mock_server.persistence.recorder import StateRecorder, new_store
from mock_server.storage import StoredFile

if TYPE_CHECKING:
    from mock_server.engine.queue import QueueEngine

__all__ = ["StateDirectory", "open_state"]


@dataclass(slots=True)
class StateDirectory:
    """An open state directory, and what was found in it."""

    path: Path
    db: StateDatabase
    recorder: StateRecorder
    restarts: int
    """Times this directory was opened before (0: a fresh one)."""
    restored: dict[str, int] = field(default_factory=dict)
    """What the earlier runs left, by kind: queued, running, completed, files, journal, ..."""
    _lock_fd: int = -1

    def summary(self) -> str:
        """One line for the banner: where, and what an earlier run left."""
        if not self.restarts:
            return f"state: {self.path} (new)"
        found = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in self.restored.items())
        return f"state: {self.path} (restart {self.restarts}; found {found})"

    def close(self) -> None:
        """Stop writing (the engine must not be used after) and let another mock open it."""
        self.db.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = -1


def open_state(
    engine: QueueEngine, path: Path, sync: Literal["full", "normal"] = "full"
) -> StateDirectory:
    """Give a fresh engine the state ``path`` holds (none: a new directory) and write every
    change to it from now on; ``sync`` as database.py says. ValueError when the directory
    cannot be used."""
    if engine.request_ids() or len(engine.store):
        raise ValueError("a state directory is opened on a fresh engine, before it serves")
    try:
        path.mkdir(parents=True, exist_ok=True)
        lock_fd = _take_lock(path / "lock")
    except OSError as exc:
        raise ValueError(f"cannot use {path} as a state directory: {exc}") from None
    db: StateDatabase | None = None
    try:
        db = StateDatabase(path / "state.db", sync)
        return _take_up(engine, path, db, lock_fd)
    except BaseException as exc:
        if db is not None:
            db.close()
        os.close(lock_fd)
        if isinstance(exc, ValueError | OSError | sqlite3.Error):  # a bad directory, said so
            raise ValueError(f"the state directory {path} cannot be used: {exc}") from exc
        raise


def _take_up(engine: QueueEngine, path: Path, db: StateDatabase, lock_fd: int) -> StateDirectory:
    opened = db.get_meta("restarts")
    restarts = 0 if opened is None else int(opened) + 1
    # Kept (fsynced) before any id is drawn: a run that dies early never reuses a stream.
    db.set_meta("restarts", str(restarts), durable=True)
    ids = SeededIds(engine.config.seed, restarts)
    blobs = DiskBlobs(db, path / "blobs")
    store = new_store(engine, ids, blobs)
    files = load_files(db, path / "blobs")
    store.restore(files)
    jobs = [decode_job(text) for (text,) in db.query("SELECT job FROM requests ORDER BY seq")]
    completed = sorted(
        (job for job in jobs if job.status == "COMPLETED"),
        key=lambda job: (job.finished_at or 0.0, job.seq),
    )
    for job in completed:  # a completed request holds its output files again
        for file_id in output_file_ids(job.outcome, store):
            store.hold(file_id, job.request_id)
    journal = load_journal(db, engine.config.journal_limit)
    tokens = SavedTokens(db, (token for (token,) in db.query("SELECT token FROM tokens")))
    saved = SavedState(
        clock=_clock_to_go_on_from(db, jobs, journal.entries()[-1:], files),
        jobs=jobs,
        completed=[job.request_id for job in completed],
        ids=ids,
        store=store,
        journal=journal,
        tokens=tokens,
    )
    recorder = StateRecorder(engine, db, blobs)
    engine.listeners.append(recorder)
    engine.retention.on_trim.append(recorder.on_trim)
    engine.restore(saved)  # running jobs start again here, and are written as started
    deliveries = _restore_deliveries(engine, db, recorder)
    restored = {
        "queued": sum(job.status == "IN_QUEUE" for job in jobs),
        "running": sum(job.status == "IN_PROGRESS" for job in jobs),
        "completed": len(completed),
        "files": len(files),
        "journal_entries": len(journal.entries()),
        "webhook_deliveries": deliveries,
    }
    return StateDirectory(path, db, recorder, restarts, restored, lock_fd)


def _clock_to_go_on_from(
    db: StateDatabase,
    jobs: list[Job],
    entries: list[JournalEntry],
    files: list[tuple[StoredFile, float]],
) -> float:
    """Never behind anything saved, so the clock never goes back; a wall clock also counts the
    time the mock was down (results expire, and start timeouts run out, as they would have)."""
    saved = float(db.get_meta("clock") or 0.0)
    wall_time = db.get_meta("wall_time")
    if db.get_meta("clock_kind") == "wall" and wall_time is not None:
        saved += max(0.0, time.time() - float(wall_time))
    seen = [saved, *(entry.time for entry in entries), *(at for _, at in files[-1:])]
    for job in jobs:
        seen += [t for t in (job.submitted_at, job.started_at, job.finished_at) if t is not None]
        seen += [entry.time for entry in job.history[-1:]]
    return max(seen)


def _restore_deliveries(engine: QueueEngine, db: StateDatabase, recorder: StateRecorder) -> int:
    """Put pending webhook deliveries back in the engine's outbox, and keep the outbox's changes
    from now on. Without a webhook service they stay in the database for a run with one."""
    from mock_server.webhooks.outbox import Delivery
    from mock_server.webhooks.service import webhooks_of

    service = webhooks_of(engine)
    if service is None:
        return 0
    rows = db.query("SELECT delivery FROM deliveries")
    deliveries = sorted(
        (Delivery.from_dict(json.loads(text)) for (text,) in rows),
        key=lambda delivery: (delivery.finished_at, delivery.request_id),
    )
    service.restore(deliveries)
    service.outbox.observers.append(recorder.delivery_changed)
    return len(deliveries)


def _take_lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ValueError(
            f"the state directory {path.parent} is in use by another fal-mock (it holds {path})"
        ) from None
    return fd
