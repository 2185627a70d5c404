"""The handles the plugin's fixtures give a test, and the fixtures' setup and teardown.

Imported by :mod:`mock_server.pytest_plugin` when a test first asks for a fixture, so the web
stack, respx and the engine load only then.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

import httpx
import pytest

from contracts.faults import FaultPlan
from contracts.transcript import StatusPoint, Transcript
from mock_server.controls import Control, EngineControl, NoControl, remote_control
from mock_server.engine.jobs import HistoryEntry
from mock_server.engine.journal import JournalEntry
from mock_server.pytest_plugin import (
    FalMockConfig,
    call_passed,
    marker_options,
    plugin_config,
)
from mock_server.targets import Target

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mock_server.engine.queue import QueueEngine
    from mock_server.inprocess import FalRouter
    from mock_server.recording import Recorder
    from mock_server.webhooks.handle import WebhookHandle

__all__ = ["FalMock", "in_process_mock"]

MOCK_KEY: Final = "fal-mock-key"
"""``FAL_KEY`` for a test that has none: the mock accepts any non-empty key."""

DEFAULTS: Final[dict[str, Any]] = {
    "policy": "polls:1",
    "seed": 0,
    "engine": "placeholder",
    "faults": None,
    "checks": True,
}


class FalMock:
    """What a test sees of the mock, and the knobs it turns (both fixtures)."""

    def __init__(
        self,
        control: Control,
        target: Target,
        *,
        engine: QueueEngine | None = None,
        router: FalRouter | None = None,
        recorder: Recorder | None = None,
        checks: bool | Mapping[str, Any] = True,
    ) -> None:
        self._control = control
        self.target = target
        """Where the traffic goes (``kind`` ``inprocess``, ``fal``, ``mock`` or ``proxy``)."""
        self._engine = engine
        self.router = router
        """The respx router (``fal_mock`` only): add routes for other hosts a test uses."""
        self._recorder = recorder
        self.checks = checks
        """Whether (and with which ``CheckOptions``) teardown runs the contract checks."""

    # -- what happened -----------------------------------------------------------------------

    @property
    def engine(self) -> QueueEngine:
        """The mock's engine, in this process (not against a ``--fal-target``)."""
        if self._engine is None:
            pytest.skip(f"fal_mock: the engine is not in this process ({self.target.describe()})")
        return self._engine

    @property
    def journal(self) -> list[JournalEntry]:
        """Every exchange the mock saw on fal's hosts (request and response), oldest first."""
        return self._control.journal()

    def history(self, request_id: str) -> list[HistoryEntry]:
        """The request's status history, as the mock recorded it."""
        entries = self._control.history(request_id)
        if entries is None:
            raise KeyError(f"the mock knows no request {request_id!r}")
        return entries

    @property
    def request_ids(self) -> list[str]:
        """Every request the mock knows, oldest first."""
        return self._control.request_ids()

    @property
    def webhooks(self) -> WebhookHandle:
        """The webhooks the mock sent (deliveries, attempts), its inbox (``inbox_url``,
        ``received``) and signature checks against its JWKS (``verify``)."""
        from mock_server.webhooks import webhooks_of
        from mock_server.webhooks.handle import WebhookHandle

        service = webhooks_of(self.engine)
        if service is None:
            pytest.skip("fal_mock: this mock's engine sends no webhooks")
        return WebhookHandle(service)

    @property
    def escaped(self) -> list[str]:
        """``METHOD URL`` of each request stopped because its host is not fal's."""
        return [] if self.router is None else self.router.escaped

    def transcript(self) -> Transcript:
        """The wire transcript the contract checks read: the mock's own journal in this
        process; against a ``--fal-target``, what the client side recorded."""
        if self._engine is not None:
            from mock_server.checking import transcript_of

            return transcript_of(self._engine)
        if self._recorder is None:
            pytest.skip(f"fal_mock_server records nothing against {self.target.describe()}")
        histories: dict[str, tuple[StatusPoint, ...]] = {}
        if not isinstance(self._control, NoControl):
            for request_id in self._control.request_ids():
                points = self._control.history(request_id) or []
                histories[request_id] = tuple(
                    StatusPoint(p.status, p.queue_position, p.time) for p in points
                )
        return self._recorder.transcript(histories)

    # -- knobs ----------------------------------------------------------------------------------

    def set_policy(self, policy: str) -> None:
        """``polls:N``, ``virtual``, ``realtime`` or ``immediate``, for new requests."""
        self._control.set_policy(policy)

    def set_seed(self, seed: int) -> None:
        """Start again from ``seed``: requests, files and the journal are forgotten."""
        self._control.reset(seed=seed)

    def set_engine(self, engine: str) -> None:
        """``placeholder`` or ``reference``; like a reset, forgets every request."""
        self._control.reset(engine=engine)

    def set_faults(self, plan: FaultPlan | Mapping[str, Any] | str | None) -> None:
        """Faults for what follows: a ``contracts.faults.FaultPlan``, its dict or JSON, or
        None for none."""
        self._control.set_faults(as_fault_plan(plan))

    def advance(self, seconds: float) -> float:
        """Move the virtual clock forward (the ``virtual`` policy); answers the new time."""
        return self._control.advance(seconds)

    def reset(self) -> None:
        """Forget every request, file and journal entry; seed, policy and engine stay."""
        self._control.reset()

    def fuzz(self, client: Callable[[], Any], **options: Any) -> None:
        """Run ``client()`` against every server behaviour the contract allows (hypothesis):
        it must finish, survive the faults its retries ride over, and keep every contract
        check. Raises the shrunk failure with a replay seed. Options: ``max_examples``,
        ``seed``, ``replay``, ``behaviours``, ``budget``, ``retried``, ``checks`` (see
        ``mock_server.fuzzing.fuzz_client``)."""
        from mock_server.fuzzing import fuzz_client

        fuzz_client(self, client, **options)

    def check(self, **options: Any) -> None:
        """Run the contract checks now (keywords: ``contracts.checks.CheckOptions``); raises
        ``contracts.checks.ContractViolation`` listing every failure."""
        from contracts.checks import CheckOptions, OutputFileTools, check_all
        from mock_server.checking import check_mock, probe_media, score_sync

        check_options = CheckOptions(**options)
        if self._engine is not None:
            check_mock(self._engine, check_options)
            return
        # Against a target, output files are downloaded the way the client would (routed and
        # recorded like any other request while the fixture is active).
        tools = OutputFileTools(
            fetch=lambda url: httpx.get(url, timeout=120, follow_redirects=True).content,
            probe=probe_media,
            score_sync=score_sync if check_options.sync_score else None,
        )
        check_all(self.transcript(), check_options, files=tools)

    # -- the fixture's side ---------------------------------------------------------------

    def apply(self, options: Mapping[str, Any]) -> None:
        """Set up for a test: the merged marker keywords over the defaults."""
        self._control.reset(
            seed=options["seed"], policy=options["policy"], engine=options["engine"]
        )
        # Always set, so faults a previous test left on a shared server are cleared; a target
        # with no control plane skips only a test that asks for faults.
        if options["faults"] is not None or not isinstance(self._control, NoControl):
            self.set_faults(options["faults"])

    def finish(self, item: pytest.Item) -> None:
        """Teardown: report escapes the code under test swallowed, then run the checks.
        Only after a passing test body: a failure already says what went wrong."""
        if not call_passed(item):
            return
        if self.escaped:
            pytest.fail(
                "fal_mock: requests to hosts that are not fal's were stopped (and the error "
                "was swallowed by the code under test):\n  " + "\n  ".join(self.escaped),
                pytrace=False,
            )
        if self.checks is False:
            return
        if isinstance(self._control, NoControl) and self._recorder is None:
            return
        self.check(**(dict(self.checks) if isinstance(self.checks, Mapping) else {}))


