"""fal's webhooks, sent by the mock: signed payloads, an outbox with fal's retries, an inbox.

* :mod:`~mock_server.webhooks.service`: the engine's listener and the handle on it
  (:func:`webhooks_of`).
* :mod:`~mock_server.webhooks.outbox`: deliveries and attempts as plain data, the retry schedule.
* :mod:`~mock_server.webhooks.dispatch`: the thread that sends them, outside the engine's lock.
* :mod:`~mock_server.webhooks.signing`: the Ed25519 key of the seed and its JWKS.
* :mod:`~mock_server.webhooks.payloads`: the body, from an outcome.
* :mod:`~mock_server.webhooks.targets`: where webhooks may go.
* :mod:`~mock_server.webhooks.inbox`: a receiver inside the mock, for tests.

Verifying a webhook is the contract's business: :mod:`contracts.webhooks`.
"""

from mock_server.webhooks.inbox import INBOX_URL, Inbox, ReceivedWebhook
from mock_server.webhooks.outbox import MAX_ATTEMPTS, RETRY_SCHEDULE, Attempt, Delivery, Outbox
from mock_server.webhooks.service import WebhookOptions, WebhookService, attach, webhooks_of
from mock_server.webhooks.signing import USER_ID, WebhookSigner, signer_for

__all__ = [
    "INBOX_URL",
    "MAX_ATTEMPTS",
    "RETRY_SCHEDULE",
    "USER_ID",
    "Attempt",
    "Delivery",
    "Inbox",
    "Outbox",
    "ReceivedWebhook",
    "WebhookOptions",
    "WebhookService",
    "WebhookSigner",
    "attach",
    "signer_for",
    "webhooks_of",
]
