"""Exchange faults at the edge: the answers fal's edge and infrastructure give instead of the real
one (PROTOCOL.md §11), chosen by the engine's :class:`~mock_server.engine.faults.FaultInjector`
or by a request's own ``X-Mock-Faults`` plan.

It sits inside the journal's middleware, so a faulted exchange is journaled like any other (with
``extra["fault"]``), and before the routes, so a faulted submit queues nothing: fal's edge
answered before any runner saw it, and a client that retries makes exactly one request.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Final

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.faults import FAULT_HEADER, VARIATIONS, FaultPlan, FaultRule
from contracts.operations import Header as FalHeader
from contracts.operations import LogicalHost, find_operation
from mock_server.engine.faults import FaultInjector
from mock_server.engine.queue import QueueEngine
from mock_server.http.hosts import HOST_KEY
from mock_server.http.variations import varying_send

FAULT_KEY: Final = "fal_mock.fault"
"""Scope key: the kind of fault this exchange was answered with (the journal records it)."""
FAULT_PLAN_KEY: Final = "fal_mock.fault_plan"
"""Scope key: the request's own validated ``X-Mock-Faults`` plan (a submit gives it to its job)."""
RAW_RECEIVE_KEY: Final = "fal_mock.raw_receive"
"""Scope key: the server's own ``receive``, whose owner holds the connection (uvicorn)."""

_HEADER: Final = FAULT_HEADER.lower().encode()
FAULT_MARK_HEADER: Final = b"x-mock-fault"
_INGRESS_STATUS: Final = {"ingress_502": 502, "ingress_503": 503, "ingress_504": 504}
_REASONS: Final = {
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}
_JSON_FAULTS: Final = {
    "request_timeout": (408, "Request Timeout"),
    "conflict": (409, "Conflict: the request could not be completed, retry"),
    "internal_error": (500, "Internal Server Error"),
}


def nginx_page(status: int) -> bytes:
    """The HTML nginx answers with: fal-client retries 502/503/504 only when it says nginx."""
    title = f"{status} {_REASONS[status]}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


class FaultInjection:
    def __init__(self, app: ASGIApp, engine: Callable[[], QueueEngine]) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        host: LogicalHost | None = scope.get(HOST_KEY)
        if scope["type"] != "http" or host is None:
            await self.app(scope, receive, send)
            return
        injector = self.engine().faults
        raw_plan = next((v for k, v in scope["headers"] if k == _HEADER), None)
        if raw_plan is not None:
            try:
                plan = FaultPlan.model_validate_json(raw_plan)
            except ValidationError as exc:
                await _send(send, 422, *_json({"detail": _header_errors(exc)}))
                return
            scope[FAULT_PLAN_KEY] = plan
            injector = FaultInjector(plan)
        rule = operation = None
        if injector.has_exchange_faults:
            relative = scope["path"][len(host.value) + 1 :]
            operation = find_operation(host.value, scope["method"], relative)
            if operation is not None:
                rule = injector.exchange_fault(operation.operation_id)
        if rule is None or operation is None:
            await self.app(scope, receive, send)
            return
        scope[FAULT_KEY] = rule.kind
        send = _marked(send, rule.kind)
        if rule.kind in VARIATIONS:
            await self.app(scope, receive, varying_send(rule.kind, operation, send))
        elif rule.kind == "latency":
            await asyncio.sleep(rule.delay_s)  # this request waits; the loop serves others
            await self.app(scope, receive, send)
        elif rule.kind == "drop_connection":
            await _drop(scope)
        else:
            await _send(send, *_answer(rule, scope))


def _answer(rule: FaultRule, scope: Scope) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    if rule.kind == "rate_limited":
        detail = f"Rate limit exceeded: retry after {rule.retry_after_s} s"
        status, body, headers = 429, *_json({"detail": detail})
        return status, body, [*headers, (b"retry-after", str(rule.retry_after_s).encode())]
    if rule.kind in _JSON_FAULTS:
        status, detail = _JSON_FAULTS[rule.kind]
        return status, *_json({"detail": detail})
    status = _INGRESS_STATUS[rule.kind]
    headers = [(b"content-type", b"text/html")]
    if rule.with_request_id:
        # fal's gateway stamps the request it was serving; fal-client then does not retry.
        headers.append((FalHeader.REQUEST_ID.encode(), _request_id(scope).encode()))
    return status, nginx_page(status), headers


def _marked(send: Send, kind: str) -> Send:
    """Adds ``X-Mock-Fault: <kind>`` to the answer: a load test or a log can tell an injected
    failure from a real one (fal sends no such header; clients ignore it)."""

    async def marked(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", []), (FAULT_MARK_HEADER, kind.encode())]
            message = {**message, "headers": headers}
        await send(message)

    return marked


def _request_id(scope: Scope) -> str:
    """The id in the path (status, result, cancel), or one made from the path (a submit)."""
    parts: list[str] = scope["path"].split("/")
    if "requests" in parts and parts.index("requests") + 1 < len(parts):
        return parts[parts.index("requests") + 1]
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fal-mock-fault:{scope['path']}"))


def _json(body: object) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    return json.dumps(body).encode(), [(b"content-type", b"application/json")]


def _header_errors(exc: ValidationError) -> list[dict[str, object]]:
    return [
        {
            "loc": ["header", FAULT_HEADER, *error["loc"]],
            "msg": f"not a fault plan: {error['msg']}",
            "type": error["type"],
        }
        for error in exc.errors(include_url=False, include_input=False)
    ]


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drop(scope: Scope) -> None:
    """Close the connection without an answer, as a dying edge does.

    Under uvicorn the transport is closed (the client sees the peer go away, no status line);
    after one turn of the loop uvicorn has seen the loss, so it does not answer 500 in our
    place. Elsewhere (the in-process bridge) returning without an answer is the same signal:
    the bridge raises httpx's ``RemoteProtocolError``, as httpx does on a real connection.
    """
    owner = getattr(scope.get(RAW_RECEIVE_KEY), "__self__", None)
    transport = getattr(owner, "transport", None)
    if transport is not None and hasattr(transport, "close"):
        transport.close()
        await asyncio.sleep(0)
