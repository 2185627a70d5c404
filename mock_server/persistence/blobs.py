"""File bytes on disk: ``<state>/blobs/<sha256>``, one per distinct content.

A blob is written to a temporary file, fsynced, renamed into place and its directory fsynced
(no fsync with ``--state-sync normal``: a killed process loses nothing the kernel was given);
only then is the file recorded in the database (a durable transaction), and only then does the
store answer with it. So a crash at any instant leaves either no record (and at most an
orphan blob or temporary file, removed at the next start) or a record whose bytes are whole.
Forgetting goes the other way round: the record first, the blob after.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from mock_server.persistence.database import StateDatabase
from mock_server.storage import StoredFile

__all__ = ["DiskBlobs", "load_files"]

_TEMP_SUFFIX = ".partial"


class DiskBlobs:
    """:class:`~mock_server.storage.Blobs` kept in a state directory."""

    def __init__(self, db: StateDatabase, directory: Path) -> None:
        self._db = db
        self._dir = directory
        self._dir.mkdir(parents=True, exist_ok=True)

    def save(self, stored: StoredFile, stored_at: float, data: bytes, new_blob: bool) -> None:
        if new_blob or not (self._dir / stored.digest).exists():
            self._write(stored.digest, data)
        with self._db.transaction(durable=True) as db:
            db.execute(
                "INSERT OR REPLACE INTO files"
                " (file_id, file_name, content_type, size, digest, stored_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    stored.file_id,
                    stored.file_name,
                    stored.content_type,
                    stored.size,
                    stored.digest,
                    stored_at,
                ),
            )

    def load(self, digest: str) -> bytes:
        return (self._dir / digest).read_bytes()

    def dropped(self, files: list[StoredFile], digests: list[str]) -> None:
        with self._db.transaction() as db:
            db.executemany("DELETE FROM files WHERE file_id = ?", [(f.file_id,) for f in files])
        for digest in digests:
            (self._dir / digest).unlink(missing_ok=True)

    def wipe(self) -> None:
        """Remove every blob (the records are wiped by the caller, first)."""
        for path in self._dir.iterdir():
            path.unlink(missing_ok=True)

    def _write(self, digest: str, data: bytes) -> None:
        temp = self._dir / f"{digest}.{os.getpid()}.{threading.get_ident()}{_TEMP_SUFFIX}"
        with open(temp, "wb") as out:
            out.write(data)
            if self._db.fsync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(temp, self._dir / digest)
        if self._db.fsync:
            _fsync_directory(self._dir)


def load_files(db: StateDatabase, directory: Path) -> list[tuple[StoredFile, float]]:
    """The recorded files whose bytes are on disk, oldest first; removes temporary files,
    blobs no record names, and records whose blob is missing (none, unless the directory was
    tampered with)."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = db.query(
        "SELECT file_id, file_name, content_type, size, digest, stored_at FROM files"
        " ORDER BY stored_at, rowid"
    )
    on_disk = {path.name for path in directory.iterdir()}
    files = [(StoredFile(*row[:5]), float(row[5])) for row in rows]
    kept = [(stored, at) for stored, at in files if stored.digest in on_disk]
    lost = [stored.file_id for stored, _ in files if stored.digest not in on_disk]
    if lost:
        with db.transaction() as conn:
            conn.executemany("DELETE FROM files WHERE file_id = ?", [(f,) for f in lost])
    named = {stored.digest for stored, _ in kept}
    for name in on_disk - named:
        (directory / name).unlink(missing_ok=True)
    return kept


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
