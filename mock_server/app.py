"""``create_app(settings)``: the one ASGI app behind every way in (in-process, live, proxy)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI, Request

from mock_server.engine.queue import QueueEngine
from mock_server.http.control_guard import ControlGuard
from mock_server.http.errors import install_error_handlers
from mock_server.http.exchange import ExchangeRecorder
from mock_server.http.faults import FaultInjection
from mock_server.http.hosts import HostDispatch
from mock_server.http.render import StatusBodies
from mock_server.http.status_route import StatusRoute
from mock_server.http.submit_route import SubmitRoute
from mock_server.routes import control, files, queue, run, storage, webhooks
from mock_server.settings import MockSettings
from mock_server.webhooks import attach as attach_webhooks

DESCRIPTION = """\
A deterministic fake of fal.ai's queue for `fal-ai/lipsync`.

fal's hosts are served under path prefixes on this origin: `/queue` (queue.fal.run),
`/run` (fal.run), `/rest` (rest.fal.ai) and `/cdn` (v3.fal.media). The same app answers
requests addressed to fal's own host names (Host header) and requests through
`/api/fal/proxy` carrying `x-fal-target-url`. The fal contract is in `openapi.yaml`;
the control plane under `/_mock` is the mock's own.
"""


def package_version() -> str:
    try:
        return version("fal-lipsync-mock")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def create_app(settings: MockSettings | None = None) -> FastAPI:
    settings = settings or MockSettings()
    engine = QueueEngine(settings.engine_config())
    app = FastAPI(title="fal-lipsync-mock", version=package_version(), description=DESCRIPTION)
    app.state.settings = settings
    app.state.engine = engine
    for module in (queue, run, storage, files, control, webhooks):
        app.include_router(module.router)
    app.include_router(webhooks.control_router)
    attach_webhooks(engine, settings.webhook_options())
    if settings.state_dir is not None:  # last: it restores into the webhooks' outbox too
        from mock_server.persistence import open_state  # sqlite3 only when asked for

        app.state.state_dir = open_state(engine, settings.state_dir, settings.state_sync)
    install_error_handlers(app)

    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> dict[str, Any]:
        origin = f"{request.url.scheme}://{request.headers.get('host', '')}"
        return {
            "name": "fal-lipsync-mock",
            "version": app.version,
            "hosts": {h: f"{origin}/{h}" for h in ("queue", "run", "rest", "cdn")},
            "proxy": f"{origin}/api/fal/proxy",
            "control": f"{origin}/_mock/state",
            "docs": f"{origin}/docs",
        }

    # Each add wraps the ones before: the host is found first, then the exchange is limited and
    # journaled, then a fault may answer it, then a status poll or a plain submit is answered
    # before FastAPI routes it.
    app.add_middleware(SubmitRoute, state=app.state)
    app.add_middleware(StatusRoute, state=app.state, bodies=StatusBodies())
    app.add_middleware(FaultInjection, engine=lambda: app.state.engine)
    app.add_middleware(
        ExchangeRecorder,
        engine=lambda: app.state.engine,
        body_limit=settings.max_body_bytes,
        upload_limit=settings.max_upload_bytes,
    )
    app.add_middleware(HostDispatch)
    # Outermost: a control-plane request without the right to it is refused before anything else.
    token = settings.control_token
    app.add_middleware(ControlGuard, token=None if token is None else token.get_secret_value())
    return app
