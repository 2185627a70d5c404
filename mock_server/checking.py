"""The contract checks on a running mock: its journal as a transcript, its store as the place
output files are downloaded from, PyAV to decode them and the sync score to judge them.

``contracts.checks`` cannot import the mock (layering), so this module is the adapter:
``transcript_of(engine)`` and ``check_mock(engine, options)``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

from contracts.checks import (
    CheckOptions,
    ContractViolations,
    MediaFacts,
    OutputFile,
    OutputFileTools,
    SyncVerdict,
    find_violations,
    output_files,
)
from contracts.transcript import Exchange, StatusPoint, Transcript
from mock_server.engine.journal import JournalEntry
from mock_server.engine.queue import QueueEngine
from mock_server.engine.results import Success
from mock_server.storage import FILE_REF_SCHEME

FetchFile = Callable[[str], bytes]


def transcript_of(engine: QueueEngine) -> Transcript:
    """Everything the mock saw on fal's hosts, and each known request's status history (the
    webhooks it sent are in the journal too, but are no client's exchanges)."""
    entries = engine.journal.entries()
    exchanges = tuple(exchange_of(entry) for entry in entries if not entry.outgoing)
    histories = {
        request_id: tuple(
            StatusPoint(point.status, point.queue_position, point.time)
            for point in engine.history(request_id) or ()
        )
        for request_id in engine.request_ids()
    }
    return Transcript(exchanges, histories)


def exchange_of(entry: JournalEntry) -> Exchange:
    wall_time = entry.extra.get("wall_time")
    return Exchange(
        seq=entry.seq,
        wall_time=float(wall_time) if isinstance(wall_time, int | float) else None,
        host=entry.host,
        method=entry.method,
        path=entry.path,
        query=entry.query,
        request_headers=dict(entry.request_headers),
        request_body=entry.request_body,
        status_code=entry.status_code,
        response_headers=dict(entry.response_headers),
        response_body=entry.response_body,
        request_id=entry.request_id,
        clock_time=entry.time,
    )


def store_fetcher(engine: QueueEngine) -> FetchFile:
    """Download from the mock's own store: any URL the mock made for a file (through any
    origin) or an internal ``fal-mock-file://`` ref. No HTTP, so no Range or network quirks."""

    def fetch(url: str) -> bytes:
        stored = engine.store.lookup_ref(url)
        found = engine.store.get(stored.file_id) if stored is not None else None
        if found is None:
            raise LookupError(f"the mock's store has no file at {url}")
        return found[1]

    return fetch


def probe_media(data: bytes) -> MediaFacts:
    """Decode ``data`` with PyAV (``ValueError`` when it is not decodable media)."""
    from mock_server.media.probe import probe_mp4  # PyAV: imported on use

    info = probe_mp4(data)
    return MediaFacts(
        container=info.format_names,
        video_codec=info.video_codec,
        audio_codec=info.audio_codec,
        duration_s=info.video_duration_s,
    )


def score_sync(data: bytes) -> SyncVerdict:
    """The reference lip-sync's sync score (LIPSYNC.md) of an mp4 given as bytes."""
    from mock_server.lipsync.syncscore import score_file  # heavy: imported on use

    handle, path = tempfile.mkstemp(suffix=".mp4", prefix="fal-mock-check-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        report = score_file(path)
    except (ValueError, OSError) as exc:
        return SyncVerdict(False, f"not scorable: {exc}")
    finally:
        os.unlink(path)
    return SyncVerdict(report.passed, report.summary())


def output_file_tools(
    engine: QueueEngine, options: CheckOptions, fetch_file: FetchFile | None = None
) -> OutputFileTools:
    from_store = store_fetcher(engine)

    def fetch(url: str) -> bytes:
        # Outputs nobody fetched are named by internal refs, which only the store can read.
        if fetch_file is None or url.startswith(FILE_REF_SCHEME):
            return from_store(url)
        return fetch_file(url)

    return OutputFileTools(
        fetch=fetch,
        probe=probe_media,
        score_sync=score_sync if options.sync_score else None,
    )


def unfetched_outputs(engine: QueueEngine, transcript: Transcript) -> list[OutputFile]:
    """Outputs of completed requests that no answer in the transcript carried: the engine's
    work is checked even when the client never fetched it."""
    seen_ids = {_file_id(engine, f.url) for f in output_files(transcript)}
    unfetched: list[OutputFile] = []
    for request_id in engine.request_ids():
        found = engine.outcome(request_id)
        if found is None or not isinstance(found[1], Success):
            continue
        for name, value in found[1].output.items():
            url = value.get("url") if isinstance(value, dict) else None
            if not isinstance(url, str) or not url.startswith(FILE_REF_SCHEME):
                continue
            file_id = _file_id(engine, url)
            if file_id is None or file_id not in seen_ids:
                unfetched.append(OutputFile(value, request_id, None, name))
    return unfetched


def _file_id(engine: QueueEngine, url: str) -> str | None:
    stored = engine.store.lookup_ref(url)
    return stored.file_id if stored is not None else None


def check_mock(
    engine: QueueEngine,
    options: CheckOptions | None = None,
    fetch_file: FetchFile | None = None,
) -> None:
    """Run every applicable check on what the mock saw, output files included; raise one
    ``ContractViolations`` listing all failures.

    ``fetch_file(url) -> bytes`` downloads an output file (default: straight from the mock's
    store). Files are those the client was given in result and run answers, plus the outputs of
    completed requests it never fetched."""
    options = options or CheckOptions()
    transcript = transcript_of(engine)
    failures = find_violations(
        transcript,
        options,
        files=output_file_tools(engine, options, fetch_file),
        extra_files=unfetched_outputs(engine, transcript),
    )
    if failures:
        raise ContractViolations(failures)
