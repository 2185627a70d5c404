"""Engine views to fal's wire bodies, through the contract's models."""

from __future__ import annotations

import json
import threading
from typing import Any, Final

from fastapi.responses import JSONResponse, Response

from contracts.operations import Header
from contracts.schemas import (
    CompletedStatus,
    InProgressStatus,
    InQueueStatus,
    Metrics,
    RequestLog,
    SubmitResponse,
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


STATUS_BODIES_KEPT: Final = 4096
"""Rendered status bodies kept: more than the requests a client polls at any one time."""


class StatusBodies:
    """Status bodies rendered once per visible state and then served as bytes.

    Keyed by request, logs flag and queue URL (the only part of the public URLs a status body
    holds), and valid while the job's view is equal to the one rendered: a view is a complete
    snapshot of what the body shows, so no change can be missed. The bytes are exactly
    ``JSONResponse(status_body(...))``'s, so the models in ``contracts`` stay the one source.
    """

    def __init__(self, kept: int = STATUS_BODIES_KEPT) -> None:
        self._kept = kept
        self._bodies: dict[tuple[str, bool, str], tuple[JobView, bytes]] = {}
        self._lock = threading.Lock()  # an in-process client and a live server may share one

    def render(self, view: JobView, urls: PublicUrls, with_logs: bool) -> bytes:
        key = (view.request_id, with_logs, urls.queue)
        cached = self._bodies.get(key)
        if cached is not None and cached[0] == view:
            return cached[1]
        body = bytes(json_response(status_body(view, urls, with_logs)).body)
        with self._lock:
            self._bodies.pop(key, None)  # re-inserted last: the least recently rendered go first
            if len(self._bodies) >= self._kept:
                del self._bodies[next(iter(self._bodies))]
            self._bodies[key] = (view, body)
        return body


def submit_response(view: JobView, urls: PublicUrls, app_id: str) -> JSONResponse:
    """The submit answer: queued, with the URLs that lead back the way the request came in."""
    body = SubmitResponse(
        request_id=view.request_id,
        gateway_request_id=view.request_id,
        queue_position=view.queue_position or 0,
        **urls.request_urls(view.request_id, app_id),
    )
    return json_response(body.model_dump(mode="json"), 200, {Header.REQUEST_ID: view.request_id})


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
