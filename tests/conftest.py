"""Fixtures shared by the suite: an in-process app, and one live server per session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI

from mock_server.app import create_app
from mock_server.engine.policies import Policy
from mock_server.settings import MockSettings
from mock_server.testing import LiveServer

LIPSYNC_INPUT = {
    "video_url": "https://example.com/face.mp4",
    "audio_url": "https://example.com/speech.mp3",
}
AUTH = {"Authorization": "Key test-key"}


@pytest.fixture
def app() -> FastAPI:
    return create_app(MockSettings(policy="polls:1", seed=0))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """In-process, in the live-server form: one origin, fal's hosts as path prefixes."""
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://mock.test", headers=AUTH
    ) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def _live_server() -> Iterator[LiveServer]:
    settings = MockSettings(port=0, policy="polls:1", seed=0, stream_tick=0.01)
    with LiveServer(settings) as server:
        yield server


@pytest.fixture
def live_mock(_live_server: LiveServer) -> LiveServer:
    """A running live mock (polls:1, seed 0), reset before each test."""
    _live_server.engine.reset(seed=0, policy=Policy.parse("polls:1"), engine="placeholder")
    return _live_server
