"""One entry point for every check: ``nox`` runs tests, lint, typecheck, the spec check and
the packaging check; ``nox -s bench`` runs the benchmarks; ``nox -s load`` the load test;
``nox -s contract`` the contract run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "openapi", "package"]
nox.options.reuse_existing_virtualenvs = True

JS_HARNESS = "tests/e2e/js"


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite, with the official clients (fal-client from PyPI, @fal-ai/client from npm)."""
    session.install("-e", ".[test]")
    if shutil.which("npm"):
        session.run("npm", "ci", "--prefix", JS_HARNESS, "--no-audit", "--no-fund", external=True)
    else:
        session.warn("npm not found: the @fal-ai/client tests will be skipped")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[test]", "mypy>=1.11", "types-PyYAML")
    session.run("mypy")


@nox.session
def openapi(session: nox.Session) -> None:
    """Check that openapi.yaml matches the models; ``nox -s openapi -- write`` regenerates it."""
    session.install("-e", ".")
    if session.posargs == ["write"]:
        session.run("fal-mock", "openapi")
    else:
        session.run("fal-mock", "openapi", "--check")


@nox.session
def bench(session: nox.Session) -> None:
    """Speed and memory benchmarks (``bench/``): figures and ratios against same-run baselines.

    Not in the default sessions: it takes minutes and its figures are read, not asserted.
    ``nox -s bench -- --quick`` is a smoke run; ``-- --json-dir DIR`` keeps the figures;
    ``-- --only server`` runs one. ``BENCH_LANDMARKS=1`` adds the opt-in "landmarks" extra, so
    its tracker is measured too. The server benchmarks use ``wrk`` when it is on PATH (else
    their own Python load generator) and measure Prism when ``npx`` can fetch it.
    """
    extra = "[landmarks]" if os.environ.get("BENCH_LANDMARKS") == "1" else ""
    # respx: the in-process benchmark routes fal's hosts into the app as the plugin will.
    session.install("-e", f".{extra}", "respx>=0.21")
    session.run("python", "-m", "bench", *session.posargs)


@nox.session
def load(session: nox.Session) -> None:
    """The bounded load test (``bench/load.py``): ``fal-mock serve`` as a process, 200 clients
    running 2,000 full lifecycles per round plus 500 held SSE streams, two rounds with result
    retention expiring between them; prints its figures and exits non-zero on any lost request,
    unexpected 5xx, unfinished lifecycle or memory growth.

    Not in the default sessions: it takes minutes and uses both cores (the test run has a small
    version, tests/test_load_smoke.py). ``nox -s load -- --smoke`` is that small version;
    ``-- --json OUT`` keeps the figures; ``-- --base-url URL`` loads a server already running.
    """
    session.install("-e", ".")
    session.run("python", "-m", "bench.load", *session.posargs)


@nox.session
def contract(session: nox.Session) -> None:
    """``fal-mock check``: schemathesis (positive, negative, stateful through the spec's links,
    all checks) and the lifecycle checks, JUnit XML in junit-contract.xml.

    Against a live mock started here (``FAL_MOCK_*`` settings apply), or against any server:
    ``nox -s contract -- --base-url URL [--key KEY]``; other arguments go to ``fal-mock check``.
    Not in the default sessions: the test suite already runs it on small budgets.
    """
    session.install("-e", ".[test]")
    args = list(session.posargs)
    if not any(arg.split("=")[0] == "--junit" for arg in args):
        args += ["--junit", "junit-contract.xml"]
    if any(arg.split("=")[0] == "--base-url" for arg in args):
        session.run("fal-mock", "check", *args)
    else:
        session.run("python", "-c", CHECK_LOCAL_MOCK, *args)


CHECK_LOCAL_MOCK = """
import sys
from mock_server.cli import main
from mock_server.testing import LiveServer
with LiveServer() as live:
    sys.exit(main(["check", "--base-url", live.base_url, *sys.argv[1:]]))
"""


@nox.session
def package(session: nox.Session) -> None:
    """Build the wheel and install it (not editable) in a fresh venv: what users get."""
    tmp = session.create_tmp()
    session.run("python", "-m", "pip", "wheel", "--no-deps", "--wheel-dir", tmp, ".")
    wheels = sorted(Path(tmp).glob("fal_lipsync_mock-*.whl"))
    session.install(str(wheels[-1]))
    session.run("fal-mock", "--help", silent=True)
    session.run("python", "-c", CHECK_WHEEL, silent=True)


CHECK_WHEEL = """
import importlib.resources as r, contracts, mock_server
from mock_server.app import create_app
assert r.files("contracts").joinpath("py.typed").is_file()
assert r.files("mock_server").joinpath("py.typed").is_file()
create_app()
"""
