"""Responses conform to the OpenAPI spec: each answer to an operation has a status code the
spec lists for it, the headers it requires, and a body of the declared type and schema (for a
server-sent event stream, every event's data).

This is what the client code under test relies on: fal-client reads ``queue_position`` and
``logs`` with ``data[...]`` and fails on a missing key; the JS client takes ``requestId`` from
``x-fal-request-id``. On the mock it holds by construction; against another target (a proxy,
fal itself) it is the first thing to look at.

Transient failures (408, 409, 429, 500, 502, 503, 504) may answer any request: fal's edge and
infrastructure produce them (PROTOCOL.md §11) and the mock's faults inject them, often with an
nginx HTML body. They are allowed anywhere and their bodies are not judged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from contracts.checks.spec import Spec, SpecOperation, grouped_findings, spec_for
from contracts.checks.violations import ContractViolation, ResponseDoesNotConform
from contracts.transcript import (
    NOT_JSON,
    TRUNCATION_MARK,
    Exchange,
    Transcript,
    parse_json,
    sse_data,
)

TRANSIENT_STATUS_CODES: Final = frozenset({408, 409, 429, 500, 502, 503, 504})
EVENT_DATA_SCHEMA: Final = "x-event-data-schema"
"""Where openapi.yaml puts the schema of each event of a text/event-stream answer."""


def responses_conform_to_openapi(
    transcript: Transcript, spec: Mapping[str, Any] | None = None
) -> None:
    """Each answer matches what the spec declares for its operation (see the module)."""
    for violation in find_nonconforming_responses(transcript, spec):
        raise violation


def find_nonconforming_responses(
    transcript: Transcript, spec: Mapping[str, Any] | None = None
) -> Iterator[ContractViolation]:
    checker = _ResponseChecker(spec_for(spec))
    findings = ((e, p) for e in transcript.exchanges if (p := checker.problems(e)))
    return grouped_findings(transcript, findings, ResponseDoesNotConform)


class _ResponseChecker:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    def problems(self, exchange: Exchange) -> list[str]:
        operation = self.spec.operation_of(exchange)
        if isinstance(operation, str) or exchange.status_code == 0:
            return []  # not an operation (the request check says so), or never answered
        code = exchange.status_code
        responses: Mapping[str, Any] = operation.operation.get("responses", {})
        declared = (
            responses.get(str(code))
            or responses.get(f"{code // 100}XX")
            or responses.get("default")
        )
        if declared is None:
            if code in TRANSIENT_STATUS_CODES:
                return []
            listed = ", ".join(responses)
            return [f"{operation.name}: status {code} is not one the spec lists ({listed})"]
        problems = [
            *self._header_problems(exchange, declared),
            *self._body_problems(exchange, operation, declared),
        ]
        return [f"{operation.name} {code}: {problem}" for problem in problems]

    def _header_problems(self, exchange: Exchange, declared: Mapping[str, Any]) -> list[str]:
        return [
            f"the required header {name} is missing"
            for name, header in declared.get("headers", {}).items()
            if header.get("required") and exchange.response_header(name) is None
        ]

    def _body_problems(
        self, exchange: Exchange, operation: SpecOperation, declared: Mapping[str, Any]
    ) -> list[str]:
        content: Mapping[str, Any] = declared.get("content", {})
        body = exchange.response_body
        if not content or not body:
            return []
        kind = (exchange.response_header("content-type") or "").split(";")[0].strip().lower()
        media = content.get(kind) or content.get("*/*")
        if media is None:
            if exchange.status_code in TRANSIENT_STATUS_CODES:
                return []
            return [f"Content-Type {kind or '(none)'!r} is not one of {sorted(content)}"]
        truncated = TRUNCATION_MARK in body
        if kind == "text/event-stream":
            return self._event_problems(body, media.get(EVENT_DATA_SCHEMA), truncated)
        schema = media.get("schema")
        if schema is None or not kind.endswith("json") or truncated:
            return []
        payload = parse_json(body)
        if payload is NOT_JSON:
            return ["the body is not valid JSON"]
        error = self.spec.schema_error(payload, schema, where=True)
        return [] if error is None else [f"the body does not match its schema: {error}"]

    def _event_problems(
        self, body: str, schema: Mapping[str, Any] | None, truncated: bool
    ) -> list[str]:
        events = sse_data(body)
        if truncated and events:
            events = events[:-1]  # the last event may be the one the recording cut short
        for index, data in enumerate(events):
            payload = parse_json(data)
            if payload is NOT_JSON:
                return [f"event {index} is not JSON: {data[:80]!r}"]
            error = None if schema is None else self.spec.schema_error(payload, schema, where=True)
            if error is not None:
                return [f"event {index} does not match its schema: {error}"]
        return []
