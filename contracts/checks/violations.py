"""What a failed check raises: an ``AssertionError`` subclass carrying a readable report.

Each report names the property, the request, that request's status history and the exchanges
that broke the property, so a failure in CI can be understood without re-running it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from contracts.transcript import Exchange, StatusPoint, parse_json

BODY_PREVIEW = 400
"""Characters of each body shown in a report: enough to see the field at fault."""


class ContractViolation(AssertionError):
    """A property of fal's contract did not hold. ``str()`` is the full report."""

    check = "contract"
    title = "The contract was broken"

    def __init__(
        self,
        detail: str,
        *,
        request_id: str | None = None,
        history: Sequence[StatusPoint] = (),
        exchanges: Sequence[Exchange] = (),
        seen: Sequence[str] = (),
    ) -> None:
        self.detail = detail
        self.request_id = request_id
        self.history = tuple(history)
        self.exchanges = tuple(exchanges)
        self.seen = tuple(seen)
        """What the client saw of the request's status, one line each (may be empty)."""
        super().__init__(self.report())

    def report(self) -> str:
        lines = [f"{self.title} ({self.check})", ""]
        if self.request_id is not None:
            lines.append(f"Request {self.request_id}")
        lines.append(self.detail)
        if self.history:
            lines += ["", "Status history (server side):"]
            lines += [f"  {describe_point(point)}" for point in self.history]
        if self.seen:
            lines += ["", "Statuses the client was sent:"]
            lines += [f"  {line}" for line in self.seen]
        if self.exchanges:
            lines += ["", "Offending exchange(s):"]
            for exchange in self.exchanges:
                lines += [f"  {line}" for line in describe_exchange(exchange)]
        return "\n".join(lines)


class ContractViolations(ContractViolation):
    """Several checks failed; each failure is in ``failures``, in the order found."""

    check = "check_all"
    title = "Contract checks failed"

    def __init__(self, failures: Sequence[ContractViolation]) -> None:
        self.failures = tuple(failures)
        names = sorted({f.check for f in self.failures})
        super().__init__(f"{len(self.failures)} failure(s) in {', '.join(names)}")

    def report(self) -> str:
        parts = [f"{self.title}: {self.detail}"]
        for index, failure in enumerate(self.failures, 1):
            parts.append(f"--- {index}/{len(self.failures)} " + "-" * 50)
            parts.append(failure.report())
        return "\n".join(parts)


class RequestDoesNotConform(ContractViolation):
    check = "requests_conform_to_openapi"
    title = "A request does not match openapi.yaml"


class ResponseDoesNotConform(ContractViolation):
    check = "responses_conform_to_openapi"
    title = "A response does not match openapi.yaml"


class StatusWentBackwards(ContractViolation):
    check = "status_never_goes_backwards"
    title = "A request's status went backwards"


class QueuePositionIncreased(ContractViolation):
    check = "queue_position_never_increases"
    title = "A request's queue_position increased"


class LogsShrank(ContractViolation):
    check = "logs_only_grow"
    title = "A request's logs did not only grow"


class ResultFetchedEarly(ContractViolation):
    check = "result_fetched_only_after_completed"
    title = "The result was fetched before the request was COMPLETED"


class PolledTooFast(ContractViolation):
    check = "polling_not_faster_than"
    title = "The client polled status faster than allowed"


class OutputFileInvalid(ContractViolation):
    check = "output_files_are_valid"
    title = "An output file does not match its description"


class ClientDidNotTerminate(ContractViolation):
    check = "client_terminates"
    title = "The client did not finish on a behaviour the contract allows"


class ClientFailedOnAllowedBehaviour(ContractViolation):
    check = "client_survives_allowed_behaviour"
    title = "The client failed on a behaviour it should ride over"


def describe_point(point: StatusPoint) -> str:
    where = f"  position {point.queue_position}" if point.queue_position is not None else ""
    return f"t={point.time:10.3f}  {point.status}{where}"


def describe_exchange(exchange: Exchange) -> list[str]:
    lines = [
        f"#{exchange.seq} {exchange.method} {exchange.target} -> {exchange.status_code or 'none'}"
    ]
    if exchange.request_body:
        lines.append(f"    request:  {preview(exchange.request_body)}")
    if exchange.response_body:
        lines.append(f"    response: {preview(exchange.response_body)}")
    return lines


ELIDED_FIELDS = ("response_url", "status_url", "cancel_url")
"""Long and derivable from the request id: left out of previews so the status shows."""


def preview(text: str, limit: int = BODY_PREVIEW) -> str:
    body = parse_json(text)
    if isinstance(body, dict) and any(name in body for name in ELIDED_FIELDS):
        kept = {k: v for k, v in body.items() if k not in ELIDED_FIELDS}
        text = json.dumps({**kept, "..._url": "(elided)"})
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else f"{flat[:limit]}... ({len(text)} chars)"
