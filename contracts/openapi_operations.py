"""Each operation of the spec: what it takes (parameters, request body) and what it answers.

The tables below document, per operation of ``contracts.operations``, what the operation table
itself does not carry: parameter texts and limits, request bodies, response models, headers and
examples. ``contracts.openapi`` assembles them, with the hosts and components, into the document.
"""

from __future__ import annotations

from typing import Any, Final

from contracts import operations as ops
from contracts import schemas
from contracts.openapi_components import SECURITY_SCHEME, ref, status_union
from contracts.operations import OPERATIONS, Header, Limits, Operation
from contracts.webhooks import FAL_JWKS_URL, TIMESTAMP_TOLERANCE, WebhookHeader

_STRING: Final = {"type": "string"}


def _json(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    media = {"schema": schema} if example is None else {"schema": schema, "example": example}
    return {"application/json": media}


def _header(description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


def _param(where: str, name: str, text: str, **schema: Any) -> dict[str, Any]:
    """An optional parameter; its schema is a string unless ``schema`` says otherwise."""
    schema = {"type": "string", **schema}
    return {"name": name, "in": where, "required": False, "description": text, "schema": schema}


# --- examples and texts -------------------------------------------------------------------------

_ID: Final = "764cabcf-b745-4b3e-ae38-1200304cf45b"
_URL: Final = f"http://127.0.0.1:8000/queue/{ops.ENDPOINT_ID}/requests/{_ID}"
_URLS: Final = {
    "request_id": _ID,
    "response_url": _URL,
    "status_url": f"{_URL}/status",
    "cancel_url": f"{_URL}/cancel",
}
_QUEUED: Final = {"status": "IN_QUEUE", **_URLS, "queue_position": 0}
_DONE: Final = {"status": "COMPLETED", **_URLS, "logs": None, "metrics": {"inference_time": 1.2}}
_EXAMPLES: Final[dict[tuple[Operation, int], dict[str, Any]]] = {
    (ops.SUBMIT, 200): {**_QUEUED, "gateway_request_id": _ID},
    (ops.STATUS, 202): _QUEUED,
    (ops.STATUS, 200): {**_DONE, "error": None, "error_type": None},
}
_STATUS_EVENTS: Final = """\
Server-sent events, one per status change, until the request is COMPLETED.

Each event is a `data:` line holding a status object, the same JSON getRequestStatus answers
(schema `QueueStatus`), then a blank line:

    data: {"status": "IN_PROGRESS", "request_id": "...", "logs": [...], ...}

Each event carries only the log lines that are new since the previous event. The server closes
the stream right after the COMPLETED event (clients take the body closing as the end). Lines
starting with `:` are keep-alive comments."""
_RUN_EVENTS: Final = """\
Server-sent events: one `data:` line holding the output (schema `LipsyncOutput`) once the run
finishes, then the stream closes. Lines starting with `:` are keep-alive comments."""
_TIMEOUT: Final = (
    "Seconds the request may wait to start, sent as a decimal string (fal-client sends `30.0`, "
    "@fal-ai/client `30`); fal requires more than 1, the mock also caps it. When it expires the "
    "request completes with `error_type: request_timeout`, and the result answers 504 with "
    "`X-Fal-Request-Timeout-Type: user`."
)

# --- what each operation takes ------------------------------------------------------------------

_LOGS: Final = _param(
    "query", "logs", "Include logs (`1`/`true`).", enum=["0", "1", "true", "false"]
)
_STORAGE_TYPE: Final = _param(
    "query", "storage_type", "Backend: `fal-cdn-v3`, `gcs`.", maxLength=Limits.STORAGE_TYPE_LENGTH
)
_FILE_NAME: Final = _param("header", Header.FILE_NAME.title(), "The file's name.")
_WEBHOOK: Final = "An http(s) URL to POST the outcome to (see `webhooks`)."
_HINT: Final = "A hint for routing to a runner."
_TIMEOUT_RANGE: Final = {
    "type": "number",
    "exclusiveMinimum": Limits.REQUEST_TIMEOUT_MIN,
    "maximum": Limits.REQUEST_TIMEOUT_MAX,
}
_PRIORITY: Final = "Queue priority (@fal-ai/client always sends it, `normal` by default)."
_PARAMS: Final[dict[Operation, list[dict[str, Any]]]] = {
    ops.SUBMIT: [
        _param(
            "query", ops.WEBHOOK_QUERY, _WEBHOOK, format="uri", maxLength=Limits.WEBHOOK_URL_LENGTH
        ),
        _param("header", "X-Fal-Queue-Priority", _PRIORITY, enum=["normal", "low"]),
        _param("header", "X-Fal-Runner-Hint", _HINT, maxLength=Limits.RUNNER_HINT_LENGTH),
        _param("header", "X-Fal-Request-Timeout", _TIMEOUT, **_TIMEOUT_RANGE),
    ],
    ops.STATUS: [_LOGS],
    ops.STATUS_STREAM: [_LOGS],
    ops.CDN_TOKEN: [_STORAGE_TYPE],
    ops.INITIATE_UPLOAD: [_STORAGE_TYPE],
    ops.INITIATE_MULTIPART: [_STORAGE_TYPE],
    ops.CDN_UPLOAD: [_FILE_NAME],
    ops.CDN_MULTIPART_START: [_FILE_NAME],
    ops.GET_FILE: [_param("header", "Range", "`bytes=<first>-[<last>]`.")],
}
_INPUT: Final = {
    "required": True,
    "content": _json(
        ref("LipsyncInput"),
        {"video_url": schemas.EXAMPLE_VIDEO_URL, "audio_url": schemas.EXAMPLE_AUDIO_URL},
    ),
}
_BYTES: Final = {
    "required": False,
    "description": "The raw bytes (no body stores an empty file).",
    "content": {"application/octet-stream": {}, "*/*": {}},
}
_PARTS: Final = {"required": True, "content": _json(ref("MultipartComplete"))}
_INITIATE: Final = {"required": True, "content": _json(ref("InitiateUpload"))}
_EMPTY: Final = {"type": "object", "description": "An empty object, `{}`."}
_BODIES: Final[dict[Operation, dict[str, Any]]] = {
    ops.SUBMIT: _INPUT,
    ops.RUN: _INPUT,
    ops.RUN_STREAM: _INPUT,
    ops.CDN_TOKEN: {"required": False, "content": _json(_EMPTY, {})},
    ops.INITIATE_UPLOAD: _INITIATE,
    ops.INITIATE_MULTIPART: _INITIATE,
    ops.CDN_UPLOAD: _BYTES,
    ops.CDN_MULTIPART_PART: _BYTES,
    ops.CDN_MULTIPART_COMPLETE: _PARTS,
    ops.UPLOAD_PUT: _BYTES,
    ops.UPLOAD_PART_PUT: _BYTES,
    ops.UPLOAD_COMPLETE: _PARTS,
}

# --- what each operation answers ----------------------------------------------------------------

_QUEUED_OR_RUNNING: Final = "InQueueStatus|InProgressStatus"
_SUCCESS: Final[dict[tuple[Operation, int], tuple[str, str]]] = {
    (ops.SUBMIT, 200): ("SubmitResponse", "The request is queued."),
    (ops.STATUS, 200): ("CompletedStatus", "COMPLETED, successfully or with `error`/`error_type`."),
    (ops.STATUS, 202): (_QUEUED_OR_RUNNING, "Queued (IN_QUEUE) or running (IN_PROGRESS)."),
    (ops.RESULT, 200): ("LipsyncOutput", "The output of the completed request."),
    (ops.CANCEL, 202): ("CancelResponse", "Cancellation requested (`CANCELLATION_REQUESTED`)."),
    (ops.RUN, 200): ("LipsyncOutput", "The output."),
    (ops.CDN_TOKEN, 200): ("CdnToken", "A token for CDN uploads."),
    (ops.INITIATE_UPLOAD, 200): ("InitiatedUpload", "Where to PUT the bytes."),
    (ops.INITIATE_MULTIPART, 200): ("InitiatedUpload", "Where to PUT the parts."),
    (ops.CDN_UPLOAD, 200): ("CdnUploadResult", "The stored file."),
    (ops.CDN_MULTIPART_START, 200): ("CdnMultipartStart", "Where to PUT the parts."),
    (ops.CDN_MULTIPART_PART, 200): ("UploadPart", "The part is stored."),
    (ops.CDN_MULTIPART_COMPLETE, 200): ("CdnUploadResult", "The assembled file."),
    (ops.UPLOAD_PUT, 200): ("CdnUploadResult", "The file is stored."),
    (ops.UPLOAD_PART_PUT, 200): ("UploadPart", "The part is stored."),
    (ops.UPLOAD_COMPLETE, 200): ("CdnUploadResult", "The assembled file."),
    (ops.JWKS, 200): ("Jwks", "The Ed25519 keys webhooks are signed with (RFC 8037 JWKs)."),
    (ops.CANCEL, 400): ("CancelResponse", "Already completed (`ALREADY_COMPLETED`)."),
    (ops.CANCEL, 404): ("CancelResponse", "Unknown request (`NOT_FOUND`)."),
    (ops.RESULT, 400): ("ErrorBody", "The request has not completed, or was cancelled."),
    (ops.RESULT, 422): ("ValidationErrorBody", "The request's inputs did not validate."),
}
_ERRORS: Final[dict[int, tuple[str, str]]] = {
    400: ("ErrorBody", "The request cannot be served in its current state."),
    401: ("ErrorBody", "Missing or invalid credentials."),
    404: ("ErrorBody", "Not found."),
    409: ("ErrorBody", "The upload is already complete."),
    413: ("ErrorBody", "The body is too large."),
    416: ("ErrorBody", "The Range cannot be satisfied."),
    422: ("ValidationErrorBody", "The request did not validate."),
}
_STREAMS: Final = {
    ops.STATUS_STREAM: (_STATUS_EVENTS, "QueueStatus"),
    ops.RUN_STREAM: (_RUN_EVENTS, "LipsyncOutput"),
}
_LINKED: Final = (ops.STATUS, ops.STATUS_STREAM, ops.RESULT, ops.CANCEL)
_CARRY_REQUEST_ID: Final = (ops.SUBMIT, ops.STATUS, ops.RESULT, ops.RUN)


def _response(op: Operation, code: int) -> dict[str, Any]:
    """The documented answer of ``op`` with status ``code``."""
    headers: dict[str, Any] = {}
    if op in _CARRY_REQUEST_ID and (code < 400 or (op is ops.RESULT and code not in (401, 404))):
        headers[Header.REQUEST_ID] = _header("The request's id.", _STRING, required=code < 400)
    if code < 300 and op in _STREAMS:
        text, model = _STREAMS[op]
        headers["Cache-Control"] = _header("`no-cache`.", _STRING)
        content = {"text/event-stream": {"schema": _STRING, "x-event-data-schema": ref(model)}}
    elif code < 300 and op is ops.GET_FILE:
        text = "The requested byte range." if code == 206 else "The file, with its Content-Type."
        headers["Content-Length"] = _header("Bytes in this response.", {"type": "integer"})
        headers["Accept-Ranges"] = _header("`bytes`.", {"enum": ["bytes"], **_STRING})
        if code == 206:
            headers["Content-Range"] = _header("`bytes <first>-<last>/<size>`.", _STRING, True)
        content = {"*/*": {}}  # any bytes: OpenAPI 3.1 spells binary as no schema
    else:
        if code >= 500:
            model, text = "ErrorBody", "The request failed in fal's infrastructure."
            headers["X-Fal-Error-Type"] = _header("Machine-readable `error_type`.", _STRING)
        else:
            model, text = _SUCCESS.get((op, code)) or _ERRORS[code]
        if code == 504:
            user = "`user` when the request's own X-Fal-Request-Timeout expired."
            headers["X-Fal-Request-Timeout-Type"] = _header(user, {"enum": ["user"], **_STRING})
        if code == 416:
            headers["Content-Range"] = _header("`bytes */<size>`.", _STRING)
        if model == "UploadPart":
            headers["ETag"] = _header("The part's entity tag (also in the body).", _STRING, True)
        schema = status_union(*model.split("|")) if "|" in model else ref(model)
        content = _json(schema, _EXAMPLES.get((op, code)))
    response = {"description": text, **({"headers": headers} if headers else {})}
    response["content"] = content
    if op is ops.SUBMIT and code == 200:
        by_id = {"request_id": "$response.body#/request_id"}
        response["links"] = {
            o.operation_id: {"operationId": o.operation_id, "parameters": by_id} for o in _LINKED
        }
    return response


def _parameters(op: Operation) -> list[dict[str, Any]]:
    params = []
    for name in (part[1:-1] for part in op.path.split("/") if part.startswith("{")):
        schema = {"type": "string", "minLength": 1}
        if name == "part_number":
            schema = {"type": "integer", "minimum": 1, "maximum": Limits.PART_NUMBER_MAX}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params + _PARAMS.get(op, [])


def _operation(op: Operation) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.host.value],
        "security": [{SECURITY_SCHEME: []}] if op.authenticated else [],
    }
    if params := _parameters(op):
        spec["parameters"] = params
    if op in _BODIES:
        spec["requestBody"] = _BODIES[op]
    spec["responses"] = {str(code): _response(op, code) for code in sorted(op.responses)}
    return spec


