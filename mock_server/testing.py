"""A live mock in a background thread, on a free port: for non-httpx clients, subprocesses
and the JS client (moto's ThreadedMotoServer, for fal)."""

from __future__ import annotations

import asyncio
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI

from mock_server.app import create_app
from mock_server.engine.queue import QueueEngine
from mock_server.settings import MockSettings


class LiveServer:
    """``with LiveServer(MockSettings(policy="polls:1")) as live: live.base_url``."""

    def __init__(self, settings: MockSettings | None = None, **overrides: Any) -> None:
        base = settings or MockSettings(port=0)
        self.settings = base.model_copy(update=overrides) if overrides else base
        self.app: FastAPI = create_app(self.settings)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def engine(self) -> QueueEngine:
        engine: QueueEngine = self.app.state.engine
        return engine

    @property
    def scheme(self) -> str:
        return "https" if self.settings.tls else "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.settings.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> LiveServer:
        from mock_server.serving import uvicorn_config  # shares TLS and logging setup

        config = uvicorn_config(self.app, self.settings)
        self._server = uvicorn.Server(config)
        # uvicorn installs signal handlers only in the main thread: none are taken over here.
        self._thread = threading.Thread(target=self._serve, name="fal-mock", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live mock did not start (is the port free?)")
            time.sleep(0.005)
        sockets = [s for srv in self._server.servers for s in srv.sockets]
        self.port = sockets[0].getsockname()[1]
        return self

    def _serve(self) -> None:
        assert self._server is not None
        asyncio.run(self._server.serve())

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
