"""The plain queue submit, answered in front of FastAPI's router.

FastAPI spends most of a submit resolving its parameters (four dependencies, a query and four
headers, each looked up and validated on every request). A plain submit has none of the
optional parts: no ``fal_webhook``, no hint, timeout, ``x-mock-policy`` or ``x-mock-faults``
header, at most a valid priority, and a JSON body that validates as ``LipsyncInput``. That
case, and only that one, is answered here, through the same engine call and the same
rendering as the FastAPI route (:func:`~mock_server.http.render.submit_response`). Every other
submit, valid or not, goes on to the FastAPI route untouched: it stays the one place that
validates the optional parts and words the errors, so nothing here can drift from it. Nothing
is changed before a request is known to be answered here: a submit handed on is queued once,
by the route.
"""

from __future__ import annotations

import json
import re
from typing import Final

from starlette.datastructures import State
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.faults import FAULT_HEADER
from contracts.operations import ENDPOINT_ID
from contracts.operations import Header as FalHeader
from contracts.schemas import LipsyncInput
from mock_server.engine.jobs import SubmitOptions
from mock_server.engine.queue import QueueEngine
from mock_server.http.deps import check_credentials
from mock_server.http.hosts import URLS_KEY, PublicUrls
from mock_server.http.render import submit_response
from mock_server.settings import MockSettings

_SUBMIT_PATH: Final = re.compile(r"/queue/([^/]+)/([^/]+)")
"""The FastAPI route's path, as Starlette matches it."""

_OPTIONS_BY_PRIORITY: Final[dict[bytes, SubmitOptions]] = {
    b"normal": SubmitOptions(priority="normal"),
    b"low": SubmitOptions(priority="low"),
}
"""A plain submit's options, shared by every job submitted with them (frozen values)."""

_OPTIONAL_HEADERS: Final = frozenset(
    {
        FalHeader.RUNNER_HINT.encode(),
        FalHeader.REQUEST_TIMEOUT.encode(),
        b"x-mock-policy",
        FAULT_HEADER.lower().encode(),
    }
)
"""Headers whose presence hands the submit to the FastAPI route (it validates them)."""

_PRIORITY_HEADER: Final = FalHeader.QUEUE_PRIORITY.encode()


class SubmitRoute:
    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state  # read per request: a test harness may swap the engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope.get("root_path")
            or scope["query_string"]  # fal_webhook (or anything else): the route's to read
            or (match := _SUBMIT_PATH.fullmatch(scope["path"])) is None
        ):
            await self.app(scope, receive, send)
            return
        body = await _whole_body(receive)
        if body is not None:
            response = self._submit(scope, f"{match.group(1)}/{match.group(2)}", body)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, _replaying(body, receive), send)

    def _submit(self, scope: Scope, app_id: str, body: bytes) -> Response | None:
        """The answer to a plain submit, or None to leave the request to the FastAPI route."""
        if app_id != ENDPOINT_ID or not body:
            return None
        headers = _plain_submit_headers(scope)
        if headers is None:
            return None
        authorization, options = headers
        engine: QueueEngine = self.state.engine
        settings: MockSettings = self.state.settings
        try:
            check_credentials(authorization, settings, engine)
            # As the route reads a JSON body: json.loads, then the model from Python objects.
            payload = LipsyncInput.model_validate(json.loads(body), from_attributes=True)
        except Exception:  # whatever fails, the route answers it, in its own words
            return None
        view = engine.submit(payload, app_id, options)
        urls: PublicUrls = scope[URLS_KEY]
        return submit_response(view, urls, app_id)


def _plain_submit_headers(scope: Scope) -> tuple[str | None, SubmitOptions] | None:
    """(Authorization, options) of a submit with no optional header, or None."""
    authorization: str | None = None
    options: SubmitOptions | None = None
    content_type: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            if authorization is None:
                authorization = value.decode("latin-1")
        elif name == b"content-type":
            if content_type is None:
                content_type = value
        elif name == _PRIORITY_HEADER:
            if options is not None or value not in _OPTIONS_BY_PRIORITY:
                return None  # repeated or invalid: the route decides which one counts
            options = _OPTIONS_BY_PRIORITY[value]
        elif name in _OPTIONAL_HEADERS:
            return None
    if content_type is None or not _is_json(content_type):
        return None
    return authorization, options or _OPTIONS_BY_PRIORITY[b"normal"]


def _is_json(content_type: bytes) -> bool:
    """``application/json`` (any case, with parameters): a subset of what the route reads as
    JSON, so whatever passes here the route would have parsed the same way."""
    return content_type.split(b";", 1)[0].strip().lower() == b"application/json"


async def _whole_body(receive: Receive) -> bytes | None:
    """The request body (the exchange recorder replays it whole), None if the client left."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


def _replaying(body: bytes | None, receive: Receive) -> Receive:
    """``receive`` for the route: the body read here first, then the client's own messages."""
    replayed = body is None

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
