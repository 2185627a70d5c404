"""Every operation of the fal contract the mock serves, in one place.

Paths are written relative to their *logical host* (queue, run, rest, cdn). The live mock
serves each logical host under a path prefix of the same name (``/queue/...``); the real fal
hosts serve them at the root. Routes, openapi generation and checks all read this table, so a
path or status code is written exactly once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Final, Literal

ENDPOINT_ID: Final = "fal-ai/lipsync"
"""The one fal application the mock serves."""

QueueStatusName = Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
"""The only statuses fal sends. There is no FAILED or CANCELLED: failures end COMPLETED."""

QUEUE_STATUS_ORDER: Final[tuple[QueueStatusName, ...]] = ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")


class LogicalHost(StrEnum):
    """The four fal origins. The value is also the live server's path prefix."""

    QUEUE = "queue"
    RUN = "run"
    REST = "rest"
    CDN = "cdn"


FAL_HOSTS: Final[dict[LogicalHost, tuple[str, ...]]] = {
    # First name of each tuple is canonical; the others are fal's aliases and backup domains.
    LogicalHost.QUEUE: ("queue.fal.run", "queue.falrun.com"),
    LogicalHost.RUN: ("fal.run", "falrun.com"),
    LogicalHost.REST: ("rest.fal.ai", "rest.alpha.fal.ai"),
    LogicalHost.CDN: ("v3.fal.media", "v3b.fal.media", "fal.media"),
}

HOST_TO_LOGICAL: Final[dict[str, LogicalHost]] = {
    name: logical for logical, names in FAL_HOSTS.items() for name in names
}

PROXY_PATH: Final = "/api/fal/proxy"
"""Where a JS client configured with ``proxyUrl`` sends everything (fal's own server proxy path)."""

PROXY_TARGET_HEADER: Final = "x-fal-target-url"

Method = Literal["GET", "POST", "PUT"]


@dataclass(frozen=True, slots=True)
class Operation:
    """One HTTP operation: where it lives, what it answers."""

    operation_id: str
    host: LogicalHost
    method: Method
    path: str
    summary: str
    responses: tuple[int, ...]
    authenticated: bool = True

    @property
    def prefixed_path(self) -> str:
        """The path on the live mock, where each logical host is a path prefix."""
        return f"/{self.host.value}{self.path}"


_REQ = f"/{ENDPOINT_ID}/requests/{{request_id}}"

SUBMIT = Operation(
    "submitLipsync",
    LogicalHost.QUEUE,
    "POST",
    f"/{ENDPOINT_ID}",
    "Queue a lip-sync request",
    (200, 401, 404, 413, 422),
)
STATUS = Operation(
    "getRequestStatus",
    LogicalHost.QUEUE,
    "GET",
    f"{_REQ}/status",
    "Get a request's status (202 while queued or running, 200 when completed)",
    (200, 202, 401, 404, 422),
)
STATUS_STREAM = Operation(
    "streamRequestStatus",
    LogicalHost.QUEUE,
    "GET",
    f"{_REQ}/status/stream",
    "Stream status changes as server-sent events until COMPLETED",
    (200, 401, 404, 422),
)
RESULT = Operation(
    "getRequestResult",
    LogicalHost.QUEUE,
    "GET",
    _REQ,
    "Get a completed request's output, or the error it ended with",
    (200, 400, 401, 404, 422, 500, 503, 504),
)
CANCEL = Operation(
    "cancelRequest",
    LogicalHost.QUEUE,
    "PUT",
    f"{_REQ}/cancel",
    "Cancel a queued or running request",
    (202, 400, 401, 404),
)
RUN = Operation(
    "runLipsync",
    LogicalHost.RUN,
    "POST",
    f"/{ENDPOINT_ID}",
    "Run a lip-sync request synchronously and answer its output",
    (200, 401, 404, 413, 422),
)
RUN_STREAM = Operation(
    "streamLipsync",
    LogicalHost.RUN,
    "POST",
    f"/{ENDPOINT_ID}/stream",
    "Run synchronously, answering the output as a server-sent event",
    (200, 401, 404, 413, 422),
)
CDN_TOKEN = Operation(
    "createCdnToken",
    LogicalHost.REST,
    "POST",
    "/storage/auth/token",
    "Get a short-lived token for CDN uploads (fal-client's upload flow)",
    (200, 401, 422),
)
INITIATE_UPLOAD = Operation(
    "initiateUpload",
    LogicalHost.REST,
    "POST",
    "/storage/upload/initiate",
    "Reserve a file URL and get a URL to PUT its bytes to (@fal-ai/client's upload flow)",
    (200, 401, 422),
)
INITIATE_MULTIPART = Operation(
    "initiateMultipartUpload",
    LogicalHost.REST,
    "POST",
    "/storage/upload/initiate-multipart",
    "Reserve a file URL for an upload sent in parts",
    (200, 401, 422),
)
CDN_UPLOAD = Operation(
    "uploadFile",
    LogicalHost.CDN,
    "POST",
    "/files/upload",
    "Upload a file in one request (token from createCdnToken)",
    (200, 401, 413),
)
CDN_MULTIPART_START = Operation(
    "startCdnMultipart",
    LogicalHost.CDN,
    "POST",
    "/files/upload/multipart",
    "Start a multipart CDN upload (token from createCdnToken)",
    (200, 401),
)
CDN_MULTIPART_PART = Operation(
    "putCdnMultipartPart",
    LogicalHost.CDN,
    "PUT",
    "/files/{file_id}/{file_name}/multipart/{upload_id}/{part_number}",
    "Upload one part of a multipart CDN upload",
    (200, 404, 413, 422),
    authenticated=False,
)
CDN_MULTIPART_COMPLETE = Operation(
    "completeCdnMultipart",
    LogicalHost.CDN,
    "POST",
    "/files/{file_id}/{file_name}/multipart/{upload_id}/complete",
    "Assemble the parts of a multipart CDN upload",
    (200, 400, 404, 422),
    authenticated=False,
)
UPLOAD_PUT = Operation(
    "putUpload",
    LogicalHost.CDN,
    "PUT",
    "/uploads/{upload_id}",
    "PUT the bytes of an initiated upload",
    (200, 404, 409, 413),
    authenticated=False,
)
UPLOAD_PART_PUT = Operation(
    "putUploadPart",
    LogicalHost.CDN,
    "PUT",
    "/uploads/{upload_id}/{part_number}",
    "PUT one part of an initiated multipart upload",
    (200, 404, 409, 413, 422),
    authenticated=False,
)
UPLOAD_COMPLETE = Operation(
    "completeUpload",
    LogicalHost.CDN,
    "POST",
    "/uploads/{upload_id}/complete",
    "Assemble the parts of an initiated multipart upload",
    (200, 400, 404, 409, 422),
    authenticated=False,
)
GET_FILE = Operation(
    "getFile",
    LogicalHost.CDN,
    "GET",
    "/files/{file_id}/{file_name}",
    "Download a stored file (supports Range)",
    (200, 206, 404, 416),
    authenticated=False,
)
JWKS = Operation(
    "getWebhookKeys",
    LogicalHost.REST,
    "GET",
    "/.well-known/jwks.json",
    "The public keys (JWKS) webhook signatures verify against",
    (200,),
    authenticated=False,
)

