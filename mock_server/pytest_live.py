"""``fal_mock_server``: the session's live mock, reset for each test, and its handle.

For what cannot be routed in-process: HTTP clients other than httpx, subprocesses and the JS
client. One server per session (per xdist worker: each binds a free port), reset before each
test with the test's marker; a TLS twin serving the same engine starts when a test first asks
for ``env``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mock_server.clients import (
    fal_client_urls,
    js_client_snippet,
    point_fal_client,
    tls_environment,
)
from mock_server.controls import Control, EngineControl, remote_control
from mock_server.inprocess import LIVE_ORIGINS
from mock_server.pytest_fixtures import (
    MOCK_KEY,
    FalMock,
    apply_remote,
    ensure_key,
    forget_fal_client_state,
    test_options,
)
from mock_server.pytest_plugin import plugin_config
from mock_server.settings import MockSettings
from mock_server.targets import Target
from mock_server.testing import LiveServer

if TYPE_CHECKING:
    from mock_server.engine.queue import QueueEngine

__all__ = ["FalMockServer", "LiveSession", "live_mock", "live_session"]


class FalMockServer(FalMock):
    """A live mock: :class:`FalMock` plus the ways other clients reach it."""

    def __init__(
        self,
        control: Control,
        target: Target,
        base_url: str,
        *,
        engine: QueueEngine | None = None,
        checks: bool | Mapping[str, Any] = True,
        tls: Callable[[], tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(control, target, engine=engine, checks=checks)
        self.base_url = base_url
        """``http://127.0.0.1:PORT``: fal's hosts are ``/queue``, ``/run``, ``/rest``, ``/cdn``."""
        self._tls = tls

    @property
    def urls(self) -> dict[str, str]:
        """fal-client's URL constants for this server (``mock_server.clients``)."""
        return fal_client_urls(self.base_url)

    @property
    def env(self) -> dict[str, str]:
        """Environment for a subprocess: ``FAL_KEY``, ``FAL_MOCK_BASE_URL``, and the variables
        that point an unmodified fal-client at the mock (``FAL_RUN_HOST``,
        ``FAL_QUEUE_RUN_HOST``, ``SSL_CERT_FILE``; a TLS twin of the server, started on first
        use) with ``NODE_EXTRA_CA_CERTS`` for node. Uploads from such a subprocess still go to
        fal's REST host: fal-client has no variable for it (PROTOCOL.md section 1.4)."""
        env: dict[str, str] = {}
        if self._tls is not None:
            tls_url, ca_bundle = self._tls()
            env.update(tls_environment(tls_url, ca_bundle), NODE_EXTRA_CA_CERTS=ca_bundle)
        env["FAL_KEY"] = os.environ.get("FAL_KEY") or MOCK_KEY
        env["FAL_MOCK_BASE_URL"] = self.base_url
        return env

    @property
    def js_config(self) -> str:
        """@fal-ai/client configuration (``createFalClient``) for this server."""
        return js_client_snippet(self.base_url)

    @contextlib.contextmanager
    def pointed(self) -> Iterator[dict[str, str]]:
        """fal-client (module functions, ``SyncClient``, ``AsyncClient``) sends to this server
        inside the block, over plain HTTP; answers the URL constants it set."""
        if self.target.kind == "fal":
            yield {}
            return
        if self.target.kind == "proxy":
            pytest.skip("fal_mock_server.pointed(): fal-client cannot send through a proxy URL")
        forget_fal_client_state()
        try:
            with point_fal_client(self.base_url) as values:
                yield values
        finally:
            forget_fal_client_state()


class LiveSession:
    """The session's live mock, and its TLS twin: the same engine served over HTTPS (started
    on first use), so a subprocess's fal-client can be pointed by environment variables."""

    def __init__(self, directory: Path) -> None:
        settings = MockSettings(port=0, policy="polls:1", seed=0, stream_tick=0.01)
        self.server = LiveServer(settings).start()
        LIVE_ORIGINS.add(self.server.base_url)
        self._directory = directory
        self._tls: LiveServer | None = None

    def tls(self) -> tuple[str, str]:
        """The twin's base URL and CA bundle."""
        if self._tls is None:
            update = {"tls": True, "tls_dir": self._directory}
            twin = LiveServer(self.server.settings.model_copy(update=update))
            twin.app.state.engine = self.server.engine  # one engine behind both
            self._tls = twin.start()
            LIVE_ORIGINS.add(self._tls.base_url)
        return self._tls.base_url, str(self._directory / "ca-bundle.pem")

    def stop(self) -> None:
        for server in (self._tls, self.server):
            if server is not None:
                LIVE_ORIGINS.discard(server.base_url)
                server.stop()


def live_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSession]:
    session = LiveSession(tmp_path_factory.mktemp("fal-mock-tls"))
    try:
        yield session
    finally:
        session.stop()


def live_mock(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FalMockServer]:
    config = plugin_config(request.config)
    options, steering = test_options(request.node, config)
    ensure_key(monkeypatch, config.target)
    if config.target.remote:
        control = remote_control(config.target)
        try:
            base_url = config.target.url if config.target.kind == "mock" else ""
            handle = FalMockServer(control, config.target, base_url, checks=False)
            apply_remote(handle, control, options, steering)
            yield handle
        finally:
            control.close()
        return
    session: LiveSession = request.getfixturevalue("_fal_mock_live_session")
    server = session.server
    handle = FalMockServer(
        EngineControl(server.engine, f"the live mock at {server.base_url}"),
        config.target,
        server.base_url,
        engine=server.engine,
        checks=options["checks"],
        tls=session.tls,
    )
    handle.apply(options)
    try:
        yield handle
        handle.finish(request.node)
    finally:
        server.engine.reset()
