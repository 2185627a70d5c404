"""Run every applicable check over a transcript and report all failures at once."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from contracts.checks.client import find_early_result_fetches, find_fast_polls
from contracts.checks.files import (
    DEFAULT_DURATION_TOLERANCE_S,
    OutputFile,
    OutputFileTools,
    find_invalid_output_files,
)
from contracts.checks.lifecycle import (
    find_logs_shrinking,
    find_queue_position_increasing,
    find_status_going_backwards,
)
from contracts.checks.violations import ContractViolation, ContractViolations
from contracts.transcript import Transcript


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """Which checks run and what they expect."""

    poll_interval_s: float | None = None
    """The slowest a client may poll status, in seconds; None skips ``polling_not_faster_than``."""
    skip: frozenset[str] = field(default_factory=frozenset)
    """Names of checks not to run (see ``CHECK_NAMES``)."""
    expected_duration_s: float | None = None
    """The output video's expected duration; None checks any duration."""
    duration_tolerance_s: float = DEFAULT_DURATION_TOLERANCE_S
    sync_score: bool = False
    """Also score the output's lip sync (slow: decodes and tracks every frame)."""

    def __post_init__(self) -> None:
        skip = frozenset(self.skip)  # accept any iterable of names; store it immutable
        object.__setattr__(self, "skip", skip)
        unknown = sorted(skip - set(CHECK_NAMES))
        if unknown:
            raise ValueError(f"unknown check name(s) {unknown}: choose from {list(CHECK_NAMES)}")
        if self.poll_interval_s is not None and self.poll_interval_s < 0:
            raise ValueError(f"poll_interval_s must not be negative, got {self.poll_interval_s}")

    def runs(self, name: str) -> bool:
        return name not in self.skip


Finder = Callable[[Transcript, CheckOptions], Iterable[ContractViolation]]


def _conformance(transcript: Transcript, options: CheckOptions) -> Iterator[ContractViolation]:
    from contracts.checks.conformance import find_nonconforming_requests  # jsonschema: on use

    return find_nonconforming_requests(transcript)


def _responses(transcript: Transcript, options: CheckOptions) -> Iterator[ContractViolation]:
    from contracts.checks.responses import find_nonconforming_responses  # jsonschema: on use

    return find_nonconforming_responses(transcript)


def _polling(transcript: Transcript, options: CheckOptions) -> Iterable[ContractViolation]:
    if options.poll_interval_s is None:
        return ()
    return find_fast_polls(transcript, options.poll_interval_s)


TRANSCRIPT_CHECKS: dict[str, Finder] = {
    "requests_conform_to_openapi": _conformance,
    "responses_conform_to_openapi": _responses,
    "status_never_goes_backwards": lambda t, _: find_status_going_backwards(t),
    "queue_position_never_increases": lambda t, _: find_queue_position_increasing(t),
    "logs_only_grow": lambda t, _: find_logs_shrinking(t),
    "result_fetched_only_after_completed": lambda t, _: find_early_result_fetches(t),
    "polling_not_faster_than": _polling,
}
"""The checks that need only the transcript, by name (the name of their public function)."""

OUTPUT_FILE_CHECK = "output_files_are_valid"
CHECK_NAMES: tuple[str, ...] = (*TRANSCRIPT_CHECKS, OUTPUT_FILE_CHECK)


def find_violations(
    transcript: Transcript,
    options: CheckOptions | None = None,
    *,
    files: OutputFileTools | None = None,
    extra_files: list[OutputFile] | None = None,
) -> list[ContractViolation]:
    """Every failure of every check that runs (the output-file check only with ``files``)."""
    options = options or CheckOptions()
    failures: list[ContractViolation] = []
    for name, finder in TRANSCRIPT_CHECKS.items():
        if options.runs(name):
            failures.extend(finder(transcript, options))
    if files is not None and options.runs(OUTPUT_FILE_CHECK):
        failures.extend(
            find_invalid_output_files(
                transcript,
                files,
                expected_duration_s=options.expected_duration_s,
                duration_tolerance_s=options.duration_tolerance_s,
                extra=extra_files,
            )
        )
    return failures


def check_all(
    transcript: Transcript,
    options: CheckOptions | None = None,
    *,
    files: OutputFileTools | None = None,
    extra_files: list[OutputFile] | None = None,
) -> None:
    """Run every check that applies; raise ``ContractViolations`` listing all failures.

    ``files`` says how to download and decode output files; without it the output-file check
    is skipped (``contracts`` cannot decode video on its own: see ``mock_server.checking``)."""
    failures = find_violations(transcript, options, files=files, extra_files=extra_files)
    if failures:
        raise ContractViolations(failures)
