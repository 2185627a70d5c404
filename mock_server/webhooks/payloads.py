"""The body fal POSTs to a webhook URL, from a finished request's outcome (PROTOCOL.md §10)."""

from __future__ import annotations

import json
from typing import Any, Final

from contracts.operations import FAL_HOSTS, LogicalHost
from contracts.schemas import WebhookPayload
from mock_server.engine.results import Outcome, Success
from mock_server.storage import FILE_REF_SCHEME

DEFAULT_FILES_BASE: Final = f"https://{FAL_HOSTS[LogicalHost.CDN][0]}"
"""Where output file URLs point when the submit did not say (fal's own CDN host, which the
pytest plugin routes into the mock)."""

NOT_SERIALISABLE: Final = (
    "Response payload is not JSON serializable. Either return a JSON serializable object or "
    "use the queue endpoint to retrieve the response."
)
"""fal's ``payload_error`` when the output cannot be sent as JSON (fal-ai/fal-js issue #153)."""


def webhook_body(request_id: str, outcome: Outcome, files_base: str | None = None) -> str:
    """``{"request_id", "gateway_request_id", "status": "OK", "payload"}`` for an output;
    ``status: "ERROR"`` with ``error: "Invalid status code: N"`` and the error body as payload
    for a failure; ``payload: null`` with ``payload_error`` when the content is not JSON.

    ``gateway_request_id`` is the request id: the mock never retries a request on another
    runner. File URLs in the output lead to ``files_base`` (the CDN base the submit came in on).
    """
    if isinstance(outcome, Success):
        fields: dict[str, Any] = {"status": "OK"}
        content: Any = outcome.output
    else:
        fields = {"status": "ERROR", "error": f"Invalid status code: {outcome.status_code}"}
        content = outcome.body
    try:
        text = json.dumps(content, allow_nan=False)
        fields["payload"] = json.loads(
            text.replace(FILE_REF_SCHEME, f"{files_base or DEFAULT_FILES_BASE}/files/")
        )
    except (TypeError, ValueError):  # not JSON: bytes, NaN, objects, circular references
        fields["payload"] = None
        fields["payload_error"] = NOT_SERIALISABLE
    payload = WebhookPayload(request_id=request_id, gateway_request_id=request_id, **fields)
    return payload.model_dump_json(exclude_unset=True)
