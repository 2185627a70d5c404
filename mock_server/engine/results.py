"""Result engines: what produces a job's output. One interface, chosen per server or request.

A job's engine task starts when a runner picks the job up (IN_PROGRESS) and the job can only
complete once the task is done, so a slow engine (the CPU reference lip-sync, run in worker
processes) keeps a job IN_PROGRESS exactly as long as it really takes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from contracts.schemas import LipsyncInput, LogLevel
from mock_server.storage import FileStore


@dataclass(frozen=True, slots=True)
class Success:
    output: dict[str, Any]
    """The JSON output; stored files are referred to by ``StoredFile.ref``."""


@dataclass(frozen=True, slots=True)
class Failure:
    """How the result fetch answers a job that failed, and what its status says."""

    status_code: int
    body: dict[str, Any]
    error: str
    error_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def infrastructure_failure(
    status_code: int, detail: str, error_type: str, headers: dict[str, str] | None = None
) -> Failure:
    """fal's infrastructure error: ``{"detail", "error_type"}`` and ``X-Fal-Error-Type``."""
    return Failure(
        status_code,
        {"detail": detail, "error_type": error_type},
        detail,
        error_type,
        {**(headers or {}), "x-fal-error-type": error_type},
    )


# Failures the queue reports itself rather than an engine: a job that did not start in time, an
# engine that raised. Here, next to Failure, so queue.py holds only the lifecycle.
def start_timeout_failure(seconds: float) -> Failure:
    detail = f"Request timed out: it did not start within {seconds:g} s (X-Fal-Request-Timeout)"
    return infrastructure_failure(
        504, detail, "request_timeout", {"x-fal-request-timeout-type": "user"}
    )


def engine_crash_failure(exc: Exception) -> Failure:
    detail = f"The result engine failed: {type(exc).__name__}: {exc}"
    return infrastructure_failure(500, detail, "internal_error")


Outcome = Success | Failure


@dataclass(frozen=True, slots=True)
class LipsyncOptions:
    """What the reference engine may read and how it tracks mouths (plain values: they travel
    to worker processes)."""

    allow_remote_inputs: bool = False
    allow_private_inputs: bool = False
    allowed_input_hosts: frozenset[str] = frozenset()
    input_root: str | None = None
    max_input_bytes: int = 256 * 1024 * 1024
    max_input_seconds: float = 600.0
    tracker_backend: str = "haar"


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """What an engine factory is given: the server's seed and the settings engines read."""

    seed: int = 0
    runners: int = 2
    lipsync: LipsyncOptions = field(default_factory=LipsyncOptions)


@dataclass(frozen=True, slots=True)
class JobSpec:
    request_id: str
    seed: int
    input: LipsyncInput
    store: FileStore


class RunningTask(Protocol):
    def done(self) -> bool: ...

    def outcome(self) -> Outcome:
        """The outcome; only called once ``done()``."""
        ...

    def cancel(self) -> None: ...

    def take_logs(self) -> list[tuple[LogLevel, str]]:
        """Log lines written since the last call (progress, warnings)."""
        ...


class ResultEngine(Protocol):
    name: str
    simulated_duration: bool
    """True: jobs also take the policy's simulated inference time. False: the engine does real
    work and a job lasts exactly as long as its task (the reference lip-sync)."""

    def start(self, spec: JobSpec) -> RunningTask: ...


@dataclass(slots=True)
class FinishedTask:
    """A task that was done the moment it started."""

    result: Outcome
    logs: list[tuple[LogLevel, str]]

    def done(self) -> bool:
        return True

    def outcome(self) -> Outcome:
        return self.result

    def cancel(self) -> None:
        return None

    def take_logs(self) -> list[tuple[LogLevel, str]]:
        taken, self.logs = self.logs, []
        return taken


class PlaceholderEngine:
    """A small deterministic mp4 (H.264 + AAC), made once per seed without reading the inputs:
    for client tests that care about the protocol, not the pixels."""

    name = "placeholder"
    simulated_duration = True

    def __init__(self, options: EngineOptions) -> None:
        self._seed = options.seed

    def start(self, spec: JobSpec) -> RunningTask:
        import mock_server.media.placeholder as placeholder  # PyAV is heavy: import on use

        data = placeholder.make_placeholder_mp4(self._seed)
        stored = spec.store.put(
            data, placeholder.CONTENT_TYPE, f"lipsync-{spec.request_id[:8]}.mp4"
        )
        output = {"video": stored.as_file()}
        logs: list[tuple[LogLevel, str]] = [
            ("INFO", f"Inputs accepted (sync_mode={spec.input.sync_mode})"),
            ("INFO", f"Rendering placeholder video ({placeholder.FRAMES} frames)"),
            ("INFO", "Encoding output: H.264 + AAC"),
        ]
        return FinishedTask(Success(output), logs)


def _reference_engine(options: EngineOptions) -> ResultEngine:
    from mock_server.engine.reference import ReferenceEngine  # starts worker processes on use

    return ReferenceEngine(options)


ENGINES: dict[str, Callable[[EngineOptions], ResultEngine]] = {
    "placeholder": PlaceholderEngine,
    "reference": _reference_engine,
}
"""Engine factories by name."""


def make_engine(name: str, options: EngineOptions) -> ResultEngine:
    try:
        factory = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}: choose one of {sorted(ENGINES)}") from None
    return factory(options)
