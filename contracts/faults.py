"""Faults fal's servers are known to produce, as data: what the mock can inject, and when.

Every kind here is something a client of ``fal-ai/lipsync`` meets in production (PROTOCOL.md
sections 6 and 11): rate limiting, ingress errors from fal's edge (retried by fal-client only
without ``x-fal-request-id`` and with nginx in the body), internal errors, slow answers, dropped
connections, runner failures that end a request ``COMPLETED`` with ``error_type``, model
validation errors on the result, and user timeouts. A :class:`FaultPlan` says which requests get
which fault: seeded rates (``rate``) and scripted sequences (``after`` / ``times``), so the same
seed and the same requests give the same faults.

The plan is plain data: it travels as JSON through settings (``FAL_MOCK_FAULTS``), the control
plane (``POST /_mock/faults``), the pytest marker and the per-request header
(``X-Mock-Faults``), and hypothesis strategies draw it.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.operations import (
    CANCEL,
    OPERATIONS,
    RESULT,
    RUN,
    STATUS,
    STATUS_STREAM,
    SUBMIT,
)

__all__ = [
    "EXCHANGE_FAULTS",
    "FAULT_HEADER",
    "FAULT_KINDS",
    "JOB_FAULTS",
    "QUEUE_OPERATIONS",
    "RUNNER_ERROR_TYPES",
    "VARIATIONS",
    "FaultKind",
    "FaultPlan",
    "FaultRule",
]

FAULT_HEADER: Final = "X-Mock-Faults"
"""Request header carrying a JSON :class:`FaultPlan` for that one request (and, on submit, its
job)."""

FaultKind = Literal[
    # Faults of one HTTP exchange, answered instead of (or before) the real response.
    "rate_limited",  # 429 + Retry-After (retried by both clients)
    "request_timeout",  # 408 (retried by fal-client)
    "conflict",  # 409 (retried by fal-client)
    "ingress_502",  # edge errors: nginx body, no x-fal-request-id unless with_request_id
    "ingress_503",
    "ingress_504",
    "internal_error",  # 500 {"detail": ...} (retried by @fal-ai/client on status only)
    "latency",  # the real answer, delay_s later (the event loop keeps serving others)
    "drop_connection",  # the connection closes with no response (a transport error)
    # Variations the contract allows, on a JSON answer (not faults, but drawn and scheduled alike).
    "omit_optional",  # the fields the spec marks optional are left out
    "extra_fields",  # an unknown field is added (clients must ignore it)
    # Faults of the job, seen on status and result.
    "runner_error",  # COMPLETED + error/error_type; the result answers 503 with the type
    "result_422",  # COMPLETED; the result answers 422 {"detail": [...]}
    "user_timeout",  # COMPLETED; the result answers 504 + X-Fal-Request-Timeout-Type: user
]
FAULT_KINDS: Final[tuple[FaultKind, ...]] = FaultKind.__args__  # type: ignore[attr-defined]
JOB_FAULTS: Final = frozenset({"runner_error", "result_422", "user_timeout"})
EXCHANGE_FAULTS: Final = frozenset(FAULT_KINDS) - JOB_FAULTS
VARIATIONS: Final = frozenset({"omit_optional", "extra_fields"})
"""Kinds that change an answer within the contract rather than failing it."""

RUNNER_ERROR_TYPES: Final = (
    "request_timeout",
    "startup_timeout",
    "runner_scheduling_failure",
    "runner_connection_timeout",
    "runner_disconnected",
    "runner_connection_refused",
)
"""fal's documented ``error_type`` values for infrastructure failures (Request Error Types)."""

_ALL_OPERATION_IDS: Final = tuple(op.operation_id for op in OPERATIONS)
QUEUE_OPERATIONS: Final = tuple(
    op.operation_id for op in (SUBMIT, STATUS, STATUS_STREAM, RESULT, CANCEL, RUN)
)
"""The operations exchange faults apply to by default (not uploads or file downloads)."""


class FaultRule(BaseModel):
    """One kind of fault and the requests it hits.

    Matching requests are counted per rule. The first ``after`` are spared; of the rest, each is
    hit with probability ``rate`` (from the plan's seed), until ``times`` hits (``None``: no
    limit). ``rate=1, times=2`` is the scripted "the next two fail, then it works".
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FaultKind
    operations: tuple[str, ...] = Field(
        QUEUE_OPERATIONS,
        description="operationIds (see openapi.yaml) the rule applies to; job faults ignore it.",
    )
    rate: float = Field(1.0, ge=0.0, le=1.0)
    after: int = Field(0, ge=0, description="Matching requests spared before the rule starts.")
    times: int | None = Field(None, ge=1, description="Most hits; None for no limit.")
    retry_after_s: int = Field(1, ge=0, le=3600, description="rate_limited: Retry-After.")
    delay_s: float = Field(0.5, ge=0.0, le=300.0, description="latency: how long.")
    with_request_id: bool = Field(
        False, description="ingress_5xx: carry x-fal-request-id (then fal-client won't retry)."
    )
    error_type: str = Field(
        "runner_disconnected", description="runner_error: the error_type reported."
    )

    @model_validator(mode="after")
    def _known_operations(self) -> FaultRule:
        unknown = set(self.operations) - set(_ALL_OPERATION_IDS)
        if unknown:
            raise ValueError(f"unknown operationIds {sorted(unknown)}")
        return self

    @property
    def is_job_fault(self) -> bool:
        return self.kind in JOB_FAULTS


class FaultPlan(BaseModel):
    """The faults in force: a seed for the rates and the rules, checked in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    rules: tuple[FaultRule, ...] = ()

    @classmethod
    def none(cls) -> FaultPlan:
        return cls()
