"""The status poll, the request a mock sees most, answered in front of FastAPI's router.

``GET /queue/{owner}/{alias}/requests/{id}/status`` through FastAPI costs a route match, four
dependencies, query validation and a pydantic render per poll. Here a poll with valid
credentials, the right app, a valid ``logs`` flag and a known request is answered from bytes
rendered once per state change (:class:`~mock_server.http.render.StatusBodies`). Anything else
(a 401, a 404, a 422) goes on to the FastAPI route, which stays the reference: it answers those
with its own bodies, and nothing here can drift from them. The only side effect, counting the
poll (``engine.observe``), happens once the request is known to be answered here.

Installed inside the host dispatch and the exchange recorder, so it sees the internal path
whichever way the request came in, and the journal records it like any other.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import parse_qsl

from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from contracts.operations import ENDPOINT_ID
from contracts.operations import Header as FalHeader
from mock_server.engine.queue import QueueEngine
from mock_server.http.deps import check_credentials
from mock_server.http.errors import FalError
from mock_server.http.hosts import URLS_KEY, PublicUrls
from mock_server.http.render import StatusBodies
from mock_server.settings import MockSettings

_STATUS_PATH: Final = re.compile(r"/queue/([^/]+)/([^/]+)/requests/([^/]+)/status")
"""The FastAPI route's path, as Starlette matches it (each parameter: one or more non-slash)."""

_LOGS_VALUES: Final = {"0": False, "1": True, "true": True, "false": False}
"""What the route's ``logs`` pattern ``^(0|1|true|false)$`` accepts (absent means "0")."""

_COMMON_QUERIES: Final = {b"": False, **{f"logs={k}".encode(): v for k, v in _LOGS_VALUES.items()}}
"""The query strings clients send, recognised without parsing."""

_REQUEST_ID_HEADER: Final = FalHeader.REQUEST_ID.encode()
_JSON: Final = (b"content-type", b"application/json")


class StatusRoute:
    def __init__(self, app: ASGIApp, state: State, bodies: StatusBodies) -> None:
        self.app = app
        self.state = state  # read per request: a test harness may swap the engine
        self.bodies = bodies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and not scope.get("root_path")
            and (match := _STATUS_PATH.fullmatch(scope["path"])) is not None
        ):
            answer = self._answer(scope, *match.groups())
            if answer is not None:
                request_id, status_code, body = answer
                headers = [
                    (_REQUEST_ID_HEADER, request_id.encode("latin-1")),
                    (b"content-length", str(len(body)).encode()),
                    _JSON,
                ]
                await send(
                    {"type": "http.response.start", "status": status_code, "headers": headers}
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _answer(
        self, scope: Scope, owner: str, alias: str, request_id: str
    ) -> tuple[str, int, bytes] | None:
        """(request id, status code, body), or None to leave the request to the FastAPI route."""
        if f"{owner}/{alias}" != ENDPOINT_ID:
            return None
        with_logs = _logs_flag(scope["query_string"])
        if with_logs is None:
            return None
        engine: QueueEngine = self.state.engine
        settings: MockSettings = self.state.settings
        try:
            check_credentials(_authorization(scope), settings, engine)
        except FalError:
            return None
        view = engine.observe(request_id)  # counts as a poll: only once the answer is ours
        if view is None:
            return None
        urls: PublicUrls = scope[URLS_KEY]
        body = self.bodies.render(view, urls, with_logs)
        return view.request_id, 200 if view.status == "COMPLETED" else 202, body


def _logs_flag(query_string: bytes) -> bool | None:
    """The ``logs`` flag as the route reads it (the last value wins), None if it is invalid."""
    common = _COMMON_QUERIES.get(query_string)
    if common is not None:
        return common
    value = "0"
    for name, item in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name == "logs":
            value = item
    return _LOGS_VALUES.get(value)


def _authorization(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            text: str = value.decode("latin-1")
            return text
    return None
