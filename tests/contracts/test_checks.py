"""The checks on transcripts written by hand: each property holds on a correct transcript and
fails, with a readable report, on the smallest transcript that breaks it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from contracts.checks import (
    CHECK_NAMES,
    CheckOptions,
    ContractViolation,
    ContractViolations,
    LogsShrank,
    PolledTooFast,
    QueuePositionIncreased,
    RequestDoesNotConform,
    StatusWentBackwards,
    check_all,
    find_violations,
    logs_only_grow,
    queue_position_never_increases,
    status_never_goes_backwards,
)
from contracts.transcript import NOT_JSON, Exchange, StatusPoint, sse_data
from tests.contracts.transcript_script import (
    AUTH,
    BASE,
    RID,
    Script,
    a_correct_session,
    log,
    vars_of,
)


def test_a_correct_session_passes_every_check() -> None:
    check_all(a_correct_session().transcript(), CheckOptions(poll_interval_s=0.1))


def test_check_all_lists_every_failure_and_keeps_each() -> None:
    script = a_correct_session()
    script.status("IN_QUEUE", position=5)  # backwards, and further back in the queue
    script.add("GET", "/fal-ai/lipsync/requests", 404, {"detail": "no"})
    with pytest.raises(ContractViolations) as caught:
        check_all(script.transcript())
    checks = [failure.check for failure in caught.value.failures]
    assert sorted(checks) == [
        "queue_position_never_increases",
        "requests_conform_to_openapi",
        "status_never_goes_backwards",
    ]
    assert isinstance(caught.value, AssertionError)
    report = str(caught.value)
    assert "3 failure(s)" in report and "--- 1/3" in report and "--- 3/3" in report


def test_skipped_checks_do_not_run_and_unknown_names_are_a_setup_error() -> None:
    script = a_correct_session()
    script.status("IN_QUEUE", position=0)
    options = CheckOptions(skip=frozenset({"status_never_goes_backwards"}))
    assert find_violations(script.transcript(), options) == []
    with pytest.raises(ValueError, match="unknown check name"):
        CheckOptions(skip=frozenset({"status_goes_forward"}))
    assert set(CHECK_NAMES) >= {"output_files_are_valid", "polling_not_faster_than"}


# -- status_never_goes_backwards ---------------------------------------------------------------


def test_a_status_going_backwards_on_the_wire_is_reported_with_its_context() -> None:
    script = a_correct_session()
    bad = script.status("IN_PROGRESS", logs=[log(1), log(2), log(3)])
    with pytest.raises(StatusWentBackwards) as caught:
        status_never_goes_backwards(script.transcript())
    failure = caught.value
    assert failure.request_id == RID
    assert failure.exchanges[-1] == bad
    report = str(failure)
    assert f"Request {RID}" in report
    assert "sent IN_PROGRESS after it had been sent COMPLETED (exchange #6)" in report
    assert "Status history (server side):" in report and "IN_QUEUE  position 2" in report
    assert f"#{bad.seq} GET /queue{BASE}/status?logs=1 -> 202" in report
    assert "#5..#6: COMPLETED" not in report  # different answers are not folded together
    assert "#3: IN_PROGRESS 1 log line(s)" in report


def test_a_status_fal_never_sends_is_reported() -> None:
    script = Script()
    script.submit()
    script.status("FAILED", logs=None)
    with pytest.raises(StatusWentBackwards, match="'FAILED', which fal never sends"):
        status_never_goes_backwards(script.transcript())


def test_a_server_history_going_backwards_is_reported() -> None:
    script = a_correct_session()
    script.histories[RID] = (
        StatusPoint("IN_PROGRESS", None, 1.0),
        StatusPoint("IN_QUEUE", 0, 2.0),
    )
    with pytest.raises(StatusWentBackwards, match="server's own history goes from"):
        status_never_goes_backwards(script.transcript())


def test_stream_events_are_checked_in_order() -> None:
    script = Script()
    script.submit()
    script.stream(
        {"status": "IN_PROGRESS", "logs": []},
        {"status": "COMPLETED", "logs": []},
        {"status": "IN_PROGRESS", "logs": []},
    )
    with pytest.raises(StatusWentBackwards) as caught:
        status_never_goes_backwards(script.transcript())
    assert "#2 event 2: IN_PROGRESS" in str(caught.value)


# -- queue_position_never_increases -------------------------------------------------------------


def test_an_increasing_queue_position_is_reported() -> None:
    script = Script()
    script.submit(position=1)
    script.status("IN_QUEUE", position=0)
    script.status("IN_QUEUE", position=3)
    with pytest.raises(QueuePositionIncreased, match=r"went from 0 \(#2\) to 3 \(#3\)"):
        queue_position_never_increases(script.transcript())


def test_low_priority_requests_may_be_pushed_back() -> None:
    script = Script()
    script.submit(position=0, headers={**AUTH, "x-fal-queue-priority": "low"})
    script.status("IN_QUEUE", position=2)
    script.histories[RID] = (StatusPoint("IN_QUEUE", 0, 0.0), StatusPoint("IN_QUEUE", 2, 1.0))
    queue_position_never_increases(script.transcript())


def test_an_increasing_position_in_the_server_history_is_reported() -> None:
    script = a_correct_session()
    script.histories[RID] = (StatusPoint("IN_QUEUE", 0, 0.0), StatusPoint("IN_QUEUE", 1, 1.0))
    with pytest.raises(QueuePositionIncreased, match="server's own history"):
        queue_position_never_increases(script.transcript())


# -- logs_only_grow ------------------------------------------------------------------------------


def test_a_log_line_that_disappears_is_reported() -> None:
    script = Script()
    script.submit()
    script.status("IN_PROGRESS", logs=[log(1), log(2)])
    script.status("IN_PROGRESS", logs=[log(1), log(3)])
    with pytest.raises(LogsShrank, match=r"line 1 was .*line 2.*is now .*line 3"):
        logs_only_grow(script.transcript())


def test_answers_without_logs_do_not_count() -> None:
    script = Script()
    script.submit()
    script.status("IN_PROGRESS", logs=[log(1), log(2)])
    script.status("IN_PROGRESS", logs=None)  # logs=0: not asked for
    script.status("COMPLETED", logs=[log(1), log(2), log(3)])
    logs_only_grow(script.transcript())


def test_a_stream_sends_only_new_lines_and_they_accumulate() -> None:
    script = Script()
    script.submit()
    script.stream(
        {"status": "IN_PROGRESS", "logs": [log(1)]},
        {"status": "IN_PROGRESS", "logs": [log(2)]},
        {"status": "COMPLETED", "logs": [log(3)]},
    )
    script.status("COMPLETED", logs=[log(1), log(2), log(3)])
    logs_only_grow(script.transcript())
    script.status("COMPLETED", logs=[log(1), log(3)])
    with pytest.raises(LogsShrank):
        logs_only_grow(script.transcript())


def test_transcript_helpers() -> None:
    script = a_correct_session()
    script.add("POST", "/storage/auth/token", host="rest", request_id=None)
    transcript = script.transcript()
    assert transcript.request_ids() == [RID]
    assert len(transcript.for_request(RID)) == 7
    first = transcript.exchanges[0]
    assert first.target == "/queue/fal-ai/lipsync"
    assert first.request_header("Authorization") == "<redacted>"
    assert first.response_json()["queue_position"] == 2
    assert (
        Exchange(
            **{**vars_of(first), "response_body": "x...<truncated, 9 bytes in all>"}
        ).response_json()
        is NOT_JSON
    )
    assert sse_data("data: a\ndata:b\n\n: comment\n\ndata: {}\n") == ["a\nb", "{}"]


def test_violations_are_assertion_errors() -> None:
    assert issubclass(ContractViolation, AssertionError)
    for kind in (StatusWentBackwards, LogsShrank, PolledTooFast, RequestDoesNotConform):
        assert issubclass(kind, ContractViolation) and kind.check in CHECK_NAMES


def test_loading_the_checks_imports_neither_the_mock_nor_jsonschema() -> None:
    """contracts never imports mock_server (DESIGN.md), and the plugin loads the checks at
    startup: jsonschema waits until a conformance check runs."""
    code = (
        "import sys, contracts.checks, contracts.transcript; "
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('mock_server', 'jsonschema', 'jsonschema_rs', 'av')); "
        "assert not leaked, leaked"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
