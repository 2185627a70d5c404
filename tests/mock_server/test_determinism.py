"""Same seed and inputs: the same wire transcript and the same output bytes."""

from __future__ import annotations

import json
from typing import Any

import httpx

from mock_server.app import create_app
from mock_server.settings import MockSettings
from tests.conftest import AUTH, LIPSYNC_INPUT


async def transcript(seed: int) -> tuple[list[dict[str, Any]], bytes]:
    """A full scripted session in-process (fal's own host names, so URLs match too)."""
    app = create_app(MockSettings(seed=seed, policy="polls:2"))
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, headers=AUTH) as c:
        token = (await c.post("https://rest.fal.ai/storage/auth/token")).json()
        upload = await c.post(
            "https://v3.fal.media/files/upload",
            content=b"speech",
            headers={"Authorization": f"Bearer {token['token']}"},
        )
        jobs = []
        for _ in range(2):
            body = {**LIPSYNC_INPUT, "audio_url": upload.json()["access_url"]}
            jobs.append((await c.post("https://queue.fal.run/fal-ai/lipsync", json=body)).json())
        await c.put(jobs[1]["cancel_url"])
        while (await c.get(jobs[0]["status_url"], params={"logs": 1})).status_code == 202:
            pass
        await c.get(jobs[0]["status_url"] + "/stream", params={"logs": 1})
        output = (await c.get(jobs[0]["response_url"])).json()
        await c.get(jobs[1]["response_url"])
        video = await c.get(output["video"]["url"])
        await c.post("https://fal.run/fal-ai/lipsync", json=LIPSYNC_INPUT)
        entries = (await c.get("http://m/_mock/journal")).json()["entries"]
    for entry in entries:  # when the mock saw it, on this machine's clock: not on the wire
        assert isinstance(entry["extra"].pop("wall_time"), float)
    return entries, video.content


async def test_same_seed_gives_identical_transcripts_and_bytes() -> None:
    first, first_video = await transcript(seed=1234)
    second, second_video = await transcript(seed=1234)
    assert {e["host"] for e in first} == {"queue", "run", "rest", "cdn"}
    assert len(first) == len(second)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert first_video == second_video and first_video[4:8] == b"ftyp"


async def test_another_seed_gives_other_ids() -> None:
    first, _ = await transcript(seed=1)
    other, _ = await transcript(seed=2)
    first_ids = {e["request_id"] for e in first if e["request_id"]}
    other_ids = {e["request_id"] for e in other if e["request_id"]}
    assert first_ids and other_ids and not first_ids & other_ids
