"""Answer variations the contract allows: optional fields left out, unknown fields added.

A client written against today's answers breaks when fal leaves out a field the spec marks
optional (``metrics``, ``error`` on a COMPLETED status) or adds a new one. Both are within the
contract, so the fault plan can ask for them (kinds ``omit_optional`` and ``extra_fields``) and
the fuzzing strategies draw them. Which fields are optional is read from the OpenAPI document the
checks use, so the variation can never step outside what the response checks accept. A property
with a single allowed value (``status: "COMPLETED"``) is the answer's type tag and always stays.

Only JSON object answers are varied (status, submit, result, cancel); event streams and files are
passed through.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from starlette.types import Message, Send

from contracts.checks.spec import spec_for
from contracts.operations import Operation

EXTRA_FIELD: Final = "x_fal_mock_unknown_field"
"""The field ``extra_fields`` adds: a name no fal answer uses, holding a nested object."""
EXTRA_VALUE: Final = {"added_by": "fal-lipsync-mock", "why": "clients must ignore unknown fields"}


def _object_schema(
    operation: Operation, status: int, body: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """The schema of this answer: the one the response checks judge it by."""
    spec = spec_for(None)
    path = spec.document["paths"].get(operation.prefixed_path, {})
    response = path.get(operation.method.lower(), {}).get("responses", {}).get(str(status), {})
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    return None if schema is None else spec.narrowed(schema, body)


def _is_type_tag(schema: Mapping[str, Any]) -> bool:
    schema = spec_for(None).narrowed(schema, None)
    return "const" in schema or len(schema.get("enum", ())) == 1


def optional_fields(operation: Operation, status: int, body: Mapping[str, Any]) -> set[str]:
    """The fields of ``body`` the spec lets this answer leave out."""
    schema = _object_schema(operation, status, body)
    if schema is None:
        return set()
    required = set(schema.get("required", ()))
    properties = schema.get("properties", {})
    return {
        name
        for name in body
        if name in properties and name not in required and not _is_type_tag(properties[name])
    }


def vary(kind: str, operation: Operation, status: int, payload: bytes) -> bytes:
    """``payload`` with the variation applied, or unchanged when it is not a JSON object."""
    try:
        body = json.loads(payload)
    except ValueError:
        return payload
    if not isinstance(body, dict):
        return payload
    if kind == "omit_optional":
        for name in optional_fields(operation, status, body):
            del body[name]
    else:
        body[EXTRA_FIELD] = EXTRA_VALUE
    return json.dumps(body).encode()


def varying_send(kind: str, operation: Operation, send: Send) -> Send:
    """A ``send`` that holds back a JSON answer's body, varies it, and fixes Content-Length."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def wrapped(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            content_type = dict(message.get("headers", [])).get(b"content-type", b"")
            if content_type.startswith(b"application/json"):
                start = message
                return
        elif start is not None and message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = vary(kind, operation, start["status"], b"".join(chunks))
            headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await send(message)

    return wrapped
