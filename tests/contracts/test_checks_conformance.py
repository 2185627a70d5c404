"""openapi.yaml conformance on transcripts written by hand: what the official clients send and
the mock answers conforms; each kind of departure is reported with the operation it concerns."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.checks import (
    RequestDoesNotConform,
    ResponseDoesNotConform,
    requests_conform_to_openapi,
    responses_conform_to_openapi,
)
from tests.contracts.transcript_script import (
    AUTH,
    BASE,
    INPUT,
    URLS,
    Script,
    a_correct_session,
    log,
)

# -- requests_conform_to_openapi ---------------------------------------------------------------


def conformance_problems(exchange_maker: Any) -> str:
    script = Script()
    exchange_maker(script)
    with pytest.raises(RequestDoesNotConform) as caught:
        requests_conform_to_openapi(script.transcript())
    return str(caught.value)


def test_every_official_client_request_shape_conforms() -> None:
    script = Script()
    script.add(
        "POST",
        "/fal-ai/lipsync",
        body={**INPUT, "sync_mode": "loop"},
        query="fal_webhook=https%3A%2F%2Fhook.example%2Fcb",
        headers={**AUTH, "x-fal-queue-priority": "low", "x-fal-request-timeout": "30.0"},
    )
    script.add("GET", f"{BASE}/status", query="logs=true")
    script.add("GET", f"{BASE}/status/stream", query="logs=1")
    script.add("GET", BASE)
    script.add("PUT", f"{BASE}/cancel")
    script.add("POST", "/fal-ai/lipsync", host="run", body=INPUT)
    script.add("POST", "/storage/auth/token", host="rest", query="storage_type=fal-cdn-v3")
    script.add(
        "POST",
        "/files/upload",
        host="cdn",
        body="<5 bytes of binary data>",
        headers={**AUTH, "content-type": "text/plain", "x-fal-file-name": "a.txt"},
    )
    script.add("GET", "/files/abc123/out.mp4", host="cdn", headers={})
    requests_conform_to_openapi(script.transcript())


def test_a_path_no_operation_has() -> None:
    report = conformance_problems(lambda s: s.add("GET", f"{BASE}/logs"))
    assert f"no operation of openapi.yaml has the path /queue{BASE}/logs" in report


def test_a_method_the_path_does_not_have() -> None:
    report = conformance_problems(lambda s: s.add("DELETE", BASE))
    assert f"DELETE is not an operation of /queue{BASE} (the spec has GET)" in report


def test_missing_credentials() -> None:
    report = conformance_problems(lambda s: s.add("GET", BASE, headers={}))
    assert "getRequestResult: no credentials: the Authorization header is missing" in report


def test_a_parameter_outside_its_schema() -> None:
    report = conformance_problems(lambda s: s.add("GET", f"{BASE}/status", query="logs=yes"))
    assert "query parameter 'logs' = 'yes': 'yes' is not one of" in report
    report = conformance_problems(
        lambda s: s.add(
            "POST", "/fal-ai/lipsync", body=INPUT, headers={**AUTH, "x-fal-request-timeout": "0.5"}
        )
    )
    assert "header parameter 'X-Fal-Request-Timeout' = '0.5'" in report


def test_a_body_outside_its_schema() -> None:
    report = conformance_problems(
        lambda s: s.add("POST", "/fal-ai/lipsync", body={"video_url": "https://x/v.mp4"})
    )
    assert "submitLipsync: the request body does not match its schema" in report
    assert "'audio_url' is a required property" in report
    report = conformance_problems(lambda s: s.add("POST", "/fal-ai/lipsync", host="run"))
    assert "runLipsync: the request body is required" in report
    report = conformance_problems(lambda s: s.add("POST", "/fal-ai/lipsync", body="{not json"))
    assert "the request body is not valid JSON" in report
    report = conformance_problems(
        lambda s: s.add(
            "POST", "/fal-ai/lipsync", body=INPUT, headers={**AUTH, "content-type": "text/plain"}
        )
    )
    assert "Content-Type 'text/plain' is not one of ['application/json']" in report


def test_a_truncated_body_is_not_judged() -> None:
    script = Script()
    script.add(
        "POST", "/fal-ai/lipsync", body='{"video_url": "data:...<truncated, 99999 bytes in all>'
    )
    requests_conform_to_openapi(script.transcript())


# -- responses_conform_to_openapi --------------------------------------------------------------


def response_problems(exchange_maker: Any) -> str:
    script = Script()
    exchange_maker(script)
    with pytest.raises(ResponseDoesNotConform) as caught:
        responses_conform_to_openapi(script.transcript())
    return str(caught.value)


def test_a_correct_session_answers_conform() -> None:
    script = a_correct_session()
    script.stream(
        {"status": "IN_QUEUE", "queue_position": 0},
        {"status": "IN_PROGRESS", "logs": [log(1)]},
        {"status": "COMPLETED", "logs": [], "metrics": {"inference_time": 1.0}},
    )
    script.add("PUT", f"{BASE}/cancel", 400, {"status": "ALREADY_COMPLETED"})
    script.add("GET", "/files/abc/out.mp4", host="cdn", raw_response="<9 bytes of binary data>")
    responses_conform_to_openapi(script.transcript())


def test_transient_failures_may_answer_anything_in_any_shape() -> None:
    script = Script()
    for code in (408, 409, 429, 500, 502, 503, 504):
        script.add(
            "GET",
            f"{BASE}/status",
            code,
            raw_response="<html><body>nginx</body></html>",
            response_headers={"content-type": "text/html"},
        )
    script.add("GET", f"{BASE}/status", 0)  # the connection dropped: no answer at all
    responses_conform_to_openapi(script.transcript())


def test_a_status_code_the_spec_does_not_list() -> None:
    report = response_problems(lambda s: s.add("PUT", f"{BASE}/cancel", 200, {"status": "OK"}))
    assert "cancelRequest: status 200 is not one the spec lists (202, 400, 401, 404)" in report


def test_a_required_header_that_is_missing() -> None:
    report = response_problems(
        lambda s: s.add("GET", BASE, 200, {"video": {"url": "u"}}, request_id=None)
    )
    assert "getRequestResult 200: the required header x-fal-request-id is missing" in report


def test_a_body_that_breaks_its_schema_names_the_field() -> None:
    def in_progress_without_logs(script: Script) -> None:
        script.add("GET", f"{BASE}/status", 202, {**URLS, "status": "IN_PROGRESS"})

    report = response_problems(in_progress_without_logs)
    assert "getRequestStatus 202: the body does not match its schema: " in report
    assert "'logs' is a required property" in report

    report = response_problems(
        lambda s: s.add("GET", f"{BASE}/status", 200, {**URLS, "status": "FAILED", "logs": None})
    )
    assert "getRequestStatus 200" in report and "'COMPLETED' was expected" in report


def test_every_repeat_of_one_mistake_is_one_finding() -> None:
    script = Script()
    for _ in range(8):
        script.add("GET", f"{BASE}/status", 202, {**URLS, "status": "IN_PROGRESS"})
    with pytest.raises(ResponseDoesNotConform) as caught:
        responses_conform_to_openapi(script.transcript())
    assert "(the same in 7 other exchange(s): #2, #3, #4, #5, #6 and 2 more)" in str(caught.value)


def test_stream_events_are_validated_one_by_one() -> None:
    script = Script()
    script.stream({"status": "IN_QUEUE", "queue_position": 0}, {"status": "IN_PROGRESS"})
    with pytest.raises(ResponseDoesNotConform, match="event 1 does not match its schema"):
        responses_conform_to_openapi(script.transcript())


def test_a_body_of_the_wrong_type_or_not_json() -> None:
    report = response_problems(
        lambda s: s.add(
            "GET",
            BASE,
            200,
            raw_response="<html></html>",
            response_headers={"content-type": "text/html"},
        )
    )
    assert "Content-Type 'text/html' is not one of ['application/json']" in report
    report = response_problems(lambda s: s.add("GET", BASE, 200, raw_response="{nope"))
    assert "getRequestResult 200: the body is not valid JSON" in report


def test_a_truncated_answer_is_not_judged() -> None:
    script = Script()
    cut = json.dumps({"video": {"url": "u"}})[:10] + "...<truncated, 99999 bytes in all>"
    script.add("GET", BASE, 200, raw_response=cut)
    stream = "data: " + json.dumps({**URLS, "status": "IN_QUEUE", "queue_position": 0})
    script.add(
        "GET",
        f"{BASE}/status/stream",
        200,
        raw_response=f"{stream}\n\n{stream[:20]}...<truncated, 99999 bytes in all>",
        response_headers={"content-type": "text/event-stream"},
    )
    responses_conform_to_openapi(script.transcript())
