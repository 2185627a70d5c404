"""The ``reference`` engine: the CPU reference lip-sync, run in the server's worker processes.

A job's task is a ticket in a :class:`~mock_server.engine.workers.WorkerPool` of ``runners``
processes, so the event loop never decodes or encodes anything. Inputs the job names in the
mock's own storage are copied out here (the store lives in this process); everything else is
resolved in the worker. The output lands in a per-job work directory and is moved into the
store when the queue collects the outcome; the directory is removed on every way out.

Outcomes, as fal answers them:

- success: ``{"video": File}`` with ``video/mp4``, a file name and the true size;
- a bad input: COMPLETED with ``error``; the result answers 422 ``{"detail": [{"loc": ["body",
  field], "msg", "type"}]}``;
- the worker died under the job: 503 ``runner_disconnected`` (fal's infrastructure error);
- an exception in the job: 500 ``internal_error`` (a bug in the mock, reported, not hidden).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any, Final

from contracts.schemas import LogLevel
from mock_server.engine.jobs import CANCELLED
from mock_server.engine.results import (
    EngineOptions,
    Failure,
    JobSpec,
    Outcome,
    RunningTask,
    Success,
    infrastructure_failure,
)
from mock_server.engine.workers import Ticket, WorkerPool, shared_pool

__all__ = ["JOB_FUNCTION", "ReferenceEngine"]

JOB_FUNCTION: Final = "mock_server.lipsync.job:run_reference_job"
CONTENT_TYPE: Final = "video/mp4"


class ReferenceEngine:
    name = "reference"
    simulated_duration = False

    def __init__(self, options: EngineOptions, pool: WorkerPool | None = None) -> None:
        from mock_server.lipsync.backends import LANDMARKS_MISSING, available_backends

        # Refuse at startup, not as a confusing failure of every job later.
        backend = options.lipsync.tracker_backend
        if backend not in available_backends():
            raise ValueError(LANDMARKS_MISSING if backend == "landmarks" else backend)
        self._options = options
        self._pool = pool

    @property
    def pool(self) -> WorkerPool:
        if self._pool is None:
            self._pool = shared_pool(self._options.runners)
        return self._pool

    def start(self, spec: JobSpec) -> RunningTask:
        work_dir = Path(tempfile.mkdtemp(prefix=f"fal-mock-{spec.request_id[:8]}-"))
        stored = {}
        for url in (spec.input.video_url, spec.input.audio_url):
            found = spec.store.lookup_ref(url)
            held = None if found is None else spec.store.get(found.file_id)
            if held is not None:
                stored[url] = held
        options = self._options.lipsync
        payload: dict[str, Any] = {
            "work_dir": str(work_dir),
            "video_url": spec.input.video_url,
            "audio_url": spec.input.audio_url,
            "sync_mode": spec.input.sync_mode,
            "backend": options.tracker_backend,
            "stored": stored,
            "input_config": {
                "allow_remote": options.allow_remote_inputs,
                "allow_private": options.allow_private_inputs,
                "allowed_hosts": options.allowed_input_hosts,
                "file_root": None if options.input_root is None else Path(options.input_root),
                "max_bytes": options.max_input_bytes,
                "max_seconds": options.max_input_seconds,
            },
        }
        ticket = self.pool.submit(JOB_FUNCTION, payload)
        return _ReferenceTask(self.pool, ticket, spec, work_dir)


@dataclasses.dataclass(eq=False)
class _ReferenceTask:
    pool: WorkerPool
    ticket: Ticket
    spec: JobSpec
    work_dir: Path
    _outcome: Outcome | None = None

    def done(self) -> bool:
        return self.ticket.finished()

    def take_logs(self) -> list[tuple[LogLevel, str]]:
        return [(_level(level), text) for level, text in self.ticket.take_logs()]

    def cancel(self) -> None:
        self.pool.cancel(self.ticket)
        # The worker removes its work dir when it stops; this covers a worker that was killed.
        self.ticket.on_finish(lambda: shutil.rmtree(self.work_dir, ignore_errors=True))

    def outcome(self) -> Outcome:
        if self._outcome is None:
            try:
                self._outcome = self._collect()
            finally:
                shutil.rmtree(self.work_dir, ignore_errors=True)
        return self._outcome

    def _collect(self) -> Outcome:
        ticket = self.ticket
        if ticket.state == "done":
            value: dict[str, Any] = ticket.value
            if value["kind"] == "input_error":
                return Failure(422, value["body"], value["msg"])
            data = Path(value["path"]).read_bytes()
            name = f"lipsync-{self.spec.request_id[:8]}.mp4"
            stored = self.spec.store.put(data, CONTENT_TYPE, name)
            return Success({"video": stored.as_file()})
        if ticket.disconnected:
            detail = f"Runner disconnected: {ticket.failure}"
            return infrastructure_failure(503, detail, "runner_disconnected")
        if ticket.state == "cancelled":
            return CANCELLED
        detail = f"The reference engine failed: {ticket.failure}"
        return infrastructure_failure(500, detail, "internal_error")


def _level(level: str) -> LogLevel:
    return level if level in ("INFO", "WARN", "ERROR", "DEBUG", "STDERR", "STDOUT") else "INFO"  # type: ignore[return-value]
