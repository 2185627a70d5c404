"""The /_mock control plane and the journal it exposes."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from mock_server.app import create_app
from mock_server.settings import MockSettings
from tests.conftest import LIPSYNC_INPUT


async def test_state_reset_seed_policy(client: httpx.AsyncClient) -> None:
    state = (await client.get("/_mock/state")).json()
    assert state["policy"] == "polls:1" and state["seed"] == 0
    first = (await client.post("/queue/fal-ai/lipsync", json=LIPSYNC_INPUT)).json()
    assert (await client.get("/_mock/state")).json()["requests"] == 1
    reset = await client.post("/_mock/reset", json={"policy": "polls:4"})
    assert reset.json()["requests"] == 0 and reset.json()["policy"] == "polls:4"
    replay = (await client.post("/queue/fal-ai/lipsync", json=LIPSYNC_INPUT)).json()
    assert replay["request_id"] == first["request_id"]  # same seed, same ids
    reseeded = await client.post("/_mock/seed", json={"seed": 99})
    assert reseeded.json()["seed"] == 99
    other = (await client.post("/queue/fal-ai/lipsync", json=LIPSYNC_INPUT)).json()
    assert other["request_id"] != first["request_id"]
    assert (await client.post("/_mock/policy", json={"policy": "immediate"})).status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_mock/policy", {"policy": "whenever"}),
        ("/_mock/reset", {"engine": "gpu"}),
        ("/_mock/clock/advance", {"seconds": -1}),
        ("/_mock/seed", {"seed": "x"}),
    ],
)
async def test_bad_control_requests_are_422(
    client: httpx.AsyncClient, path: str, body: dict[str, object]
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == 422 and isinstance(response.json()["detail"], list)


async def test_clock_advance_moves_virtual_jobs() -> None:
    app = create_app(MockSettings(policy="virtual", queue_delay=(1, 1), inference_time=(1, 1)))
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://m", headers={"Authorization": "Key k"}
    ) as c:
        job = (await c.post("/queue/fal-ai/lipsync", json=LIPSYNC_INPUT)).json()
        assert (await c.get(job["status_url"])).json()["status"] == "IN_QUEUE"
        state = (await c.post("/_mock/clock/advance", json={"seconds": 1.5})).json()
        assert state["clock"] == 1.5
        assert (await c.get(job["status_url"])).json()["status"] == "IN_PROGRESS"
        await c.post("/_mock/clock/advance", json={"seconds": 1})
        assert (await c.get(job["status_url"])).json()["status"] == "COMPLETED"
        history = (await c.get(f"/_mock/requests/{job['request_id']}")).json()["history"]
        assert [(h["status"], h["time"]) for h in history] == [
            ("IN_QUEUE", 0.0),
            ("IN_PROGRESS", 1.0),
            ("COMPLETED", 2.0),
        ]


async def test_clock_advance_under_realtime_is_409() -> None:
    app = create_app(MockSettings(policy="realtime"))
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://m") as c:
        response = await c.post("/_mock/clock/advance", json={"seconds": 1})
    assert response.status_code == 409 and "wall clock" in response.json()["detail"]


async def test_journal_records_fal_traffic_only_with_secrets_redacted(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(
        transport=transport, headers={"Authorization": "Key secret-key"}
    ) as c:
        job = (await c.post("https://queue.fal.run/fal-ai/lipsync", json=LIPSYNC_INPUT)).json()
        await c.get(job["status_url"], params={"logs": "1"})
        await c.get("https://queue.fal.run/_mock/state")
        entries = (await c.get("http://m/_mock/journal")).json()["entries"]
        assert [(e["host"], e["method"], e["path"], e["status_code"]) for e in entries] == [
            ("queue", "POST", "/fal-ai/lipsync", 200),
            ("queue", "GET", f"/fal-ai/lipsync/requests/{job['request_id']}/status", 202),
        ]
        assert entries[1]["query"] == "logs=1"
        assert entries[0]["request_id"] == entries[1]["request_id"] == job["request_id"]
        assert entries[0]["request_headers"]["authorization"] == "<redacted>"
        assert "secret-key" not in str(entries)
        await c.delete("http://m/_mock/journal")
        assert (await c.get("http://m/_mock/journal")).json()["entries"] == []


async def test_requests_listing(client: httpx.AsyncClient) -> None:
    job = (await client.post("/queue/fal-ai/lipsync", json=LIPSYNC_INPUT)).json()
    listing = (await client.get("/_mock/requests")).json()["requests"]
    assert [r["request_id"] for r in listing] == [job["request_id"]]
    assert (await client.get("/_mock/requests/unknown")).status_code == 404


async def test_root_and_docs(client: httpx.AsyncClient) -> None:
    index = (await client.get("/")).json()
    assert index["hosts"]["queue"] == "http://mock.test/queue"
    docs = await client.get("/openapi.json")
    assert "/_mock/clock/advance" in docs.json()["paths"]
