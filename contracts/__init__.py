"""The fal ``fal-ai/lipsync`` contract: models, operations and the generated OpenAPI spec.

The single source of truth of fal-lipsync-mock. Nothing here imports ``mock_server``.

PYTEST_DONT_REWRITE: the pytest plugin (entry point ``fal_mock``) makes pytest mark this
package for assertion rewriting; it is imported before that (by the plugin itself, or by a
pytester run inside a test session), and nothing here relies on rewritten asserts.
"""

from contracts.operations import (
    ENDPOINT_ID,
    FAL_HOSTS,
    OPERATIONS,
    QUEUE_STATUS_ORDER,
    Header,
    LogicalHost,
    Operation,
    QueueStatusName,
)
from contracts.schemas import *  # noqa: F403  (the schemas package curates its own __all__)
from contracts.schemas import __all__ as _schema_names
from contracts.webhooks import (
    JwksError,
    VerifiedWebhook,
    WebhookHeader,
    WebhookHeaderError,
    WebhookSignatureError,
    WebhookTimestampError,
    WebhookVerificationError,
    fetch_jwks,
    sign_webhook,
    verify_webhook,
)

__all__ = [
    "ENDPOINT_ID",
    "FAL_HOSTS",
    "OPERATIONS",
    "QUEUE_STATUS_ORDER",
    "Header",
    "JwksError",
    "LogicalHost",
    "Operation",
    "QueueStatusName",
    "VerifiedWebhook",
    "WebhookHeader",
    "WebhookHeaderError",
    "WebhookSignatureError",
    "WebhookTimestampError",
    "WebhookVerificationError",
    "fetch_jwks",
    "sign_webhook",
    "verify_webhook",
    *_schema_names,
]
