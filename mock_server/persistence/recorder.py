"""Writes what the engine does to the state database, as it happens.

A :class:`~mock_server.engine.queue.JobListener`: told under the engine's lock, so rows are
written in the engine's order, and a submit's row is committed (fsynced) before the engine
returns, so before its 200 leaves. The whole job is written at each event (submit, start,
finish): an ``immediate`` job starts and finishes before its submit is told, and every write
is complete on its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from mock_server.engine.clock import VirtualClock
from mock_server.engine.ids import SeededIds
from mock_server.engine.jobs import Job
from mock_server.engine.saved import SavedState
from mock_server.persistence.blobs import DiskBlobs
from mock_server.persistence.codec import encode_job
from mock_server.persistence.database import StateDatabase
from mock_server.persistence.journal import SavedJournal, SavedTokens
from mock_server.storage import FileStore

if TYPE_CHECKING:
    from mock_server.engine.queue import QueueEngine
    from mock_server.webhooks.outbox import Delivery

__all__ = ["StateRecorder", "new_store"]

_TABLES = ("requests", "files", "journal", "tokens", "deliveries")
_SET_META = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"


class StateRecorder:
    def __init__(self, engine: QueueEngine, db: StateDatabase, blobs: DiskBlobs) -> None:
        self._engine = engine
        self._db = db
        self._blobs = blobs
        self._saved_clock = -math.inf
        self._clock_kind: str | None = None

    # -- the engine's listener ----------------------------------------------------------

    def on_submitted(self, job: Job) -> None:
        self._save(job, durable=True)  # before the submit's 200 leaves

    def on_started(self, job: Job) -> None:
        self._save(job, durable=False)  # lost, it changes nothing: a running job restarts

    def on_finished(self, job: Job) -> None:
        self._save(job, durable=True)  # before anyone is told it is COMPLETED

    def on_reset(self) -> None:
        """A reset forgets everything, here too; the engine goes on with a fresh saved state."""
        with self._db.transaction(durable=True) as db:
            for table in _TABLES:
                db.execute(f"DELETE FROM {table}")  # fixed names, no input
            db.execute("DELETE FROM meta WHERE key NOT IN ('schema_version')")
            db.execute("INSERT INTO meta (key, value) VALUES ('restarts', '0')")
        self._blobs.wipe()
        self._saved_clock, self._clock_kind = -math.inf, None
        engine = self._engine
        engine.restore(
            SavedState(
                clock=engine.clock.now(),
                jobs=[],
                completed=[],
                ids=engine.ids,
                store=new_store(engine, engine.ids, self._blobs),
                journal=SavedJournal(engine.config.journal_limit, self._db),
                tokens=SavedTokens(self._db),
            )
        )

    # -- retention (QueueEngine.retention.on_trim) --------------------------------------

    def on_trim(self, now: float, forgotten: list[str]) -> None:
        # Every engine call ends here: the one place a virtual clock's advance is seen.
        clock = self._clock_rows(now)
        if forgotten or clock:
            with self._db.transaction() as db:
                db.executemany(
                    "DELETE FROM requests WHERE request_id = ?", [(rid,) for rid in forgotten]
                )
                db.executemany(_SET_META, clock)

    # -- the webhook outbox (Outbox.observers) ------------------------------------------

    def delivery_changed(self, delivery: Delivery) -> None:
        """Pending deliveries are kept (and sent after a restart); a delivered or failed one
        is dropped (its attempts are in the journal)."""
        import json

        with self._db.transaction() as db:
            if delivery.status == "pending":
                db.execute(
                    "INSERT OR REPLACE INTO deliveries (request_id, status, delivery)"
                    " VALUES (?, ?, ?)",
                    (delivery.request_id, delivery.status, json.dumps(delivery.as_dict())),
                )
            else:
                db.execute("DELETE FROM deliveries WHERE request_id = ?", (delivery.request_id,))

    # -- inside -------------------------------------------------------------------------

    def _save(self, job: Job, durable: bool) -> None:
        if job.sync:  # a sync run's caller waits on its connection: it does not outlive us
            return
        row = (job.request_id, job.seq, job.status, job.finished_at, encode_job(job))
        clock = self._clock_rows(self._engine.clock.now())
        with self._db.transaction(durable) as db:
            db.execute(
                "INSERT OR REPLACE INTO requests (request_id, seq, status, finished_at, job)"
                " VALUES (?, ?, ?, ?, ?)",
                row,
            )
            db.executemany(_SET_META, clock)

    def _clock_rows(self, now: float) -> list[tuple[str, str]]:
        """The clock's reading to keep, if it says more than the last one kept: a virtual
        clock's when it moved; a wall clock's once per run (with the wall time, a restart
        extrapolates any later reading from it, downtime included)."""
        kind = "virtual" if isinstance(self._engine.clock, VirtualClock) else "wall"
        if kind == self._clock_kind and (kind == "wall" or now <= self._saved_clock):
            return []
        self._clock_kind, self._saved_clock = kind, now
        return [("clock", repr(now)), ("clock_kind", kind), ("wall_time", repr(time.time()))]


def new_store(engine: QueueEngine, ids: SeededIds, blobs: DiskBlobs) -> FileStore:
    """A store like the engine's own, its bytes in the state directory."""
    now: Callable[[], float] = lambda: engine.clock.now()  # noqa: E731  # late-bound clock
    return FileStore(ids.token, engine.config.max_file_bytes, now, blobs=blobs)
