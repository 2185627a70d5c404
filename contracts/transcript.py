"""A wire transcript: the exchanges a client had with a fal-like server, and what the server
says each request went through. The checks in ``contracts.checks`` read nothing else, so they
run the same on the mock's journal, on a recording made in front of any other server, or on a
transcript written by hand.

Paths are *host-relative* (``/fal-ai/lipsync/requests/<id>/status``) with the logical host
beside them (``queue``, ``run``, ``rest``, ``cdn``), as in ``contracts.operations``; the live
mock's single-origin form (``/queue/fal-ai/...``, as in openapi.yaml) is ``Exchange.target``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs


@dataclass(frozen=True, slots=True)
class StatusPoint:
    """One step of a request's status history, as the server recorded it."""

    status: str
    queue_position: int | None
    time: float
    """The server's clock (virtual under the mock's ``polls``/``virtual`` policies)."""


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and the response it got."""

    seq: int
    """Order in the transcript (the order the exchanges completed in)."""
    wall_time: float | None
    """Seconds on a monotonic wall clock when the exchange was seen; None when not recorded
    (checks that need it, such as the polling interval, then skip)."""
    host: str
    """Logical host: ``queue``, ``run``, ``rest`` or ``cdn``."""
    method: str
    path: str
    """Host-relative, e.g. ``/fal-ai/lipsync/requests/<id>/status``."""
    query: str
    request_headers: dict[str, str]
    request_body: str | None
    status_code: int
    response_headers: dict[str, str]
    response_body: str | None
    request_id: str | None = None
    clock_time: float | None = None
    """The server's clock when the exchange was seen (comparable with ``StatusPoint.time``)."""

    @property
    def target(self) -> str:
        """Method-less request line in the single-origin form: ``/queue/...?query``."""
        query = f"?{self.query}" if self.query else ""
        return f"/{self.host}{self.path}{query}"

    def request_header(self, name: str) -> str | None:
        return _header(self.request_headers, name)

    def response_header(self, name: str) -> str | None:
        return _header(self.response_headers, name)

    def query_params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)

    def request_json(self) -> Any:
        """The request body as JSON, or ``NOT_JSON`` (absent, truncated, binary, malformed)."""
        return parse_json(self.request_body)

    def response_json(self) -> Any:
        """The response body as JSON, or ``NOT_JSON``."""
        return parse_json(self.response_body)

    def sse_events(self) -> list[Any]:
        """The JSON ``data`` payloads of a server-sent event stream (others are skipped)."""
        return [
            value
            for value in (parse_json(data) for data in sse_data(self.response_body or ""))
            if value is not NOT_JSON
        ]

    @property
    def is_event_stream(self) -> bool:
        content_type = self.response_header("content-type") or ""
        return content_type.startswith("text/event-stream")


@dataclass(frozen=True, slots=True)
class Transcript:
    exchanges: tuple[Exchange, ...] = ()
    histories: Mapping[str, tuple[StatusPoint, ...]] = field(default_factory=dict)
    """Each request's status history as the server recorded it (empty for a foreign server)."""

    def for_request(self, request_id: str) -> tuple[Exchange, ...]:
        """The exchanges about one request, in transcript order."""
        return tuple(e for e in self.exchanges if e.request_id == request_id)

    def request_ids(self) -> list[str]:
        """Every request id the transcript mentions, first seen first."""
        seen: dict[str, None] = {}
        for exchange in self.exchanges:
            if exchange.request_id is not None:
                seen.setdefault(exchange.request_id)
        for request_id in self.histories:
            seen.setdefault(request_id)
        return list(seen)

    def history(self, request_id: str | None) -> tuple[StatusPoint, ...]:
        return () if request_id is None else tuple(self.histories.get(request_id, ()))

    def __iter__(self) -> Iterator[Exchange]:
        return iter(self.exchanges)


class _NotJson:
    """Sentinel: a body that is not (complete) JSON. Distinct from a JSON ``null``."""

    def __repr__(self) -> str:
        return "NOT_JSON"


NOT_JSON: Any = _NotJson()

TRUNCATION_MARK = "...<truncated, "
"""How the mock's journal ends a body it kept only the start of."""


def parse_json(text: str | None) -> Any:
    if not text or (text.endswith(" bytes in all>") and TRUNCATION_MARK in text):
        return NOT_JSON
    try:
        return json.loads(text)
    except ValueError:
        return NOT_JSON


def sse_data(text: str) -> list[str]:
    """The ``data`` of each event in a text/event-stream body (the SSE spec's parsing: one
    leading space dropped, multi-line data joined with newlines, comments ignored)."""
    events: list[str] = []
    lines: list[str] = []
    for line in text.splitlines():
        if not line:
            if lines:
                events.append("\n".join(lines))
                lines = []
        elif line.startswith("data:"):
            value = line[5:]
            lines.append(value[1:] if value.startswith(" ") else value)
    if lines:
        events.append("\n".join(lines))
    return events


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None
