"""The official JS client (@fal-ai/client 1.10.1, driven through node) against the live mock.

Each test runs one scenario of ``tests/e2e/js/driver.mjs`` in a subprocess, in both ways the JS
client can be pointed at the mock (PROTOCOL.md §1.3-1.4): ``requestMiddleware`` rewriting fal's
hosts to the live server's path prefixes, and ``proxyUrl`` (the mock dispatches on
``x-fal-target-url``). The driver prints one JSON line describing what the client saw; the mock's
journal shows what went over the wire.

Needs node >= 18 and ``npm ci --prefix tests/e2e/js``; skipped otherwise.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.node

JS_DIR = Path(__file__).parent / "js"
DRIVER = JS_DIR / "driver.mjs"
NODE = shutil.which("node")

if NODE is None:
    pytest.skip("node is not on PATH: the JS client tests need node >= 18", allow_module_level=True)
if not (JS_DIR / "node_modules" / "@fal-ai" / "client").is_dir():
    pytest.skip(
        "tests/e2e/js/node_modules is missing: run `npm ci` in tests/e2e/js",
        allow_module_level=True,
    )

ENDPOINT_PATH = "/fal-ai/lipsync"
INPUT = {"video_url": "https://example.com/v.mp4", "audio_url": "https://example.com/a.mp3"}
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
STATUS_ORDER = {"IN_QUEUE": 0, "IN_PROGRESS": 1, "COMPLETED": 2}
PROMPT_MS = 1000  # how soon after the COMPLETED update subscribe must resolve
MP4_FTYP = b"ftyp".hex()


# -- helpers -------------------------------------------------------------------------------


def drive(scenario: str, base_url: str, mode: str) -> dict[str, Any]:
    """Run one driver scenario; fail the test with everything it printed if it did not succeed."""
    assert NODE is not None
    try:
        proc = subprocess.run(
            [NODE, str(DRIVER), scenario, base_url, mode],
            timeout=60,
            capture_output=True,
            text=True,
            cwd=JS_DIR,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"node driver {scenario!r} ({mode}) did not exit within 60 s: {exc}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    out: dict[str, Any] | None = None
    if lines:
        try:
            out = json.loads(lines[-1])
        except json.JSONDecodeError:
            out = None
    if proc.returncode != 0 or out is None or "error" in out:
        error = out.get("error") if isinstance(out, dict) else None
        trace = out.get("trace") if isinstance(out, dict) else None
        pytest.fail(
            f"node driver {scenario!r} ({mode}) failed with exit code {proc.returncode}\n"
            f"error: {json.dumps(error, indent=1)}\n"
            f"client HTTP trace: {json.dumps(trace, indent=1)}\n"
            f"stdout: {proc.stdout[-4000:]}\nstderr: {proc.stderr[-4000:]}"
        )
    assert out["scenario"] == scenario
    assert out["mode"] == mode
    check_trace(out["trace"], base_url, mode)
    return out


def check_trace(trace: list[dict[str, Any]], base_url: str, mode: str) -> None:
    """Every call the client made stayed on the mock, routed the way ``mode`` says."""
    assert trace, "the client made no HTTP call at all"
    proxy_url = f"{base_url}/api/fal/proxy"
    for call in trace:
        assert call["url"].startswith(base_url + "/"), f"the client left the mock: {call}"
        assert "error" not in call, f"transport error: {call}"
        if call["target"] is not None:  # dispatched through the client's request pipeline
            assert mode == "proxy", f"x-fal-target-url without proxyUrl: {call}"
            assert call["url"] == proxy_url, call
            assert call["target"].startswith(
                ("https://queue.fal.run/", "https://fal.run/", "https://rest.fal.ai/")
            ), call
        else:
            assert call["url"] != proxy_url, call
        if call["url"] == proxy_url or call["url"].startswith(
            (f"{base_url}/queue/", f"{base_url}/run/", f"{base_url}/rest/")
        ):
            assert call["authorization"] == "Key test-key", call
    if mode == "proxy":
        dispatched = [c for c in trace if "/cdn/" not in c["url"]]
        assert dispatched, "no call went through the proxy route"
        assert all(c["url"] == proxy_url for c in dispatched), dispatched


def journal(base_url: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base_url}/_mock/journal", timeout=10)
    response.raise_for_status()
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def entries_for(
    entries: list[dict[str, Any]], host: str, method: str, path: str
) -> list[dict[str, Any]]:
    return [
        e
        for e in entries
        if e["host"] == host and e["method"].upper() == method and e["path"] == path
    ]


def header(entry: dict[str, Any], name: str) -> str | None:
    for key, value in entry["request_headers"].items():
        if key.lower() == name.lower():
            return str(value)
    return None


def assert_monotonic(statuses: list[str]) -> None:
    assert statuses, "no status update at all"
    assert all(s in STATUS_ORDER for s in statuses), f"unknown status in {statuses}"
    ranks = [STATUS_ORDER[s] for s in statuses]
    assert ranks == sorted(ranks), f"status went backwards: {statuses}"
    assert statuses[-1] == "COMPLETED", statuses
    assert statuses.count("COMPLETED") == 1, statuses


def log_key(log: dict[str, Any]) -> tuple[Any, ...]:
    return (log.get("timestamp"), log.get("level"), log.get("source"), log.get("message"))


def assert_log_shape(logs: list[dict[str, Any]]) -> None:
    for log in logs:
        assert isinstance(log["message"], str), log
        assert log["level"] in {"STDERR", "STDOUT", "ERROR", "INFO", "WARN", "DEBUG"}, log
        assert log["source"] == "USER", log
        assert isinstance(log["timestamp"], str), log
    keys = [log_key(log) for log in logs]
    assert len(keys) == len(set(keys)), f"duplicated log lines: {logs}"


def assert_request_urls(body: dict[str, Any], base_url: str, request_id: str) -> None:
    prefix = f"{base_url}/queue/fal-ai/lipsync/requests/{request_id}"
    assert body["response_url"] == prefix, body
    assert body["status_url"] == f"{prefix}/status", body
    assert body["cancel_url"] == f"{prefix}/cancel", body


def assert_video_output(data: dict[str, Any], base_url: str) -> dict[str, Any]:
    video = data["video"]
    assert set(video) >= {"url", "content_type", "file_name", "file_size"}, video
    assert video["content_type"] == "video/mp4", video
    assert isinstance(video["file_name"], str), video
    assert video["file_name"].endswith(".mp4"), video
    assert isinstance(video["file_size"], int), video
    assert video["file_size"] > 0, video
    assert video["url"].startswith(f"{base_url}/cdn/"), f"output URL not on the mock: {video}"
    return dict(video)


def download(url: str) -> httpx.Response:
    response = httpx.get(url, timeout=10)
    return response


def assert_downloads(video: dict[str, Any]) -> None:
    response = download(video["url"])
    assert response.status_code == 200, (video, response.status_code, response.text[:200])
    assert response.headers["content-type"].startswith("video/mp4"), response.headers
    assert len(response.content) == video["file_size"], (len(response.content), video)
    assert response.content[4:8] == b"ftyp", response.content[:16]


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(params=["middleware", "proxy"])
def mode(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def base_url(live_mock: Any) -> str:
    url: str = live_mock.base_url.rstrip("/")
    return url


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


# -- sync run ------------------------------------------------------------------------------


def test_run(base_url: str, mode: str) -> None:
    out = drive("run", base_url, mode)

    assert isinstance(out["requestId"], str), out
    assert out["requestId"], "x-fal-request-id missing on the run response"
    video = assert_video_output(out["data"], base_url)
    assert_downloads(video)

    entries = journal(base_url)
    runs = entries_for(entries, "run", "POST", ENDPOINT_PATH)
    assert len(runs) == 1, runs
    assert runs[0]["status_code"] == 200, runs[0]
    assert json.loads(runs[0]["request_body"]) == INPUT
    assert header(runs[0], "authorization") is not None  # redacted; the trace has the value
    assert not [e for e in entries if e["host"] == "queue"], "run must not touch the queue"


# -- storage -------------------------------------------------------------------------------


def test_storage_upload(base_url: str, mode: str) -> None:
    out = drive("storage_upload", base_url, mode)

    assert out["url"].startswith(f"{base_url}/cdn/"), out["url"]
    assert out["status"] == 200, out
    assert (out["content_type"] or "").startswith("audio/mpeg"), out
    assert out["length"] == out["sent_length"] == 1000, out
    assert out["sha256_got"] == out["sha256_sent"], out
    assert out["match"] is True

    entries = journal(base_url)
    initiates = entries_for(entries, "rest", "POST", "/storage/upload/initiate")
    assert len(initiates) == 1, initiates
    assert initiates[0]["query"] == "storage_type=fal-cdn-v3", initiates[0]
    assert initiates[0]["status_code"] == 200, initiates[0]
    body = json.loads(initiates[0]["request_body"])
    assert body["content_type"] == "audio/mpeg", body
    assert body["file_name"].endswith(".mpeg"), body
    assert header(initiates[0], "authorization") is not None  # redacted; the trace has the value
    upload_url = json.loads(initiates[0]["response_body"])["upload_url"]
    puts = [e for e in entries if e["host"] == "cdn" and e["method"].upper() == "PUT"]
    assert len(puts) == 1, puts
    assert upload_url.endswith(puts[0]["path"].split("/")[-1]), (upload_url, puts[0])
    assert 200 <= puts[0]["status_code"] < 300, puts[0]
    assert header(puts[0], "content-type") == "audio/mpeg", puts[0]
    assert header(puts[0], "authorization") is None, "the JS storage PUT carries no auth"


def test_auto_upload(base_url: str, mode: str) -> None:
    out = drive("auto_upload", base_url, mode)

    assert out["requestId"] == out["enqueued_request_id"]
    assert_video_output(out["data"], base_url)

    entries = journal(base_url)
    initiates = entries_for(entries, "rest", "POST", "/storage/upload/initiate")
    assert len(initiates) == 1, "exactly the Blob is uploaded; the data URI is not"
    assert json.loads(initiates[0]["request_body"])["content_type"] == "video/mp4"
    file_url = json.loads(initiates[0]["response_body"])["file_url"]
    submits = entries_for(entries, "queue", "POST", ENDPOINT_PATH)
    assert len(submits) == 1, submits
    assert submits[0]["seq"] > initiates[0]["seq"], "the upload happens before the submit"
    sent = json.loads(submits[0]["request_body"])
    assert sent == {"video_url": file_url, "audio_url": out["audio_url"]}, sent
    assert sent["video_url"].startswith(f"{base_url}/cdn/"), sent
    assert sent["audio_url"] == "data:audio/mpeg;base64,SUQz", sent

    uploaded = download(sent["video_url"])
    assert uploaded.status_code == 200, uploaded.status_code
    assert uploaded.headers["content-type"].startswith("video/mp4"), uploaded.headers
    assert hashlib.sha256(uploaded.content).hexdigest() == out["video_sha256"]


def test_output_download(base_url: str, mode: str) -> None:
    out = drive("output_download", base_url, mode)

    video = assert_video_output(out["data"], base_url)
    got = out["download"]
    assert got is not None
    assert got["status"] == 200, got
    assert (got["content_type"] or "").startswith("video/mp4"), got
    assert got["length"] == video["file_size"], (got, video)
    assert got["head_hex"][8:16] == MP4_FTYP, got
    assert hashlib.sha256(download(video["url"]).content).hexdigest() == got["sha256"]


# -- submit options, validation, client timeout --------------------------------------------


def test_submit_options_reach_the_wire(base_url: str, mode: str) -> None:
    out = drive("submit_options", base_url, mode)

    request_id = out["submit"]["request_id"]
    assert out["submit"]["status"] == "IN_QUEUE", out["submit"]
    assert_request_urls(out["submit"], base_url, request_id)

    submits = entries_for(journal(base_url), "queue", "POST", ENDPOINT_PATH)
    assert len(submits) == 1, submits
    submit = submits[0]
    assert submit["status_code"] == 200, submit
    assert submit["query"] == "fal_webhook=https%3A%2F%2Fhook.example%2Fcb", submit["query"]
    assert header(submit, "x-fal-queue-priority") == "low"
    assert header(submit, "x-fal-runner-hint") == "h1"
    assert header(submit, "x-fal-request-timeout") == "30"
    assert header(submit, "x-custom-header") == "yes"
    assert json.loads(submit["request_body"]) == INPUT


def test_invalid_input_raises_validation_error(base_url: str, mode: str) -> None:
    out = drive("invalid_input", base_url, mode)

    outcome = out["outcome"]
    assert not outcome["ok"], f"an input without audio_url must fail: {outcome}"
    error = outcome["error"]
    assert error["name"] == "ValidationError", error
    assert error["status"] == 422, error
    detail = error["body"]["detail"]
    assert isinstance(detail, list), error
    assert all({"loc", "msg", "type"} <= set(item) for item in detail), detail
    # ValidationError.getFieldErrors("audio_url") finds it: loc ends with the field name.
    assert out["audio_url_field_errors"], detail
    assert out["audio_url_field_errors"][0]["loc"][-1] == "audio_url"


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
