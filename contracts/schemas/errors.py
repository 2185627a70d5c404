"""fal's error bodies: ``{"detail": str}`` and the 422 list form."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    """An error with a human-readable detail; infrastructure errors add ``error_type``."""

    model_config = ConfigDict(extra="allow")

    detail: str
    error_type: str | None = Field(
        default=None, description="Machine-readable kind, also sent as X-Fal-Error-Type."
    )


class ValidationErrorItem(BaseModel):
    """One invalid field: where (``loc``), what is wrong (``msg``) and its kind (``type``)."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None
    url: str | None = None


class ValidationErrorBody(BaseModel):
    """422: the request (or, for a finished request, its inputs) did not validate."""

    detail: list[ValidationErrorItem]
