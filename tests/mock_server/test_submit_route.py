"""The plain submit's thin route answers exactly what the FastAPI route would, byte for byte.

As for the status poll (test_status_route.py): the real app and a twin without the thin route
get the same script; every answer, the journal and the queue they end with must be equal. The
script covers plain submits (answered by the thin route) and everything it hands on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import mock_server.routes.queue as queue_routes
from mock_server.app import create_app
from mock_server.http.submit_route import SubmitRoute
from mock_server.settings import MockSettings
from tests.conftest import LIPSYNC_INPUT

GOOD = {"authorization": "Key good-key"}
JSON = {"content-type": "application/json"}
BODY = json.dumps(LIPSYNC_INPUT).encode()

Case = tuple[str, dict[str, str], bytes]  # path and query, headers, body

PLAIN: list[Case] = [
    ("", {**GOOD, **JSON}, BODY),
    ("", {**GOOD, **JSON, "x-fal-queue-priority": "low"}, BODY),
    ("", {**GOOD, **JSON, "x-fal-queue-priority": "normal"}, BODY),
    ("", {**GOOD, "content-type": "Application/JSON; charset=utf-8"}, BODY),
    ("", {**GOOD, **JSON}, json.dumps({**LIPSYNC_INPUT, "sync_mode": "loop", "x": 1}).encode()),
    ("", {**GOOD, **JSON}, json.dumps(LIPSYNC_INPUT).encode("utf-16")),
]
HANDED_ON: list[Case] = [
    ("", {**GOOD, **JSON, "x-fal-queue-priority": "LOW"}, BODY),
    ("", {**GOOD, **JSON, "x-fal-queue-priority": ""}, BODY),
    ("", {**GOOD, **JSON, "x-fal-runner-hint": "h1"}, BODY),
    ("", {**GOOD, **JSON, "x-fal-request-timeout": "30.0"}, BODY),
    ("", {**GOOD, **JSON, "x-fal-request-timeout": "0.5"}, BODY),
    ("", {**GOOD, **JSON, "x-mock-policy": "polls:3"}, BODY),
    ("", {**GOOD, **JSON, "x-mock-policy": "bogus"}, BODY),
    ("?fal_webhook=https%3A%2F%2Fhook.example%2Fcb", {**GOOD, **JSON}, BODY),
    ("?fal_webhook=not-a-url", {**GOOD, **JSON}, BODY),
    ("?unrelated=1", {**GOOD, **JSON}, BODY),
    ("", GOOD, BODY),  # no content type
    ("", {**GOOD, "content-type": "text/plain"}, BODY),
    ("", {**GOOD, "content-type": "application/vnd.fal+json"}, BODY),
    ("", {**GOOD, **JSON}, b""),
    ("", {**GOOD, **JSON}, b"{"),
    ("", {**GOOD, **JSON}, b"[]"),
    ("", {**GOOD, **JSON}, b"\xff\xfe\xfa"),
    ("", {**GOOD, **JSON}, json.dumps({"video_url": 1}).encode()),
    ("", {**GOOD, **JSON}, json.dumps({**LIPSYNC_INPUT, "sync_mode": "fast"}).encode()),
    ("", JSON, BODY),  # no credentials
    ("", {"authorization": "Basic abc", **JSON}, BODY),
    ("", {"authorization": "Key wrong-key", **JSON}, BODY),
    ("/extra/path", {**GOOD, **JSON}, BODY),
]


def without_submit_route(app: FastAPI) -> FastAPI:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not SubmitRoute]
    return app


@pytest.fixture
def fastapi_submits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Request ids the FastAPI route answered a submit for (the thin route renders elsewhere)."""
    calls: list[str] = []
    original: Callable[..., Any] = queue_routes.submit_response

    def spy(view: Any, *args: Any) -> Any:
        calls.append(view.request_id)
        return original(view, *args)

    monkeypatch.setattr(queue_routes, "submit_response", spy)
    return calls


WAYS_IN = {
    "path prefix": ("http://127.0.0.1:8000/queue/fal-ai/lipsync", ""),
    "host header": ("https://queue.fal.run/fal-ai/lipsync", ""),
    "proxy": ("http://127.0.0.1:3000/api/fal/proxy", "https://queue.fal.run/fal-ai/lipsync"),
}


async def answers(app: FastAPI, way_in: str, cases: list[Case]) -> list[Any]:
    url, proxy_target = WAYS_IN[way_in]
    seen = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app)) as client:
        for suffix, headers, body in cases:
            if proxy_target:
                headers = {**headers, "x-fal-target-url": proxy_target + suffix}
                response = await client.post(url, headers=headers, content=body)
            else:
                response = await client.post(url + suffix, headers=headers, content=body)
            seen.append((response.status_code, response.headers.multi_items(), response.content))
    return seen


def state(app: FastAPI) -> tuple[Any, ...]:
    engine = app.state.engine
    ids = engine.request_ids()
    return (
        [entry.wire_dict() for entry in engine.journal.entries()],
        ids,
        [engine.history(request_id) for request_id in ids],
    )


@pytest.mark.parametrize("way_in", WAYS_IN)
async def test_submits_through_the_thin_route_match_the_fastapi_route(
    way_in: str, fastapi_submits: list[str]
) -> None:
    settings = MockSettings(policy="polls:1", seed=11, keys="good-key")
    fast, reference = create_app(settings), without_submit_route(create_app(settings))
    script = PLAIN + HANDED_ON
    fast_answers = await answers(fast, way_in, script)
    routed_by_fastapi, fastapi_submits[:] = list(fastapi_submits), []
    twin_answers = await answers(reference, way_in, script)
    for case, mine, theirs in zip(script, fast_answers, twin_answers, strict=True):
        assert mine == theirs, case
    assert state(fast) == state(reference)
    ids = [
        json.loads(body)["request_id"] if code == 200 else None for code, _, body in fast_answers
    ]
    assert all(ids[: len(PLAIN)])  # every plain submit queued...
    assert routed_by_fastapi == [i for i in ids[len(PLAIN) :] if i]  # ...without the route
    assert fastapi_submits == [i for i in ids if i]  # the twin: all through the route
    assert {code for code, _, _ in fast_answers} >= {200, 401, 404, 422}
