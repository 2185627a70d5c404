"""Hypothesis strategies for ``fal-ai/lipsync``: inputs a client may send, and the server
behaviours the contract allows, derived from the models so they cannot drift from them.

* :func:`lipsync_inputs` / :func:`invalid_lipsync_inputs`: request bodies ``LipsyncInput``
  accepts / rejects.
* :func:`fault_rules` / :func:`fault_plans`: :class:`~contracts.faults.FaultPlan` values, every
  field of :class:`~contracts.faults.FaultRule` drawn.
* :func:`server_behaviours`: a whole behaviour of the mock for one request: progression (how
  many status polls each state lasts, or immediate), requests queued ahead, seed (ids, log
  lines), and a fault plan (faults, latency, optional fields left out, unknown fields added).

Each docstring says what it shrinks toward: a failure is reported as the simplest behaviour that
still fails. ``mock_server.fuzzing`` (the plugin's ``fal_mock.fuzz``) runs a client against them.
Needs ``hypothesis`` (the ``pytest`` extra).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Final, get_args

from hypothesis import strategies as st

from contracts.faults import (
    FAULT_KINDS,
    JOB_FAULTS,
    QUEUE_OPERATIONS,
    RUNNER_ERROR_TYPES,
    VARIATIONS,
    FaultPlan,
    FaultRule,
)
from contracts.schemas import EXAMPLE_AUDIO_URL, EXAMPLE_VIDEO_URL, LipsyncInput

__all__ = [
    "FAL_CLIENT_RETRIES",
    "ServerBehaviour",
    "classic_behaviours",
    "fault_plans",
    "fault_rules",
    "invalid_lipsync_inputs",
    "lipsync_inputs",
    "server_behaviours",
]

FAL_CLIENT_RETRIES: Final = frozenset(
    {"rate_limited", "request_timeout", "conflict", "drop_connection", "latency"} | VARIATIONS
)
"""Exchange kinds fal-client 1.0.3 rides over (PROTOCOL.md §11), ingress errors without a
request id aside (see :meth:`ServerBehaviour.survivable`); latency and variations need no retry."""
FAL_CLIENT_ATTEMPTS: Final = 10

_URLS: Final = (
    EXAMPLE_VIDEO_URL,
    EXAMPLE_AUDIO_URL,
    "https://example.com/face.mp4",
    "https://v3.fal.media/files/mock/speech.wav",
)


def _media_urls() -> st.SearchStrategy[str]:
    data = st.binary(min_size=1, max_size=24).map(
        lambda raw: "data:application/octet-stream;base64," + base64.b64encode(raw).decode()
    )
    return st.one_of(st.sampled_from(_URLS), data)


def _field_strategy(name: str) -> st.SearchStrategy[Any]:
    annotation = LipsyncInput.model_fields[name].annotation
    if name.endswith("_url"):
        return _media_urls()
    if choices := get_args(annotation):  # a Literal: every value the model accepts
        return st.sampled_from(choices)
    raise TypeError(f"no strategy for LipsyncInput.{name}: add one to contracts.strategies")


def lipsync_inputs() -> st.SearchStrategy[dict[str, Any]]:
    """Bodies ``LipsyncInput`` accepts: every field of the model (a new field needs a strategy
    here, or this raises), optional ones present or absent, sometimes an unknown field (fal
    ignores those). Shrinks toward fal's documented example with no optional field."""
    fields = LipsyncInput.model_fields
    required = {n: _field_strategy(n) for n, f in fields.items() if f.is_required()}
    optional = {n: _field_strategy(n) for n, f in fields.items() if not f.is_required()}
    extra = st.dictionaries(st.sampled_from(["prompt", "x_client_note"]), st.text(max_size=8))
    return st.builds(
        lambda base, more: {**more, **base},
        st.fixed_dictionaries(required, optional=optional),
        extra,
    )


