"""The queue host: submit, status, status stream, result, cancel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from contracts.operations import ENDPOINT_ID, WEBHOOK_QUERY, Limits
from contracts.operations import Header as FalHeader
from contracts.schemas import CancelResponse
from mock_server.engine.jobs import SubmitOptions
from mock_server.engine.policies import Policy, PolicyError
from mock_server.http.deps import (
    AppIdDep,
    AuthDep,
    EngineDep,
    FaultPlanDep,
    SettingsDep,
    UrlsDep,
)
from mock_server.http.errors import fal_error, validation_error
from mock_server.http.render import json_response, outcome_response, status_body, submit_response
from mock_server.routes.inputs import InputBody
from mock_server.routes.webhooks import refuse_unsafe_webhook

router = APIRouter(prefix="/queue", tags=["queue"])

LogsFlag = Annotated[str, Query(pattern="^(0|1|true|false)$", description="Include logs: 1/true.")]


async def _request_of_app(
    owner: str, alias: str, request_id: str, _auth: AuthDep, _app: AppIdDep
) -> str:
    """The request id of a status/result/cancel path, once credentials and app are checked."""
    return request_id


RequestIdDep = Annotated[str, Depends(_request_of_app)]
_CANCEL_CODES = {"CANCELLATION_REQUESTED": 202, "ALREADY_COMPLETED": 400, "NOT_FOUND": 404}


@router.post("/{owner}/{alias}")
async def submit(
    owner: str,
    alias: str,
    _auth: AuthDep,
    app_id: AppIdDep,
    payload: InputBody,
    engine: EngineDep,
    urls: UrlsDep,
    fal_webhook: Annotated[
        str | None,
        Query(alias=WEBHOOK_QUERY, pattern=r"^https?://\S+$", max_length=Limits.WEBHOOK_URL_LENGTH),
    ] = None,
    priority: Annotated[
        Literal["normal", "low"] | None, Header(alias=FalHeader.QUEUE_PRIORITY)
    ] = None,
    hint: Annotated[
        str | None, Header(alias=FalHeader.RUNNER_HINT, max_length=Limits.RUNNER_HINT_LENGTH)
    ] = None,
    start_timeout: Annotated[
        float | None,
        Header(
            alias=FalHeader.REQUEST_TIMEOUT,
            gt=Limits.REQUEST_TIMEOUT_MIN,
            le=Limits.REQUEST_TIMEOUT_MAX,
        ),
    ] = None,
    mock_policy: Annotated[str | None, Header(alias="x-mock-policy")] = None,
    fault_plan: FaultPlanDep = None,
) -> JSONResponse:
    if fal_webhook is not None:
        await refuse_unsafe_webhook(engine, fal_webhook)
    options = SubmitOptions(
        priority=priority or "normal",
        hint=hint,
        start_timeout=start_timeout,
        webhook_url=fal_webhook,
        webhook_files_base=urls.cdn if fal_webhook is not None else None,
        policy=_parse_policy(mock_policy),
        faults=fault_plan,
    )
    return submit_response(engine.submit(payload, app_id, options), urls, app_id)


@router.get("/{owner}/{alias}/requests/{request_id}/status")
async def status(
    request_id: RequestIdDep,
    engine: EngineDep,
    urls: UrlsDep,
    logs: LogsFlag = "0",
) -> JSONResponse:
    view = engine.observe(request_id)
    if view is None:
        raise _unknown(request_id)
    body = status_body(view, urls, _flag(logs))
    return json_response(
        body, 200 if view.status == "COMPLETED" else 202, {FalHeader.REQUEST_ID: request_id}
    )


@router.get("/{owner}/{alias}/requests/{request_id}/status/stream")
async def status_stream(
    request_id: RequestIdDep,
    engine: EngineDep,
    urls: UrlsDep,
    settings: SettingsDep,
    logs: LogsFlag = "0",
) -> EventSourceResponse:
    if engine.peek(request_id) is None:
        raise _unknown(request_id)
    with_logs = _flag(logs)

    async def events() -> AsyncIterator[dict[str, str]]:
        sent_logs, last = 0, None
        while True:
            view = engine.observe(request_id)  # each tick counts as a poll under polls:N
            if view is None:  # forgotten (retention) while streaming
                return
            key = (view.status, view.queue_position, len(view.logs))
            if key != last:
                last = key
                body = status_body(view, urls, with_logs, log_start=sent_logs)
                sent_logs = len(view.logs)
                yield {"data": json.dumps(body)}
            if view.status == "COMPLETED":
                return  # close right away: the JS client resolves when the body ends
            await asyncio.sleep(settings.stream_tick)

    return EventSourceResponse(
        events(),
        ping=settings.keepalive_interval,
        ping_message_factory=_keepalive,
        headers={"cache-control": "no-cache", FalHeader.REQUEST_ID: request_id},
    )


@router.get("/{owner}/{alias}/requests/{request_id}")
async def result(
    request_id: RequestIdDep,
    engine: EngineDep,
    urls: UrlsDep,
) -> Response:
    found = engine.outcome(request_id)
    if found is None:
        raise _unknown(request_id)
    view, outcome = found
    if outcome is None:
        raise fal_error(400, "Request is still in progress")
    return outcome_response(view.request_id, outcome, urls)


@router.put("/{owner}/{alias}/requests/{request_id}/cancel")
async def cancel(request_id: RequestIdDep, engine: EngineDep) -> JSONResponse:
    answer = engine.cancel(request_id)
    return json_response(CancelResponse(status=answer).model_dump(), _CANCEL_CODES[answer])


# Registered last: a catch-all that came earlier would answer other paths' 405s.
@router.post("/{owner}/{alias}/{subpath:path}", include_in_schema=False)
async def submit_subpath(
    owner: str, alias: str, subpath: str, _auth: AuthDep, _app: AppIdDep
) -> Response:
    raise fal_error(404, f"Path /{subpath} not found on {ENDPOINT_ID}")


def _keepalive() -> ServerSentEvent:
    # A fixed comment: sse-starlette's default ping carries the time, which would make
    # transcripts differ from run to run.
    return ServerSentEvent(comment="keepalive")


def _flag(value: str) -> bool:
    return value in ("1", "true")


def _unknown(request_id: str) -> Exception:
    return fal_error(404, f"Request {request_id!r} not found")


def _parse_policy(value: str | None) -> Policy | None:
    if value is None:
        return None
    try:
        return Policy.parse(value)
    except PolicyError as exc:
        raise validation_error(["header", "x-mock-policy"], str(exc), value=value) from None
