"""The checks on transcripts written by hand: each property holds on a correct transcript and
fails, with a readable report, on the smallest transcript that breaks it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

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
    ResultFetchedEarly,
    StatusWentBackwards,
    check_all,
    find_violations,
    logs_only_grow,
    polling_not_faster_than,
    queue_position_never_increases,
    result_fetched_only_after_completed,
    status_never_goes_backwards,
)
from contracts.transcript import NOT_JSON, Exchange, StatusPoint, Transcript, sse_data

RID = "11111111-2222-3333-4444-555555555555"
BASE = f"/fal-ai/lipsync/requests/{RID}"
INPUT = {"video_url": "https://example.com/v.mp4", "audio_url": "https://example.com/a.wav"}
AUTH = {"authorization": "<redacted>"}
URLS = {
    "request_id": RID,
    "response_url": f"https://queue.fal.run{BASE}",
    "status_url": f"https://queue.fal.run{BASE}/status",
    "cancel_url": f"https://queue.fal.run{BASE}/cancel",
}


class Script:
    """Builds a transcript one exchange at a time."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self.histories: dict[str, tuple[StatusPoint, ...]] = {}

    def add(
        self,
        method: str,
        path: str,
        status_code: int = 200,
        response: Any = None,
        *,
        host: str = "queue",
        query: str = "",
        body: Any = None,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
        wall_time: float | None = None,
        request_id: str | None = RID,
        raw_response: str | None = None,
        clock_time: float | None = None,
    ) -> Exchange:
        request_headers = dict(AUTH if headers is None else headers)
        if body is not None and "content-type" not in request_headers:
            request_headers["content-type"] = "application/json"
        exchange = Exchange(
            seq=len(self.exchanges) + 1,
            wall_time=wall_time,
            host=host,
            method=method,
            path=path,
            query=query,
            request_headers=request_headers,
            request_body=body if isinstance(body, str) or body is None else json.dumps(body),
            status_code=status_code,
            response_headers={
                "content-type": "application/json",
                **({"x-fal-request-id": request_id} if request_id else {}),
                **(response_headers or {}),
            },
            response_body=raw_response if response is None else json.dumps(response),
            request_id=request_id,
            clock_time=clock_time,
        )
        self.exchanges.append(exchange)
        return exchange

    def submit(self, position: int = 0, **kwargs: Any) -> Exchange:
        body = {**URLS, "status": "IN_QUEUE", "queue_position": position, "gateway_request_id": RID}
        return self.add("POST", "/fal-ai/lipsync", 200, body, body=INPUT, **kwargs)

    def status(
        self, status: str, *, position: int = 0, logs: Any = None, **kwargs: Any
    ) -> Exchange:
        body: dict[str, Any] = {**URLS, "status": status}
        if status == "IN_QUEUE":
            body["queue_position"] = position
        else:
            body["logs"] = logs
        code = 200 if status == "COMPLETED" else 202
        query = "logs=1" if logs is not None else "logs=0"
        return self.add("GET", f"{BASE}/status", code, body, query=query, **kwargs)

    def stream(self, *events: dict[str, Any]) -> Exchange:
        text = "".join(
            f"data: {json.dumps({**URLS, **e})}\r\n\r\n: keepalive\r\n\r\n" for e in events
        )
        return self.add(
            "GET",
            f"{BASE}/status/stream",
            200,
            raw_response=text,
            query="logs=1",
            response_headers={"content-type": "text/event-stream; charset=utf-8"},
        )

    def result(self, code: int = 200) -> Exchange:
        body = {"video": {"url": "https://v3.fal.media/files/x/out.mp4"}}
        return self.add("GET", BASE, code, body if code == 200 else {"detail": "still running"})

    def transcript(self) -> Transcript:
        return Transcript(tuple(self.exchanges), dict(self.histories))


def log(n: int) -> dict[str, str]:
    return {"message": f"line {n}", "level": "INFO", "source": "USER", "timestamp": f"t{n}"}


