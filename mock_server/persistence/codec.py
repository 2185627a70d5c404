"""Jobs, outcomes and journal entries as JSON, and back: what the state database holds.

Every field of :class:`~mock_server.engine.jobs.Job` is either saved (:data:`SAVED_JOB_FIELDS`)
or deliberately not (:data:`UNSAVED_JOB_FIELDS`: what a job restarted from its saved state
rebuilds); a test fails when a new field is in neither, so nobody adds one that silently
vanishes across a restart. :class:`~mock_server.engine.jobs.SubmitOptions` is saved field by
field, so a new plain option needs nothing here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any, Final

from contracts.faults import FaultPlan, FaultRule
from contracts.schemas import LipsyncInput
from mock_server.engine.jobs import HistoryEntry, Job, LogLine, SubmitOptions
from mock_server.engine.journal import JournalEntry
from mock_server.engine.policies import Policy
from mock_server.engine.results import Failure, Outcome, Success

__all__ = [
    "SAVED_JOB_FIELDS",
    "UNSAVED_JOB_FIELDS",
    "decode_entry",
    "decode_job",
    "encode_entry",
    "encode_job",
]

SAVED_JOB_FIELDS: Final = frozenset(
    {
        "request_id",
        "seq",
        "app_id",
        "input",
        "options",
        "policy",
        "task_seed",
        "submitted_at",
        "ready_at",
        "duration",
        "status",
        "started_at",
        "finished_at",
        "outcome",
        "logs",
        "history",
        "fault",
    }
)
UNSAVED_JOB_FIELDS: Final = frozenset(
    {
        "task",  # the running work: a restarted job starts it again
        "task_done_at",  # when that work was seen done
        "pending_logs",  # its log lines not shown yet (a completed job has none)
        "polls_in_state",  # polls seen in the current state: counted again from zero
        "sync",  # sync runs are not saved: their caller's connection died with the process
        "line_slot",  # the place in the waiting line: the engine gives it on restore
    }
)

_OPTION_DECODERS: Final[dict[str, Callable[[Any], Any]]] = {
    "policy": Policy.parse,
    "faults": FaultPlan.model_validate,
}


def encode_job(job: Job) -> str:
    return json.dumps(
        {
            "request_id": job.request_id,
            "seq": job.seq,
            "app_id": job.app_id,
            "input": job.input.model_dump(mode="json"),
            "options": _encode_options(job.options),
            "policy": str(job.policy),
            "task_seed": job.task_seed,
            "submitted_at": job.submitted_at,
            "ready_at": job.ready_at,
            "duration": job.duration,
            "status": job.status,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "outcome": _encode_outcome(job.outcome),
            "logs": [[line.message, line.level, line.timestamp] for line in job.logs],
            "history": [[e.status, e.queue_position, e.time] for e in job.history],
            "fault": None if job.fault is None else job.fault.model_dump(mode="json"),
        },
        separators=(",", ":"),
        # An output that is not JSON (a test engine's bytes) is kept as its description: the
        # result route could not answer it as JSON either.
        default=_not_json,
    )


def decode_job(text: str) -> Job:
    doc = json.loads(text)
    return Job(
        request_id=doc["request_id"],
        seq=doc["seq"],
        app_id=doc["app_id"],
        input=LipsyncInput.model_validate(doc["input"]),
        options=_decode_options(doc["options"]),
        policy=Policy.parse(doc["policy"]),
        task_seed=doc["task_seed"],
        submitted_at=doc["submitted_at"],
        ready_at=doc["ready_at"],
        duration=doc["duration"],
        status=doc["status"],
        started_at=doc["started_at"],
        finished_at=doc["finished_at"],
        outcome=_decode_outcome(doc["outcome"]),
        logs=tuple(LogLine(message, level, stamp) for message, level, stamp in doc["logs"]),
        history=[HistoryEntry(status, position, time) for status, position, time in doc["history"]],
        fault=None if doc.get("fault") is None else FaultRule.model_validate(doc["fault"]),
    )


def encode_entry(entry: JournalEntry) -> str:
    return json.dumps(entry.as_dict(), separators=(",", ":"), default=_not_json)


def decode_entry(text: str) -> JournalEntry:
    doc = json.loads(text)
    known = {f.name for f in dataclasses.fields(JournalEntry)}
    return JournalEntry(**{k: v for k, v in doc.items() if k in known})


def _not_json(value: object) -> str:
    return f"<not JSON: {type(value).__name__}>"


def _encode_options(options: SubmitOptions) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    for name in (f.name for f in dataclasses.fields(SubmitOptions)):
        value = getattr(options, name)
        if isinstance(value, Policy):
            value = str(value)
        elif isinstance(value, FaultPlan):
            value = value.model_dump(mode="json")
        encoded[name] = value
    return encoded


def _decode_options(doc: dict[str, Any]) -> SubmitOptions:
    known = {f.name for f in dataclasses.fields(SubmitOptions)}
    values = {}
    for name, value in doc.items():
        if name in known:  # an option a later version saved is dropped, not an error
            decode = _OPTION_DECODERS.get(name)
            values[name] = value if value is None or decode is None else decode(value)
    return SubmitOptions(**values)


def _encode_outcome(outcome: Outcome | None) -> dict[str, Any] | None:
    if isinstance(outcome, Success):
        return {"success": outcome.output}
    if isinstance(outcome, Failure):
        return {"failure": dataclasses.asdict(outcome)}
    return None


def _decode_outcome(doc: dict[str, Any] | None) -> Outcome | None:
    if doc is None:
        return None
    if "success" in doc:
        return Success(doc["success"])
    return Failure(**doc["failure"])
