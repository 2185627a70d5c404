"""``mock_server.checking``: the running mock as a transcript, and ``check_mock`` over it,
output files included (from the store, decoded, and scored for sync when asked)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from contracts.checks import (
    CheckOptions,
    ContractViolations,
    OutputFileInvalid,
    find_violations,
)
from mock_server.checking import (
    check_mock,
    exchange_of,
    output_file_tools,
    probe_media,
    score_sync,
    store_fetcher,
    transcript_of,
)
from mock_server.engine import ENGINES, EngineConfig, JournalEntry, QueueEngine
from mock_server.engine.results import EngineOptions, FinishedTask, JobSpec, Success
from mock_server.media.placeholder import make_placeholder_mp4
from tests.conftest import LIPSYNC_INPUT

SUBMIT = "/queue/fal-ai/lipsync"


def engine_of(app: FastAPI) -> QueueEngine:
    engine: QueueEngine = app.state.engine
    return engine


async def run_to_completion(client: httpx.AsyncClient, fetch: bool = True) -> dict[str, str]:
    queued = (await client.post(SUBMIT, json=LIPSYNC_INPUT)).json()
    while (await client.get(queued["status_url"], params={"logs": 1})).status_code != 200:
        pass
    if fetch:
        (await client.get(queued["response_url"])).raise_for_status()
    return dict(queued)


async def test_the_journal_becomes_a_transcript(app: FastAPI, client: httpx.AsyncClient) -> None:
    queued = await run_to_completion(client)
    transcript = transcript_of(engine_of(app))
    request_id = queued["request_id"]
    assert [e.host for e in transcript.exchanges] == ["queue"] * len(transcript.exchanges)
    assert transcript.exchanges[0].target == SUBMIT
    assert transcript.exchanges[-1].path == f"/fal-ai/lipsync/requests/{request_id}"
    assert all(e.request_id == request_id for e in transcript.exchanges)
    assert all(e.clock_time is not None for e in transcript.exchanges)
    history = transcript.histories[request_id]
    assert [p.status for p in history] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert transcript.for_request(request_id) == transcript.exchanges


def test_wall_time_is_read_from_the_journal_when_it_has_one() -> None:
    entry = JournalEntry(
        seq=1,
        time=2.5,
        host="queue",
        method="GET",
        path="/x",
        query="",
        request_headers={},
        request_body=None,
        status_code=200,
        response_headers={},
        response_body=None,
    )
    assert exchange_of(entry).wall_time is None
    assert exchange_of(entry).clock_time == 2.5
    timed = JournalEntry(**{**entry.as_dict(), "extra": {"wall_time": 12.0}})
    assert exchange_of(timed).wall_time == 12.0


async def test_check_mock_passes_on_the_mock(app: FastAPI, client: httpx.AsyncClient) -> None:
    for _ in range(2):
        await run_to_completion(client)
    await run_to_completion(client, fetch=False)
    check_mock(engine_of(app), CheckOptions(expected_duration_s=1.0))


async def test_outputs_nobody_fetched_are_checked_too(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await run_to_completion(client, fetch=False)
    with pytest.raises(ContractViolations) as caught:
        check_mock(engine_of(app), CheckOptions(expected_duration_s=3.0))
    (failure,) = caught.value.failures
    assert isinstance(failure, OutputFileInvalid)
    assert "the output the server stored (the client never fetched it)" in str(failure)
    assert "it lasts 1.0 s, expected 3 s" in str(failure)


class GarbageEngine:
    """A broken result engine: its output is described as an mp4 and is not one."""

    name = "garbage"
    simulated_duration = False

    def __init__(self, options: EngineOptions) -> None:
        pass

    def start(self, spec: JobSpec) -> FinishedTask:
        stored = spec.store.put(b"not a video at all", "video/mp4", "out.mp4")
        video = {"url": stored.ref, "content_type": "video/mp4", "file_name": "out.mp4"}
        return FinishedTask(Success({"video": {**video, "file_size": stored.size}}), [])


async def test_a_broken_engine_is_caught_from_the_store(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ENGINES, "garbage", GarbageEngine)
    engine_of(app).reset(engine="garbage")
    await run_to_completion(client)
    with pytest.raises(ContractViolations) as caught:
        check_mock(engine_of(app))
    (failure,) = caught.value.failures
    assert "the bytes are not an mp4 (they start with b'not a video '" in str(failure)
    assert "it is not a decodable video" in str(failure)


async def test_fetch_file_replaces_the_store(app: FastAPI, client: httpx.AsyncClient) -> None:
    await run_to_completion(client)
    seen: list[str] = []

    def fetch(url: str) -> bytes:
        seen.append(url)
        raise ConnectionError("the CDN is down")

    await run_to_completion(client, fetch=False)  # its output is read from the store
    with pytest.raises(ContractViolations, match="could not be downloaded: ConnectionError") as e:
        check_mock(engine_of(app), fetch_file=fetch)
    assert len(e.value.failures) == 1
    assert len(seen) == 1 and seen[0].startswith("http://mock.test/cdn/files/")


def test_the_store_fetcher_refuses_unknown_urls() -> None:
    engine = QueueEngine(EngineConfig())
    with pytest.raises(LookupError, match=r"no file at https://v3\.fal\.media/files/x/y\.mp4"):
        store_fetcher(engine)("https://v3.fal.media/files/x/y.mp4")


def test_probe_media_describes_the_placeholder() -> None:
    facts = probe_media(make_placeholder_mp4(0))
    assert "mp4" in facts.container
    assert (facts.video_codec, facts.audio_codec) == ("h264", "aac")
    assert facts.duration_s == pytest.approx(1.0)
    with pytest.raises(ValueError, match="not decodable"):
        probe_media(b"\x00" * 64)


def test_the_placeholder_fails_the_sync_score() -> None:
    """No face, so no mouth to be in sync: the score's own verdict, in the report."""
    verdict = score_sync(make_placeholder_mp4(0))
    assert not verdict.passed
    assert "no face found" in verdict.summary
    assert not score_sync(b"garbage").passed


async def test_sync_score_is_only_run_when_asked(app: FastAPI, client: httpx.AsyncClient) -> None:
    await run_to_completion(client)
    engine = engine_of(app)
    transcript = transcript_of(engine)
    quiet = CheckOptions()
    assert find_violations(transcript, quiet, files=output_file_tools(engine, quiet)) == []
    scored = CheckOptions(sync_score=True)
    (failure,) = find_violations(transcript, scored, files=output_file_tools(engine, scored))
    assert "its mouth is not in sync with its audio" in str(failure)
