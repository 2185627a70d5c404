"""The client-side checks on hand-written transcripts: the result is fetched only after
COMPLETED, and status is not polled faster than allowed."""

from __future__ import annotations

import pytest

from contracts.checks import (
    CheckOptions,
    PolledTooFast,
    ResultFetchedEarly,
    find_violations,
    polling_not_faster_than,
    result_fetched_only_after_completed,
)
from contracts.transcript import Exchange, StatusPoint
from tests.contracts.transcript_script import (
    BASE,
    INPUT,
    RID,
    URLS,
    Script,
    vars_of,
)

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
