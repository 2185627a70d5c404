"""The load test (``bench.load``), small: it passes on the real mock, and each check fires on a
server broken to fail it.

Correctness only: the smoke session asserts no request lost, no 5xx, every lifecycle and held
stream complete, never how fast (the full session, ``nox -s load``, prints the figures). The
broken servers are middleware around a live mock in a thread (``tests.broken_servers``), driven
through ``--base-url`` like any other server.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench import load
from bench.load_model import Plan, RoundReport
from bench.load_report import SMOKE, Results, memory_check
from mock_server.settings import MockSettings
from mock_server.testing import LiveServer
from tests.broken_servers.harness import (
    APP,
    AUTH,
    LIPSYNC_INPUT,
    STATUS_PATH,
    STREAM_PATH,
    SUBMIT_PATH,
    ASGIApp,
    ResponseRewriter,
    rewriting_json,
    serve,
)

SMALL = replace(
    SMOKE,
    plan=Plan(clients=8, lifecycles=24, held_streams=4, lifecycle_timeout=10, open_timeout=20),
)
"""Against the broken servers: enough lifecycles that every breakage is met a few times
(timeouts generous: a busy machine must not add failures the tests do not expect)."""
WARM_UP_ANSWERS = 10
"""The session's warm-up lifecycle comes first and must pass: the breakers leave it alone."""


