"""uvicorn configuration shared by ``fal-mock serve`` and the threaded live server."""

from __future__ import annotations

from pathlib import Path

import uvicorn
from fastapi import FastAPI

from mock_server.serving_limits import ClientTimeouts, guarded_protocol
from mock_server.settings import MockSettings

KEEP_ALIVE_S = 30
"""Longer than clients keep idle connections (httpx: 5 s, Node's agent: 4 s), so the client, not
the server, closes an idle one: a request sent just as the server closed would fail."""

MAX_HEAD_BYTES = 16 * 1024
"""Largest request head (request line and headers); more is a 400 and a closed connection.
fal's clients send well under 2 KiB; 16 KiB leaves room for long URLs and proxies' headers."""


def default_tls_dir() -> Path:
    return Path.home() / ".cache" / "fal-lipsync-mock" / "tls"


def uvicorn_config(app: FastAPI, settings: MockSettings) -> uvicorn.Config:
    ssl: dict[str, str] = {}
    if settings.tls:
        from mock_server.tls import make_tls_files

        files = make_tls_files(settings.tls_dir or default_tls_dir())
        ssl = {"ssl_certfile": str(files.cert_chain), "ssl_keyfile": str(files.private_key)}
    timeouts = ClientTimeouts(
        head=settings.client_head_timeout,
        body=settings.client_body_timeout,
        write=settings.client_write_timeout,
    )
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        access_log=settings.access_log,
        log_level="info" if settings.access_log else "warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
        # h11 with deadlines for slow clients (mock_server.serving_limits), never httptools.
        http=guarded_protocol(timeouts),
        ws="none",  # no websocket routes: an upgrade request is a plain HTTP request
        timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        # No limit_concurrency: uvicorn would answer 503 past it, turning a burst of clients
        # (the load test opens hundreds) into errors fal would not give.
        # proxy_headers stays as uvicorn has it: X-Forwarded-For is believed from 127.0.0.1
        # only, so behind a local reverse proxy that sets it, remote clients keep their own
        # address and the control plane's loopback check (mock_server.http.control_guard)
        # refuses them; nobody else can make a request look local with it.
        **ssl,  # type: ignore[arg-type]
    )
