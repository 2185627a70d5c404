"""The pytest plugin (entry point ``pytest11: fal_mock``): fixtures, marker, options, header.

Loading it costs nothing: this module imports only pytest and the standard library (plus
:mod:`mock_server.targets`, which is standard library too). The fixtures import the app,
respx and the engine when a test first asks for one (:mod:`mock_server.pytest_fixtures`).

* ``fal_mock``: fal's hosts routed into the mock in-process; fal-client (sync and async) and
  any httpx client work unmodified, with no network and no key.
* ``fal_mock_server``: a live server on a free port (one per session and xdist worker, reset
  for each test), for other HTTP clients, subprocesses and the JS client.
* ``@pytest.mark.fal_mock(policy=..., seed=..., engine=..., faults=..., checks=...)``: set up
  the mock for a test; keywords merge test > class > module, the closest one winning.
* Options (group ``fal-mock``): ``--fal-mock-seed``, ``--fal-mock-no-checks``,
  ``--fal-target``.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import pytest

from mock_server.targets import Target, TargetError

if TYPE_CHECKING:
    from mock_server.pytest_fixtures import FalMock
    from mock_server.pytest_live import FalMockServer, LiveSession

__all__ = [
    "MARKER",
    "MARKER_KEYS",
    "FalMockConfig",
    "fal_mock",
    "fal_mock_server",
    "marker_options",
]

MARKER: Final = "fal_mock"
MARKER_KEYS: Final = ("policy", "seed", "engine", "faults", "checks")
MARKER_HELP: Final = (
    "fal_mock(policy=..., seed=..., engine=..., faults=..., checks=...): set up the fal mock "
    "for this test; keywords merge test > class > module. policy: polls:N (default polls:1), "
    "virtual, realtime or immediate; seed: fixes request ids, timings and output bytes "
    "(default 0, or --fal-mock-seed); engine: placeholder (default) or reference; faults: a "
    "contracts.faults.FaultPlan, or its dict or JSON; checks: False to skip the contract "
    "checks at teardown, or a dict of contracts.checks.CheckOptions."
)

OPTION_SEED: Final = "--fal-mock-seed"
OPTION_NO_CHECKS: Final = "--fal-mock-no-checks"
OPTION_TARGET: Final = "--fal-target"


@dataclass(frozen=True, slots=True)
class FalMockConfig:
    """The run-wide settings, from the command line (kept in ``config.stash``)."""

    seed: int | None
    checks: bool
    target: Target

    def header(self) -> list[str]:
        seed = "0 (default)" if self.seed is None else str(self.seed)
        checks = "on" if self.checks else f"off ({OPTION_NO_CHECKS})"
        return [
            f"fal-mock: {'target ' if self.target.remote else ''}{self.target.describe()}",
            f"fal-mock: seed {seed}, contract checks at teardown {checks}",
        ]


CONFIG_KEY: Final = pytest.StashKey[FalMockConfig]()
CALL_PASSED_KEY: Final = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fal-mock", "fal-lipsync-mock (fixtures fal_mock, fal_mock_server)")
    group.addoption(
        OPTION_SEED,
        type=int,
        default=None,
        metavar="N",
        help="Seed of the fal mock for every test whose marker names none (default 0): "
        "request ids, timings, log lines and output bytes follow from it.",
    )
    group.addoption(
        OPTION_NO_CHECKS,
        action="store_true",
        default=False,
        help="Do not run the contract checks at fixture teardown.",
    )
    group.addoption(
        OPTION_TARGET,
        default=None,
        metavar="URL",
        help="Send the fixtures' fal traffic to another server instead of the in-process mock: "
        "'fal' (fal itself; needs FAL_KEY), a fal-mock server URL (fal's hosts as /queue, "
        "/run, /rest, /cdn), or a proxy URL ending in /api/fal/proxy (x-fal-target-url).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    try:
        target = Target.parse(config.getoption(OPTION_TARGET))
    except TargetError as exc:
        raise pytest.UsageError(str(exc)) from None
    if target.kind == "fal" and not (os.environ.get("FAL_KEY") or os.environ.get("FAL_KEY_ID")):
        raise pytest.UsageError(f"{OPTION_TARGET}=fal sends real requests: set FAL_KEY first")
    config.stash[CONFIG_KEY] = FalMockConfig(
        seed=config.getoption(OPTION_SEED),
        checks=not config.getoption(OPTION_NO_CHECKS),
        target=target,
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    return config.stash[CONFIG_KEY].header() if CONFIG_KEY in config.stash else []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember whether the test body passed: teardown checks only add news to a pass."""
    report = yield
    if report.when == "call":
        item.stash[CALL_PASSED_KEY] = report.passed
    return report


def marker_options(item: pytest.Item) -> dict[str, Any]:
    """The ``fal_mock`` marker's keywords, merged test > class > module (closest wins)."""
    merged: dict[str, Any] = {}
    for marker in item.iter_markers(MARKER):  # closest first
        if marker.args:
            pytest.fail(
                f"@pytest.mark.{MARKER} takes keywords only ({', '.join(MARKER_KEYS)}), "
                f"got positional {marker.args!r}",
                pytrace=False,
            )
        unknown = sorted(set(marker.kwargs) - set(MARKER_KEYS))
        if unknown:
            pytest.fail(
                f"unknown @pytest.mark.{MARKER} keyword(s) {unknown}: "
                f"expected {', '.join(MARKER_KEYS)}",
                pytrace=False,
            )
        for key, value in marker.kwargs.items():
            merged.setdefault(key, value)
    return merged


def plugin_config(config: pytest.Config) -> FalMockConfig:
    return config.stash[CONFIG_KEY]


def call_passed(item: pytest.Item) -> bool:
    return item.stash.get(CALL_PASSED_KEY, False)


@pytest.fixture
def fal_mock(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[FalMock]:
    """fal's hosts routed into an in-process mock for this test (or to ``--fal-target``).

    fal-client (sync and async) and any httpx client reach it unmodified; a request to any
    other host raises ``mock_server.inprocess.UnmockedHostError``. The handle shows the
    journal and status histories and sets policy, seed, engine, faults and the clock."""
    from mock_server.pytest_fixtures import in_process_mock

    yield from in_process_mock(request, monkeypatch)


@pytest.fixture(scope="session")
def _fal_mock_live_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSession]:
    from mock_server.pytest_live import live_session

    yield from live_session(tmp_path_factory)


@pytest.fixture
def fal_mock_server(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FalMockServer]:
    """A live mock on a free port (one per session, reset for each test): ``base_url``,
    ``env`` for subprocesses, ``pointed()`` for fal-client, ``js_config`` for @fal-ai/client.
    """
    from mock_server.pytest_live import live_mock

    yield from live_mock(request, monkeypatch)
