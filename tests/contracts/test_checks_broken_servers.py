"""Every check stays quiet on the real mock driven by the official client, and fires on its
entry of the broken-server catalogue (tests/broken_servers.py) with a readable report."""

from __future__ import annotations

from collections.abc import Iterator

import fal_client
import httpx
import pytest

from contracts.checks import (
    CHECK_NAMES,
    CheckOptions,
    ContractViolation,
    OutputFileTools,
    find_violations,
    output_files,
)
from contracts.checks.observations import statuses_seen
from contracts.schemas.lipsync import EXAMPLE_AUDIO_URL, EXAMPLE_VIDEO_URL
from contracts.transcript import Transcript
from mock_server.checking import check_mock, probe_media, score_sync, store_fetcher
from tests.broken_servers import (
    APP,
    AUTH,
    CATALOGUE,
    LIPSYNC_INPUT,
    Broken,
    Served,
    serve,
    stream_status,
    subscribe_with_logs,
)

# fal-client 1.0.3 makes an httpx client for each CDN upload and never closes it: the
# ResourceWarning is the client's, not the mock's.
leaks_cdn_client = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

CLEAN_OPTIONS = CheckOptions(poll_interval_s=0.1, expected_duration_s=1.0)
"""fal-client's own poll interval, and the placeholder video's length."""


@pytest.fixture(autouse=True)
def fal_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", "test-key")


def official_client_session(served: Served) -> None:
    """Everything the official Python client does, plus a status stream (what the JS client's
    streaming mode does): three queued at once, so positions move; logs; a sync run; an
    upload; a cancel."""
    handles = [fal_client.submit(APP, arguments=LIPSYNC_INPUT) for _ in range(3)]
    subscribe_with_logs(served)
    for handle in handles:
        for _ in handle.iter_events(with_logs=True, interval=0.1):
            pass
        handle.get()
    stream_status(served)
    fal_client.run(APP, arguments=LIPSYNC_INPUT)
    fal_client.upload(b"some bytes", "text/plain", "notes.txt")
    with httpx.Client() as client:
        queued = client.post(f"{served.base_url}/queue/{APP}", json=LIPSYNC_INPUT, headers=AUTH)
        client.put(queued.json()["cancel_url"], headers=AUTH).raise_for_status()


class CleanRun:
    def __init__(self, client: Transcript, journal: Transcript, failures: list[str]) -> None:
        self.client = client
        self.journal = journal
        self.failures = failures


@pytest.fixture(scope="module")
def clean_run() -> Iterator[CleanRun]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FAL_KEY", "test-key")
        with serve(policy="polls:2") as served:
            official_client_session(served)
            client, journal = served.client_transcript(), served.journal_transcript()
            found: list[ContractViolation] = []
            for transcript, fetch in (
                (client, served.fetch_over_http),
                (journal, store_fetcher(served.engine)),
            ):
                tools = OutputFileTools(fetch, probe_media)
                found += find_violations(transcript, CLEAN_OPTIONS, files=tools)
            try:
                check_mock(served.engine, CLEAN_OPTIONS)
            except ContractViolation as failure:
                found.append(failure)
            yield CleanRun(client, journal, [str(f) for f in found])


@leaks_cdn_client
@pytest.mark.parametrize("check", CHECK_NAMES)
def test_the_real_mock_and_official_client_pass(clean_run: CleanRun, check: str) -> None:
    relevant = [report for report in clean_run.failures if f"({check})" in report]
    assert not relevant, "\n\n".join(relevant)


@leaks_cdn_client
def test_the_clean_run_exercises_what_the_checks_look_at(clean_run: CleanRun) -> None:
    """Guards the test above against passing vacuously."""
    for transcript in (clean_run.client, clean_run.journal):
        seen = [s for statuses in statuses_seen(transcript).values() for s in statuses]
        assert {s.status for s in seen} == {"IN_QUEUE", "IN_PROGRESS", "COMPLETED"}
        assert max(s.queue_position or 0 for s in seen) >= 2
        assert any(s.logs and len(s.logs) >= 3 for s in seen)
        assert any(s.event is not None for s in seen)  # the status stream
        assert len(output_files(transcript)) >= 5  # 4 fetched results and the sync run
        hosts = {e.host for e in transcript.exchanges}
        assert hosts == {"queue", "run", "rest", "cdn"}
    assert all(e.wall_time is not None for e in clean_run.client.exchanges)


@leaks_cdn_client
@pytest.mark.parametrize("broken", CATALOGUE, ids=lambda b: b.name)
def test_each_check_fires_on_its_broken_server_or_client(broken: Broken) -> None:
    wrap = broken.wrap() if broken.wrap is not None else None
    with serve(wrap, policy=broken.policy) as served:
        broken.drive(served)
        fetch = served.fetch_over_http if broken.files_over_http else store_fetcher(served.engine)
        scorer = score_sync if broken.options.sync_score else None
        tools = OutputFileTools(fetch, probe_media, scorer)
        failures = find_violations(served.client_transcript(), broken.options, files=tools)
    fired = {failure.check for failure in failures}
    assert broken.breaks in fired, f"{broken.name}: nothing fired"
    assert fired <= {broken.breaks, *broken.also_breaks}, "\n\n".join(map(str, failures))
    report = "\n".join(str(f) for f in failures if f.check == broken.breaks)
    for text in broken.expect_in_report:
        assert text in report, report
    assert "Offending exchange(s):" in report


def test_the_catalogue_covers_every_check() -> None:
    covered = {broken.breaks for broken in CATALOGUE}
    assert covered == set(CHECK_NAMES)


def test_the_reference_engine_passes_the_sync_score() -> None:
    """The other side of ``placeholder_is_not_lipsynced``: real lip-sync output passes every
    check, its sync score included, as the client saw it and as the mock stored it."""
    options = CheckOptions(poll_interval_s=0.1, expected_duration_s=4.0, sync_score=True)
    example = {"video_url": EXAMPLE_VIDEO_URL, "audio_url": EXAMPLE_AUDIO_URL}
    with serve(policy="polls:1", engine="reference") as served:
        fal_client.subscribe(APP, arguments=example, with_logs=True, on_queue_update=print)
        tools = OutputFileTools(served.fetch_over_http, probe_media, score_sync)
        failures = find_violations(served.client_transcript(), options, files=tools)
        assert not failures, "\n\n".join(map(str, failures))
        check_mock(served.engine, options)
