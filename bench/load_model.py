"""What one round of the load test is asked to do (:class:`Plan`) and what it found
(:class:`RoundReport`): plain data, shared by the clients (``load_driver``) and the verdict
(``load_report``)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Final

__all__ = ["CATEGORIES", "Failure", "Plan", "RoundReport", "percentile"]

CATEGORIES: Final = ("lost", "5xx", "incomplete", "wrong answer", "held stream", "deadline")
"""Failure kinds (the session adds ``deadline`` to a round the deadline cut short)."""
EXAMPLES: Final = 5


@dataclass(frozen=True, slots=True)
class Plan:
    clients: int = 200
    lifecycles: int = 2_000
    held_streams: int = 500
    sse_share: float = 0.25
    """Share of lifecycles that stream their status instead of polling it."""
    poll_interval: float = 0.1
    lifecycle_timeout: float = 60.0
    """A lifecycle not done in this long is reported incomplete (and given up)."""
    open_timeout: float = 120.0
    """Longest wait for every held stream's first event, and for them all to close after
    their cancel."""

    def streams(self, number: int) -> bool:
        """Whether lifecycle ``number`` streams: spread evenly, the same ones every run."""
        return math.floor((number + 1) * self.sse_share) > math.floor(number * self.sse_share)


@dataclass(slots=True)
class Failure:
    count: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass(slots=True)
class RoundReport:
    plan: Plan
    submitted: dict[str, str] = field(default_factory=dict)
    """Every request id a submit answered, and what it was for: poll, stream or held."""
    completed: dict[str, float] = field(default_factory=dict)
    """Ids the server answered COMPLETED (status, stream event), and when (perf_counter)."""
    lifecycles_done: int = 0
    held_opened: int = 0
    held_completed: int = 0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    codes: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    failures: dict[str, Failure] = field(default_factory=dict)
    lost: set[str] = field(default_factory=set)
    """Ids a submit gave out that the server then did not know (404, or not in its list)."""
    pending_at: dict[str, float] = field(default_factory=dict)
    """For each id, when the client last sent a request whose answer showed it not yet
    COMPLETED (perf_counter): it completed on the server after that, so its retention cannot
    have passed before this plus the retention."""
    queue_positions: dict[str, int] = field(default_factory=dict)
    """Held requests' queue positions at submit: they are cancelled from the back."""
    seconds: float = 0.0
    """The lifecycles' wall time (held streams open before, cancelled after)."""
    requests_in_lifecycles: int = 0

    def fail(self, category: str, message: str) -> None:
        failure = self.failures.setdefault(category, Failure())
        failure.count += 1
        if len(failure.examples) < EXAMPLES:
            failure.examples.append(message)

    def failed(self, category: str) -> int:
        return self.failures[category].count if category in self.failures else 0

    @property
    def passed(self) -> bool:
        return not self.failures and self.lifecycles_done == self.plan.lifecycles

    def answers(self) -> int:
        return sum(sum(counter.values()) for counter in self.codes.values())

    def server_errors(self) -> int:
        return sum(n for c in self.codes.values() for code, n in c.items() if code >= 500)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)), 1) - 1]
