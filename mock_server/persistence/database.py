"""The state directory's SQLite database: one connection, one lock, short transactions.

WAL journaling: a reader never waits for the writer, and a transaction is in the log file
before ``commit`` returns, so a process killed at any instant (SIGKILL, OOM, a crash) leaves
every committed transaction and no half of any other. With ``sync="full"`` (the default),
``durable`` transactions (a submit, an upload, a request completing) are also fsynced before
they return (``synchronous=FULL``), so they survive a power cut; the others (the journal, a job
starting, the clock) use ``synchronous=NORMAL``: in WAL that still survives a killed process, and
a power cut loses at most the last of them, never the consistency. An fsync of the log covers
every transaction before it, so a durable commit also makes the ones before it durable. With
``sync="normal"`` nothing is fsynced: a killed process still loses nothing.

The log is checkpointed into the database every 1000 pages (SQLite's default) and truncated
back to :data:`WAL_SIZE_LIMIT` after, so it stays bounded on a mock left running.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Literal

__all__ = ["SCHEMA_VERSION", "StateDatabase"]

SCHEMA_VERSION: Final = 1
WAL_SIZE_LIMIT: Final = 8 * 1024 * 1024

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    status TEXT NOT NULL,
    finished_at REAL,
    job TEXT NOT NULL          -- the whole job as JSON (codec.py)
);
CREATE TABLE IF NOT EXISTS files (
    file_id TEXT PRIMARY KEY,
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    digest TEXT NOT NULL,      -- the blob's name under blobs/
    stored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY,
    entry TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS deliveries (
    request_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    delivery TEXT NOT NULL     -- Delivery.as_dict() as JSON (mock_server/webhooks/outbox.py)
);
"""


class StateDatabase:
    def __init__(self, path: Path, sync: Literal["full", "normal"] = "full") -> None:
        self.path = path
        self.fsync = sync == "full"
        self._durable_level = "FULL" if self.fsync else "NORMAL"
        # Autocommit mode: transactions are begun and ended here, explicitly. One connection
        # for every thread (the app's loop, the webhook dispatcher), serialised by the lock.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._synchronous = ""
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            self._set_synchronous("NORMAL")
            self._db.executescript(_SCHEMA)
        version = self.get_meta("schema_version")
        if version is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION))
        elif int(version) != SCHEMA_VERSION:
            raise ValueError(
                f"{path} holds state of schema version {version}; this fal-lipsync-mock reads "
                f"version {SCHEMA_VERSION}: use another --state-dir (or remove this one)"
            )

    @contextmanager
    def transaction(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._lock:
            self._set_synchronous(self._durable_level if durable else "NORMAL")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()

    def get_meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str, durable: bool = False) -> None:
        with self.transaction(durable) as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _set_synchronous(self, level: str) -> None:
        # A pragma, not I/O: switched per transaction, and only when it changes.
        if level != self._synchronous:
            self._db.execute(f"PRAGMA synchronous={level}")
            self._synchronous = level