def paths() -> dict[str, dict[str, Any]]:
    """The ``paths`` section: every operation, by its mock path (host prefix included)."""
    by_path: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        by_path.setdefault(op.prefixed_path, {})[op.method.lower()] = _operation(op)
    return by_path


def webhook_operation() -> dict[str, Any]:
    """The request fal POSTs to a submit's webhook URL (the spec's ``webhooks`` section)."""
    signed = _header_texts()
    return {
        "summary": f"What fal POSTs to the submit's `{ops.WEBHOOK_QUERY}` URL",
        "description": "Sent once the queued request finishes (not for sync runs). Signed with "
        "Ed25519 over the four lines `request_id`, `user_id`, `timestamp` and the hex SHA-256 "
        "of the raw body, joined with `\\n`; the public keys are the JWKS of "
        f"`{ops.JWKS.operation_id}` (fal: `{FAL_JWKS_URL}`). Verifiers reject a timestamp more "
        f"than {TIMESTAMP_TOLERANCE} s from now. Retried 10 times over 2 hours until a 2xx.",
        "parameters": [
            {"name": name, "in": "header", "required": True, "description": text, "schema": _STRING}
            for name, text in signed.items()
        ],
        "requestBody": {"required": True, "content": _json(ref("WebhookPayload"))},
        "responses": {"200": {"description": "Delivered (any 2xx will do)."}},
    }


def _header_texts() -> dict[str, str]:
    return {
        WebhookHeader.REQUEST_ID: "The request's id.",
        WebhookHeader.USER_ID: "The id of the user who submitted the request.",
        WebhookHeader.TIMESTAMP: "When it was signed, in Unix seconds.",
        WebhookHeader.SIGNATURE: "The Ed25519 signature, hex.",
    }
