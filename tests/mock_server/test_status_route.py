"""The status poll's thin route answers exactly what the FastAPI route would, byte for byte.

Two apps run the same script side by side: the real one, and a twin without the thin route
(so every poll goes through FastAPI's route, the reference). Status, headers, body, the
journal and the polls counted must all be equal; and the bytes must be the contract models'
own rendering of the engine's view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

import mock_server.routes.queue as queue_routes
from contracts.schemas import LipsyncInput
from mock_server.app import create_app
from mock_server.engine.jobs import SubmitOptions
from mock_server.http.hosts import PublicUrls
from mock_server.http.render import StatusBodies, status_body
from mock_server.http.status_route import StatusRoute
from mock_server.settings import MockSettings
from tests.conftest import AUTH, LIPSYNC_INPUT

Exchange = tuple[int, list[tuple[str, str]], bytes]


def without_status_route(app: FastAPI) -> FastAPI:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not StatusRoute]
    return app


def pair(**settings: Any) -> tuple[FastAPI, FastAPI]:
    """The app, and its twin that answers every poll through FastAPI."""
    config = MockSettings(policy="polls:2", seed=7, **settings)
    return create_app(config), without_status_route(create_app(config))


async def exchange(app: FastAPI, method: str, url: str, **kwargs: Any) -> Exchange:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app)) as client:
        response = await client.request(method, url, **kwargs)
    return response.status_code, response.headers.multi_items(), response.content


@pytest.fixture
def fastapi_status_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Request ids the FastAPI route rendered a status for (the thin route renders elsewhere)."""
    calls: list[str] = []
    original: Callable[..., dict[str, Any]] = queue_routes.status_body

    def spy(view: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(view.request_id)
        return original(view, *args, **kwargs)

    monkeypatch.setattr(queue_routes, "status_body", spy)
    return calls


WAYS_IN = {
    "path prefix": ("http://127.0.0.1:8000", "/queue", {}),
    "host header": ("https://queue.fal.run", "", {}),
}

POLL_QUERIES = ["", "?logs=0", "?logs=1", "?logs=true", "?logs=false", "?logs=1&logs=0",
                "?other=x&logs=true", "?logs=%31"]  # fmt: skip
REFUSED_QUERIES = ["?logs=yes", "?logs=", "?logs=TRUE", "?logs=true&logs=2"]


@pytest.mark.parametrize("way_in", WAYS_IN)
async def test_polls_through_the_thin_route_match_the_fastapi_route(
    way_in: str, fastapi_status_calls: list[str]
) -> None:
    fast, reference = pair()
    origin, prefix, headers = WAYS_IN[way_in]
    submit = f"{origin}{prefix}/fal-ai/lipsync"
    ids = []
    for app in (fast, reference):
        code, _, body = await exchange(app, "POST", submit, json=LIPSYNC_INPUT, headers=AUTH)
        assert code == 200
        ids.append(httpx.Response(200, content=body).json()["status_url"])
    assert ids[0] == ids[1]
    status_url = ids[0]
    fastapi_status_calls.clear()
    polls = 0
    for query in POLL_QUERIES * 2:  # polls:2: walks through every state, then stays COMPLETED
        seen = [
            await exchange(app, "GET", status_url + query, headers={**AUTH, **headers})
            for app in (fast, reference)
        ]
        assert seen[0] == seen[1], query
        polls += 1
    assert fastapi_status_calls == [status_url.split("/")[-2]] * polls  # the twin's only
    assert journal(fast) == journal(reference)


async def test_refused_polls_get_the_fastapi_answers_and_count_no_poll() -> None:
    fast, reference = pair(keys="good-key")
    good = {"Authorization": "Key good-key"}
    submitted = [
        await exchange(
            app, "POST", "http://m/queue/fal-ai/lipsync", json=LIPSYNC_INPUT, headers=good
        )
        for app in (fast, reference)
    ]
    status_url = httpx.Response(200, content=submitted[0][2]).json()["status_url"]
    base = status_url.removesuffix("/status")
    cases: list[tuple[str, dict[str, str]]] = [
        *((status_url + q, good) for q in REFUSED_QUERIES),
        (status_url, {}),  # no credentials
        (status_url, {"Authorization": "Basic abc"}),  # not a fal scheme
        (status_url, {"Authorization": "Key wrong-key"}),  # not an accepted key
        (status_url.replace("fal-ai/lipsync", "fal-ai/other"), good),  # another app
        (base.replace(base.split("/")[-1], "unknown-id") + "/status", good),
        (status_url + "/", good),  # not the route's path
    ]
    for url, headers in cases:
        answers = [await exchange(app, "GET", url, headers=headers) for app in (fast, reference)]
        assert answers[0] == answers[1], url
        assert answers[0][0] in (401, 404, 405, 422), url
    for app in (fast, reference):  # none of them counted as a poll (polls:2)
        for _ in range(2):
            body = (await exchange(app, "GET", status_url, headers=good))[2]
            assert httpx.Response(202, content=body).json()["status"] == "IN_QUEUE"
    assert journal(fast) == journal(reference)


async def test_proxy_and_bearer_tokens_reach_the_thin_route(
    fastapi_status_calls: list[str],
) -> None:
    fast, reference = pair(keys="good-key")
    good = {"Authorization": "Key good-key"}
    proxied = []
    for app in (fast, reference):
        token = await exchange(app, "POST", "https://rest.fal.ai/storage/auth/token", headers=good)
        bearer = {
            "Authorization": f"Bearer {httpx.Response(200, content=token[2]).json()['token']}"
        }
        target = {"x-fal-target-url": "https://queue.fal.run/fal-ai/lipsync"}
        submit = await exchange(
            app, "POST", "http://127.0.0.1:3000/api/fal/proxy",
            json=LIPSYNC_INPUT, headers={**good, **target},
        )  # fmt: skip
        request_id = httpx.Response(200, content=submit[2]).json()["request_id"]
        status_target = f"https://queue.fal.run/fal-ai/lipsync/requests/{request_id}/status?logs=1"
        poll = {**bearer, "x-fal-target-url": status_target}
        proxy = "http://127.0.0.1:3000/api/fal/proxy"
        proxied.append([await exchange(app, "GET", proxy, headers=poll) for _ in range(5)])
    assert proxied[0] == proxied[1]
    assert [code for code, _, _ in proxied[0]] == [202, 202, 202, 202, 200]
    assert len(fastapi_status_calls) == 5  # the twin's polls only
    assert journal(fast) == journal(reference)


async def test_bytes_are_the_models_rendering_of_the_view() -> None:
    app = create_app(MockSettings(policy="polls:1", seed=3))
    engine = app.state.engine
    origin = "http://127.0.0.1:8000"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url=origin, headers=AUTH
    ) as client:
        first = (await client.post("/queue/fal-ai/lipsync", json=LIPSYNC_INPUT)).json()
        second = (await client.post("/queue/fal-ai/lipsync", json=LIPSYNC_INPUT)).json()
        await client.put(second["cancel_url"])
        for job in (first, second):
            for flag, with_logs in [("1", True), ("0", False)] * 3:
                response = await client.get(job["status_url"], params={"logs": flag})
                view = engine.peek(job["request_id"])
                urls = PublicUrls.prefixed(origin)
                expected = JSONResponse(status_body(view, urls, with_logs)).body
                assert response.content == expected
                assert response.headers["content-type"] == "application/json"
                assert response.headers["x-fal-request-id"] == job["request_id"]


def test_rendered_bodies_are_reused_only_for_an_equal_view() -> None:
    engine = create_app(MockSettings(policy="polls:1")).state.engine
    view = engine.submit(LipsyncInput(**LIPSYNC_INPUT), "fal-ai/lipsync", SubmitOptions())
    bodies, urls = StatusBodies(kept=2), PublicUrls.prefixed("http://m")
    body = bodies.render(view, urls, True)
    assert bodies.render(engine.peek(view.request_id), urls, True) is body  # same state: reused
    moved = engine.observe(view.request_id)
    moved = engine.observe(view.request_id)
    assert moved is not None and moved.status == "IN_PROGRESS"
    assert bodies.render(moved, urls, True) != body
    for n in range(3):  # more keys than kept: the oldest goes, nothing breaks
        bodies.render(view, PublicUrls.prefixed(f"http://m{n}"), False)
    assert len(bodies._bodies) == 2


def journal(app: FastAPI) -> list[dict[str, Any]]:
    return [entry.wire_dict() for entry in app.state.engine.journal.entries()]
