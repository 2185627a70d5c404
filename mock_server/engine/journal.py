"""The request journal: every exchange the mock saw on its fal hosts, in order."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any


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

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def append(self, entry: JournalEntry) -> None:
        self._entries.append(entry)

    def entries(self) -> list[JournalEntry]:
        return list(self._entries)

    def clear(self) -> None:
        self._entries.clear()
