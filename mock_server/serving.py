"""uvicorn configuration shared by ``fal-mock serve`` and the threaded live server."""

from __future__ import annotations

from pathlib import Path

import uvicorn
from fastapi import FastAPI

from mock_server.settings import MockSettings


def default_tls_dir() -> Path:
    return Path.home() / ".cache" / "fal-lipsync-mock" / "tls"


def uvicorn_config(app: FastAPI, settings: MockSettings) -> uvicorn.Config:
    ssl: dict[str, str] = {}
    if settings.tls:
        from mock_server.tls import make_tls_files

        files = make_tls_files(settings.tls_dir or default_tls_dir())
        ssl = {"ssl_certfile": str(files.cert_chain), "ssl_keyfile": str(files.private_key)}
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        access_log=settings.access_log,
        log_level="info" if settings.access_log else "warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
        **ssl,  # type: ignore[arg-type]
    )
