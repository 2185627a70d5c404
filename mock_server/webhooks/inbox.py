"""The inbox: a webhook receiver inside the mock, for tests that have no server of their own.

Pass :data:`INBOX_URL` (any path under it) as ``fal_webhook``. The mock's dispatcher sends to it
like to any receiver, a real httpx request (headers and body as they would go on the wire), but
an httpx transport hands it to the :class:`Inbox` instead of a socket. ``.invalid`` never
resolves (RFC 2606), so the URL cannot reach anything else by mistake. Read what arrived with
``fal_mock.webhooks.received`` or ``GET /_mock/webhooks/inbox``.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Final

import httpx

from contracts.operations import Limits
from contracts.schemas import WebhookPayload
from contracts.webhooks import WebhookHeader

__all__ = [
    "INBOX_HOST",
    "INBOX_URL",
    "Inbox",
    "InboxTransport",
    "ReceivedWebhook",
    "is_inbox",
    "to_inbox",
]

INBOX_HOST: Final = "inbox.fal-mock.invalid"
INBOX_URL: Final = f"http://{INBOX_HOST}/"

_SUBMITTABLE: Final = re.compile(r"https?://\S+")
"""What the submit route takes as a ``fal_webhook`` URL (its query pattern)."""


def to_inbox(url: str) -> str:
    """The inbox in place of a generated webhook URL (schemathesis' ``fal_webhook`` values).

    A test tool must not make a server (fal, or a mock allowed public targets) POST to
    whatever host it generated, and the mock refuses hosts that are not loopback or the inbox;
    the inbox is harmless everywhere (``.invalid`` never resolves). Only a value the submit
    route would take as a URL is replaced: a malformed one stays, so a negative case stays
    negative."""
    if len(url) > Limits.WEBHOOK_URL_LENGTH or not _SUBMITTABLE.fullmatch(url):
        return url
    try:
        if not httpx.URL(url).host:
            return url
    except (httpx.InvalidURL, TypeError):
        return url
    return INBOX_URL


def is_inbox(url: str) -> bool:
    """Whether ``url`` is the inbox's (http or https, any path)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return False
    return parsed.scheme in ("http", "https") and parsed.host == INBOX_HOST and not parsed.port


@dataclass(frozen=True, slots=True)
class ReceivedWebhook:
    """One request that reached the inbox, as sent."""

    url: str
    headers: dict[str, str]
    """Header names as sent (fal's spelling: ``X-Fal-Webhook-Signature``, ...)."""
    body: bytes
    status_code: int
    """What the inbox answered (200 unless told otherwise with ``answer_next``)."""

    @property
    def request_id(self) -> str | None:
        return self.header(WebhookHeader.REQUEST_ID)

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def json(self) -> Any:
        return json.loads(self.body)

    def payload(self) -> WebhookPayload:
        return WebhookPayload.model_validate_json(self.body)

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "headers": dict(self.headers),
            "body": self.body.decode("utf-8", "replace"),
            "status_code": self.status_code,
        }


class Inbox:
    """What arrived, oldest first, and the answers to give next."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[ReceivedWebhook] = []
        self._answers: deque[int] = deque()

    def answer_next(self, *status_codes: int) -> None:
        """Answer the next requests with these statuses, in order (then 200 again): a receiver
        that fails its first attempts, to see retries."""
        if any(not 100 <= code <= 599 for code in status_codes):
            raise ValueError(f"HTTP status codes are 100 to 599, got {status_codes}")
        with self._lock:
            self._answers.extend(status_codes)

    def receive(self, url: str, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            status = self._answers.popleft() if self._answers else 200
            self._received.append(ReceivedWebhook(url, headers, body, status))
            return status

    def received(self) -> list[ReceivedWebhook]:
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        with self._lock:
            self._received.clear()
            self._answers.clear()


class InboxTransport(httpx.BaseTransport):
    """Hands each request to the inbox; no socket."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers.raw}
        status = self.inbox.receive(str(request.url), headers, body)
        return httpx.Response(status, json={"received": 200 <= status < 300})
