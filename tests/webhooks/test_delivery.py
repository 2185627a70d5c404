"""Webhooks from a live mock to a real receiver on a loopback port: signed as fal signs, retried
on fal's schedule on the virtual clock, every attempt journaled, the same bytes from the same
seed."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from contracts import (
    WebhookPayload,
    WebhookSignatureError,
    WebhookTimestampError,
    verify_webhook,
)
from mock_server.testing import LiveServer
from mock_server.webhooks import MAX_ATTEMPTS, RETRY_SCHEDULE, USER_ID
from tests.webhooks.conftest import (
    Receiver,
    advance,
    finished_at,
    mock_now,
    submit,
    unix,
)

JWKS_PATH = "/rest/.well-known/jwks.json"
TWO_HOURS = 7200.0


def test_a_webhook_verifies_against_the_served_jwks(
    live: LiveServer, mock: httpx.Client, receiver: Receiver
) -> None:
    request_id = submit(mock, receiver.url)
    advance(mock, 10)
    [got] = receiver.received
    jwks_url = f"{live.base_url}{JWKS_PATH}"

    verified = verify_webhook(got.headers, got.body, jwks_url, now=mock_now(mock))

    assert (verified.request_id, verified.user_id) == (request_id, USER_ID)
    assert got.path == "/hooks/fal" and got.headers["Content-Type"] == "application/json"
    payload = verified.payload()
    assert (payload.request_id, payload.gateway_request_id, payload.status) == (
        request_id,
        request_id,
        "OK",
    )
    result = mock.get(f"/queue/fal-ai/lipsync/requests/{request_id}")
    assert payload.payload == result.json()  # the output, file URLs leading back to the mock
    assert payload.payload is not None and payload.payload["video"]["url"].startswith(
        f"{live.base_url}/cdn/files/"
    )
    assert set(json.loads(got.body)) == {"request_id", "gateway_request_id", "status", "payload"}
    assert verified.key_id == mock.get(JWKS_PATH).json()["keys"][0]["kid"]


def test_a_tampered_body_a_wrong_key_and_a_stale_timestamp_fail(
    live: LiveServer, mock: httpx.Client, receiver: Receiver
) -> None:
    submit(mock, receiver.url)
    advance(mock, 10)
    [got] = receiver.received
    jwks = mock.get(JWKS_PATH).json()
    now = mock_now(mock)
    assert verify_webhook(got.headers, got.body, jwks, now=now)  # the control

    tampered = got.body.replace(b'"OK"', b'"ERROR"')
    assert tampered != got.body
    with pytest.raises(WebhookSignatureError, match="no key of the JWKS"):
        verify_webhook(got.headers, tampered, jwks, now=now)

    mock.post("/_mock/reset", json={"seed": 1})  # another seed: another key
    other_jwks = mock.get(JWKS_PATH).json()
    assert other_jwks != jwks
    with pytest.raises(WebhookSignatureError):
        verify_webhook(got.headers, got.body, other_jwks, now=now)

    for stale in (got.timestamp + 301, got.timestamp - 301):
        with pytest.raises(WebhookTimestampError):
            verify_webhook(got.headers, got.body, jwks, now=stale)
    assert verify_webhook(got.headers, got.body, jwks, now=got.timestamp + 300)


@pytest.mark.parametrize("failures", [0, 1, 3, MAX_ATTEMPTS - 1])
def test_k_failures_get_k_plus_one_attempts_on_the_schedule(
    mock: httpx.Client, receiver: Receiver, failures: int
) -> None:
    receiver.fail_first = failures
    request_id = submit(mock, receiver.url)
    advance(mock, 10)
    finished = finished_at(mock, request_id)  # read now: results are kept an hour
    advance(mock, 3 * 3600)  # one advance plays every attempt, each at its own time

    assert len(receiver.received) == failures + 1
    expected = [unix(finished + RETRY_SCHEDULE[n]) for n in range(failures + 1)]
    assert [got.timestamp for got in receiver.received] == expected
    assert len({got.body for got in receiver.received}) == 1  # the same body every time
    [delivery] = mock.get("/_mock/webhooks").json()["deliveries"]
    assert (delivery["status"], delivery["next_due"]) == ("delivered", None)
    assert [a["status_code"] for a in delivery["attempts"]] == [500] * failures + [200]


def test_a_receiver_that_always_fails_gets_ten_attempts_then_the_delivery_failed(
    mock: httpx.Client, receiver: Receiver
) -> None:
    receiver.fail_first = None
    receiver.fail_status = 503
    request_id = submit(mock, receiver.url)
    advance(mock, 10)
    finished = finished_at(mock, request_id)
    assert len(receiver.received) == 1

    # Nothing before its time: each step stops a second short of the next attempt, then reaches it.
    clock = 10.0
    for number in range(2, MAX_ATTEMPTS + 1):
        due = finished + RETRY_SCHEDULE[number - 1]
        clock = advance(mock, due - 1 - clock)
        assert len(receiver.received) == number - 1
        clock = advance(mock, 1)
        assert len(receiver.received) == number
        delivery = mock.get("/_mock/webhooks").json()["deliveries"][0]
        assert delivery["attempts"][-1] == {
            "number": number,
            "at": due,
            "timestamp": unix(due),
            "status_code": 503,
            "error": "the receiver answered 503",
        }
    assert (delivery["status"], delivery["next_due"]) == ("failed", None)
    assert clock - finished == pytest.approx(TWO_HOURS)

    advance(mock, 24 * 3600)
    assert len(receiver.received) == MAX_ATTEMPTS


def test_every_attempt_is_in_the_journal_and_none_is_a_client_exchange(
    live: LiveServer, mock: httpx.Client, receiver: Receiver
) -> None:
    from mock_server.checking import check_mock, transcript_of

    receiver.fail_first = 2
    request_id = submit(mock, receiver.url)
    advance(mock, 10)
    finished = finished_at(mock, request_id)
    advance(mock, 3600)

    entries = mock.get("/_mock/journal").json()["entries"]
    attempts = [e for e in entries if e["extra"].get("direction") == "outgoing"]
    assert [(e["extra"]["attempt"], e["status_code"]) for e in attempts] == [
        (1, 500),
        (2, 500),
        (3, 200),
    ]
    for entry, got in zip(attempts, receiver.received, strict=True):
        assert (entry["host"], entry["method"], entry["path"]) == ("webhook", "POST", "/hooks/fal")
        assert entry["request_id"] == request_id and entry["extra"]["url"] == receiver.url
        assert entry["request_body"] == got.body.decode()
        assert (
            entry["request_headers"]["X-Fal-Webhook-Signature"]
            == (got.headers["X-Fal-Webhook-Signature"])
        )
        assert entry["time"] == finished + RETRY_SCHEDULE[entry["extra"]["attempt"] - 1]
    assert len({e["seq"] for e in entries}) == len(entries)
    transcript = transcript_of(live.engine)
    assert transcript.exchanges and all(e.host != "webhook" for e in transcript.exchanges)
    check_mock(live.engine)  # the contract checks see the client's exchanges only


def _run(mock: httpx.Client, receiver: Receiver, seed: int) -> list[tuple[bytes, str, str]]:
    mock.post("/_mock/reset", json={"seed": seed, "policy": "virtual"})
    receiver.received.clear()
    receiver.fail_first = 1
    submit(mock, receiver.url)
    submit(mock, receiver.url, **{"X-Mock-Faults": '{"rules": [{"kind": "result_422"}]}'})
    advance(mock, 3600)
    return [
        (got.body, got.headers["X-Fal-Webhook-Signature"], got.headers["X-Fal-Webhook-Timestamp"])
        for got in receiver.received
    ]


def test_the_same_seed_gives_the_same_bodies_and_signatures(
    mock: httpx.Client, receiver: Receiver
) -> None:
    first = _run(mock, receiver, seed=11)
    assert len(first) == 3  # two requests; the first attempt failed and was retried
    assert _run(mock, receiver, seed=11) == first
    other = _run(mock, receiver, seed=12)
    assert {signature for _, signature, _ in other}.isdisjoint(s for _, s, _ in first)


def test_an_error_outcome_is_an_error_webhook_with_the_error_body(
    mock: httpx.Client, receiver: Receiver
) -> None:
    faults = '{"rules": [{"kind": "result_422"}]}'
    request_id = submit(mock, receiver.url, **{"X-Mock-Faults": faults})
    advance(mock, 10)
    [got] = receiver.received
    payload = WebhookPayload.model_validate_json(got.body)
    result = mock.get(f"/queue/fal-ai/lipsync/requests/{request_id}")
    assert result.status_code == 422
    assert (payload.status, payload.error) == ("ERROR", "Invalid status code: 422")
    assert payload.payload == result.json() and payload.payload_error is None


def test_a_cancelled_request_sends_its_error(mock: httpx.Client, receiver: Receiver) -> None:
    request_id = submit(mock, receiver.url)
    assert mock.put(f"/queue/fal-ai/lipsync/requests/{request_id}/cancel").status_code == 202
    advance(mock, 0)
    [got] = receiver.received
    payload = WebhookPayload.model_validate_json(got.body)
    assert (payload.status, payload.error) == ("ERROR", "Invalid status code: 400")
    assert payload.payload == {"detail": "Request was cancelled", "error_type": "request_cancelled"}


def test_a_timeout_and_a_refused_connection_are_failed_attempts(
    mock: httpx.Client, receiver: Receiver
) -> None:
    receiver.hang = 1.0  # the live mock waits 0.5 s
    closed = Receiver()
    closed.close()  # nothing listens on its port any more
    slow = submit(mock, receiver.url)
    refused = submit(mock, closed.url)
    advance(mock, 10)

    deliveries = {d["request_id"]: d for d in mock.get("/_mock/webhooks").json()["deliveries"]}
    [timed_out] = deliveries[slow]["attempts"]
    assert timed_out["status_code"] is None and timed_out["error"] == "no answer within 0.5 s"
    [no_answer] = deliveries[refused]["attempts"]
    assert no_answer["status_code"] is None and "ConnectError" in no_answer["error"]
    assert {d["status"] for d in deliveries.values()} == {"pending"}
    assert deliveries[slow]["next_due"] == pytest.approx(
        finished_at(mock, slow) + RETRY_SCHEDULE[1]
    )


def test_a_sync_run_sends_no_webhook(mock: httpx.Client, receiver: Receiver) -> None:
    from tests.conftest import LIPSYNC_INPUT

    answer = mock.post(
        "/run/fal-ai/lipsync", params={"fal_webhook": receiver.url}, json=LIPSYNC_INPUT
    )
    assert answer.status_code == 200
    advance(mock, 60)
    assert receiver.received == [] and mock.get("/_mock/webhooks").json()["deliveries"] == []


def test_the_webhooks_bench_runs(tmp_path: Path) -> None:
    from bench.webhooks_bench import main

    out = tmp_path / "webhooks.json"
    assert main(["--quick", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert len(figures["retries"]["runs_ms"]) == 2 and figures["burst"]["deliveries"] == 10
    assert figures["crypto"]["sign_us"] > 0 and figures["crypto"]["verify_us"] > 0