OPERATIONS: Final[tuple[Operation, ...]] = (
    SUBMIT,
    STATUS,
    STATUS_STREAM,
    RESULT,
    CANCEL,
    RUN,
    RUN_STREAM,
    CDN_TOKEN,
    INITIATE_UPLOAD,
    INITIATE_MULTIPART,
    CDN_UPLOAD,
    CDN_MULTIPART_START,
    CDN_MULTIPART_PART,
    CDN_MULTIPART_COMPLETE,
    UPLOAD_PUT,
    UPLOAD_PART_PUT,
    UPLOAD_COMPLETE,
    GET_FILE,
    JWKS,
)


@cache
def _path_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{regex}$")


def find_operation(host: str, method: str, path: str) -> Operation | None:
    """The operation a call is of: same logical host (its value), method and host-relative
    path; None when it is none of the contract's."""
    for operation in OPERATIONS:
        if (
            operation.host.value == host
            and operation.method == method
            and _path_pattern(operation.path).match(path)
        ):
            return operation
    return None


class Header:
    """Header names of fal's protocol (lower-case, as ASGI delivers them)."""

    REQUEST_ID = "x-fal-request-id"
    QUEUE_PRIORITY = "x-fal-queue-priority"
    RUNNER_HINT = "x-fal-runner-hint"
    REQUEST_TIMEOUT = "x-fal-request-timeout"
    REQUEST_TIMEOUT_TYPE = "x-fal-request-timeout-type"
    ERROR_TYPE = "x-fal-error-type"
    FILE_NAME = "x-fal-file-name"
    OBJECT_LIFECYCLE = "x-fal-object-lifecycle"
    OBJECT_LIFECYCLE_PREFERENCE = "x-fal-object-lifecycle-preference"


WEBHOOK_QUERY = "fal_webhook"


class Limits:
    """Bounds on request parameters. fal documents only ``X-Fal-Request-Timeout > 1``; the others
    are the mock's guards against absurd input. Routes and the OpenAPI spec both read them."""

    REQUEST_TIMEOUT_MIN = 1
    """Seconds, exclusive."""
    REQUEST_TIMEOUT_MAX = 86_400
    """Seconds, inclusive."""
    RUNNER_HINT_LENGTH = 256
    WEBHOOK_URL_LENGTH = 2048
    STORAGE_TYPE_LENGTH = 64
    PART_NUMBER_MAX = 10_000
