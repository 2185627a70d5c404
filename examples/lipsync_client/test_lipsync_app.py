"""The example client's own test suite, using the fal-lipsync-mock pytest plugin.

No key, no network, no bill: ``fal_mock`` routes fal's hosts into the mock in-process, and the
contract checks (status order, logs, result only after COMPLETED, output files) run at the end
of every test.
"""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from lipsync_app import LipsyncError, lipsync_file, lipsync_file_async

from mock_server.lipsync.examples import EXAMPLE_AUDIO_PATH, EXAMPLE_VIDEO_PATH


def test_writes_the_lipsynced_video(fal_mock, tmp_path: Path) -> None:
    progress: list[str] = []
    out = lipsync_file(
        EXAMPLE_VIDEO_PATH, EXAMPLE_AUDIO_PATH, tmp_path / "out.mp4", on_progress=progress.append
    )
    with av.open(str(out)) as container:
        assert container.streams.video
        assert container.streams.audio
    (request_id,) = fal_mock.request_ids
    assert [h.status for h in fal_mock.history(request_id)] == [
        "IN_QUEUE",
        "IN_PROGRESS",
        "COMPLETED",
    ]
    assert progress  # the client surfaced the job's log lines


@pytest.mark.fal_mock(engine="reference")
def test_the_mouth_really_moves(fal_mock, tmp_path: Path) -> None:
    """The reference engine lip-syncs for real; the teardown checks score the output's sync."""
    lipsync_file(EXAMPLE_VIDEO_PATH, EXAMPLE_AUDIO_PATH, tmp_path / "out.mp4")
    fal_mock.check(sync_score=True)


@pytest.mark.fal_mock(engine="reference")
def test_a_bad_video_is_a_clear_error(fal_mock, tmp_path: Path) -> None:
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("these are not frames")
    with pytest.raises(LipsyncError) as caught:
        lipsync_file(not_a_video, EXAMPLE_AUDIO_PATH, tmp_path / "out.mp4")
    assert caught.value.field == "video_url"
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.fal_mock(policy="polls:3", seed=11)
async def test_async_client(fal_mock, tmp_path: Path) -> None:
    out = await lipsync_file_async(EXAMPLE_VIDEO_PATH, EXAMPLE_AUDIO_PATH, tmp_path / "out.mp4")
    assert out.stat().st_size > 0


def test_survives_every_behaviour_fal_allows(fal_mock, tmp_path: Path) -> None:
    """Rate limits, dropped connections, nginx 502s, slow answers, fields left out or added,
    runner failures: the client must finish, keep the contract, and ride over what fal-client's
    retries cover. A job fal fails may end it with a LipsyncError, never hang it."""
    out = tmp_path / "fuzzed.mp4"
    fal_mock.fuzz(lambda: lipsync_file(EXAMPLE_VIDEO_PATH, EXAMPLE_AUDIO_PATH, out), max_examples=8)
