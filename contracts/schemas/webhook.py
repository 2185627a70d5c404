"""What fal POSTs to a ``fal_webhook`` URL when a queued request finishes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class WebhookPayload(BaseModel):
    """OK with the output as ``payload``, or ERROR with ``error`` (and the error body)."""

    request_id: str
    gateway_request_id: str
    status: Literal["OK", "ERROR"]
    payload: dict[str, Any] | None = Field(
        description="The output, or the error body; null when it is not JSON-serialisable."
    )
    error: str | None = None
    payload_error: str | None = Field(default=None, description="Why payload is null, when it is.")
