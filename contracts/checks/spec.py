"""openapi.yaml as the checks read it: which operation an exchange is, and schema validation.

The spec is the one ``contracts.openapi`` generates (the committed ``openapi.yaml`` is the same
document; a test keeps them equal), so the checks also work from an installed package, where
the repository's file is absent. Its paths are in the single-origin form (``/queue/...``), which
is ``Exchange.target`` without the query. jsonschema is imported on first use, so loading the
checks costs nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from contracts.checks.violations import ContractViolation
from contracts.transcript import Exchange, Transcript

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@dataclass(frozen=True, slots=True)
class SpecOperation:
    method: str
    template: str
    pattern: re.Pattern[str]
    operation: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.operation.get("operationId", f"{self.method.upper()} {self.template}"))

    @property
    def literal_length(self) -> int:
        """How much of the template is fixed text: the most specific template wins."""
        return len(re.sub(r"\{[^}]+\}", "", self.template))

    def path_values(self, exchange: Exchange) -> dict[str, str]:
        match = self.pattern.match(spec_path(exchange))
        return match.groupdict() if match else {}


@cache
def default_spec() -> Mapping[str, Any]:
    from contracts.openapi import build_spec

    return build_spec()


def spec_for(document: Mapping[str, Any] | None) -> Spec:
    """The checker for a spec; the default one is built once and keeps its validators."""
    return _default_checker() if document is None else Spec(document)


@cache
def _default_checker() -> Spec:
    return Spec(default_spec())


def spec_path(exchange: Exchange) -> str:
    return f"/{exchange.host}{exchange.path}"


class Spec:
    def __init__(self, document: Mapping[str, Any] | None = None) -> None:
        self.document = document if document is not None else default_spec()
        self.components: Mapping[str, Any] = self.document.get("components", {})
        self.operations = _operations(self.document)
        self._cache: dict[str, tuple[Callable[[Any], bool], Any]] = {}

    def operation_of(self, exchange: Exchange) -> SpecOperation | str:
        """The operation an exchange is a call of, or why there is none."""
        path = spec_path(exchange)
        candidates = [op for op in self.operations if op.pattern.match(path)]
        if not candidates:
            return f"no operation of openapi.yaml has the path {path}"
        matching = [op for op in candidates if op.method == exchange.method.lower()]
        if not matching:
            allowed = ", ".join(sorted({op.method.upper() for op in candidates}))
            return f"{exchange.method} is not an operation of {path} (the spec has {allowed})"
        return max(matching, key=lambda op: op.literal_length)

    def schema_error(
        self, value: Any, schema: Mapping[str, Any], where: bool = False
    ) -> str | None:
        """The most relevant reason ``value`` does not match ``schema``, or None.
        ``where``: prefix the location inside the value (for bodies)."""
        from jsonschema.exceptions import best_match

        is_valid, validator = self._validators(self.narrowed(schema, value))
        if is_valid(value):
            return None
        error = best_match(validator.iter_errors(value))
        if error is None:
            return None  # the fast validator was stricter than the reference one
        path = "".join(f"[{p!r}]" for p in error.absolute_path) if where else ""
        return f"{path} {error.message}".strip()

    def _validators(self, schema: Mapping[str, Any]) -> tuple[Callable[[Any], bool], Any]:
        """A fast yes/no and the reference validator (for its messages), built once per
        distinct schema. Every poll of a long wait is validated, and jsonschema takes
        milliseconds per status body where jsonschema-rs (schemathesis brings it) takes
        microseconds; without it, jsonschema answers both."""
        key = json.dumps(schema, sort_keys=True)
        found = self._cache.get(key)
        if found is None:
            from jsonschema import Draft202012Validator

            root = {**schema, "components": self.components}
            validator = Draft202012Validator(root)
            found = (_fast_is_valid(root) or validator.is_valid, validator)
            self._cache[key] = found
        return found

    def narrowed(self, schema: Mapping[str, Any], value: Any) -> Mapping[str, Any]:
        """With a discriminator, the one schema the value claims to be: its errors then say
        what is wrong with it (``logs`` missing), not that it matches none of the choices."""
        for _ in range(4):  # a $ref to a oneOf, at most a few hops
            ref = schema.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                schema = self.components.get("schemas", {}).get(ref.rsplit("/", 1)[1], schema)
                continue
            discriminator = schema.get("discriminator")
            if "oneOf" not in schema or not isinstance(discriminator, dict):
                break
            claimed = (
                value.get(discriminator.get("propertyName")) if isinstance(value, dict) else None
            )
            target = discriminator.get("mapping", {}).get(claimed)
            if not isinstance(target, str):
                break  # an unknown kind: the oneOf reports it
            schema = {"$ref": target}
        return schema


def _fast_is_valid(root: Mapping[str, Any]) -> Callable[[Any], bool] | None:
    try:
        import jsonschema_rs
    except ImportError:
        return None
    try:
        validator = jsonschema_rs.Draft202012Validator(dict(root))
    except Exception:  # a schema it cannot compile (say, a regex dialect): the reference decides
        return None
    is_valid: Callable[[Any], bool] = validator.is_valid
    return is_valid


def grouped_findings(
    transcript: Transcript,
    findings: Iterator[tuple[Exchange, list[str]]],
    kind: Callable[..., ContractViolation],
) -> Iterator[ContractViolation]:
    """One violation per distinct mistake: the same problems on many exchanges (a client
    polling a wrong URL, a server leaving a field out of every answer) are one finding."""
    found: dict[tuple[str, ...], list[tuple[Exchange, list[str]]]] = {}
    for exchange, problems in findings:
        key = (exchange.method, *_without_ids(problems, exchange.request_id))
        found.setdefault(key, []).append((exchange, problems))
    for repeats in found.values():
        exchange, problems = repeats[0]
        detail = "\n".join(f"  - {problem}" for problem in problems)
        if len(repeats) > 1:
            others = ", ".join(f"#{e.seq}" for e, _ in repeats[1:6])
            more = f" and {len(repeats) - 6} more" if len(repeats) > 6 else ""
            detail += f"\n  (the same in {len(repeats) - 1} other exchange(s): {others}{more})"
        yield kind(
            detail,
            request_id=exchange.request_id,
            history=transcript.history(exchange.request_id),
            exchanges=[exchange],
        )


def _without_ids(problems: list[str], request_id: str | None) -> list[str]:
    if not request_id:
        return problems
    return [problem.replace(request_id, "{request_id}") for problem in problems]


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
        f"(?P<{group_name(part)}>[^/]+)" if index % 2 else re.escape(part)
        for index, part in enumerate(parts)
    )
    return re.compile(f"^{regex}$")


def group_name(name: str) -> str:
    return "p_" + re.sub(r"\W", "_", name)


def credential_header(scheme: Mapping[str, Any]) -> str | None:
    if scheme.get("type") == "apiKey" and scheme.get("in") == "header":
        return str(scheme.get("name"))
    if scheme.get("type") == "http":
        return "Authorization"
    return None


def coerce(value: str, schema: Mapping[str, Any]) -> Any:
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
