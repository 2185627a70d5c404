"""Which requests get which fault: a :class:`~contracts.faults.FaultPlan` played deterministically.

Each rule counts the requests it matches. The first ``after`` are spared; each later one is hit
with probability ``rate``, drawn from a generator seeded by the plan's seed and the rule itself,
until the rule has hit ``times``. So the same plan and the same sequence of requests give the
same faults, and rules do not disturb each other's draws (adding a rule never changes which
requests an earlier rule hits, except those the earlier one now takes first).

Exchange faults are answered by :mod:`mock_server.http.faults` instead of the real response; a
job fault is chosen at submit and changes how the job ends (:func:`faulted_outcome`).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from contracts.faults import FaultPlan, FaultRule
from mock_server.engine.results import Failure, Outcome, infrastructure_failure

__all__ = ["FaultInjector", "faulted_outcome"]


@dataclass(slots=True)
class _RuleState:
    rule: FaultRule
    rng: random.Random
    seen: int = 0
    hits: int = 0

    def draw(self) -> bool:
        """Count one matching request; True when it is hit."""
        self.seen += 1
        if self.seen <= self.rule.after:
            return False
        if self.rule.times is not None and self.hits >= self.rule.times:
            return False
        # Drawn even at rate 1, so a rule's draws line up with its matches whatever its rate.
        if self.rng.random() >= self.rule.rate:
            return False
        self.hits += 1
        return True


class FaultInjector:
    """A plan with its counters. Thread-safe: the HTTP layer and the engine both ask."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self.plan = plan or FaultPlan.none()
        self._lock = threading.Lock()
        # Seeded by the rule itself (and its rank among identical rules), not its index: adding
        # or removing another rule leaves this rule's draws as they were.
        self._states = []
        for index, rule in enumerate(self.plan.rules):
            twins = self.plan.rules[:index].count(rule)
            seed = f"fault:{self.plan.seed}:{rule.model_dump_json()}:{twins}"
            self._states.append(_RuleState(rule, random.Random(seed)))
        self._exchange = [s for s in self._states if not s.rule.is_job_fault]
        self._job = [s for s in self._states if s.rule.is_job_fault]

    @property
    def has_exchange_faults(self) -> bool:
        return bool(self._exchange)

    def exchange_fault(self, operation_id: str) -> FaultRule | None:
        """The fault to answer a call of ``operation_id`` with, if any (first rule that hits)."""
        if not self._exchange:
            return None
        with self._lock:
            for state in self._exchange:
                if operation_id in state.rule.operations and state.draw():
                    return state.rule
        return None

    def job_fault(self) -> FaultRule | None:
        """The fault a newly submitted job ends with, if any."""
        if not self._job:
            return None
        with self._lock:
            for state in self._job:
                if state.draw():
                    return state.rule
        return None

    def counters(self) -> list[dict[str, int]]:
        """How often each rule matched and hit (the control plane shows them)."""
        with self._lock:
            return [{"seen": s.seen, "hits": s.hits} for s in self._states]


def faulted_outcome(rule: FaultRule | None, outcome: Outcome) -> Outcome:
    """How a job with fault ``rule`` ends instead of ``outcome`` (its real work's outcome).

    The job still goes IN_QUEUE -> IN_PROGRESS -> COMPLETED on its normal schedule; only the
    ending differs, as on fal, where a runner failure or a timeout is reported on a COMPLETED
    status with ``error`` and ``error_type`` and answered by the result fetch.
    """
    if rule is None:
        return outcome
    if rule.kind == "runner_error":
        detail = f"Runner failed: {rule.error_type.replace('_', ' ')}"
        return infrastructure_failure(503, detail, rule.error_type)
    if rule.kind == "user_timeout":
        detail = "Request timed out: it ran past its X-Fal-Request-Timeout"
        return infrastructure_failure(
            504, detail, "request_timeout", {"x-fal-request-timeout-type": "user"}
        )
    if rule.kind == "result_422":
        msg = "Unsupported video format (injected by the mock's result_422 fault)"
        item = {"loc": ["body", "video_url"], "msg": msg, "type": "unsupported_video_format"}
        return Failure(422, {"detail": [item]}, msg)
    raise ValueError(f"{rule.kind!r} is not a job fault")