def invalid_lipsync_inputs() -> st.SearchStrategy[Any]:
    """Bodies ``LipsyncInput`` rejects (fal answers 422): a required field missing, a field of
    the wrong type, a value outside its choices, a URL fal cannot fetch, or not an object.
    Shrinks toward a valid body with one required field removed."""
    fields = LipsyncInput.model_fields
    required = [n for n, f in fields.items() if f.is_required()]

    def without(body: dict[str, Any], name: str) -> dict[str, Any]:
        return {k: v for k, v in body.items() if k != name}

    def replaced(body: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
        return {**body, name: value}

    bad_values = st.one_of(
        st.none(), st.integers(), st.lists(st.integers(), max_size=2), st.just("not a url"),
        st.just("ftp://example.com/a.mp4"), st.just("data:video/mp4;base64,@@@"),
    )  # fmt: skip
    candidates = st.one_of(
        st.builds(without, lipsync_inputs(), st.sampled_from(required)),
        st.builds(replaced, lipsync_inputs(), st.sampled_from(sorted(fields)), bad_values),
        st.one_of(st.lists(st.integers(), max_size=2), st.text(max_size=5), st.integers()),
    )
    return candidates.filter(_rejected)


def _rejected(body: Any) -> bool:
    try:
        LipsyncInput.model_validate(body)
    except ValueError:
        return True
    return False


def fault_rules(
    kinds: frozenset[str] | tuple[str, ...] = FAULT_KINDS,
    operations: tuple[str, ...] = QUEUE_OPERATIONS,
    max_times: int = 2,
) -> st.SearchStrategy[FaultRule]:
    """Rules of the given kinds, on a non-empty subset of ``operations``. Every field of
    :class:`FaultRule` is drawn (a new field needs a strategy here, or this raises). Shrinks
    toward the first kind, all operations, rate 1, hit at once, once, short delays."""
    drawn: dict[str, st.SearchStrategy[Any]] = {
        "kind": st.sampled_from(sorted(kinds, key=FAULT_KINDS.index)),
        "operations": st.just(operations)
        | st.lists(st.sampled_from(operations), min_size=1, unique=True).map(tuple),
        "rate": st.sampled_from([1.0, 0.5]),
        "after": st.just(0) | st.integers(0, 3),  # mostly at once: one request is often all
        "times": st.integers(1, max_times),
        "retry_after_s": st.integers(0, 2),
        "delay_s": st.sampled_from([0.0, 0.05, 0.2]),
        "with_request_id": st.booleans(),
        "error_type": st.sampled_from(RUNNER_ERROR_TYPES),
    }
    missing = set(FaultRule.model_fields) - set(drawn)
    if missing:
        raise TypeError(f"no strategy for FaultRule fields {sorted(missing)}")
    return st.builds(FaultRule, **drawn)


def fault_plans(
    kinds: frozenset[str] | tuple[str, ...] = FAULT_KINDS, max_rules: int = 3, max_times: int = 2
) -> st.SearchStrategy[FaultPlan]:
    """Plans of up to ``max_rules`` rules. Shrinks toward no rules (a faultless server)."""
    return st.builds(
        FaultPlan,
        seed=st.integers(0, 2**16),
        rules=st.lists(fault_rules(kinds, max_times=max_times), max_size=max_rules).map(tuple),
    )


@dataclass(frozen=True)
class ServerBehaviour:
    """One way the mock may serve a request, as the contract allows."""

    policy: str = "polls:1"
    """``polls:N``: each state lasts N status polls; ``immediate``: COMPLETED at once."""
    seed: int = 0
    """Fixes request ids and the log lines each request writes."""
    ahead: int = 0
    """Requests queued before the client's (its queue_position starts there)."""
    faults: FaultPlan = field(default_factory=FaultPlan)

    def survivable(
        self, hit: list[FaultRule], retried: frozenset[str] = FAL_CLIENT_RETRIES
    ) -> bool:
        """Whether a client with fal-client's retry rules must succeed, given the rules that
        actually hit (``hit``): only kinds it rides over, ingress errors without a request id,
        never a job fault, never more hits of one rule than its attempts."""
        for rule in hit:
            if rule.kind in JOB_FAULTS:
                return False
            ingress = rule.kind.startswith("ingress_") and not rule.with_request_id
            if not (rule.kind in retried or ingress):
                return False
            if rule.kind not in VARIATIONS | {"latency"} and (rule.times or 10**9) >= (
                FAL_CLIENT_ATTEMPTS
            ):
                return False
        return True


def server_behaviours(
    kinds: frozenset[str] | tuple[str, ...] = FAULT_KINDS,
    max_polls: int = 3,
    max_ahead: int = 2,
    max_rules: int = 2,
) -> st.SearchStrategy[ServerBehaviour]:
    """Behaviours: ``polls:1..max_polls`` or immediate, 0..``max_ahead`` requests ahead, a
    seed, and a plan of up to ``max_rules`` rules of ``kinds`` (each hitting at most twice, so a
    retrying client can get through). Shrinks toward ``ServerBehaviour()``: one poll per state,
    nothing ahead, seed 0, no faults."""
    policies = st.integers(1, max_polls).map(lambda n: f"polls:{n}") | st.just("immediate")
    return st.builds(
        ServerBehaviour,
        policy=policies,
        seed=st.integers(0, 2**16),
        ahead=st.integers(0, max_ahead),
        faults=fault_plans(kinds, max_rules=max_rules),
    )


def classic_behaviours(
    kinds: frozenset[str] | tuple[str, ...] = FAULT_KINDS,
) -> list[ServerBehaviour]:
    """Behaviours worth trying before any random one: no faults under each progression, and
    each kind of fault once, hitting the first request it can, on every queue operation. A
    client bug that shows under any single fault shows here, whatever the random draws."""
    plain = [ServerBehaviour(), ServerBehaviour(policy="immediate"), ServerBehaviour("polls:3")]
    return plain + [
        ServerBehaviour(faults=FaultPlan(rules=(FaultRule(kind=kind, times=1),)))
        for kind in FAULT_KINDS
        if kind in kinds
    ]