def test_smoke_session_passes_on_the_real_mock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m bench.load --smoke``: fal-mock serve as a process, 20 clients, 100
    lifecycles, 20 held streams."""
    out = tmp_path / "load.json"
    assert load.main(["--smoke", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "PASSED" in printed and "FAIL " not in printed
    figures = json.loads(out.read_text())
    assert figures["passed"] is True
    assert all(check["passed"] for check in figures["checks"]) and len(figures["checks"]) >= 7
    (round_,) = figures["rounds"]
    plan = SMOKE.plan
    assert round_["lifecycles_completed"] == plan.lifecycles
    assert round_["lifecycles_streamed"] == plan.lifecycles * plan.sse_share
    assert round_["held_streams_opened"] == round_["held_streams_completed"] == plan.held_streams
    assert round_["requests_lost"] == 0 and round_["answers_5xx"] == 0
    codes = round_["codes"]
    assert codes["submit"] == {"200": plan.lifecycles + plan.held_streams}
    assert codes["file"] == {"200": plan.lifecycles}
    assert codes["cancel"] == {"202": plan.held_streams}


def failing(results: Results) -> dict[str, str]:
    """The failed checks, by name without the round prefix, with what they found."""
    return {
        re.sub(r"^round \d+: ", "", name): found for name, ok, found in results.checks if not ok
    }


def run_against(wrap: Callable[[ASGIApp], ASGIApp], session: load.Session = SMALL) -> Results:
    with serve(wrap) as served:
        return load.run(session, base_url=served.base_url)


def status_500_every_7th() -> Callable[[ASGIApp], ASGIApp]:
    answers = 0

    def rewrite(scope: dict[str, Any], status: int, body: bytes) -> tuple[int, bytes]:
        nonlocal answers
        answers += 1
        if answers > WARM_UP_ANSWERS and answers % 7 == 0:
            return 500, b'{"detail":"broken on purpose"}'
        return status, body

    return lambda app: ResponseRewriter(app, STATUS_PATH, rewrite)


def drops_every_5th_submit() -> Callable[[ASGIApp], ASGIApp]:
    """Answers every 5th submit with an id the server never heard of: the request is lost."""
    submits = 0

    def change(request_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
        nonlocal submits
        submits += 1
        if submits % 5:
            return None
        lost = str(uuid.uuid4())
        return {k: v.replace(body["request_id"], lost) if isinstance(v, str) else v
                for k, v in body.items()}  # fmt: skip

    return rewriting_json(SUBMIT_PATH, change)


def never_completes_every_5th() -> Callable[[ASGIApp], ASGIApp]:
    """Polled status of every 5th request to complete stays IN_PROGRESS forever."""
    completed: list[str] = []

    def change(request_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
        if body.get("status") != "COMPLETED":
            return None
        if request_id not in completed:
            completed.append(request_id)
        if completed.index(request_id) % 5 != 4:
            return None
        return {**{k: body[k] for k in ("request_id", "response_url", "status_url", "cancel_url")},
                "status": "IN_PROGRESS", "logs": None}  # fmt: skip

    return rewriting_json(STATUS_PATH, change)


def streams_end_after_first_event(app: ASGIApp) -> ASGIApp:
    """Every status stream closes right after its first event, whatever the request's state."""

    async def middleware(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not STREAM_PATH.match(scope["path"]):
            await app(scope, receive, send)
            return
        ended = False

        async def cut(message: dict[str, Any]) -> None:
            nonlocal ended
            if ended:
                return  # what the app still sends goes nowhere
            if message["type"] == "http.response.body" and message.get("body"):
                message = {**message, "more_body": False}
                ended = True
            await send(message)

        await app(scope, receive, cut)

    return middleware


def test_unexpected_5xx_fail_the_session() -> None:
    failed = failing(run_against(status_500_every_7th()))
    assert "500: " in failed["no 5xx (none injected)"]
    assert "every lifecycle completed" in failed


def test_lost_requests_fail_the_session() -> None:
    failed = failing(run_against(drops_every_5th_submit()))
    assert "answered 404" in failed["no request lost"]
    assert "every submitted request reached COMPLETED" in failed
    assert "no 5xx (none injected)" not in failed


def test_a_lifecycle_that_never_completes_fails_the_session() -> None:
    session = replace(SMALL, plan=replace(SMALL.plan, lifecycle_timeout=2))
    failed = failing(run_against(never_completes_every_5th(), session))
    assert "not done in 2 s" in failed["every lifecycle completed"]
    assert set(failed) <= {"every lifecycle completed", "every submitted request reached COMPLETED"}


def test_held_streams_that_close_early_fail_the_session() -> None:
    failed = failing(run_against(streams_end_after_first_event))
    assert (
        "closed before cancel"
        in failed["every held stream open through the load, COMPLETED after its cancel"]
    )


def test_the_deadline_stops_the_session_and_fails_it() -> None:
    """A session stops by itself at its deadline and reports what it has."""
    session = replace(SMALL, deadline=2.0, plan=replace(SMALL.plan, lifecycle_timeout=60))
    results = run_against(never_completes_every_5th(), session)
    assert results.deadline_hit and not results.passed
    assert "deadline passed" in failing(results)["within the deadline"]


def test_main_exits_non_zero_with_the_failures_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with serve(status_500_every_7th()) as served:
        argv = ["--smoke", "--base-url", served.base_url, "--lifecycles", "24", "--clients", "8"]
        assert load.main([*argv, "--held", "4"]) == 1
    printed = capsys.readouterr().out
    assert "FAIL  round 1: no 5xx (none injected): " in printed and printed.endswith("FAILED\n")


def test_memory_check_fails_on_growth_beyond_its_tolerance() -> None:
    flat = {"before": 100.0, "round 1 peak": 200.0, "round 2 peak": 209.0}
    assert memory_check(flat, 2)[1]  # tolerance: 10 % of round 1's 100 MiB
    grown = {**flat, "round 2 peak": 211.0}
    _, ok, found = memory_check(grown, 2)
    assert not ok and "+11.0 MiB; tolerance 10.0 MiB" in found


def test_requests_kept_past_their_retention_are_reported() -> None:
    """The wait for expiry gives up, and says so, on a server that keeps a completed request
    past the retention the session expects (the server's own is an hour)."""
    session = replace(SMALL, retention=0.2)
    with LiveServer(MockSettings(port=0, policy="immediate")) as live:
        submitted = httpx.post(f"{live.base_url}/queue/{APP}", json=LIPSYNC_INPUT, headers=AUTH)
        status = httpx.get(submitted.json()["status_url"], headers=AUTH)
        assert status.json()["status"] == "COMPLETED"

        async def settle() -> bool:
            async with httpx.AsyncClient() as client:
                return await load._settle(client, live.base_url, session, 0.2, slack=0.5)

        assert asyncio.run(settle()) is False


def test_cross_check_reports_ids_the_server_does_not_know() -> None:
    report = RoundReport(SMALL.plan)
    report.submitted["never-submitted"] = "poll"
    with LiveServer(MockSettings(port=0, policy="polls:1")) as live:

        async def check() -> None:
            async with httpx.AsyncClient() as client:
                await load._cross_check(client, live.base_url, report, retention=None)

        asyncio.run(check())
    assert report.failed("lost") == 1
    assert "not known to the server (never seen COMPLETED)" in report.failures["lost"].examples[0]
