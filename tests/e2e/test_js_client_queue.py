"""The official JS client (@fal-ai/client, through node) against the live mock: the queue.

How a queued request goes through its lifecycle as the client sees it: ``subscribe`` by polling
and by streaming, status/result/cancel, a result fetched too early, and a client-side timeout.
How the scenarios are run is in ``tests/e2e/js_harness.py``.

Needs node >= 18 and ``npm ci --prefix tests/e2e/js``; skipped otherwise.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.e2e import js_harness
from tests.e2e.js_harness import (
    ENDPOINT_PATH,
    INPUT,
    assert_downloads,
    assert_log_shape,
    assert_monotonic,
    assert_request_urls,
    assert_video_output,
    drive,
    entries_for,
    header,
    journal,
    log_key,
    missing_prerequisite,
)

pytestmark = pytest.mark.node

if (reason := missing_prerequisite()) is not None:
    pytest.skip(reason, allow_module_level=True)

# Bound here so pytest finds the shared fixtures in this module; a plain ``from ... import``
# of them would read as unused (and shadowed) imports to the linters.
mode = js_harness.mode
base_url = js_harness.base_url

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"  # the driver asks about this id too
PROMPT_MS = 1000  # how soon after the COMPLETED update subscribe must resolve


# -- subscribe -----------------------------------------------------------------------------


def test_subscribe_polling(base_url: str, mode: str) -> None:
    out = drive("subscribe_polling", base_url, mode)

    updates = out["updates"]
    statuses = out["statuses"]
    assert_monotonic(statuses)
    # polls:1 advances one state per poll, so the client sees each state.
    assert statuses[0] == "IN_QUEUE", statuses
    assert "IN_PROGRESS" in statuses, statuses

    previous: list[tuple[Any, ...]] = []
    for update in updates:
        assert update["request_id"] == out["requestId"], update
        if update["status"] == "IN_QUEUE":
            assert isinstance(update["queue_position"], int), update
            assert update["queue_position"] >= 0, update
        else:
            assert "logs" in update, f"IN_PROGRESS/COMPLETED without a logs key: {update}"
            logs = update["logs"] or []
            assert_log_shape(logs)
            keys = [log_key(log) for log in logs]
            # logs=1 polling returns every line so far: each answer extends the previous one.
            assert keys[: len(previous)] == previous, (previous, keys)
            previous = keys
    final = updates[-1]
    assert final["logs"], "a completed lipsync job should have logged something"
    assert final.get("error") is None, final

    assert out["ms_after_completed"] is not None
    assert out["ms_after_completed"] < PROMPT_MS, out["ms_after_completed"]

    video = assert_video_output(out["data"], base_url)
    assert_downloads(video)

    entries = journal(base_url)
    submits = entries_for(entries, "queue", "POST", ENDPOINT_PATH)
    assert len(submits) == 1, submits
    submit = submits[0]
    assert submit["status_code"] == 200, submit
    submitted = json.loads(submit["response_body"])
    request_id = submitted["request_id"]
    assert out["requestId"] == request_id
    assert out["enqueued_request_id"] == request_id
    assert_request_urls(submitted, base_url, request_id)
    assert json.loads(submit["request_body"]) == INPUT
    assert header(submit, "authorization") is not None  # redacted; the trace has the value
    assert header(submit, "x-fal-queue-priority") == "normal"
    assert header(submit, "user-agent") == "@fal-ai/client/1.10.1"

    polls = entries_for(entries, "queue", "GET", f"{ENDPOINT_PATH}/requests/{request_id}/status")
    assert len(polls) == len(updates), (len(polls), len(updates))
    assert all(e["query"] == "logs=1" for e in polls), [e["query"] for e in polls]
    assert [e["status_code"] for e in polls] == [200 if s == "COMPLETED" else 202 for s in statuses]
    results = entries_for(entries, "queue", "GET", f"{ENDPOINT_PATH}/requests/{request_id}")
    assert [e["status_code"] for e in results] == [200], results
    assert (
        entries_for(entries, "queue", "GET", f"{ENDPOINT_PATH}/requests/{request_id}/status/stream")
        == []
    )


def test_subscribe_streaming(base_url: str, mode: str) -> None:
    out = drive("subscribe_streaming", base_url, mode)

    assert_monotonic(out["statuses"])
    request_id = out["requestId"]
    assert out["enqueued_request_id"] == request_id
    for update in out["updates"]:
        assert update["request_id"] == request_id, update
        if update["status"] != "IN_QUEUE":
            assert "logs" in update, update
    assert not out["has_duplicates"], f"duplicated log lines: {out['duplicate_logs']}"
    final_logs = out["updates"][-1]["logs"]
    assert final_logs, "a completed lipsync job should have logged something"
    assert_log_shape(final_logs)

    # The stream must close right after COMPLETED, or subscribe resolves late (PROTOCOL §5).
    assert out["ms_after_completed"] is not None
    assert out["ms_after_completed"] < PROMPT_MS, out["ms_after_completed"]

    video = assert_video_output(out["data"], base_url)
    assert_downloads(video)

    entries = journal(base_url)
    streams = entries_for(
        entries, "queue", "GET", f"{ENDPOINT_PATH}/requests/{request_id}/status/stream"
    )
    assert len(streams) == 1, streams
    assert streams[0]["status_code"] == 200, streams[0]
    assert streams[0]["query"] == "logs=1", streams[0]
    assert "text/event-stream" in (header(streams[0], "accept") or ""), streams[0]
    stream_calls = [c for c in out["trace"] if "/status/stream" in (c["target"] or c["url"])]
    assert len(stream_calls) == 1, out["trace"]
    assert (stream_calls[0]["content_type"] or "").startswith("text/event-stream"), stream_calls
    assert (
        entries_for(entries, "queue", "GET", f"{ENDPOINT_PATH}/requests/{request_id}/status") == []
    )

    # The client accumulates every event's logs; that must equal the job's logs exactly.
    status = httpx.get(
        f"{base_url}/queue/fal-ai/lipsync/requests/{request_id}/status",
        params={"logs": "1"},
        headers={"Authorization": "Key test-key"},
        timeout=10,
    ).json()
    assert status["status"] == "COMPLETED", status
    assert out["final_log_messages"] == [log["message"] for log in status["logs"]]


# -- queue operations ----------------------------------------------------------------------


def test_queue_ops(base_url: str, mode: str) -> None:
    out = drive("queue_ops", base_url, mode)

    first = out["first"]
    submitted = first["submit"]
    request_id = submitted["request_id"]
    assert submitted["status"] == "IN_QUEUE", submitted
    assert isinstance(submitted["queue_position"], int), submitted
    assert_request_urls(submitted, base_url, request_id)
    assert first["completed"], first["statuses"]
    assert_monotonic([s["status"] for s in first["statuses"]])
    final = first["statuses"][-1]
    assert "logs" in final, final
    assert_log_shape(final["logs"] or [])
    assert final.get("error") is None, final
    assert first["result"]["requestId"] == request_id, first["result"]
    video = assert_video_output(first["result"]["data"], base_url)
    assert_downloads(video)

    # Cancelled while queued: COMPLETED with an error, and the result fetch throws.
    second = out["second"]
    second_id = second["submit"]["request_id"]
    assert second_id != request_id
    assert second["cancel"]["ok"], second["cancel"]
    assert second["completed"], second["statuses"]
    assert_monotonic([s["status"] for s in second["statuses"]])
    cancelled = second["statuses"][-1]
    assert cancelled.get("error"), f"a cancelled request must complete with an error: {cancelled}"
    assert "logs" in cancelled, cancelled
    assert not second["result"]["ok"], second["result"]
    error = second["result"]["error"]
    assert error["name"] in ("ApiError", "ValidationError"), error
    assert isinstance(error["status"], int), error
    assert 400 <= error["status"] < 500, error
    assert isinstance(error["body"], dict), error
    assert error["body"].get("detail"), error

    # Cancelling a completed request: 400 ALREADY_COMPLETED.
    already = out["cancel_completed"]
    assert not already["ok"], already
    assert already["error"]["name"] == "ApiError", already
    assert already["error"]["status"] == 400, already
    assert already["error"]["body"]["status"] == "ALREADY_COMPLETED", already

    # Unknown request ids: 404 everywhere.
    unknown = out["unknown"]
    for op in ("status", "result", "cancel"):
        assert not unknown[op]["ok"], (op, unknown[op])
        assert unknown[op]["error"]["name"] == "ApiError", (op, unknown[op])
        assert unknown[op]["error"]["status"] == 404, (op, unknown[op])
    assert unknown["cancel"]["error"]["body"]["status"] == "NOT_FOUND", unknown["cancel"]

    entries = journal(base_url)
    cancels = entries_for(entries, "queue", "PUT", f"{ENDPOINT_PATH}/requests/{second_id}/cancel")
    assert len(cancels) == 1, cancels
    assert cancels[0]["status_code"] == 202, cancels[0]
    assert json.loads(cancels[0]["response_body"])["status"] == "CANCELLATION_REQUESTED"
    unknown_status = entries_for(
        entries, "queue", "GET", f"{ENDPOINT_PATH}/requests/{UNKNOWN_ID}/status"
    )
    assert [e["status_code"] for e in unknown_status] == [404], unknown_status


def test_result_before_completion(base_url: str, mode: str) -> None:
    out = drive("result_early", base_url, mode)

    early = out["early"]
    assert not early["ok"], f"a result before COMPLETED must be an error: {early}"
    assert early["error"]["name"] == "ApiError", early
    assert early["error"]["status"] == 400, early
    assert early["error"]["body"].get("detail"), early
    assert out["completed"]
    late = out["late"]
    assert late["ok"], late
    assert late["value"]["requestId"] == out["submit"]["request_id"], late
    assert_video_output(late["value"]["data"], base_url)


# -- client timeout ------------------------------------------------------------------------


def test_subscribe_timeout_cancels(base_url: str, mode: str) -> None:
    # Under "virtual" nothing moves until the clock is advanced, so the client times out.
    response = httpx.post(f"{base_url}/_mock/policy", json={"policy": "virtual"}, timeout=10)
    response.raise_for_status()
    out = drive("subscribe_timeout", base_url, mode)

    outcome = out["outcome"]
    assert not outcome["ok"], outcome
    assert "Client timed out" in outcome["error"]["message"], outcome
    assert 500 <= out["ms_until_rejected"] < 500 + PROMPT_MS, out["ms_until_rejected"]
    request_id = out["enqueued_request_id"]
    assert request_id, out

    after = out["status_after"]
    assert after["ok"], after
    assert after["value"]["status"] == "COMPLETED", after
    assert after["value"].get("error"), f"a cancelled request must complete with an error: {after}"

    entries = journal(base_url)
    cancels = entries_for(entries, "queue", "PUT", f"{ENDPOINT_PATH}/requests/{request_id}/cancel")
    assert [e["status_code"] for e in cancels] == [202], cancels
