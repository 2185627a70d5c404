"""The dispatcher: a background thread that sends due deliveries, outside the engine's lock.

The app has no lifespan (the pytest plugin runs it without one), so the thread starts when a
delivery is added and ends when none is pending; a reset forgets what it was doing. It sends one
attempt at a time, in due order (ties: the order the deliveries were added), so the attempts
and their journal entries come in a deterministic order. A receiver that hangs holds the others
back by at most the timeout (15 s, as fal's).

Time is the engine's clock. Under the virtual clock the thread checks every few milliseconds
whether an advance made something due, and stamps each attempt at its scheduled time (one long
advance plays ten attempts, each at its own time); under the wall clock it sleeps until the next
due time and stamps attempts when they are sent.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import urlsplit

import httpx

from mock_server.engine.clock import EPOCH, VirtualClock
from mock_server.engine.journal import OUTGOING, JournalEntry
from mock_server.webhooks.inbox import INBOX_HOST, Inbox, InboxTransport
from mock_server.webhooks.outbox import Attempt, Delivery, Outbox
from mock_server.webhooks.signing import signer_for
from mock_server.webhooks.targets import WebhookTargets

if TYPE_CHECKING:
    from mock_server.engine.queue import QueueEngine

__all__ = ["PASS_THROUGH", "DispatchOptions", "Dispatcher"]

PASS_THROUGH: Final = "fal_mock_forwarded"
"""The request extension the pytest plugin's respx routes let pass to the network
(``mock_server.inprocess.FORWARDED``; not imported from there: it imports respx, which a server
without the pytest extra lacks. A test keeps them equal)."""

VIRTUAL_POLL: Final = 0.01
"""Seconds between looks at the virtual clock while a delivery waits (an advance has no hook)."""
WALL_POLL: Final = 1.0
"""Longest sleep under the wall clock (a policy change may swap the clock meanwhile)."""
RESPONSE_BODY_LIMIT: Final = 4096
"""Bytes of a receiver's answer kept in the journal."""
USER_AGENT: Final = "fal-lipsync-mock webhooks"

EPOCH_UNIX: Final = EPOCH.timestamp()

Timestamps = Literal["clock", "wall"]


@dataclass(frozen=True, slots=True)
class DispatchOptions:
    timeout: float = 15.0
    """Seconds an attempt may take (connect to last byte) before it counts as failed."""
    timestamps: Timestamps = "clock"
    """``clock``: the engine's clock as Unix time (under the virtual clock, the mock's calendar
    from 2025-01-01: deterministic); ``wall``: the real time, for handlers that check the
    timestamp against their own clock."""


