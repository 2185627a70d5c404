"""A queued request and the read-only views the HTTP layer renders."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from contracts.faults import FaultPlan, FaultRule
from contracts.operations import QueueStatusName
from contracts.schemas import LipsyncInput, LogLevel
from mock_server.engine.clock import iso
from mock_server.engine.policies import Policy
from mock_server.engine.results import Failure, Outcome, RunningTask, infrastructure_failure

Priority = Literal["normal", "low"]

CANCELLED = infrastructure_failure(400, "Request was cancelled", "request_cancelled")


@dataclass(frozen=True, slots=True)
class SubmitOptions:
    priority: Priority = "normal"
    hint: str | None = None
    start_timeout: float | None = None
    webhook_url: str | None = None
    webhook_files_base: str | None = None
    """The CDN base URL the submit came in on: file URLs in the webhook's payload lead back the
    same way (None: fal's CDN host)."""
    policy: Policy | None = None
    faults: FaultPlan | None = None
    """A plan for this request alone (``X-Mock-Faults``), instead of the engine's."""


@dataclass(frozen=True, slots=True)
class LogLine:
    message: str
    level: LogLevel
    timestamp: str


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    status: QueueStatusName
    queue_position: int | None
    time: float


@dataclass(slots=True, eq=False)  # identity: the engine keeps jobs in sets and heaps
class Job:
    request_id: str
    seq: int
    app_id: str
    input: LipsyncInput
    options: SubmitOptions
    policy: Policy
    task_seed: int
    """Seeds the job's result engine; drawn at submit, after the job's timings."""
    submitted_at: float
    ready_at: float
    duration: float
    status: QueueStatusName = "IN_QUEUE"
    polls_in_state: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    task: RunningTask | None = None
    task_done_at: float | None = None
    """Clock time at which the task was first seen done (real engines finish on their own)."""
    outcome: Outcome | None = None
    # Tuples, replaced as they grow: a view shares the logs without a copy, and a job holds two
    # fewer containers for the garbage collector to walk (logs are few; growing is cheap).
    logs: tuple[LogLine, ...] = ()
    pending_logs: tuple[tuple[LogLevel, str], ...] = ()
    history: list[HistoryEntry] = field(default_factory=list)
    sync: bool = False
    fault: FaultRule | None = None
    """The job fault it ends with (chosen at submit), if any."""
    line_slot: int = 0
    """Its place in the engine's waiting line while IN_QUEUE there; 0 when not waiting."""

    @property
    def start_deadline(self) -> float:
        """When an unstarted job times out (``X-Fal-Request-Timeout``); inf without one."""
        return self.submitted_at + (self.options.start_timeout or math.inf)


@dataclass(frozen=True, slots=True)
class JobView:
    """What a status answer shows: a snapshot, safe to render outside the engine's lock."""

    request_id: str
    status: QueueStatusName
    queue_position: int | None
    logs: tuple[LogLine, ...]
    inference_time: float | None
    error: str | None
    error_type: str | None

    @classmethod
    def of(cls, job: Job, queue_position: int | None) -> JobView:
        failure = job.outcome if isinstance(job.outcome, Failure) else None
        return cls(
            request_id=job.request_id,
            status=job.status,
            queue_position=queue_position,
            logs=job.logs,
            inference_time=inference_time(job),
            error=failure.error if failure else None,
            error_type=failure.error_type if failure else None,
        )

    def log_dicts(self, start: int = 0) -> list[dict[str, Any]]:
        return [
            {
                "message": line.message,
                "level": line.level,
                "source": "USER",
                "timestamp": line.timestamp,
            }
            for line in self.logs[start:]
        ]


def reveal_logs(job: Job, fraction: float, now: float) -> None:
    """Show the engine's log lines progressively, up to ``fraction`` of those known: logs only
    ever grow."""
    if job.task is not None and (taken := job.task.take_logs()):
        job.pending_logs += tuple(taken)
    total = len(job.logs) + len(job.pending_logs)
    target = min(total, math.ceil(total * min(max(fraction, 0.0), 1.0)))
    shown = min(target - len(job.logs), len(job.pending_logs))
    if shown > 0:
        stamp = iso(now)
        job.logs += tuple(LogLine(msg, level, stamp) for level, msg in job.pending_logs[:shown])
        job.pending_logs = job.pending_logs[shown:]


def inference_time(job: Job) -> float | None:
    if job.started_at is None or job.finished_at is None:
        return None
    if job.policy.time_based:
        return round(job.finished_at - job.started_at, 3)
    return job.duration


class JobListener(Protocol):
    """What the engine tells of its jobs, in order, under its lock."""

    def on_submitted(self, job: Job) -> None: ...
    def on_started(self, job: Job) -> None: ...
    def on_finished(self, job: Job) -> None: ...
    def on_reset(self) -> None: ...
