"""Fixtures for the input resolver's tests (test_inputs.py and test_inputs_content.py)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from mock_server.lipsync.examples import EXAMPLE_AUDIO_PATH, EXAMPLE_VIDEO_PATH
from mock_server.storage import FileStore


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    return tmp_path / "work"


@pytest.fixture
def store() -> FileStore:
    counter = itertools.count(1)
    return FileStore(lambda: f"{next(counter):032x}", max_file_bytes=10_000_000)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An allowed file root holding the example clip and speech."""
    directory = tmp_path / "root"
    directory.mkdir()
    (directory / "clip.mp4").write_bytes(EXAMPLE_VIDEO_PATH.read_bytes())
    (directory / "speech.wav").write_bytes(EXAMPLE_AUDIO_PATH.read_bytes())
    return directory
