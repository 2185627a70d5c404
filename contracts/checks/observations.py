"""What a transcript shows of each request: which operation each exchange was, and every status
the client was sent (submit answers, status polls, each event of a status stream)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from contracts import operations as ops
from contracts.transcript import NOT_JSON, Exchange, Transcript

STATUS_RANK: dict[str, int] = {name: rank for rank, name in enumerate(ops.QUEUE_STATUS_ORDER)}


def operation_of(exchange: Exchange) -> ops.Operation | None:
    """The contract operation an exchange was a call of (same host, method and path)."""
    return ops.find_operation(exchange.host, exchange.method, exchange.path)


@dataclass(frozen=True, slots=True)
class StatusSeen:
    """One status the client was sent."""

    exchange: Exchange
    status: str
    queue_position: int | None
    logs: tuple[Any, ...] | None
    """All log lines known at this point (a stream's events accumulated); None when the
    answer carried no logs (not asked for)."""
    event: int | None = None
    """Index of the event within a status stream; None for a plain JSON answer."""

    def describe(self) -> str:
        where = f" event {self.event}" if self.event is not None else ""
        position = f" position {self.queue_position}" if self.queue_position is not None else ""
        logs = f" {len(self.logs)} log line(s)" if self.logs is not None else ""
        return f"#{self.exchange.seq}{where}: {self.status}{position}{logs}"


_last_seen: tuple[Transcript, dict[str, list[StatusSeen]]] | None = None


def statuses_seen(transcript: Transcript) -> dict[str, list[StatusSeen]]:
    """Per request id, every status the client was sent, in transcript order. Callers must not
    change the answer: ``check_all`` asks for it once per check, so the last one is kept."""
    global _last_seen
    cached = _last_seen
    if cached is not None and cached[0] is transcript:
        return cached[1]
    seen = _statuses_seen(transcript)
    _last_seen = (transcript, seen)
    return seen


def _statuses_seen(transcript: Transcript) -> dict[str, list[StatusSeen]]:
    seen: dict[str, list[StatusSeen]] = {}
    for exchange in transcript.exchanges:
        for status in _statuses_in(exchange):
            request_id = exchange.request_id or _request_id_of(status)
            if request_id is not None:
                seen.setdefault(request_id, []).append(status)
    return seen


def _statuses_in(exchange: Exchange) -> Iterator[StatusSeen]:
    if not 200 <= exchange.status_code < 300:
        return
    operation = operation_of(exchange)
    if operation in (ops.SUBMIT, ops.STATUS):
        body = exchange.response_json()
        if isinstance(body, dict) and "status" in body:
            yield _seen(exchange, body, _logs(body))
    elif operation is ops.STATUS_STREAM:
        # Each event carries only the lines new since the previous one: accumulate them.
        logs: list[Any] = []
        logs_asked = False
        for index, body in enumerate(exchange.sse_events()):
            if not isinstance(body, dict) or "status" not in body:
                continue
            new = _logs(body)
            if new is not None:
                logs_asked = True
                logs.extend(new)
            yield _seen(exchange, body, tuple(logs) if logs_asked else None, index)


def _seen(
    exchange: Exchange, body: dict[str, Any], logs: tuple[Any, ...] | None, event: int | None = None
) -> StatusSeen:
    position = body.get("queue_position")
    return StatusSeen(
        exchange=exchange,
        status=str(body["status"]),
        queue_position=position if isinstance(position, int) else None,
        logs=logs,
        event=event,
    )


def _logs(body: dict[str, Any]) -> tuple[Any, ...] | None:
    logs = body.get("logs")
    return tuple(logs) if isinstance(logs, list) else None


def _request_id_of(status: StatusSeen) -> str | None:
    body = status.exchange.response_json()
    if body is NOT_JSON or not isinstance(body, dict):
        return None
    value = body.get("request_id")
    return value if isinstance(value, str) else None


def submitted_with(transcript: Transcript, request_id: str) -> Exchange | None:
    """The submit that created a request, if the transcript holds it."""
    for exchange in transcript.for_request(request_id):
        if operation_of(exchange) is ops.SUBMIT:
            return exchange
    return None


def describe_seen(seen: Sequence[StatusSeen]) -> list[str]:
    """One line per run of identical answers, so a long poll loop stays readable."""
    lines: list[str] = []
    run: list[StatusSeen] = []

    def flush() -> None:
        if not run:
            return
        first, last = run[0], run[-1]
        if len(run) == 1:
            lines.append(first.describe())
        else:
            summary = first.describe().split(": ", 1)[1]
            lines.append(
                f"#{first.exchange.seq}..#{last.exchange.seq}: {summary} ({len(run)} answers)"
            )
        run.clear()

    for status in seen:
        key = (status.status, status.queue_position, status.logs)
        if run and (run[-1].status, run[-1].queue_position, run[-1].logs) != key:
            flush()
        run.append(status)
    flush()
    return lines
