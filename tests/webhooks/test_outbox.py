"""The outbox as plain data (the schedule, saving and restoring), the payload, and the signer."""

from __future__ import annotations

import gc
import json
import math
import threading
import time

import pytest

from contracts import WebhookPayload, verify_webhook
from mock_server.engine.clock import EPOCH
from mock_server.engine.jobs import SubmitOptions
from mock_server.engine.queue import EngineConfig, QueueEngine
from mock_server.engine.results import Failure, Success, infrastructure_failure
from mock_server.inprocess import FORWARDED
from mock_server.webhooks import (
    MAX_ATTEMPTS,
    RETRY_SCHEDULE,
    Attempt,
    Delivery,
    Outbox,
    WebhookService,
    attach,
    signer_for,
    webhooks_of,
)
from mock_server.webhooks.dispatch import PASS_THROUGH
from mock_server.webhooks.payloads import NOT_SERIALISABLE, webhook_body
from tests.conftest import LIPSYNC_INPUT
from tests.webhooks.conftest import Receiver


def _failed(number: int, at: float) -> Attempt:
    return Attempt(number, at, math.floor(EPOCH.timestamp() + at), 500, "the receiver answered 500")


def test_the_schedule_is_ten_attempts_over_two_hours() -> None:
    assert MAX_ATTEMPTS == 10 and RETRY_SCHEDULE[0] == 0 and RETRY_SCHEDULE[-1] == 7200
    assert list(RETRY_SCHEDULE) == sorted(set(RETRY_SCHEDULE))


def test_a_delivery_falls_due_on_the_schedule_until_it_is_delivered_or_failed() -> None:
    delivery = Delivery("r1", "http://127.0.0.1:9/h", "{}", finished_at=5.0)
    seen = []
    for number in range(1, MAX_ATTEMPTS + 1):
        due = delivery.next_due
        assert due == 5.0 + RETRY_SCHEDULE[number - 1]
        seen.append(due)
        delivery = delivery.after(_failed(number, due))
    assert delivery.status == "failed" and delivery.next_due is None
    delivered = Delivery("r2", "u", "{}", 0.0).after(Attempt(1, 0.0, 0, 204))
    assert delivered.status == "delivered" and delivered.next_due is None


def test_a_late_attempt_moves_the_next_due_time_no_earlier_than_itself() -> None:
    late = Delivery("r1", "u", "{}", 0.0).after(_failed(1, 40.0))  # attempt 2 was due at 15
    assert late.next_due == 40.0


def test_the_outbox_hands_out_due_deliveries_in_order_and_records_attempts() -> None:
    outbox = Outbox()
    outbox.add(Delivery("b", "u", "{}", finished_at=2.0))
    outbox.add(Delivery("a", "u", "{}", finished_at=1.0))
    outbox.add(Delivery("c", "u", "{}", finished_at=2.0))
    assert outbox.take_due(0.5) is None and outbox.next_due() == 1.0
    order = []
    while (taken := outbox.take_due(10.0)) is not None:
        delivery, generation = taken
        assert outbox.in_flight(delivery.request_id) and not outbox.settled(10.0)
        order.append(delivery.request_id)
        recorded = outbox.record(delivery.request_id, _failed(1, 2.0), generation)
        assert recorded is not None and recorded.next_due == delivery.finished_at + 15
    assert order == ["a", "b", "c"]  # by due time, ties in the order added
    assert outbox.settled(10.0) and not outbox.settled(16.0)


def test_an_attempt_taken_before_a_reset_is_not_recorded_after_it() -> None:
    outbox = Outbox()
    outbox.add(Delivery("r1", "u", "{}", 0.0))
    taken = outbox.take_due(0.0)
    assert taken is not None
    outbox.clear()
    assert outbox.record("r1", _failed(1, 0.0), taken[1]) is None
    assert outbox.deliveries() == []


def test_deliveries_save_as_json_and_restore_pending_ones_fall_due_again() -> None:
    saved = Outbox()
    changes: list[Delivery] = []
    saved.observers.append(changes.append)
    saved.add(Delivery("r1", "http://127.0.0.1:9/h", '{"a": 1}', 3.0))
    saved.add(Delivery("r2", "http://127.0.0.1:9/h", "{}", 4.0))
    taken = saved.take_due(100.0)
    assert taken is not None
    saved.record("r1", _failed(1, 3.0), taken[1])
    saved.take_due(100.0)  # r2 in flight when the process "dies": pending again on restore
    assert [c.request_id for c in changes] == ["r1", "r2", "r1"]

    rows = json.loads(json.dumps([d.as_dict() for d in saved.pending()]))
    assert rows[0]["next_due"] == 18.0 and rows[0]["attempts"][0]["status_code"] == 500
    restored = Outbox()
    restored.restore(Delivery.from_dict(row) for row in rows)

    assert restored.deliveries() == saved.deliveries()
    assert restored.next_due() == 4.0  # r2 again, then r1's second attempt
    first = restored.take_due(100.0)
    second = restored.take_due(100.0)
    assert first is not None and second is not None
    assert (first[0].request_id, second[0].request_id) == ("r2", "r1")


def test_finished_deliveries_beyond_the_limit_are_forgotten_pending_ones_never() -> None:
    outbox = Outbox(finished_limit=2)
    outbox.add(Delivery("pending", "u", "{}", 0.0))
    for n in range(4):
        outbox.add(Delivery(f"done{n}", "u", "{}", 0.0, status="delivered"))
    assert [d.request_id for d in outbox.deliveries()] == ["pending", "done2", "done3"]


