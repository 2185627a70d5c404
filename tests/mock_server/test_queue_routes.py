"""Status codes and bodies of the queue host, and the SSE status stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts.schemas import CompletedStatus, InProgressStatus, InQueueStatus
from mock_server.app import create_app
from mock_server.settings import MockSettings
from tests.conftest import AUTH, LIPSYNC_INPUT

BASE = "/queue/fal-ai/lipsync"


async def submit(client: httpx.AsyncClient, **headers: str) -> dict[str, Any]:
    response = await client.post(BASE, json=LIPSYNC_INPUT, headers=headers)
    assert response.status_code == 200
    assert response.headers["x-fal-request-id"] == response.json()["request_id"]
    body: dict[str, Any] = response.json()
    return body


async def test_status_is_202_until_completed_then_200(client: httpx.AsyncClient) -> None:
    job = await submit(client)
    codes, bodies = [], []
    for _ in range(3):
        response = await client.get(job["status_url"], params={"logs": "1"})
        codes.append(response.status_code)
        bodies.append(response.json())
    assert codes == [202, 202, 200]
    InQueueStatus.model_validate(bodies[0])
    InProgressStatus.model_validate(bodies[1])
    done = CompletedStatus.model_validate(bodies[2])
    assert done.error is None and done.metrics.inference_time is not None


@pytest.mark.parametrize(
    ("flag", "has_logs"),
    [("0", False), ("false", False), ("1", True), ("true", True)],
)
async def test_logs_flag(client: httpx.AsyncClient, flag: str, has_logs: bool) -> None:
    job = await submit(client, **{"x-mock-policy": "immediate"})
    body = (await client.get(job["status_url"], params={"logs": flag})).json()
    assert "logs" in body  # always present: fal-client reads data["logs"]
    assert (body["logs"] is not None) is has_logs


async def test_queue_positions_count_requests_ahead(client: httpx.AsyncClient) -> None:
    jobs = [await submit(client) for _ in range(3)]
    assert [j["queue_position"] for j in jobs] == [0, 1, 2]


async def test_result_before_completion_is_400(client: httpx.AsyncClient) -> None:
    job = await submit(client)
    response = await client.get(job["response_url"])
    assert response.status_code == 400
    assert response.json() == {"detail": "Request is still in progress"}


async def test_unknown_request_ids_are_404(client: httpx.AsyncClient) -> None:
    for method, suffix in (
        ("GET", "/status"),
        ("GET", "/status/stream"),
        ("GET", ""),
    ):
        response = await client.request(method, f"{BASE}/requests/nope{suffix}")
        assert response.status_code == 404, suffix
        assert "not found" in response.json()["detail"]
    response = await client.put(f"{BASE}/requests/nope/cancel")
    assert (response.status_code, response.json()) == (404, {"status": "NOT_FOUND"})


async def test_cancel_codes_and_the_cancelled_result(client: httpx.AsyncClient) -> None:
    job = await submit(client)
    response = await client.put(job["cancel_url"])
    assert (response.status_code, response.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    status = (await client.get(job["status_url"])).json()
    assert status["status"] == "COMPLETED" and status["error_type"] == "request_cancelled"
    result = await client.get(job["response_url"])
    assert result.status_code == 400 and result.headers["x-fal-error-type"] == "request_cancelled"
    again = await client.put(job["cancel_url"])
    assert (again.status_code, again.json()) == (400, {"status": "ALREADY_COMPLETED"})


def sse_events(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    events, comments = [], []
    for line in text.splitlines():
        if line.startswith("data:"):
            events.append(json.loads(line[5:]))
        elif line.startswith(":"):
            comments.append(line)
    return events, comments


async def test_status_stream_sends_changes_with_new_logs_only_and_closes() -> None:
    app = create_app(MockSettings(policy="polls:3", stream_tick=0.001, keepalive_interval=0.001))
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://m", headers=AUTH) as c:
        job = await submit(c)
        response = await c.get(job["status_url"] + "/stream", params={"logs": "1"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events, _ = sse_events(response.text)
    statuses = [e["status"] for e in events]
    assert statuses[0] == "IN_QUEUE" and statuses[-1] == "COMPLETED"
    assert statuses.count("COMPLETED") == 1  # the stream ends right after it
    messages = [line["message"] for e in events if e.get("logs") for line in e["logs"]]
    assert len(messages) == len(set(messages)) >= 3  # each line sent once
    ordered = ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert statuses == sorted(statuses, key=ordered.index)


async def test_status_stream_without_logs_sends_null_logs(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://m", headers=AUTH) as c:
        job = await submit(c)
        response = await c.get(job["status_url"] + "/stream")
    events, _ = sse_events(response.text)
    assert all(e.get("logs") is None for e in events)


async def test_status_stream_of_a_completed_request_sends_one_event(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://m", headers=AUTH) as c:
        job = await submit(c, **{"x-mock-policy": "immediate"})
        response = await c.get(job["status_url"] + "/stream")
    events, _ = sse_events(response.text)
    assert [e["status"] for e in events] == ["COMPLETED"]


async def test_status_stream_sends_keepalive_comments_while_waiting() -> None:
    app = create_app(
        MockSettings(
            policy="virtual",
            keepalive_interval=0.01,
            stream_tick=0.005,
            queue_delay=(0, 0),
            inference_time=(1, 1),
        )
    )

    async def finish_later() -> None:
        await asyncio.sleep(0.2)  # the stream has been waiting: keep-alives went out
        app.state.engine.advance_clock(5)

    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://m", headers=AUTH) as c:
        job = await submit(c)
        finisher = asyncio.create_task(finish_later())
        # ASGITransport hands over the body when the app is done: the stream must end by itself.
        response = await asyncio.wait_for(c.get(job["status_url"] + "/stream"), timeout=10)
        await finisher
    events, comments = sse_events(response.text)
    assert comments
    assert set(comments) == {": keepalive"}  # fixed text: transcripts stay deterministic
    assert [e["status"] for e in events] == ["IN_PROGRESS", "COMPLETED"]
