"""The run host: synchronous runs, answered with the output (or as one SSE event)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from contracts.faults import FaultPlan
from contracts.operations import ENDPOINT_ID
from mock_server.engine.queue import QueueEngine
from mock_server.engine.results import Outcome, Success
from mock_server.http.deps import AppIdDep, AuthDep, EngineDep, FaultPlanDep, UrlsDep
from mock_server.http.errors import fal_error
from mock_server.http.render import outcome_response, render_output
from mock_server.routes.inputs import InputBody

router = APIRouter(prefix="/run", tags=["run"])

_WAIT_STEP = 0.01  # how often a sync run re-checks a result engine that is still working


async def _run(
    engine: QueueEngine, payload: InputBody, app_id: str, faults: FaultPlan | None
) -> tuple[str, Outcome]:
    job = engine.run_now(payload, app_id, faults)
    # Polling, not an Event: the engine is plain sync code and may finish in a worker process.
    while (outcome := engine.sync_outcome(job)) is None:  # noqa: ASYNC110
        await asyncio.sleep(_WAIT_STEP)
    return job.request_id, outcome


@router.post("/{owner}/{alias}")
async def run(
    owner: str,
    alias: str,
    _auth: AuthDep,
    app_id: AppIdDep,
    payload: InputBody,
    engine: EngineDep,
    urls: UrlsDep,
    fault_plan: FaultPlanDep = None,
) -> Response:
    request_id, outcome = await _run(engine, payload, app_id, fault_plan)
    return outcome_response(request_id, outcome, urls)


@router.post("/{owner}/{alias}/{subpath:path}")
async def run_subpath(
    owner: str,
    alias: str,
    subpath: str,
    _auth: AuthDep,
    app_id: AppIdDep,
    payload: InputBody,
    engine: EngineDep,
    urls: UrlsDep,
    fault_plan: FaultPlanDep = None,
) -> Response:
    if subpath != "stream":
        raise fal_error(404, f"Path /{subpath} not found on {ENDPOINT_ID}")
    request_id, outcome = await _run(engine, payload, app_id, fault_plan)
    if not isinstance(outcome, Success):
        return outcome_response(request_id, outcome, urls)
    output = render_output(outcome.output, urls)

    async def events() -> AsyncIterator[dict[str, str]]:
        # lipsync is not a streaming model: its one event is the final output.
        yield {"data": json.dumps(output)}

    return EventSourceResponse(events(), headers={"x-fal-request-id": request_id})
