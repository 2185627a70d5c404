"""``fal_mock.webhooks``: what the mock sent, its inbox, and signature checks, for a test::

def test_my_handler(fal_mock):
    inbox = fal_mock.webhooks.inbox_url
    handle = fal_client.submit("fal-ai/lipsync", arguments=..., webhook_url=inbox)
    handle.get()  # the request finishes: its webhook is sent
    [webhook] = fal_mock.webhooks.wait().received
    fal_mock.webhooks.verify(webhook)  # the signature, against the mock's JWKS
    my_handler(webhook.headers, webhook.body)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts.webhooks import VerifiedWebhook, verify_webhook
from mock_server.engine.journal import JournalEntry
from mock_server.webhooks.inbox import INBOX_URL, ReceivedWebhook
from mock_server.webhooks.outbox import Delivery
from mock_server.webhooks.service import WebhookService

__all__ = ["WebhookHandle"]


class WebhookHandle:
    inbox_url: str = INBOX_URL
    """Pass it (or any path under it) as ``fal_webhook``/``webhook_url``: the mock's own
    receiver, read back with :attr:`received`."""

    def __init__(self, service: WebhookService) -> None:
        self.service = service

    @property
    def deliveries(self) -> list[Delivery]:
        """Every delivery (one per finished request with a webhook), with its attempts."""
        return self.service.outbox.deliveries()

    def delivery(self, request_id: str) -> Delivery:
        found = self.service.outbox.get(request_id)
        if found is None:
            known = [d.request_id for d in self.deliveries]
            raise KeyError(f"no webhook delivery for request {request_id!r}; there are {known}")
        return found

    @property
    def received(self) -> list[ReceivedWebhook]:
        """What the inbox received, oldest first (every attempt, failed ones included)."""
        return self.service.inbox.received()

    @property
    def attempts(self) -> list[JournalEntry]:
        """The journal's entries for the webhooks sent (one per attempt, to any receiver)."""
        return [entry for entry in self.service.engine.journal.entries() if entry.outgoing]

    def answer_next(self, *status_codes: int) -> None:
        """The inbox answers its next webhooks with these statuses (then 200): to see retries."""
        self.service.inbox.answer_next(*status_codes)

    def wait(self, timeout: float = 10.0) -> WebhookHandle:
        """Wait until every attempt due at the mock's clock has been made (deliveries run on a
        thread of their own); ``AssertionError`` after ``timeout`` seconds. Under the virtual
        clock, retries fall due only as the clock is advanced (``fal_mock.advance``)."""
        if not self.service.wait(timeout):
            due = [d.request_id for d in self.service.outbox.pending()]
            raise AssertionError(f"webhooks still due after {timeout:g} s: {due}")
        return self

    @property
    def jwks(self) -> dict[str, Any]:
        """The JWKS the mock serves (``/.well-known/jwks.json`` on its rest host)."""
        return self.service.jwks()

    def now(self) -> int:
        """The mock's clock as the Unix time it stamps webhooks with: ``now=`` for
        :func:`contracts.webhooks.verify_webhook` under the virtual clock."""
        return self.service.unix_now()

    def verify(
        self,
        webhook: ReceivedWebhook | tuple[Mapping[str, str], bytes],
        *,
        now: float | None = None,
    ) -> VerifiedWebhook:
        """Check a webhook's signature and timestamp against the mock's JWKS and clock (or
        ``now``); a ``contracts.webhooks.WebhookVerificationError`` when they do not hold."""
        headers, body = (
            (webhook.headers, webhook.body) if isinstance(webhook, ReceivedWebhook) else webhook
        )
        return verify_webhook(headers, body, self.jwks, now=self.now() if now is None else now)
