"""The journal and the issued CDN tokens, written through to the state database.

Each exchange is written as it is journaled (not fsynced: see database.py), so the journal
continues after a restart where it stopped, numbering included. Rows beyond the journal's limit
are pruned in batches, so the table stays as bounded as the journal in memory.
"""

from __future__ import annotations

from collections.abc import Iterable

from mock_server.engine.journal import Journal, JournalEntry
from mock_server.persistence.codec import decode_entry, encode_entry
from mock_server.persistence.database import StateDatabase

__all__ = ["SavedJournal", "SavedTokens", "load_journal"]

_PRUNE_EVERY = 256
"""Appends between two prunes of the rows the journal no longer keeps."""


class SavedJournal(Journal):
    def __init__(
        self,
        limit: int,
        db: StateDatabase,
        entries: Iterable[JournalEntry] = (),
        last_seq: int = 0,
    ) -> None:
        super().__init__(limit)
        self._db = db
        self._limit = limit
        self._entries.extend(entries)
        self._seq = last_seq
        self._appended = 0

    def append(self, entry: JournalEntry) -> None:
        super().append(entry)
        self._appended += 1
        with self._db.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO journal (seq, entry) VALUES (?, ?)",
                (entry.seq, encode_entry(entry)),
            )
            if self._appended % _PRUNE_EVERY == 0:
                db.execute("DELETE FROM journal WHERE seq <= ?", (entry.seq - self._limit,))

    def clear(self) -> None:
        super().clear()
        with self._db.transaction() as db:
            db.execute("DELETE FROM journal")
            # Numbering goes on after a clear (as in memory): kept for a restart to go on from.
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('journal_seq', ?)",
                (str(self._seq),),
            )


def load_journal(db: StateDatabase, limit: int) -> SavedJournal:
    """The journal's last ``limit`` entries, numbering going on from the last one written."""
    rows = db.query("SELECT entry FROM journal ORDER BY seq DESC LIMIT ?", (limit,))
    entries = [decode_entry(text) for (text,) in reversed(rows)]
    last_seq = max([int(db.get_meta("journal_seq") or 0)] + [entry.seq for entry in entries[-1:]])
    return SavedJournal(limit, db, entries, last_seq)


class SavedTokens(set[str]):
    """The CDN tokens issued: the engine adds to it; each is written as it is added."""

    def __init__(self, db: StateDatabase, tokens: Iterable[str] = ()) -> None:
        super().__init__(tokens)
        self._db = db

    def add(self, token: str) -> None:
        super().add(token)
        with self._db.transaction() as db:
            db.execute("INSERT OR IGNORE INTO tokens (token) VALUES (?)", (token,))
