"""The queue's bookkeeping, sized for a store of 100k requests: every question the engine asks on
each request (how many are ahead of this job, which clock-driven job gets the next free runner,
whose start timeout expires first, which running job ends next) costs O(log n), not a scan.

Plain data structures over :class:`~mock_server.engine.jobs.Job`; the lifecycle rules stay in
:mod:`mock_server.engine.queue`. Ties break exactly as a scan in queue order (or start order)
would, so the event order, and with it every transcript, is the same as the simple version's.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator

from mock_server.engine.jobs import Job

__all__ = ["ClockRunners", "WaitingLine"]

INF = math.inf

_COMPACT_SLACK = 1024
"""Removed entries a structure may carry before it is rebuilt from its live ones: rebuilding
costs O(live), so waiting for at least this many keeps the amortised cost per removal O(1)."""


class _Lane:
    """The waiting jobs of one priority, in arrival order, counted by a Fenwick tree: the number
    still waiting ahead of any of them is a prefix sum, O(log n) however many have left."""

    __slots__ = ("jobs", "live", "tree")

    def __init__(self) -> None:
        self.jobs: list[Job | None] = []  # slot i (1-based) holds jobs[i - 1]; None once gone
        self.tree: list[int] = [0]  # tree[i] counts the live slots in (i - lowbit(i), i]
        self.live = 0

    def append(self, job: Job) -> None:
        slot = len(self.jobs) + 1
        self.jobs.append(job)
        self.tree.append(1 + self.before(slot) - self.before(slot - (slot & -slot) + 1))
        self.live += 1
        job.line_slot = slot

    def remove(self, job: Job) -> None:
        slot, job.line_slot = job.line_slot, 0
        self.jobs[slot - 1] = None
        self.live -= 1
        while slot < len(self.tree):
            self.tree[slot] -= 1
            slot += slot & -slot
        if len(self.jobs) > 2 * self.live + _COMPACT_SLACK:
            self._rebuild()

    def before(self, slot: int) -> int:
        """Live jobs in slots below ``slot``."""
        total, slot = 0, slot - 1
        while slot > 0:
            total += self.tree[slot]
            slot -= slot & -slot
        return total

    def _rebuild(self) -> None:
        live = [job for job in self.jobs if job is not None]
        self.jobs, self.tree = list(live), [0] + [1] * len(live)
        for slot, job in enumerate(live, start=1):
            job.line_slot = slot
            parent = slot + (slot & -slot)
            if parent <= len(live):
                self.tree[parent] += self.tree[slot]


class WaitingLine:
    """Every IN_QUEUE job in queue order: normal priority before low, then first come first
    served. Jobs join when submitted and leave when they start or finish, in any order."""

    def __init__(self) -> None:
        self._normal, self._low = _Lane(), _Lane()
        # Heaps with lazy removal: an entry whose job has left is dropped when it surfaces.
        self._on_clock: list[tuple[int, int, Job]] = []  # (lane, seq, job), clock-driven jobs
        self._deadlines: list[tuple[float, int, int, Job]] = []  # (deadline, lane, seq, job)

    def __len__(self) -> int:
        return self._normal.live + self._low.live

    def __contains__(self, job: Job) -> bool:
        return job.line_slot != 0

    def join(self, job: Job) -> None:
        low = job.options.priority == "low"
        (self._low if low else self._normal).append(job)
        if job.policy.time_based:
            heapq.heappush(self._on_clock, (low, job.seq, job))
            if job.options.start_timeout is not None:
                heapq.heappush(self._deadlines, (job.start_deadline, low, job.seq, job))
        self._compact_heaps()

    def leave(self, job: Job) -> None:
        if job.line_slot:
            (self._low if job.options.priority == "low" else self._normal).remove(job)

    def ahead_of(self, job: Job) -> int:
        """Jobs waiting ahead of ``job``. One that never joined (an ``immediate`` job about to
        start) counts as the last of its priority."""
        low = job.options.priority == "low"
        lane = self._low if low else self._normal
        ahead = lane.before(job.line_slot) if job.line_slot else lane.live
        return ahead + self._normal.live if low else ahead

    def next_on_clock(self) -> Job | None:
        """The first clock-driven job in queue order: the next one a free runner takes."""
        while self._on_clock and not self._on_clock[0][-1].line_slot:
            heapq.heappop(self._on_clock)
        return self._on_clock[0][-1] if self._on_clock else None

    def first_to_expire(self) -> Job | None:
        """The clock-driven job whose start timeout expires first (earlier in line on a tie)."""
        while self._deadlines and not self._deadlines[0][-1].line_slot:
            heapq.heappop(self._deadlines)
        return self._deadlines[0][-1] if self._deadlines else None

    def _compact_heaps(self) -> None:
        # Jobs cancelled or timed out deep in a heap surface only when those ahead of them do;
        # rebuild once they outnumber the live entries, so memory stays bounded.
        limit = 2 * len(self) + _COMPACT_SLACK
        if len(self._on_clock) > limit:
            self._on_clock = [entry for entry in self._on_clock if entry[-1].line_slot]
            heapq.heapify(self._on_clock)
        if len(self._deadlines) > limit:
            self._deadlines = [entry for entry in self._deadlines if entry[-1].line_slot]
            heapq.heapify(self._deadlines)


class ClockRunners:
    """Clock-driven jobs in progress, in start order, and which of them ends next.

    A job's end time is known once its task is seen done (at once for simulated engines; when
    the worker finishes for real ones): until then it sits in ``_unsettled`` and is checked at
    every event, as the engine's scan of all running jobs used to do, so a task is stamped done
    at the same clock reading as before.
    """

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._running: dict[Job, int] = {}  # job -> start serial (insertion order: start order)
        self._unsettled: dict[Job, None] = {}
        self._ends: list[tuple[float, int, Job]] = []  # heap (end, start serial, job), lazy
        self._serial = 0

    def __len__(self) -> int:
        return len(self._running)

    def __contains__(self, job: Job) -> bool:
        return job in self._running

    def __iter__(self) -> Iterator[Job]:
        return iter(self._running)

    def add(self, job: Job) -> None:
        self._serial += 1
        self._running[job] = self._serial
        self._unsettled[job] = None

    def remove(self, job: Job) -> None:
        self._running.pop(job, None)
        self._unsettled.pop(job, None)
        if len(self._ends) > 2 * len(self._running) + _COMPACT_SLACK:
            self._ends = [entry for entry in self._ends if entry[-1] in self._running]
            heapq.heapify(self._ends)

    def next_ending(self) -> tuple[Job | None, float]:
        """The running job that ends first (started first on a tie) and when; (None, inf) when
        none has a known end."""
        for job in list(self._unsettled):
            end = self._end_time(job)
            if end != INF:
                del self._unsettled[job]
                heapq.heappush(self._ends, (end, self._running[job], job))
        while self._ends and self._ends[0][-1] not in self._running:
            heapq.heappop(self._ends)
        if not self._ends:
            return None, INF
        end, _, job = self._ends[0]
        return job, end

    def _end_time(self, job: Job) -> float:
        """When a running job completes: its simulated duration, and never before its task was
        seen done (so a real engine's job ends when its work does, not in the past)."""
        if job.task is not None:
            if not job.task.done():
                return INF
            if job.task_done_at is None:
                job.task_done_at = self._now()
        return max((job.started_at or 0.0) + job.duration, job.task_done_at or 0.0)
