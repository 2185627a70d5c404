"""The webhook service: the engine's listener that fills the outbox, and the handle on it.

One per engine (:func:`attach`): a queued request (not a sync run) that finishes with a
``fal_webhook`` gets a delivery in the outbox, made under the engine's lock from the outcome
(cheap: a JSON dump); the dispatcher sends it from its own thread. A reset forgets deliveries
and the inbox, as it forgets requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mock_server.webhooks.dispatch import Dispatcher, DispatchOptions, Timestamps
from mock_server.webhooks.inbox import INBOX_URL, Inbox
from mock_server.webhooks.outbox import RETRY_SCHEDULE, Delivery, Outbox
from mock_server.webhooks.payloads import webhook_body
from mock_server.webhooks.signing import WebhookSigner, signer_for
from mock_server.webhooks.targets import WebhookTargets

if TYPE_CHECKING:
    from mock_server.engine.jobs import Job
    from mock_server.engine.queue import QueueEngine

__all__ = ["WebhookOptions", "WebhookService", "attach", "webhooks_of"]


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    allow_hosts: frozenset[str] = frozenset()
    """Targets allowed besides loopback and the inbox (see ``targets.py``)."""
    timeout: float = 15.0
    timestamps: Timestamps = "clock"


class WebhookService:
    def __init__(self, engine: QueueEngine, options: WebhookOptions | None = None) -> None:
        options = options or WebhookOptions()
        self.engine = engine
        self.options = options
        self.outbox = Outbox(engine.config.finished_limit)
        self.inbox = Inbox()
        self.targets = WebhookTargets(options.allow_hosts)
        self.dispatcher = Dispatcher(
            engine,
            self.outbox,
            self.inbox,
            self.targets,
            DispatchOptions(timeout=options.timeout, timestamps=options.timestamps),
        )

    # -- the engine's listener (called under its lock: only enqueue) -------------------------

    def on_submitted(self, job: Job) -> None:
        pass

    def on_started(self, job: Job) -> None:
        pass

    def on_finished(self, job: Job) -> None:
        url = job.options.webhook_url
        if job.sync or url is None or job.outcome is None or job.finished_at is None:
            return
        body = webhook_body(job.request_id, job.outcome, job.options.webhook_files_base)
        self.outbox.add(Delivery(job.request_id, url, body, job.finished_at))
        self.dispatcher.wake()

    def on_reset(self) -> None:
        self.outbox.clear()
        self.inbox.clear()

    # -- the handle -----------------------------------------------------------------------------

    @property
    def signer(self) -> WebhookSigner:
        """The current seed's signing key."""
        return signer_for(self.engine.config.seed)

    def jwks(self) -> dict[str, Any]:
        return self.signer.jwks()

    def refusal(self, url: str) -> str | None:
        """Why a webhook may not go to ``url`` (a 422 at submit), or None. Blocks on DNS."""
        return self.targets.refusal(url)

    def restore(self, deliveries: list[Delivery]) -> None:
        """Put saved deliveries back in the outbox; pending ones are sent as they fall due."""
        self.outbox.restore(deliveries)
        self.dispatcher.wake()

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait until every delivery due at the clock's reading has been attempted."""
        return self.dispatcher.wait_settled(timeout)

    def unix_now(self) -> int:
        """The clock's reading as the Unix time a webhook sent now would be stamped with."""
        return self.dispatcher.unix_time(self.engine.clock.now())

    def close(self) -> None:
        """Stop the dispatcher (pending deliveries stay in the outbox)."""
        self.dispatcher.close()

    def view(self) -> dict[str, Any]:
        """The control plane's ``GET /_mock/webhooks``."""
        return {
            "inbox_url": INBOX_URL,
            "schedule": list(RETRY_SCHEDULE),
            "key_id": self.signer.key_id,
            "allow_hosts": sorted(self.targets.allow),
            "deliveries": [
                {**delivery.as_dict(), "in_flight": self.outbox.in_flight(delivery.request_id)}
                for delivery in self.outbox.deliveries()
            ],
        }


def attach(engine: QueueEngine, options: WebhookOptions | None = None) -> WebhookService:
    """Make the engine's webhook service (once) and subscribe it to the engine's jobs."""
    service = webhooks_of(engine)
    if service is None:
        service = WebhookService(engine, options)
        engine.listeners.append(service)
    return service


def webhooks_of(engine: QueueEngine) -> WebhookService | None:
    """The engine's webhook service. Found through the engine, not the app: two apps may share
    one engine (the live TLS twin), and its webhooks are the engine's."""
    return next((x for x in engine.listeners if isinstance(x, WebhookService)), None)