class Dispatcher:
    def __init__(
        self,
        engine: QueueEngine,
        outbox: Outbox,
        inbox: Inbox,
        targets: WebhookTargets,
        options: DispatchOptions,
    ) -> None:
        self.engine = engine
        self.outbox = outbox
        self.inbox = inbox
        self.targets = targets
        self.options = options
        self._thread: threading.Thread | None = None
        self._closed = False
        self._kick = threading.Event()
        """Set when a delivery is added (or on close): the thread stops waiting."""

    def wake(self) -> None:
        """Something was added: make sure the thread runs (it ends itself when idle)."""
        with self.outbox.changed:
            if self._closed:
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=_dispatch,
                    args=(weakref.ref(self),),
                    name="fal-mock-webhooks",
                    daemon=True,
                )
                self._thread.start()
            self._kick.set()

    def close(self, timeout: float = 5.0) -> None:
        """Stop sending (a pending delivery stays pending); waits for an attempt in flight."""
        with self.outbox.changed:
            self._closed = True
            thread = self._thread
            self._kick.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def unix_time(self, at: float) -> int:
        """The ``X-Fal-Webhook-Timestamp`` of an attempt made at engine time ``at``."""
        if self.options.timestamps == "wall" or not isinstance(self.engine.clock, VirtualClock):
            return math.floor(time.time())
        return math.floor(EPOCH_UNIX + at)

    def wait_settled(self, timeout: float) -> bool:
        """Wait until nothing is in flight and nothing is due at the clock's reading."""
        deadline = time.monotonic() + timeout
        with self.outbox.changed:
            while not self.outbox.settled(self.engine.clock.now()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.outbox.changed.wait(min(left, VIRTUAL_POLL))
            return True

    # -- the thread ---------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        return self.targets.client(
            timeout=self.options.timeout,
            mounts={f"all://{INBOX_HOST}": InboxTransport(self.inbox)},
            headers={"user-agent": USER_AGENT},
        )

    def _step(self, client: httpx.Client) -> float | None:
        """One attempt if one is due; answers how long to wait before the next step (0: none),
        or None when the thread is to end (nothing pending, or closed)."""
        with self.outbox.changed:
            self._kick.clear()  # a wake from here on cuts the wait short
            clock = self.engine.clock
            now = clock.now()
            taken = None if self._closed else self.outbox.take_due(now)
            if taken is None:
                due = None if self._closed else self.outbox.next_due()
                if due is None:
                    self._thread = None
                    return None
                if isinstance(clock, VirtualClock):
                    return VIRTUAL_POLL
                return min(max(due - now, 0.0), WALL_POLL)
            delivery, generation = taken
            journal = self.engine.journal  # a reset replaces it: record in this run's
        # Under the virtual clock an attempt happens at its scheduled time, however far past
        # it one advance moved the clock; under the wall clock, when it is made.
        due = delivery.next_due
        at = due if isinstance(clock, VirtualClock) and due is not None else now
        attempt, entry = self._attempt(client, delivery, at)
        with self.outbox.changed:
            if self.outbox.record(delivery.request_id, attempt, generation) is not None:
                journal.append(replace(entry, seq=journal.next_seq()))
        return 0.0

    def _attempt(
        self, client: httpx.Client, delivery: Delivery, at: float
    ) -> tuple[Attempt, JournalEntry]:
        number = len(delivery.attempts) + 1
        timestamp = self.unix_time(at)
        body = delivery.body.encode()
        signer = signer_for(self.engine.config.seed)
        headers = {
            "Content-Type": "application/json",
            **signer.headers(delivery.request_id, timestamp, body),
        }
        request = client.build_request(
            "POST", delivery.url, content=body, headers=headers, extensions={PASS_THROUGH: True}
        )
        status: int | None = None
        answer_headers: dict[str, str] = {}
        answer = ""
        error: str | None = None
        try:
            response = client.send(request)
            status, answer_headers = response.status_code, dict(response.headers)
            answer = response.content[:RESPONSE_BODY_LIMIT].decode("utf-8", "replace")
            if not 200 <= status < 300:
                error = f"the receiver answered {status}"
        except httpx.TimeoutException:
            error = f"no answer within {self.options.timeout:g} s"
        except Exception as failed:  # refused, transport, a test's own respx: all are failed
            # attempts, and none may end the thread with the delivery in flight
            error = f"{type(failed).__name__}: {failed}"
        attempt = Attempt(number, at, timestamp, status, error)
        return attempt, self._entry(delivery, request, attempt, answer_headers, answer)

    def _entry(
        self,
        delivery: Delivery,
        request: httpx.Request,
        attempt: Attempt,
        answer_headers: dict[str, str],
        answer: str,
    ) -> JournalEntry:
        parts = urlsplit(delivery.url)
        sent = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers.raw}
        return JournalEntry(
            seq=0,  # numbered when it is appended
            time=attempt.at,
            host="webhook",
            method="POST",
            path=parts.path or "/",
            query=parts.query,
            request_headers=sent,
            request_body=delivery.body,
            status_code=attempt.status_code or 0,
            response_headers=answer_headers,
            response_body=answer or None,
            request_id=delivery.request_id,
            extra={
                "direction": OUTGOING,
                "url": delivery.url,
                "attempt": attempt.number,
                "delivered": attempt.delivered,
                "error": attempt.error,
                "wall_time": time.monotonic(),
            },
        )


def _dispatch(ref: weakref.ref[Dispatcher]) -> None:
    """The thread. It holds the dispatcher only while it takes a step, so an app dropped with
    deliveries still pending (a test's, with no reset) is collected and the thread ends."""
    dispatcher = ref()
    if dispatcher is None:
        return
    client, kick = dispatcher._client(), dispatcher._kick
    del dispatcher
    try:
        while (dispatcher := ref()) is not None:
            pause = dispatcher._step(client)
            del dispatcher  # not held while waiting: the thread waits most of its life
            if pause is None:
                return
            if pause > 0:
                kick.wait(pause)
    finally:
        client.close()
