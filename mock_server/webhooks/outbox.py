"""The webhook outbox: one delivery per finished request that named a ``fal_webhook``, and every
attempt made at it, as plain data.

fal retries a webhook 10 times over 2 hours. The mock's schedule is fixed offsets from the
moment the request finished (:data:`RETRY_SCHEDULE`), on the engine's clock, so it is
deterministic: under the virtual clock one advance of two hours plays all ten attempts, each
stamped at its own time. A 2xx ends a delivery (``delivered``); after the tenth failed attempt it
is ``failed``; until then it is ``pending`` with a ``next_due`` time.

Saving and restoring (for persistence across restarts): :meth:`Outbox.pending` and
:meth:`Outbox.deliveries` give the deliveries as frozen values, :meth:`Delivery.as_dict` and
:meth:`Delivery.from_dict` turn them into JSON-ready dicts and back, :meth:`Outbox.restore` puts
them back (a delivery that was in flight when the process died is pending again: delivery is
at least once), and :attr:`Outbox.observers` are told of every change.
"""

from __future__ import annotations

import heapq
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, Literal

__all__ = [
    "MAX_ATTEMPTS",
    "RETRY_SCHEDULE",
    "Attempt",
    "Delivery",
    "DeliveryStatus",
    "Outbox",
]

RETRY_SCHEDULE: Final = (0.0, 15.0, 60.0, 180.0, 450.0, 900.0, 1800.0, 3000.0, 4800.0, 7200.0)
"""Seconds after the request finished at which attempts 1 to 10 fall due (the last at 2 h)."""

MAX_ATTEMPTS: Final = len(RETRY_SCHEDULE)

DeliveryStatus = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST to the webhook URL, and how it went."""

    number: int
    """1 to 10."""
    at: float
    """Engine clock seconds: the scheduled time under the virtual clock, else when it was sent."""
    timestamp: int
    """The ``X-Fal-Webhook-Timestamp`` it was signed with (Unix seconds)."""
    status_code: int | None
    """The receiver's answer; None when there was none (connection refused, timeout, ...)."""
    error: str | None = None
    """Why it failed, in words; None when it was delivered."""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class Delivery:
    request_id: str
    url: str
    body: str
    """The JSON payload, exactly as sent (and signed) at every attempt."""
    finished_at: float
    """Engine clock seconds when the request finished: the schedule counts from here."""
    status: DeliveryStatus = "pending"
    attempts: tuple[Attempt, ...] = ()

    @property
    def next_due(self) -> float | None:
        """When the next attempt falls due; None once delivered or failed."""
        if self.status != "pending":
            return None
        due = self.finished_at + RETRY_SCHEDULE[len(self.attempts)]
        return max(due, self.attempts[-1].at) if self.attempts else due

    def after(self, attempt: Attempt) -> Delivery:
        """This delivery with ``attempt`` made."""
        attempts = (*self.attempts, attempt)
        status: DeliveryStatus = "pending"
        if attempt.delivered:
            status = "delivered"
        elif len(attempts) >= MAX_ATTEMPTS:
            status = "failed"
        return replace(self, attempts=attempts, status=status)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the fields, each attempt's, and ``next_due``."""
        return {**asdict(self), "next_due": self.next_due}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Delivery:
        """The inverse of :meth:`as_dict` (``next_due`` is recomputed, not read)."""
        attempts = tuple(Attempt(**attempt) for attempt in data.get("attempts", ()))
        return cls(
            request_id=data["request_id"],
            url=data["url"],
            body=data["body"],
            finished_at=float(data["finished_at"]),
            status=data.get("status", "pending"),
            attempts=attempts,
        )


Observer = Callable[[Delivery], None]


