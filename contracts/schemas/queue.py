"""Bodies of fal's queue protocol: submit, status (one shape per status), cancel."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

LogLevel = Literal["STDERR", "STDOUT", "ERROR", "INFO", "WARN", "DEBUG"]


class RequestLog(BaseModel):
    """One log line a runner wrote while working on a request."""

    message: str
    level: LogLevel = "INFO"
    source: Literal["USER"] = "USER"
    timestamp: str = Field(description="ISO-8601 time the line was written.")


class Metrics(BaseModel):
    """Measurements of a completed request."""

    model_config = ConfigDict(extra="allow")

    inference_time: float | None = Field(
        default=None, ge=0, description="Seconds the runner spent processing."
    )


class RequestUrls(BaseModel):
    """The request's id and the URLs to follow it with; every status body carries them."""

    request_id: str
    response_url: str
    status_url: str
    cancel_url: str


class SubmitResponse(RequestUrls):
    """Answer to a queue submit: the request is queued."""

    status: Literal["IN_QUEUE"] = "IN_QUEUE"
    gateway_request_id: str
    queue_position: int = Field(ge=0, description="Number of requests ahead of this one.")


class InQueueStatus(RequestUrls):
    """Waiting for a runner."""

    status: Literal["IN_QUEUE"] = "IN_QUEUE"
    queue_position: int = Field(ge=0, description="Number of requests ahead of this one.")


class InProgressStatus(RequestUrls):
    """A runner is working on it. ``logs`` is always present: null unless logs were asked for."""

    status: Literal["IN_PROGRESS"] = "IN_PROGRESS"
    logs: list[RequestLog] | None


class CompletedStatus(RequestUrls):
    """Done, successfully or not: failures and cancellations end here with ``error``."""

    status: Literal["COMPLETED"] = "COMPLETED"
    logs: list[RequestLog] | None
    metrics: Metrics = Field(default_factory=Metrics)
    error: str | None = Field(default=None, description="Why the request failed, if it did.")
    error_type: str | None = Field(
        default=None, description="Machine-readable failure kind, e.g. runner_disconnected."
    )


QueueStatus = Annotated[
    InQueueStatus | InProgressStatus | CompletedStatus, Field(discriminator="status")
]

CancelStatusName = Literal["OK", "CANCELLATION_REQUESTED", "ALREADY_COMPLETED", "NOT_FOUND"]


class CancelResponse(BaseModel):
    """Answer to a cancel: 202 CANCELLATION_REQUESTED, 400 ALREADY_COMPLETED, 404 NOT_FOUND."""

    status: CancelStatusName
