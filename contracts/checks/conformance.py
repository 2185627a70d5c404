"""Requests conform to the OpenAPI spec: each request on fal's hosts is an operation of the
spec, with its required parameters, headers and credentials, and a body of the right schema.

The spec is the one ``contracts.openapi`` generates (the committed ``openapi.yaml`` is the same
document; a test keeps them equal), so the check also works from an installed package, where
the repository's file is absent. Its paths are in the single-origin form (``/queue/...``), which
is ``Exchange.target`` without the query.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from contracts.checks.violations import ContractViolation, RequestDoesNotConform
from contracts.transcript import NOT_JSON, TRUNCATION_MARK, Exchange, Transcript

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@dataclass(frozen=True, slots=True)
class SpecOperation:
    method: str
    template: str
    pattern: re.Pattern[str]
    operation: Mapping[str, Any]

    @property
    def literal_length(self) -> int:
        """How much of the template is fixed text: the most specific template wins."""
        return len(re.sub(r"\{[^}]+\}", "", self.template))


@cache
def default_spec() -> Mapping[str, Any]:
    from contracts.openapi import build_spec

    return build_spec()


def requests_conform_to_openapi(
    transcript: Transcript, spec: Mapping[str, Any] | None = None
) -> None:
    """Each request matches an operation of the spec (see the module docstring)."""
    for violation in find_nonconforming_requests(transcript, spec):
        raise violation


def find_nonconforming_requests(
    transcript: Transcript, spec: Mapping[str, Any] | None = None
) -> Iterator[ContractViolation]:
    checker = _Checker(spec if spec is not None else default_spec())
    # The same mistake repeated (a client polling a wrong URL) is one finding, not hundreds.
    found: dict[tuple[str, ...], list[tuple[Exchange, list[str]]]] = {}
    for exchange in transcript.exchanges:
        problems = checker.problems(exchange)
        if problems:
            key = (exchange.method, *_without_ids(problems, exchange.request_id))
            found.setdefault(key, []).append((exchange, problems))
    for repeats in found.values():
        exchange, problems = repeats[0]
        detail = "\n".join(f"  - {problem}" for problem in problems)
        if len(repeats) > 1:
            others = ", ".join(f"#{e.seq}" for e, _ in repeats[1:6])
            more = f" and {len(repeats) - 6} more" if len(repeats) > 6 else ""
            detail += f"\n  (the same in {len(repeats) - 1} other request(s): {others}{more})"
        yield RequestDoesNotConform(
            detail,
            request_id=exchange.request_id,
            history=transcript.history(exchange.request_id),
            exchanges=[exchange],
        )


def _without_ids(problems: list[str], request_id: str | None) -> list[str]:
    if not request_id:
        return problems
    return [problem.replace(request_id, "{request_id}") for problem in problems]


class _Checker:
    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.spec = spec
        self.components = spec.get("components", {})
        self.operations = _operations(spec)

    def problems(self, exchange: Exchange) -> list[str]:
        path = f"/{exchange.host}{exchange.path}"
        candidates = [op for op in self.operations if op.pattern.match(path)]
        if not candidates:
            return [f"no operation of openapi.yaml has the path {path}"]
        matching = [op for op in candidates if op.method == exchange.method.lower()]
        if not matching:
            allowed = ", ".join(sorted({op.method.upper() for op in candidates}))
            return [f"{exchange.method} is not an operation of {path} (the spec has {allowed})"]
        operation = max(matching, key=lambda op: op.literal_length)
        name = operation.operation.get("operationId", operation.template)
        problems = [
            *self._security_problems(exchange, operation.operation),
            *self._parameter_problems(exchange, operation),
            *self._body_problems(exchange, operation.operation),
        ]
        return [f"{name}: {problem}" for problem in problems]

    def _security_problems(self, exchange: Exchange, operation: Mapping[str, Any]) -> list[str]:
        requirements = operation.get("security", self.spec.get("security", []))
        if not requirements or any(not requirement for requirement in requirements):
            return []  # no requirement, or one that is satisfied by nothing at all
        schemes = self.components.get("securitySchemes", {})
        missing = []
        for requirement in requirements:
            names = [_credential_header(schemes.get(scheme, {})) for scheme in requirement]
            absent = [n for n in names if n is not None and not exchange.request_header(n)]
            if not absent:
                return []
            missing += absent
        return [f"no credentials: the {' or '.join(sorted(set(missing)))} header is missing"]

    def _parameter_problems(self, exchange: Exchange, operation: SpecOperation) -> list[str]:
        problems = []
        query = exchange.query_params()
        match = operation.pattern.match(f"/{exchange.host}{exchange.path}")
        path_values = match.groupdict() if match else {}
        for parameter in operation.operation.get("parameters", []):
            name, where = parameter["name"], parameter["in"]
            if where == "query":
                values = query.get(name)
                value = values[-1] if values else None
            elif where == "header":
                value = exchange.request_header(name)
            elif where == "path":
                value = path_values.get(_group_name(name))
            else:
                continue
            if value is None:
                if parameter.get("required", False):
                    problems.append(f"the required {where} parameter {name!r} is missing")
                continue
            error = self._schema_error(_coerce(value, parameter.get("schema", {})), parameter)
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
        error = self._schema_error(payload, {"schema": schema}, body=True)
        return [] if error is None else [f"the request body does not match its schema: {error}"]

    def _schema_error(
        self, value: Any, holder: Mapping[str, Any], body: bool = False
    ) -> str | None:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import best_match

        schema = {**holder.get("schema", {}), "components": self.components}
        error = best_match(Draft202012Validator(schema).iter_errors(value))
        if error is None:
            return None
        where = "".join(f"[{p!r}]" for p in error.absolute_path) if body else ""
        return f"{where} {error.message}".strip()


def _operations(spec: Mapping[str, Any]) -> list[SpecOperation]:
    found = []
    for template, item in spec.get("paths", {}).items():
        shared = item.get("parameters", [])
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            merged = dict(operation)
            merged["parameters"] = [*shared, *operation.get("parameters", [])]
            found.append(SpecOperation(method, template, _template_pattern(template), merged))
    return found


def _template_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{([^}]+)\}", template)
    regex = "".join(
        f"(?P<{_group_name(part)}>[^/]+)" if index % 2 else re.escape(part)
        for index, part in enumerate(parts)
    )
    return re.compile(f"^{regex}$")


def _group_name(name: str) -> str:
    return "p_" + re.sub(r"\W", "_", name)


def _credential_header(scheme: Mapping[str, Any]) -> str | None:
    if scheme.get("type") == "apiKey" and scheme.get("in") == "header":
        return str(scheme.get("name"))
    if scheme.get("type") == "http":
        return "Authorization"
    return None


def _coerce(value: str, schema: Mapping[str, Any]) -> Any:
    """A query, header or path value as the type its schema names (left a string when it does
    not parse, so the schema's type error reports it)."""
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value
