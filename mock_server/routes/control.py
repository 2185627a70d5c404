"""The mock's own control plane under ``/_mock``: reset, seed, policy, clock, faults, journal,
state.

Not part of fal's contract, so not in openapi.yaml; documented in the app's /docs and README.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator

from contracts.faults import FaultPlan
from mock_server.engine.policies import POLICY_HELP, Policy
from mock_server.engine.results import ENGINES
from mock_server.http.deps import EngineDep
from mock_server.http.errors import fal_error

router = APIRouter(prefix="/_mock", tags=["control plane"])


class PolicyField(BaseModel):
    policy: str | None = Field(None, description=POLICY_HELP)

    @field_validator("policy")
    @classmethod
    def _parse(cls, value: str | None) -> str | None:
        return None if value is None else str(Policy.parse(value))


class ResetRequest(PolicyField):
    seed: int | None = Field(None, description="New seed (default: keep the current one).")
    engine: str | None = Field(None, description=f"Result engine: one of {sorted(ENGINES)}.")

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str | None) -> str | None:
        if value is not None and value not in ENGINES:
            raise ValueError(f"unknown engine {value!r}: choose one of {sorted(ENGINES)}")
        return value


class SeedRequest(BaseModel):
    seed: int


class PolicyRequest(PolicyField):
    policy: str = Field(description=POLICY_HELP)


class AdvanceRequest(BaseModel):
    seconds: float = Field(ge=0, le=10 * 365 * 86_400)


class MockState(BaseModel):
    seed: int
    policy: str
    engine: str
    runners: int
    clock: float
    requests: int
    files: int
    journal_entries: int


def _state(engine: EngineDep) -> MockState:
    config = engine.config
    return MockState(
        seed=config.seed,
        policy=str(config.policy),
        engine=config.engine,
        runners=config.runners,
        clock=engine.clock.now(),
        requests=len(engine.request_ids()),
        files=len(engine.store),
        journal_entries=len(engine.journal.entries()),
    )


@router.get("/state", summary="Seed, policy, clock and counts")
async def state(engine: EngineDep) -> MockState:
    return _state(engine)


@router.post("/reset", summary="Forget all requests, files and the journal")
async def reset(body: ResetRequest, engine: EngineDep) -> MockState:
    engine.reset(
        seed=body.seed,
        policy=Policy.parse(body.policy) if body.policy else None,
        engine=body.engine,
    )
    return _state(engine)


@router.post("/seed", summary="Reset with a new seed")
async def seed(body: SeedRequest, engine: EngineDep) -> MockState:
    engine.reset(seed=body.seed)
    return _state(engine)


@router.post("/policy", summary="Progression policy for new requests")
async def policy(body: PolicyRequest, engine: EngineDep) -> MockState:
    engine.set_policy(Policy.parse(body.policy))
    return _state(engine)


@router.post("/clock/advance", summary="Move the virtual clock forward")
async def advance(body: AdvanceRequest, engine: EngineDep) -> MockState:
    try:
        engine.advance_clock(body.seconds)
    except ValueError as exc:
        raise fal_error(409, str(exc)) from None
    return _state(engine)


class FaultsState(BaseModel):
    plan: FaultPlan
    counters: list[dict[str, int]] = Field(
        description="Per rule, in order: requests it matched (seen) and hit (hits)."
    )


def _faults(engine: EngineDep) -> FaultsState:
    return FaultsState(plan=engine.faults.plan, counters=engine.faults.counters())


@router.get("/faults", summary="The fault plan in force and its counters")
async def faults(engine: EngineDep) -> FaultsState:
    return _faults(engine)


@router.post("/faults", summary="Inject faults from now on (counters start from zero)")
async def set_faults(plan: FaultPlan, engine: EngineDep) -> FaultsState:
    engine.set_faults(plan)
    return _faults(engine)


@router.delete("/faults", summary="Stop injecting faults")
async def clear_faults(engine: EngineDep) -> FaultsState:
    engine.set_faults(FaultPlan.none())
    return _faults(engine)


@router.get("/journal", summary="Every exchange on fal's hosts, oldest first")
async def journal(engine: EngineDep) -> dict[str, list[dict[str, Any]]]:
    return {"entries": [entry.as_dict() for entry in engine.journal.entries()]}


@router.delete("/journal", summary="Empty the journal")
async def clear_journal(engine: EngineDep) -> dict[str, int]:
    engine.journal.clear()
    return {"entries": 0}


@router.get("/requests", summary="Every known request with its status history")
async def requests(engine: EngineDep) -> dict[str, list[dict[str, Any]]]:
    return {"requests": [_history(engine, rid) for rid in engine.request_ids()]}


@router.get("/requests/{request_id}", summary="One request's status history")
async def request_history(request_id: str, engine: EngineDep) -> dict[str, Any]:
    if engine.peek(request_id) is None:
        raise fal_error(404, f"Request {request_id!r} not found")
    return _history(engine, request_id)


def _history(engine: EngineDep, request_id: str) -> dict[str, Any]:
    view = engine.peek(request_id)
    entries = engine.history(request_id) or []
    return {
        "request_id": request_id,
        "status": view.status if view else None,
        "history": [
            {"status": e.status, "queue_position": e.queue_position, "time": e.time}
            for e in entries
        ],
    }
