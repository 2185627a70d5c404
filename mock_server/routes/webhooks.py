"""Webhooks over HTTP: the JWKS on the rest host, the check of a submit's ``fal_webhook``, and
the control plane's view of the outbox and the inbox (``/_mock/webhooks``)."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from contracts.operations import JWKS, WEBHOOK_QUERY
from mock_server.engine.queue import QueueEngine
from mock_server.http.deps import EngineDep
from mock_server.http.errors import fal_error, validation_error
from mock_server.http.render import json_response
from mock_server.webhooks import WebhookService, webhooks_of
from mock_server.webhooks.inbox import is_inbox

router = APIRouter(prefix="/rest", tags=["rest"])
control_router = APIRouter(prefix="/_mock/webhooks", tags=["control plane"])


@router.get(JWKS.path)
async def jwks(engine: EngineDep) -> JSONResponse:
    return json_response(_service(engine).jwks())


async def refuse_unsafe_webhook(engine: QueueEngine, url: str) -> None:
    """A 422 in fal's shape, at submit, for a ``fal_webhook`` the mock may not send to."""
    service = webhooks_of(engine)
    if service is None:
        return
    if is_inbox(url) or _literal_host(url):
        refusal = service.refusal(url)  # no DNS: answered here
    else:  # a name: resolving it may block, so not on the event loop
        refusal = await asyncio.to_thread(service.refusal, url)
    if refusal is not None:
        raise validation_error(["query", WEBHOOK_QUERY], refusal, "value_error", url)


# -- control plane ------------------------------------------------------------------------------


class InboxAnswers(BaseModel):
    status_codes: list[int] = Field(
        min_length=1, description="Answer the next webhooks with these statuses, then 200."
    )


class SettleRequest(BaseModel):
    timeout: float = Field(10.0, ge=0, le=300)


@control_router.get("", summary="The webhook outbox: deliveries, their attempts, next due")
async def outbox(engine: EngineDep) -> dict[str, Any]:
    return _service(engine).view()


@control_router.post("/settle", summary="Wait until no delivery is due or in flight")
async def settle(body: SettleRequest, engine: EngineDep) -> dict[str, Any]:
    service = _service(engine)
    if not await asyncio.to_thread(service.wait, body.timeout):
        raise fal_error(504, f"webhook deliveries still due after {body.timeout:g} s")
    return service.view()


@control_router.get("/inbox", summary="Webhooks the mock's inbox received, oldest first")
async def inbox(engine: EngineDep) -> dict[str, Any]:
    received = _service(engine).inbox.received()
    return {"received": [item.as_dict() for item in received]}


@control_router.post("/inbox/answers", summary="Answer the inbox's next webhooks with these")
async def inbox_answers(body: InboxAnswers, engine: EngineDep) -> dict[str, Any]:
    try:
        _service(engine).inbox.answer_next(*body.status_codes)
    except ValueError as exc:
        codes = body.status_codes
        raise validation_error(["body", "status_codes"], str(exc), value=codes) from None
    return {"queued": body.status_codes}


@control_router.delete("/inbox", summary="Empty the inbox")
async def clear_inbox(engine: EngineDep) -> dict[str, int]:
    _service(engine).inbox.clear()
    return {"received": 0}


def _service(engine: QueueEngine) -> WebhookService:
    service = webhooks_of(engine)
    if service is None:
        raise fal_error(404, "This mock's engine sends no webhooks")
    return service


def _literal_host(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        host = (urlsplit(url).hostname or "").strip("[]")
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
