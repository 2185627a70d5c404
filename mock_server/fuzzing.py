"""Fuzz a client function across every server behaviour the contract allows:
``fal_mock.fuzz(my_client)``.

For each behaviour drawn from :func:`contracts.strategies.server_behaviours`, the mock is reset
to it and ``client()`` runs (in a thread, so a client that never finishes can be stopped). Then:

* the client must finish: more than ``request_budget`` requests or ``time_budget`` seconds is
  :class:`~contracts.checks.ClientDidNotTerminate` (in-process, its further requests then raise a
  ``BaseException`` so even a client that swallows every error stops);
* where only faults its retry rules ride over actually hit (the rules the engine counted, not
  the ones that merely might have), it must not raise:
  :class:`~contracts.checks.ClientFailedOnAllowedBehaviour`;
* every contract check holds (status order, result only after COMPLETED, polling interval, ...).

Hypothesis draws the behaviours; a failing one is shrunk (bounded, greedy) to the simplest that
still fails the same way, and the report prints it with the seed that replays the run:
``fal_mock.fuzz(my_client, seed=N)``, or ``replay=<the behaviour>`` to run just that one.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, Phase, Verbosity, example, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from contracts.checks import ClientDidNotTerminate, ClientFailedOnAllowedBehaviour
from contracts.faults import FaultPlan, FaultRule
from contracts.schemas import LipsyncInput
from contracts.strategies import (
    FAL_CLIENT_RETRIES,
    ServerBehaviour,
    classic_behaviours,
    server_behaviours,
)
from mock_server.engine.jobs import SubmitOptions

if TYPE_CHECKING:
    from mock_server.pytest_fixtures import FalMock

__all__ = ["FuzzBudget", "FuzzingFailure", "StoppedByFuzzer", "fuzz_client"]

_AHEAD_INPUT = LipsyncInput(video_url="https://example.com/a.mp4", audio_url="https://e.com/a.wav")


class FuzzingFailure(AssertionError):
    """What ``fuzz_client`` raises: the shrunk behaviour's violation (``.violation``, a
    ``contracts.checks.ContractViolation``), its report, the behaviour and the replay seed."""

    violation: AssertionError
    behaviour: ServerBehaviour


class StoppedByFuzzer(BaseException):
    """Raised into a client that went past its budget (not an Exception: it cannot be caught
    by accident)."""


@dataclass(frozen=True)
class FuzzBudget:
    request_budget: int = 60
    """Requests one run may make before it counts as not finishing (a lifecycle under the
    drawn behaviours needs at most about 25, retries included)."""
    time_budget: float = 10.0
    """Seconds one run may take before it counts as not finishing."""


def fuzz_client(
    fal_mock: FalMock,
    client: Callable[[], Any],
    *,
    max_examples: int = 40,
    seed: int | None = None,
    replay: ServerBehaviour | None = None,
    behaviours: st.SearchStrategy[ServerBehaviour] | None = None,
    max_shrinks: int = 40,
    budget: FuzzBudget | None = None,
    retried: frozenset[str] = FAL_CLIENT_RETRIES,
    checks: dict[str, Any] | None = None,
) -> None:
    """Run ``client()`` (sync or async, no arguments) against drawn behaviours; raise the
    shrunk failure, if any, with the behaviour and the replay seed in its report."""
    runner = _Runner(fal_mock, client, budget or FuzzBudget(), retried, checks or {})
    engine = fal_mock._engine
    before = None if engine is None else (engine.config.seed, str(engine.config.policy))
    try:
        if replay is not None:
            runner.run(replay)
            return
        seed = random.randrange(2**32) if seed is None else seed
        _search(runner, behaviours or server_behaviours(), max_examples, seed)
        if runner.failing is None:
            return
        smallest, violation = shrink(runner, runner.failing, max_shrinks)
    finally:
        # The test goes on as it was set up: its seed and policy, no faults, nothing queued.
        if before is not None:
            fal_mock._control.reset(seed=before[0], policy=before[1])
        fal_mock.set_faults(None)
    failure = FuzzingFailure(
        f"{type(violation).__name__}: {violation}\n\n"
        f"fal_mock.fuzz: the smallest failing behaviour was\n  {smallest!r}\n"
        f"replay the run with fal_mock.fuzz(client, seed={seed}), or just this behaviour "
        "with fal_mock.fuzz(client, replay=<the behaviour above>)"
    )
    failure.violation = violation
    failure.behaviour = smallest
    raise failure from None


def _search(
    runner: _Runner,
    behaviours: st.SearchStrategy[ServerBehaviour],
    max_examples: int,
    seed: int,
) -> None:
    """The classic behaviours, then hypothesis's draws, until one fails (``runner.failing``).
    Hypothesis's shrinker is off: it shrinks every distinct failure for up to five minutes;
    ``shrink`` is bounded."""

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.explicit, Phase.generate),
        print_blob=False,
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
    )
    @given(behaviours)
    def run(behaviour: ServerBehaviour) -> None:
        runner.run(behaviour)

    for behaviour in reversed(classic_behaviours()):  # tried first, in this order
        run = example(behaviour)(run)
    try:
        hypothesis_seed(seed)(run)()
    except Exception:
        if runner.failing is None:
            raise  # not the client's failure: a bug of the fuzzer or the mock, shown as is


def shrink(
    runner: _Runner, behaviour: ServerBehaviour, max_runs: int
) -> tuple[ServerBehaviour, AssertionError]:
    """The simplest behaviour still failing the same way, by greedy steps toward
    ``ServerBehaviour()`` (no faults, one poll per state, nothing ahead, seed 0): each rule
    dropped, then each setting and each rule's field reset to its default; at most
    ``max_runs`` runs."""
    violation = runner.violation
    assert violation is not None
    kind = type(violation)
    runs = 0
    improved = True
    while improved and runs < max_runs:
        improved = False
        for candidate in simpler(behaviour):
            if runs >= max_runs:
                break
            runs += 1
            found = runner.try_run(candidate)
            if found is not None and type(found) is kind:
                behaviour, violation, improved = candidate, found, True
                break
    return behaviour, violation


def simpler(behaviour: ServerBehaviour) -> list[ServerBehaviour]:
    """One-step simplifications of ``behaviour``, most drastic first."""
    simplest = ServerBehaviour()
    plan = behaviour.faults
    candidates = [simplest, replace(behaviour, faults=FaultPlan(seed=plan.seed))]
    for index in range(len(plan.rules)):
        rules = plan.rules[:index] + plan.rules[index + 1 :]
        candidates.append(replace(behaviour, faults=plan.model_copy(update={"rules": rules})))
    for name in ("policy", "ahead", "seed"):
        candidates.append(replace(behaviour, **{name: getattr(simplest, name)}))
    candidates.append(replace(behaviour, faults=plan.model_copy(update={"seed": 0})))
    for index, rule in enumerate(plan.rules):
        plain = FaultRule(kind=rule.kind)
        for name in FaultRule.model_fields:
            if getattr(rule, name) != getattr(plain, name):
                reset = rule.model_copy(update={name: getattr(plain, name)})
                rules = (*plan.rules[:index], reset, *plan.rules[index + 1 :])
                candidates.append(
                    replace(behaviour, faults=plan.model_copy(update={"rules": rules}))
                )
    return [c for c in candidates if c != behaviour]


class _Runner:
    def __init__(
        self,
        fal_mock: FalMock,
        client: Callable[[], Any],
        budget: FuzzBudget,
        retried: frozenset[str],
        checks: dict[str, Any],
    ) -> None:
        self.fal_mock = fal_mock
        self.client = client
        self.budget = budget
        self.retried = retried
        self.checks = checks
        self.failing: ServerBehaviour | None = None
        self.violation: AssertionError | None = None

    def run(self, behaviour: ServerBehaviour) -> None:
        """One run; a failure is remembered (the first one) and raised."""
        try:
            self._run(behaviour)
        except AssertionError as violation:
            if self.failing is None:
                self.failing, self.violation = behaviour, violation
            raise

    def try_run(self, behaviour: ServerBehaviour) -> AssertionError | None:
        try:
            self._run(behaviour)
        except AssertionError as violation:
            return violation
        return None

    def _run(self, behaviour: ServerBehaviour) -> None:
        mock = self.fal_mock
        mock._control.reset(seed=behaviour.seed, policy=behaviour.policy)
        engine = mock._engine
        if engine is not None:  # requests ahead of the client's, queued without a wire trace
            for _ in range(behaviour.ahead):  # (before the faults: they must not count them)
                engine.submit(_AHEAD_INPUT, "fal-ai/lipsync", SubmitOptions())
        mock.set_faults(behaviour.faults)
        outcome = self._run_client()
        mock.check(**self.checks)  # first: a broken contract names the bug most precisely
        if isinstance(outcome, _Unfinished):
            raise ClientDidNotTerminate(
                f"{outcome.why} under {behaviour!r}",
                exchanges=mock.transcript().exchanges[-8:],
            )
        if isinstance(outcome, BaseException) and self._survivable(behaviour):
            raise ClientFailedOnAllowedBehaviour(
                f"the client raised {type(outcome).__name__}: {outcome} under {behaviour!r}; "
                "only faults it is expected to ride over hit",
                exchanges=mock.transcript().exchanges[-8:],
            ) from outcome

    def _run_client(self) -> Any:
        box: list[Any] = []

        def target() -> None:
            try:
                result = self.client()
                if inspect.isawaitable(result):
                    result = asyncio.run(_awaited(result))
                box.append(result)
            except BaseException as exc:  # judged by the caller
                box.append(exc)

        thread = threading.Thread(target=target, name="fal-mock-fuzz-client", daemon=True)
        started = time.monotonic()
        thread.start()
        why = None
        while thread.is_alive():
            # join returns as soon as the client is done; the budget (a journal read, over HTTP
            # against a live server) is looked at every 20 ms.
            thread.join(0.02)
            elapsed = time.monotonic() - started
            made = len(self.fal_mock.journal)
            if made > self.budget.request_budget:
                why = f"the client made more than {self.budget.request_budget} requests"
            elif elapsed > self.budget.time_budget:
                why = f"the client ran for more than {self.budget.time_budget:g} s"
            if why is not None:
                self._stop(thread)
                return _Unfinished(why)
        return box[0]

    def _stop(self, thread: threading.Thread) -> None:
        router = self.fal_mock.router
        if router is None:
            return  # a live server: the thread is left to its own (daemon) fate
        router.tripwire = lambda request: StoppedByFuzzer(f"stopped at {request.url}")
        try:
            thread.join(5)
        finally:
            router.tripwire = None

    def _survivable(self, behaviour: ServerBehaviour) -> bool:
        engine = self.fal_mock._engine
        if engine is None:
            return False  # counters live in another process: do not guess
        hit: list[FaultRule] = [
            rule
            for rule, counted in zip(
                engine.faults.plan.rules, engine.faults.counters(), strict=True
            )
            if counted["hits"]
        ]
        return behaviour.survivable(hit, self.retried)


@dataclass(frozen=True)
class _Unfinished:
    why: str


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
