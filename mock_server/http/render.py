"""Engine views to fal's wire bodies, through the contract's models."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse, Response

from contracts.operations import Header
from contracts.schemas import (
    CompletedStatus,
    InProgressStatus,
    InQueueStatus,
    Metrics,
    RequestLog,
)
from mock_server.engine.jobs import JobView
from mock_server.engine.results import Outcome, Success
from mock_server.http.hosts import PublicUrls


def status_body(
    view: JobView, urls: PublicUrls, with_logs: bool, log_start: int = 0
) -> dict[str, Any]:
    """The status object; ``log_start`` drops lines already sent (the SSE stream)."""
    common = {"request_id": view.request_id, **urls.request_urls(view.request_id)}
    logs = [RequestLog.model_validate(d) for d in view.log_dicts(log_start)] if with_logs else None
    model: InQueueStatus | InProgressStatus | CompletedStatus
    if view.status == "IN_QUEUE":
        model = InQueueStatus(**common, queue_position=view.queue_position or 0)
    elif view.status == "IN_PROGRESS":
        model = InProgressStatus(**common, logs=logs)
    else:
        model = CompletedStatus(
            **common,
            logs=logs,
            metrics=Metrics(inference_time=view.inference_time),
            error=view.error,
            error_type=view.error_type,
        )
    body = model.model_dump(mode="json")
    if "metrics" in body:  # a request that never ran has no measurements, not null ones
        body["metrics"] = {k: v for k, v in body["metrics"].items() if v is not None}
    return body


def outcome_response(request_id: str, outcome: Outcome, urls: PublicUrls) -> Response:
    """The result fetch (and sync run): the output as is, or the error the job ended with."""
    headers = {Header.REQUEST_ID: request_id}
    if isinstance(outcome, Success):
        return json_response(render_output(outcome.output, urls), 200, headers)
    return json_response(outcome.body, outcome.status_code, {**outcome.headers, **headers})


def render_output(output: dict[str, Any], urls: PublicUrls) -> Any:
    return json.loads(urls.render_refs(json.dumps(output)))


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code, headers=headers)