def test_the_payload_of_an_output_an_error_and_an_output_that_is_not_json() -> None:
    output = {"video": {"url": "fal-mock-file://abc123abc/v.mp4", "file_size": 3}}
    ok = WebhookPayload.model_validate_json(webhook_body("r1", Success(output), "http://h/cdn"))
    assert ok.payload == {"video": {"url": "http://h/cdn/files/abc123abc/v.mp4", "file_size": 3}}
    default = json.loads(webhook_body("r1", Success(output)))
    assert default["payload"]["video"]["url"] == "https://v3.fal.media/files/abc123abc/v.mp4"

    failure = infrastructure_failure(503, "Runner disconnected", "runner_disconnected")
    error = json.loads(webhook_body("r1", failure))
    assert error == {
        "request_id": "r1",
        "gateway_request_id": "r1",
        "status": "ERROR",
        "payload": {"detail": "Runner disconnected", "error_type": "runner_disconnected"},
        "error": "Invalid status code: 503",
    }
    for content in ({"video": float("nan")}, {"video": b"\x00"}, {"video": object()}):
        odd = json.loads(webhook_body("r1", Success(content)))
        assert odd["payload"] is None and odd["payload_error"] == NOT_SERIALISABLE
        assert odd["status"] == "OK"
    odd_error = json.loads(webhook_body("r1", Failure(404, {"detail": {1, 2}}, "Not found")))
    assert (odd_error["status"], odd_error["error"]) == ("ERROR", "Invalid status code: 404")
    assert odd_error["payload"] is None and odd_error["payload_error"] == NOT_SERIALISABLE


def test_the_key_is_the_seeds_and_signatures_are_deterministic() -> None:
    body = b'{"request_id":"r1"}'
    first = signer_for(5).headers("r1", 1_735_689_600, body)
    assert signer_for(5).headers("r1", 1_735_689_600, body) == first
    assert signer_for(6).headers("r1", 1_735_689_600, body) != first
    assert signer_for(5).jwks() != signer_for(6).jwks()
    assert verify_webhook(first, body, signer_for(5).jwks(), now=1_735_689_600)


def test_the_dispatchers_mark_is_the_plugins_pass_through_extension() -> None:
    assert PASS_THROUGH == FORWARDED


def test_one_service_per_engine_found_through_the_engine() -> None:
    engine = QueueEngine(EngineConfig())
    assert webhooks_of(engine) is None
    service = attach(engine)
    assert attach(engine) is service and webhooks_of(engine) is service
    assert isinstance(service, WebhookService)


def test_an_engine_dropped_with_deliveries_pending_lets_its_thread_end() -> None:
    from contracts.schemas import LipsyncInput
    from mock_server.engine.policies import Policy

    engine = QueueEngine(EngineConfig(policy=Policy.parse("immediate")))
    service = attach(engine)
    options = SubmitOptions(webhook_url="http://127.0.0.1:9/never")  # nothing listens: retried
    engine.submit(LipsyncInput.model_validate(LIPSYNC_INPUT), "fal-ai/lipsync", options)
    assert service.wait(10)
    [delivery] = service.outbox.pending()
    assert len(delivery.attempts) == 1 and delivery.attempts[0].status_code is None
    thread = service.dispatcher._thread
    assert isinstance(thread, threading.Thread) and thread.is_alive()  # waiting for attempt 2

    del engine, service, delivery
    deadline = time.monotonic() + 10
    while thread.is_alive() and time.monotonic() < deadline:
        gc.collect()  # the engine is in reference cycles; between its steps the thread holds none
        time.sleep(0.01)
    assert not thread.is_alive()


@pytest.mark.parametrize("mode", ["clock", "wall"])
def test_timestamps_follow_the_engines_clock_or_the_real_time(mode: str) -> None:
    from mock_server.webhooks import WebhookOptions

    engine = QueueEngine(EngineConfig())
    service = attach(engine, WebhookOptions(timestamps=mode))  # type: ignore[arg-type]
    engine.advance_clock(100)
    stamp = service.unix_now()
    if mode == "clock":
        assert stamp == math.floor(EPOCH.timestamp() + 100)
    else:
        assert abs(stamp - time.time()) < 5


def test_an_unexpected_error_in_an_attempt_is_a_failed_attempt_and_the_thread_goes_on(
    receiver: Receiver,
) -> None:
    import respx

    from contracts.schemas import LipsyncInput
    from mock_server.engine.policies import Policy

    engine = QueueEngine(EngineConfig(policy=Policy.parse("immediate")))
    service = attach(engine)
    payload = LipsyncInput.model_validate(LIPSYNC_INPUT)
    with respx.mock(assert_all_mocked=True):  # a test's own respx, which knows no receiver
        engine.submit(payload, "fal-ai/lipsync", SubmitOptions(webhook_url=receiver.url))
        assert service.wait(10)
    [delivery] = service.outbox.deliveries()
    [attempt] = delivery.attempts
    assert attempt.status_code is None and "AllMockedAssertionError" in (attempt.error or "")

    engine.advance_clock(RETRY_SCHEDULE[1])
    assert service.wait(10)
    assert service.outbox.deliveries()[0].status == "delivered" and len(receiver.received) == 1
    engine.reset()