class Outbox:
    """Every delivery, pending ones by due time. Thread-safe: the engine's listener adds (under
    the engine's lock), the dispatcher takes and records (outside it).

    :attr:`changed` is notified on every change; the dispatcher and :meth:`wait` wait on it.
    """

    def __init__(self, finished_limit: int = 10_000) -> None:
        self.changed = threading.Condition(threading.RLock())
        self.observers: list[Observer] = []
        """Called with each delivery that was added, attempted or restored, under the outbox's
        lock (in the order the changes happened): persistence saves from here."""
        self.generation = 0
        """Bumped by :meth:`clear`: an attempt taken before it is not recorded after it."""
        self._finished_limit = finished_limit
        self._deliveries: dict[str, Delivery] = {}
        self._finished: deque[str] = deque()
        self._due: list[tuple[float, int, str]] = []  # (due, order, request id); stale ones skipped
        self._order = 0
        self._in_flight: set[str] = set()

    # -- reading ------------------------------------------------------------------------------

    def deliveries(self) -> list[Delivery]:
        """Every delivery kept (finished ones up to the limit), oldest first."""
        with self.changed:
            return list(self._deliveries.values())

    def pending(self) -> list[Delivery]:
        """Deliveries still to be attempted (in flight ones included), oldest first."""
        with self.changed:
            return [d for d in self._deliveries.values() if d.status == "pending"]

    def get(self, request_id: str) -> Delivery | None:
        with self.changed:
            return self._deliveries.get(request_id)

    def in_flight(self, request_id: str) -> bool:
        with self.changed:
            return request_id in self._in_flight

    def next_due(self) -> float | None:
        """The earliest due time of a pending delivery not in flight."""
        with self.changed:
            top = self._peek()
            return None if top is None else top[0]

    def settled(self, now: float) -> bool:
        """Nothing in flight and nothing due at ``now``."""
        with self.changed:
            due = self.next_due()
            return not self._in_flight and (due is None or due > now)

    def __len__(self) -> int:
        with self.changed:
            return len(self._deliveries)

    # -- changing -----------------------------------------------------------------------------

    def add(self, delivery: Delivery) -> None:
        with self.changed:
            self._put(delivery)
            self._changed(delivery)

    def restore(self, deliveries: Iterable[Delivery]) -> None:
        """Put saved deliveries back, in the order given; pending ones fall due as scheduled."""
        with self.changed:
            for delivery in deliveries:
                self._put(delivery)
                self._changed(delivery)

    def take_due(self, now: float) -> tuple[Delivery, int] | None:
        """The earliest delivery due at ``now`` (marked in flight) and the outbox's generation."""
        with self.changed:
            top = self._peek()
            if top is None or top[0] > now:
                return None
            heapq.heappop(self._due)
            self._in_flight.add(top[2])
            return self._deliveries[top[2]], self.generation

    def record(self, request_id: str, attempt: Attempt, generation: int) -> Delivery | None:
        """The delivery after ``attempt``; None (and nothing recorded) when it was forgotten
        since it was taken (a reset)."""
        with self.changed:
            if generation != self.generation or request_id not in self._deliveries:
                return None
            self._in_flight.discard(request_id)
            delivery = self._deliveries[request_id].after(attempt)
            self._put(delivery)
            self._changed(delivery)
            return delivery

    def clear(self) -> None:
        with self.changed:
            self.generation += 1
            self._deliveries.clear()
            self._finished.clear()
            self._due.clear()
            self._in_flight.clear()
            self.changed.notify_all()

    # -- inside -------------------------------------------------------------------------------

    def _put(self, delivery: Delivery) -> None:
        self._deliveries[delivery.request_id] = delivery
        due = delivery.next_due
        if due is not None:
            self._order += 1
            heapq.heappush(self._due, (due, self._order, delivery.request_id))
            return
        self._finished.append(delivery.request_id)
        while len(self._finished) > self._finished_limit:
            old = self._deliveries.get(self._finished.popleft())
            if old is not None and old.status != "pending":
                del self._deliveries[old.request_id]

    def _peek(self) -> tuple[float, int, str] | None:
        """The heap's top, once stale entries (attempted, finished, forgotten) are dropped."""
        while self._due:
            due, _, request_id = top = self._due[0]
            delivery = self._deliveries.get(request_id)
            if (
                delivery is not None
                and request_id not in self._in_flight
                and delivery.next_due == due
            ):
                return top
            heapq.heappop(self._due)
        return None

    def _changed(self, delivery: Delivery) -> None:
        for observer in self.observers:
            observer(delivery)
        self.changed.notify_all()
