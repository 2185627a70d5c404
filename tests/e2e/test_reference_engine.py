"""The reference engine behind a live mock, driven by the official Python client, unmodified.

The documented example request comes back as a downloadable mp4 whose mouth moves with the
audio (sync score); uploaded inputs work; broken inputs end COMPLETED and their result is fal's
422; cancelling a running job frees its worker; the server keeps serving throughout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import fal_client
import pytest

from contracts.schemas.lipsync import EXAMPLE_AUDIO_URL, EXAMPLE_VIDEO_URL
from mock_server.engine.policies import Policy
from mock_server.engine.workers import shared_pool
from mock_server.lipsync.examples import EXAMPLE_AUDIO_PATH, EXAMPLE_VIDEO_PATH
from mock_server.lipsync.syncscore import ExpectedOutput, score_file
from mock_server.testing import LiveServer
from tests.e2e.test_fal_client import APP, assert_downloadable_video, fal, leaks_cdn_client

__all__ = ["fal"]  # the fixture, re-used from the client tests

BROKEN = Path(__file__).resolve().parents[2] / "fixtures" / "media" / "broken"
SPEECH_LONG = Path(__file__).resolve().parents[2] / "fixtures" / "media" / "speech_long.wav"


@pytest.fixture
def reference(fal: LiveServer) -> Iterator[LiveServer]:
    fal.engine.reset(seed=0, policy=Policy.parse("polls:1"), engine="reference")
    yield fal
    fal.engine.reset(seed=0, policy=Policy.parse("polls:1"), engine="placeholder")


def test_documented_example_returns_a_synced_video(reference: LiveServer, tmp_path: Path) -> None:
    updates: list[fal_client.Status] = []
    output = fal_client.subscribe(
        APP,
        arguments={"video_url": EXAMPLE_VIDEO_URL, "audio_url": EXAMPLE_AUDIO_URL},
        with_logs=True,
        on_queue_update=updates.append,
    )
    data = assert_downloadable_video(output)
    (tmp_path / "out.mp4").write_bytes(data)
    report = score_file(
        tmp_path / "out.mp4", expected=ExpectedOutput(width=360, height=360, fps=25, duration_s=4.0)
    )
    assert report.passed, report.summary()
    assert report.score >= 0.8 and report.best_lag is not None and abs(report.best_lag) <= 1

    messages = [
        log["message"]
        for update in updates
        if isinstance(update, fal_client.InProgress | fal_client.Completed)
        for log in (update.logs or [])
    ]
    assert any(m.startswith("Inputs accepted") for m in messages)
    assert "Rendering: 100/100 frames" in messages
    assert any(m.startswith("Encoded 100 frames (75 with a face)") for m in messages)


@leaks_cdn_client
def test_uploaded_inputs_work_and_outputs_are_deterministic(reference: LiveServer) -> None:
    video_url = fal_client.upload_file(EXAMPLE_VIDEO_PATH)
    audio_url = fal_client.upload_file(EXAMPLE_AUDIO_PATH)
    first = fal_client.subscribe(APP, arguments={"video_url": video_url, "audio_url": audio_url})
    again = fal_client.subscribe(
        APP, arguments={"video_url": EXAMPLE_VIDEO_URL, "audio_url": EXAMPLE_AUDIO_URL}
    )
    # Same media by another route: the same bytes.
    assert assert_downloadable_video(first) == assert_downloadable_video(again)


@leaks_cdn_client
@pytest.mark.parametrize(
    ("field", "broken"),
    [
        ("video_url", "not_media.mp4"),
        ("video_url", "image.png"),
        ("video_url", "empty.mp4"),
        ("video_url", "truncated.mp4"),
        ("video_url", "audio_only.m4a"),
        ("audio_url", "video_only.mp4"),
        ("audio_url", "corrupt_header.mp4"),
    ],
)
def test_broken_input_completes_with_a_422(reference: LiveServer, field: str, broken: str) -> None:
    arguments = {"video_url": EXAMPLE_VIDEO_URL, "audio_url": EXAMPLE_AUDIO_URL}
    arguments[field] = fal_client.upload_file(BROKEN / broken)
    handle = fal_client.submit(APP, arguments=arguments)
    status = handle.status()
    while not isinstance(status, fal_client.Completed):
        time.sleep(0.05)
        status = handle.status()
    with pytest.raises(fal_client.client.FalClientHTTPError) as caught:
        handle.get()
    assert caught.value.status_code == 422
    [detail] = caught.value.message  # type: ignore[misc]
    assert detail["loc"] == ["body", field]
    assert detail["msg"] and detail["type"].startswith(("unsupported_", "file_"))
    # The server is still serving, and the next request succeeds.
    assert (
        fal_client.subscribe(
            APP, arguments={"video_url": EXAMPLE_VIDEO_URL, "audio_url": EXAMPLE_AUDIO_URL}
        )["video"]["file_size"]
        > 0
    )


@leaks_cdn_client
def test_cancel_stops_the_worker(reference: LiveServer) -> None:
    audio_url = fal_client.upload_file(SPEECH_LONG)
    handle = fal_client.submit(
        APP, arguments={"video_url": EXAMPLE_VIDEO_URL, "audio_url": audio_url, "sync_mode": "loop"}
    )
    pool = shared_pool(reference.engine.config.runners)
    deadline = time.monotonic() + 30
    while pool.busy() == 0:  # wait until a worker has the job
        handle.status()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    handle.cancel()
    deadline = time.monotonic() + 5
    while pool.busy():
        assert time.monotonic() < deadline, "the worker kept running after cancel"
        time.sleep(0.02)
    status = handle.status()
    assert isinstance(status, fal_client.Completed)


def test_sync_run_waits_for_the_real_work(reference: LiveServer) -> None:
    output = fal_client.run(
        APP, arguments={"video_url": EXAMPLE_VIDEO_URL, "audio_url": EXAMPLE_AUDIO_URL}
    )
    data = assert_downloadable_video(output)
    assert len(data) > 50_000  # a real 4 s 360x360 clip, not the 160x120 placeholder