def a_correct_session() -> Script:
    script = Script()
    script.submit(position=2, wall_time=0.0)
    script.status("IN_QUEUE", position=1, wall_time=0.2)
    script.status("IN_PROGRESS", logs=[log(1)], wall_time=0.4)
    script.status("IN_PROGRESS", logs=[log(1), log(2)], wall_time=0.6)
    script.status("COMPLETED", logs=[log(1), log(2), log(3)], wall_time=0.8)
    script.status("COMPLETED", wall_time=0.81)  # fal-client polls once more before fetching
    script.result()
    script.histories[RID] = (
        StatusPoint("IN_QUEUE", 2, 0.0),
        StatusPoint("IN_QUEUE", 1, 1.0),
        StatusPoint("IN_PROGRESS", None, 2.0),
        StatusPoint("COMPLETED", None, 3.0),
    )
    return script


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


# -- result_fetched_only_after_completed -------------------------------------------------------


def test_fetching_the_result_before_completed_is_reported() -> None:
    script = Script()
    script.submit()
    script.status("IN_PROGRESS", logs=None)
    fetch = script.result(400)
    with pytest.raises(ResultFetchedEarly) as caught:
        result_fetched_only_after_completed(script.transcript())
    assert caught.value.exchanges == (fetch,)
    assert "the last status it was sent was IN_PROGRESS" in str(caught.value)


def test_a_completed_stream_event_allows_the_fetch() -> None:
    script = Script()
    script.submit()
    script.stream(
        {"status": "IN_QUEUE", "queue_position": 0}, {"status": "COMPLETED", "logs": None}
    )
    script.result()
    result_fetched_only_after_completed(script.transcript())


def test_a_webhook_request_may_fetch_once_the_server_completed_it() -> None:
    script = Script()
    script.add(
        "POST",
        "/fal-ai/lipsync",
        200,
        {**URLS, "status": "IN_QUEUE", "queue_position": 0},
        body=INPUT,
        query="fal_webhook=https%3A%2F%2Fhook.example%2Fcb",
    )
    script.histories[RID] = (StatusPoint("IN_QUEUE", 0, 0.0), StatusPoint("COMPLETED", None, 5.0))
    script.add("GET", BASE, 200, {"video": {"url": "u"}}, clock_time=6.0)
    result_fetched_only_after_completed(script.transcript())
    script.exchanges[-1] = Exchange(**{**vars_of(script.exchanges[-1]), "clock_time": 4.0})
    with pytest.raises(ResultFetchedEarly):
        result_fetched_only_after_completed(script.transcript())


def vars_of(exchange: Exchange) -> dict[str, Any]:
    return {name: getattr(exchange, name) for name in Exchange.__slots__}


def test_a_sync_run_is_not_concerned() -> None:
    script = Script()
    script.add("POST", "/fal-ai/lipsync", 200, {"video": {"url": "u"}}, host="run", body=INPUT)
    result_fetched_only_after_completed(script.transcript())


# -- polling_not_faster_than -------------------------------------------------------------------


def test_polling_faster_than_the_interval_is_reported() -> None:
    script = Script()
    script.submit(wall_time=0.0)
    for index in range(5):
        script.status("IN_QUEUE", position=0, wall_time=0.01 * index)
    with pytest.raises(PolledTooFast) as caught:
        polling_not_faster_than(script.transcript(), 0.1)
    assert "4 of 4 gaps between status polls were shorter than 0.1 s" in str(caught.value)
    assert "#1..#6: IN_QUEUE position 0 (6 answers)" in str(caught.value)


def test_retries_the_poll_after_completed_and_missing_times_are_not_counted() -> None:
    script = Script()
    script.submit()
    script.add("GET", f"{BASE}/status", 429, {"detail": "slow down"}, wall_time=0.0)
    script.status("IN_QUEUE", wall_time=0.01)  # a retry after a failed poll: backoff's pace
    script.status("IN_PROGRESS", logs=None, wall_time=0.2)
    script.status("COMPLETED", logs=None, wall_time=0.4)
    script.status("COMPLETED", logs=None, wall_time=0.401)  # one more, after COMPLETED
    script.status("COMPLETED", logs=None)  # no wall time: not judged
    polling_not_faster_than(script.transcript(), 0.1)


def test_the_polling_check_runs_only_with_an_interval() -> None:
    script = Script()
    script.submit()
    script.status("IN_QUEUE", wall_time=0.0)
    script.status("IN_QUEUE", wall_time=0.001)
    assert find_violations(script.transcript(), CheckOptions()) == []
    failures = find_violations(script.transcript(), CheckOptions(poll_interval_s=0.5))
    assert [f.check for f in failures] == ["polling_not_faster_than"]


# -- the transcript ----------------------------------------------------------------------------


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
