"""Checks of fal's contract over a wire transcript, each named for the property it asserts.

A failing check raises a ``ContractViolation`` (an ``AssertionError``) whose message is a
readable report: the property, the request id, its status history and the offending exchanges.
``check_all`` runs every applicable check and raises one ``ContractViolations`` listing all
failures (``.failures``). A mistake in how checks are set up (an unknown check name) is a
``ValueError``, never a violation.

Each check reads a ``contracts.transcript.Transcript``; ``mock_server.checking.transcript_of``
makes one from a running mock, and ``check_mock`` runs everything, output files included.
"""

from contracts.checks.client import polling_not_faster_than, result_fetched_only_after_completed
from contracts.checks.conformance import requests_conform_to_openapi
from contracts.checks.files import (
    MediaFacts,
    OutputFile,
    OutputFileTools,
    SyncVerdict,
    file_problems,
    output_files,
    output_files_are_valid,
)
from contracts.checks.lifecycle import (
    logs_only_grow,
    queue_position_never_increases,
    status_never_goes_backwards,
)
from contracts.checks.responses import responses_conform_to_openapi
from contracts.checks.runner import CHECK_NAMES, CheckOptions, check_all, find_violations
from contracts.checks.violations import (
    ClientDidNotTerminate,
    ClientFailedOnAllowedBehaviour,
    ContractViolation,
    ContractViolations,
    LogsShrank,
    OutputFileInvalid,
    PolledTooFast,
    QueuePositionIncreased,
    RequestDoesNotConform,
    ResponseDoesNotConform,
    ResultFetchedEarly,
    StatusWentBackwards,
)

__all__ = [
    "CHECK_NAMES",
    "CheckOptions",
    "ClientDidNotTerminate",
    "ClientFailedOnAllowedBehaviour",
    "ContractViolation",
    "ContractViolations",
    "LogsShrank",
    "MediaFacts",
    "OutputFile",
    "OutputFileInvalid",
    "OutputFileTools",
    "PolledTooFast",
    "QueuePositionIncreased",
    "RequestDoesNotConform",
    "ResponseDoesNotConform",
    "ResultFetchedEarly",
    "StatusWentBackwards",
    "SyncVerdict",
    "check_all",
    "file_problems",
    "find_violations",
    "logs_only_grow",
    "output_files",
    "output_files_are_valid",
    "polling_not_faster_than",
    "queue_position_never_increases",
    "requests_conform_to_openapi",
    "responses_conform_to_openapi",
    "result_fetched_only_after_completed",
    "status_never_goes_backwards",
]