def as_fault_plan(plan: FaultPlan | Mapping[str, Any] | str | None) -> FaultPlan:
    if plan is None:
        return FaultPlan.none()
    if isinstance(plan, FaultPlan):
        return plan
    if isinstance(plan, str):
        return FaultPlan.model_validate_json(plan)
    return FaultPlan.model_validate(dict(plan))


def test_options(item: pytest.Item, config: FalMockConfig) -> tuple[dict[str, Any], list[str]]:
    """Defaults < command line < marker (test > class > module); and the keywords that the
    marker set to steer the mock (meaningless on a server with no control plane)."""
    options = dict(DEFAULTS)
    if config.seed is not None:
        options["seed"] = config.seed
    marked = marker_options(item)
    options.update(marked)
    if not config.checks:
        options["checks"] = False
    _validate(options)
    return options, [key for key in ("policy", "seed", "engine", "faults") if key in marked]


def _validate(options: dict[str, Any]) -> None:
    """Refuse a bad marker value before anything starts, saying which and why."""
    from contracts.checks import CheckOptions
    from mock_server.controls import check_engine_name
    from mock_server.engine.policies import Policy

    def parse_checks(value: Any) -> Any:
        if isinstance(value, Mapping):
            CheckOptions(**value)
        elif not isinstance(value, bool):
            raise TypeError("expected True, False or a dict of CheckOptions")
        return value

    def parse_seed(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("expected an int")
        return value

    parsers: dict[str, Callable[[Any], Any]] = {
        "policy": lambda value: str(Policy.parse(value)),
        "seed": parse_seed,
        "engine": check_engine_name,
        "faults": lambda value: None if value is None else as_fault_plan(value),
        "checks": parse_checks,
    }
    for key, parse in parsers.items():
        try:
            options[key] = parse(options[key])
        except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            pytest.fail(f"fal_mock: {key}={options[key]!r} is refused: {exc}", pytrace=False)


def forget_fal_client_state() -> None:
    """fal-client caches credentials and httpx clients on its module-level clients; start
    each test from scratch (only if it was imported: importing it is not ours to do)."""
    module = sys.modules.get("fal_client")
    for client in (getattr(module, "sync_client", None), getattr(module, "async_client", None)):
        if client is None:
            continue
        cached = client.__dict__
        for name in ("_client", "_auth", "_token_manager"):
            value = cached.pop(name, None)
            if isinstance(value, httpx.Client):
                value.close()


def ensure_key(monkeypatch: pytest.MonkeyPatch, target: Target) -> None:
    if target.kind != "fal" and not os.environ.get("FAL_KEY"):
        monkeypatch.setenv("FAL_KEY", MOCK_KEY)


# -- fal_mock -------------------------------------------------------------------------------


def in_process_mock(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FalMock]:
    from mock_server.inprocess import FalRouter

    config = plugin_config(request.config)
    options, steering = test_options(request.node, config)
    router = FalRouter(config.target)
    with contextlib.ExitStack() as cleanup:
        if config.target.remote:
            handle = _routed_to_target(router, config.target, options, steering, cleanup)
        else:
            handle = _routed_to_app(router, options, cleanup)
        ensure_key(monkeypatch, config.target)
        forget_fal_client_state()
        cleanup.callback(forget_fal_client_state)
        router.start()
        cleanup.callback(router.stop)
        yield handle
        handle.finish(request.node)


def _routed_to_app(
    router: FalRouter, options: Mapping[str, Any], cleanup: contextlib.ExitStack
) -> FalMock:
    from mock_server.app import create_app
    from mock_server.asgi_bridge import AppThread, AsgiBridge
    from mock_server.inprocess import route_to_app
    from mock_server.settings import MockSettings

    app: FastAPI = create_app(MockSettings(policy=options["policy"], seed=options["seed"]))
    engine: QueueEngine = app.state.engine
    thread = AppThread()
    cleanup.callback(thread.stop)
    cleanup.callback(engine.reset)  # cancels real work still running (reference engine)
    route_to_app(router, AsgiBridge(app, thread))
    handle = FalMock(
        EngineControl(engine, "the in-process mock"),
        router.target,
        engine=engine,
        router=router,
        checks=options["checks"],
    )
    handle.apply(options)
    return handle


def _routed_to_target(
    router: FalRouter,
    target: Target,
    options: Mapping[str, Any],
    steering: list[str],
    cleanup: contextlib.ExitStack,
) -> FalMock:
    from mock_server.inprocess import TargetForwarder, route_to_target
    from mock_server.recording import Recorder

    control = remote_control(target)
    cleanup.callback(control.close)
    recorder = Recorder()
    forwarder = TargetForwarder(target, recorder)
    cleanup.callback(forwarder.close)
    route_to_target(router, forwarder)
    handle = FalMock(control, target, router=router, recorder=recorder, checks=options["checks"])
    apply_remote(handle, control, options, steering)
    return handle


def apply_remote(
    handle: FalMock, control: Control, options: Mapping[str, Any], steering: list[str]
) -> None:
    if not isinstance(control, NoControl):
        handle.apply(options)
    elif steering:
        control.skip(f"@pytest.mark.fal_mock({'=..., '.join(steering)}=...)")
