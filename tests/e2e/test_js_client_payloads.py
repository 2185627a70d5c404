"""The official JS client (@fal-ai/client, through node) against the live mock: what goes in and
comes out.

The sync run, storage uploads (explicit and automatic), downloading the output, the submit
options that must reach the wire, and an invalid input surfacing as a ValidationError.
How the scenarios are run is in ``tests/e2e/js_harness.py``.

Needs node >= 18 and ``npm ci --prefix tests/e2e/js``; skipped otherwise.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.e2e import js_harness
from tests.e2e.js_harness import (
    ENDPOINT_PATH,
    INPUT,
    assert_downloads,
    assert_request_urls,
    assert_video_output,
    download,
    drive,
    entries_for,
    header,
    journal,
    missing_prerequisite,
)

pytestmark = pytest.mark.node

if (reason := missing_prerequisite()) is not None:
    pytest.skip(reason, allow_module_level=True)

# Bound here so pytest finds the shared fixtures in this module; a plain ``from ... import``
# of them would read as unused (and shadowed) imports to the linters.
mode = js_harness.mode
base_url = js_harness.base_url

MP4_FTYP = b"ftyp".hex()


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


# -- submit options and input validation ---------------------------------------------------


def test_submit_options_reach_the_wire(base_url: str, mode: str) -> None:
    out = drive("submit_options", base_url, mode)

    request_id = out["submit"]["request_id"]
    assert out["submit"]["status"] == "IN_QUEUE", out["submit"]
    assert_request_urls(out["submit"], base_url, request_id)

    submits = entries_for(journal(base_url), "queue", "POST", ENDPOINT_PATH)
    assert len(submits) == 1, submits
    submit = submits[0]
    assert submit["status_code"] == 200, submit
    webhook = "fal_webhook=http%3A%2F%2Finbox.fal-mock.invalid%2Fcb"
    assert submit["query"] == webhook, submit["query"]
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
