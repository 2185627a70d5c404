"""Requests conform to the OpenAPI spec: each request on fal's hosts is an operation of the
spec, with its required parameters, headers and credentials, and a body of the right schema."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from contracts.checks.spec import (
    Spec,
    SpecOperation,
    coerce,
    credential_header,
    group_name,
    grouped_findings,
    spec_for,
)
from contracts.checks.violations import ContractViolation, RequestDoesNotConform
from contracts.transcript import NOT_JSON, TRUNCATION_MARK, Exchange, Transcript


def requests_conform_to_openapi(
    transcript: Transcript, spec: Mapping[str, Any] | None = None
) -> None:
    """Each request matches an operation of the spec (see the module docstring)."""
    for violation in find_nonconforming_requests(transcript, spec):
        raise violation


def find_nonconforming_requests(
    transcript: Transcript, spec: Mapping[str, Any] | None = None
) -> Iterator[ContractViolation]:
    checker = _RequestChecker(spec_for(spec))
    findings = ((e, p) for e in transcript.exchanges if (p := checker.problems(e)))
    return grouped_findings(transcript, findings, RequestDoesNotConform)


class _RequestChecker:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    def problems(self, exchange: Exchange) -> list[str]:
        operation = self.spec.operation_of(exchange)
        if isinstance(operation, str):
            return [operation]
        problems = [
            *self._security_problems(exchange, operation.operation),
            *self._parameter_problems(exchange, operation),
            *self._body_problems(exchange, operation.operation),
        ]
        return [f"{operation.name}: {problem}" for problem in problems]

    def _security_problems(self, exchange: Exchange, operation: Mapping[str, Any]) -> list[str]:
        requirements = operation.get("security", self.spec.document.get("security", []))
        if not requirements or any(not requirement for requirement in requirements):
            return []  # no requirement, or one that is satisfied by nothing at all
        schemes = self.spec.components.get("securitySchemes", {})
        missing = []
        for requirement in requirements:
            names = [credential_header(schemes.get(scheme, {})) for scheme in requirement]
            absent = [n for n in names if n is not None and not exchange.request_header(n)]
            if not absent:
                return []
            missing += absent
        return [f"no credentials: the {' or '.join(sorted(set(missing)))} header is missing"]

    def _parameter_problems(self, exchange: Exchange, operation: SpecOperation) -> list[str]:
        problems = []
        query = exchange.query_params()
        path_values = operation.path_values(exchange)
        for parameter in operation.operation.get("parameters", []):
            name, where = parameter["name"], parameter["in"]
            if where == "query":
                values = query.get(name)
                value = values[-1] if values else None
            elif where == "header":
                value = exchange.request_header(name)
            elif where == "path":
                value = path_values.get(group_name(name))
            else:
                continue
            if value is None:
                if parameter.get("required", False):
                    problems.append(f"the required {where} parameter {name!r} is missing")
                continue
            schema = parameter.get("schema", {})
            error = self.spec.schema_error(coerce(value, schema), schema)
            if error is not None:
                problems.append(f"{where} parameter {name!r} = {value!r}: {error}")
        return problems

    def _body_problems(self, exchange: Exchange, operation: Mapping[str, Any]) -> list[str]:
        request_body = operation.get("requestBody")
        body = exchange.request_body
        if request_body is None:
            return []
        if not body:
            return ["the request body is required"] if request_body.get("required") else []
        content: Mapping[str, Any] = request_body.get("content", {})
        declared = (exchange.request_header("content-type") or "").split(";")[0].strip().lower()
        if "*/*" not in content and declared not in content:
            return [f"Content-Type {declared or '(none)'!r} is not one of {sorted(content)}"]
        media = content.get(declared) or content.get("*/*") or {}
        schema = media.get("schema")
        if schema is None or not declared.endswith("json"):
            return []
        if TRUNCATION_MARK in body:
            return []  # only the start was recorded: the body cannot be judged
        payload = exchange.request_json()
        if payload is NOT_JSON:
            return ["the request body is not valid JSON"]
        error = self.spec.schema_error(payload, schema, where=True)
        return [] if error is None else [f"the request body does not match its schema: {error}"]
