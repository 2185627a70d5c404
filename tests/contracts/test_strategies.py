"""contracts.strategies: what each strategy draws is what the models accept (or reject), and
every field of the models is drawn (a new field without a strategy fails here)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from contracts.faults import FAULT_KINDS, FaultPlan, FaultRule
from contracts.schemas import LipsyncInput
from contracts.strategies import (
    ServerBehaviour,
    classic_behaviours,
    fault_plans,
    fault_rules,
    invalid_lipsync_inputs,
    lipsync_inputs,
    server_behaviours,
)


@given(lipsync_inputs())
def test_valid_inputs_validate(body: dict[str, Any]) -> None:
    assert LipsyncInput.model_validate(body)


@given(invalid_lipsync_inputs())
def test_invalid_inputs_are_rejected(body: Any) -> None:
    with pytest.raises(ValueError):
        LipsyncInput.model_validate(body)


@settings(max_examples=200)
@given(lipsync_inputs())
def test_inputs_cover_every_field(body: dict[str, Any]) -> None:
    assert set(LipsyncInput.model_fields) >= {"video_url", "audio_url"}
    assert {"video_url", "audio_url"} <= set(body)


def test_every_field_and_value_is_reached() -> None:
    seen_fields: set[str] = set()
    seen_kinds: set[str] = set()

    # Derandomized: a coverage claim must not depend on the run's random seed (it missed a
    # kind once in 300 random draws of 14).
    @settings(max_examples=400, derandomize=True, database=None)
    @given(lipsync_inputs(), fault_rules())
    def collect(body: dict[str, Any], rule: FaultRule) -> None:
        seen_fields.update(body)
        seen_kinds.add(rule.kind)

    collect()
    assert set(LipsyncInput.model_fields) <= seen_fields
    assert seen_kinds == set(FAULT_KINDS)


@given(fault_plans())
def test_plans_round_trip_as_json(plan: FaultPlan) -> None:
    assert FaultPlan.model_validate_json(plan.model_dump_json()) == plan
    assert all(rule.times is not None and rule.times <= 2 for rule in plan.rules)


@given(server_behaviours(kinds=("rate_limited", "conflict")))
def test_behaviours_keep_to_the_kinds_asked_for(behaviour: ServerBehaviour) -> None:
    assert {rule.kind for rule in behaviour.faults.rules} <= {"rate_limited", "conflict"}
    assert behaviour.policy == "immediate" or behaviour.policy.startswith("polls:")


def test_the_simplest_behaviour_is_the_default() -> None:
    assert classic_behaviours()[0] == ServerBehaviour()
    kinds = [b.faults.rules[0].kind for b in classic_behaviours() if b.faults.rules]
    assert kinds == list(FAULT_KINDS)


@pytest.mark.parametrize(
    ("kind", "survivable"),
    [("rate_limited", True), ("drop_connection", True), ("ingress_502", True),
     ("omit_optional", True), ("internal_error", False), ("runner_error", False)],
)  # fmt: skip
def test_survivable_follows_fal_clients_retry_rules(kind: str, survivable: bool) -> None:
    rule = FaultRule(kind=kind, times=2)  # type: ignore[arg-type]
    assert ServerBehaviour().survivable([rule]) is survivable
    with_id = FaultRule(kind="ingress_502", with_request_id=True, times=1)
    assert not ServerBehaviour().survivable([with_id])
    assert not ServerBehaviour().survivable([FaultRule(kind="rate_limited")])  # no limit
