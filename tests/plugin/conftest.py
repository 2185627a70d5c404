"""The pytest plugin, tested through pytester (loaded for the suite with ``-p pytester`` in
pyproject.toml: ``pytest_plugins`` is refused in a conftest below the top level)."""

from __future__ import annotations

import pytest

# pytester's in-process runs forget the modules each run imported, and extension modules (PyAV,
# numpy) cannot be imported twice in one process: load the ones the fixtures use out here.
import mock_server.checking
import mock_server.media.placeholder
import mock_server.media.probe  # noqa: F401

INNER_INI = """
[pytest]
addopts = --strict-markers -p no:cacheprovider
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""

PRELUDE = """
import fal_client
import httpx
import pytest

ARGS = {"video_url": "https://example.com/face.mp4", "audio_url": "https://example.com/a.mp3"}
APP = "fal-ai/lipsync"
"""
"""What every inner test module starts with."""


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester whose runs are configured like a user's suite: warnings are errors."""
    pytester.makeini(INNER_INI)
    return pytester


def module(body: str) -> str:
    return PRELUDE + body
