"""Clocks: virtual (moved only on request, so timings cost no wall time) and wall."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

EPOCH: Final = datetime(2025, 1, 1, tzinfo=UTC)
"""Time zero of every clock: log timestamps and journal times are deterministic offsets from it."""


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since EPOCH."""
        ...


class VirtualClock:
    """Stands still until advanced: tests play minutes of queue time in microseconds."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the clock never goes backwards")
        self._now += seconds
        return self._now


class WallClock:
    """Real elapsed time, continuing from ``start`` so switching clocks never goes backwards."""

    def __init__(self, start: float = 0.0) -> None:
        self._origin = time.monotonic() - start

    def now(self) -> float:
        return time.monotonic() - self._origin


def iso(seconds: float) -> str:
    """An ISO-8601 timestamp (with offset) for a clock reading."""
    return (EPOCH + timedelta(seconds=seconds)).isoformat(timespec="microseconds")
