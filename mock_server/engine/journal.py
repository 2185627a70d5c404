"""The request journal: every exchange the mock saw on its fal hosts, in order, and every
request it sent itself (webhook deliveries, marked :data:`OUTGOING`)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Final

OUTGOING: Final = "outgoing"
"""``extra["direction"]`` of a request the mock sent itself (a webhook delivery attempt): not an
exchange on fal's hosts, so no part of a client's transcript."""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    seq: int
    time: float
    host: str
    method: str
    path: str
    query: str
    request_headers: dict[str, str]
    request_body: str | None
    status_code: int
    response_headers: dict[str, str]
    response_body: str | None
    request_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def outgoing(self) -> bool:
        """Sent by the mock (a webhook attempt), not received on a fal host."""
        return self.extra.get("direction") == OUTGOING

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def wire_dict(self) -> dict[str, Any]:
        """What was on the wire: all but ``extra["wall_time"]``, when this machine saw it.
        Equal for equal runs (the determinism tests compare these)."""
        entry = asdict(self)
        entry["extra"].pop("wall_time", None)
        return entry


class Journal:
    """Bounded: the oldest entries go first, so a long-running mock's memory stays flat."""

    def __init__(self, limit: int) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=limit)
        self._seq = 0
        self._seq_lock = threading.Lock()  # the app's loop and the webhook thread both number

    def next_seq(self) -> int:
        with self._seq_lock:
            self._seq += 1
            return self._seq

    def append(self, entry: JournalEntry) -> None:
        self._entries.append(entry)

    def entries(self) -> list[JournalEntry]:
        return list(self._entries)

    def clear(self) -> None:
        self._entries.clear()
