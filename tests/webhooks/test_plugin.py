"""The official fal-client, unmodified, with ``webhook_url`` against the mock: in-process
(``fal_mock``: respx routes fal's hosts, the webhook still reaches a real loopback receiver)
and live (``fal_mock_server``); ``fal_mock.webhooks`` reads deliveries and verifies them."""

from __future__ import annotations

from typing import Any

import fal_client
import pytest

from contracts import WebhookSignatureError, verify_webhook
from mock_server.webhooks import RETRY_SCHEDULE
from tests.conftest import LIPSYNC_INPUT
from tests.webhooks.conftest import Receiver

APP = "fal-ai/lipsync"
FAL_JWKS = "https://rest.alpha.fal.ai/.well-known/jwks.json"


def test_fal_client_webhook_to_the_inbox_verifies(fal_mock: Any) -> None:
    handle = fal_client.submit(
        APP, arguments=LIPSYNC_INPUT, webhook_url=fal_mock.webhooks.inbox_url
    )
    output = handle.get()

    [webhook] = fal_mock.webhooks.wait().received
    verified = fal_mock.webhooks.verify(webhook)
    assert verified.request_id == handle.request_id == webhook.request_id
    payload = webhook.payload()
    assert (payload.status, payload.payload) == ("OK", output)
    assert output["video"]["url"].startswith("https://v3.fal.media/files/")
    [delivery] = fal_mock.webhooks.deliveries
    assert delivery.status == "delivered" and delivery.body == webhook.body.decode()
    [attempt] = fal_mock.webhooks.attempts
    assert attempt.outgoing and attempt.status_code == 200


def test_fal_client_webhook_to_a_loopback_receiver_in_process(
    fal_mock: Any, receiver: Receiver
) -> None:
    handle = fal_client.submit(APP, arguments=LIPSYNC_INPUT, webhook_url=receiver.url)
    output = handle.get()
    fal_mock.webhooks.wait()

    [got] = receiver.received  # a real socket, though respx routes every httpx request
    # The JWKS by fal's own URL: routed into the mock like every request to fal's hosts.
    verified = verify_webhook(got.headers, got.body, FAL_JWKS, now=fal_mock.webhooks.now())
    assert verified.request_id == handle.request_id
    assert verified.payload().payload == output
    with pytest.raises(WebhookSignatureError):
        verify_webhook(got.headers, got.body + b" ", FAL_JWKS, now=fal_mock.webhooks.now())
    assert fal_mock.escaped == []


@pytest.mark.fal_mock(policy="virtual")
def test_the_inbox_fails_on_request_and_retries_play_on_the_virtual_clock(fal_mock: Any) -> None:
    webhooks = fal_mock.webhooks
    webhooks.answer_next(503, 503)
    handle = fal_client.submit(APP, arguments=LIPSYNC_INPUT, webhook_url=webhooks.inbox_url)
    fal_mock.advance(10)
    assert [w.status_code for w in webhooks.wait().received] == [503]
    fal_mock.advance(RETRY_SCHEDULE[2])  # past the second and third attempts' times

    received = webhooks.wait().received
    assert [w.status_code for w in received] == [503, 503, 200]
    stamps = [int(w.header("x-fal-webhook-timestamp") or 0) for w in received]
    assert [stamp - stamps[0] for stamp in stamps] == [0, 15, 60]  # (whole seconds)
    assert webhooks.delivery(handle.request_id).status == "delivered"
    for webhook in received:
        webhooks.verify(webhook)  # against the mock's JWKS, now = the mock's clock


def test_fal_client_webhook_from_the_live_mock(fal_mock_server: Any, receiver: Receiver) -> None:
    with fal_mock_server.pointed():
        handle = fal_client.submit(APP, arguments=LIPSYNC_INPUT, webhook_url=receiver.url)
        output = handle.get()
    fal_mock_server.webhooks.wait()

    [got] = receiver.received
    jwks_url = f"{fal_mock_server.base_url}/rest/.well-known/jwks.json"
    verified = verify_webhook(got.headers, got.body, jwks_url, now=fal_mock_server.webhooks.now())
    assert verified.request_id == handle.request_id
    assert verified.payload().payload == output
    assert output["video"]["url"].startswith(f"{fal_mock_server.base_url}/cdn/files/")


def test_a_refused_webhook_url_raises_in_fal_client(fal_mock: Any) -> None:
    with pytest.raises(fal_client.client.FalClientError) as raised:
        fal_client.submit(APP, arguments=LIPSYNC_INPUT, webhook_url="http://10.0.0.1/hook")
    assert "fal_webhook" in str(raised.value) or "10.0.0.1" in str(raised.value)
    assert fal_mock.request_ids == []
