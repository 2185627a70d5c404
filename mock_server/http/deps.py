"""Dependencies the routes declare: the engine, the settings, public URLs, credentials.

All ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, and a thread hop
per dependency cost more than everything else a request does (none of them blocks).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from contracts.faults import FaultPlan
from contracts.operations import ENDPOINT_ID
from mock_server.engine.queue import QueueEngine
from mock_server.http.errors import FalError, fal_error
from mock_server.http.faults import FAULT_PLAN_KEY
from mock_server.http.hosts import URLS_KEY, PublicUrls
from mock_server.settings import MockSettings


async def get_engine(request: Request) -> QueueEngine:
    engine: QueueEngine = request.app.state.engine
    return engine


async def get_fault_plan(request: Request) -> FaultPlan | None:
    """The request's own ``X-Mock-Faults`` plan, validated by the fault middleware."""
    plan: FaultPlan | None = request.scope.get(FAULT_PLAN_KEY)
    return plan


async def get_settings(request: Request) -> MockSettings:
    settings: MockSettings = request.app.state.settings
    return settings


async def get_urls(request: Request) -> PublicUrls:
    urls: PublicUrls = request.scope[URLS_KEY]
    return urls


@dataclass(frozen=True, slots=True)
class Credential:
    scheme: str  # "key", "bearer" or "anonymous"
    value: str


async def authenticate(request: Request) -> Credential:
    """``Key <key>``, ``Key <id>:<secret>`` and ``Bearer <token>``, as fal accepts them."""
    state = request.app.state
    return check_credentials(request.headers.get("authorization"), state.settings, state.engine)


def check_credentials(
    header: str | None, settings: MockSettings, engine: QueueEngine
) -> Credential:
    """The credential an ``Authorization`` header carries; FalError 401 in fal's shape if none."""
    if not header:
        if settings.allow_anonymous:
            return Credential("anonymous", "")
        raise _unauthorized("Missing credentials: send 'Authorization: Key <FAL_KEY>'")
    scheme, _, value = header.strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme not in ("key", "bearer") or not value:
        raise _unauthorized(
            "Invalid Authorization header format. Expected 'Key <key_id>:<key_secret>', "
            "'Key <key>' or 'Bearer <token>'."
        )
    if settings.keys and not _known(value, settings.keys, engine, scheme):
        raise _unauthorized("No user found for Key ID and Secret")
    return Credential(scheme, value)


def _known(value: str, keys: frozenset[str], engine: QueueEngine, scheme: str) -> bool:
    # Compare against every key in constant time, so timing does not reveal a prefix.
    found = False
    for key in keys:
        found |= hmac.compare_digest(value.encode(), key.encode())
    if scheme == "bearer":
        found |= engine.token_issued(value)
    return found


def _unauthorized(detail: str) -> FalError:
    return FalError(401, {"detail": detail}, {"www-authenticate": "Key"})


async def app_from_path(owner: str, alias: str) -> str:
    """The app id of a queue or run path; 404 in fal's shape for any other app."""
    return require_app(owner, alias)


def require_app(owner: str, alias: str) -> str:
    app_id = f"{owner}/{alias}"
    if app_id != ENDPOINT_ID:
        raise fal_error(404, f"Application {app_id!r} not found: this mock serves {ENDPOINT_ID}")
    return app_id


EngineDep = Annotated[QueueEngine, Depends(get_engine)]
SettingsDep = Annotated[MockSettings, Depends(get_settings)]
FaultPlanDep = Annotated[FaultPlan | None, Depends(get_fault_plan)]
UrlsDep = Annotated[PublicUrls, Depends(get_urls)]
AuthDep = Annotated[Credential, Depends(authenticate)]
AppIdDep = Annotated[str, Depends(app_from_path)]
"""Declare after AuthDep: fal checks credentials before it looks the app up."""
