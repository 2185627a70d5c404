"""The bounded load test: ``python -m bench.load [--smoke] [--json OUT]`` (nox session ``load``).

Loopback only, and it stops by itself: a hard deadline (``--deadline``, 600 s) after which it
reports what it has and exits non-zero. It starts ``fal-mock serve`` as a real process on a free
port (realtime policy, queue 0.05-0.3 s, inference 0.05-0.3 s, 256 runners, the placeholder
engine, ``--result-retention 60``), pinned to one core, with the clients on the other; then runs
two rounds of load (``load_driver``): 200 concurrent clients running 2,000 full lifecycles (a
quarter of them stream their status over SSE) while 500 more SSE status streams stay open on
requests that do not move until they are cancelled at the end of the round.

Exit 0 only when every check passes, in every round: every lifecycle completed; no request lost
(each id a submit gave out is answered, reaches COMPLETED, and is still listed by ``GET
/_mock/requests`` until its retention can have passed); no 5xx (none are injected); every held
stream open through the load and COMPLETED after its cancel; every answer as the contract says;
every request forgotten once its retention passed; within the deadline; and memory flat: after
round 1's results have expired, round 2 (the same load again) peaks no higher in the server's
RSS (``VmRSS``, sampled every 0.5 s) than round 1 did, within a stated tolerance. Figures are
printed as a table and, with ``--json OUT``, written as JSON; they are read, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Final

import httpx

from bench.load_driver import AUTH, run_round
from bench.load_model import Plan, RoundReport
from bench.load_report import (
    FULL,
    INFERENCE_TIME,
    QUEUE_DELAY,
    RUNNERS,
    SMOKE,
    Results,
    Session,
    figures,
    judge,
    table,
)
from bench.load_server import MemorySampler, MockProcess

__all__ = ["FULL", "SMOKE", "Session", "main", "run"]

CLIENT: Final = "bench.load_http, one keep-alive connection per client"
_STARTED: list[MockProcess] = []
"""Servers this process started: the watchdog stops them before it gives up."""


def server_settings(session: Session) -> tuple[list[str], dict[str, str]]:
    """``fal-mock serve``'s flags, and the ``FAL_MOCK_*`` settings it has no flag for."""
    args = ["--policy", "realtime", "--engine", "placeholder", "--seed", "0"]
    args += ["--runners", str(RUNNERS), "--result-retention", f"{session.retention:g}"]
    env = {
        "FAL_MOCK_QUEUE_DELAY": json.dumps(list(QUEUE_DELAY)),
        "FAL_MOCK_INFERENCE_TIME": json.dumps(list(INFERENCE_TIME)),
    }
    return args, env


def cpu_plan() -> tuple[int | None, int | None]:
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return (cores[0], cores[1]) if len(cores) >= 2 else (None, None)


# -- the session ------------------------------------------------------------------------------


async def _state(client: httpx.AsyncClient, base_url: str) -> dict[str, Any]:
    answer = await client.get(f"{base_url}/_mock/state")
    answer.raise_for_status()
    state: dict[str, Any] = answer.json()
    return state


async def _cross_check(
    client: httpx.AsyncClient, base_url: str, report: RoundReport, retention: float | None
) -> None:
    """The server's own list (``GET /_mock/requests``): every id it still keeps is COMPLETED,
    and none is forgotten before its time. Retention counts from when a request completed on
    the server, which was after the client last sent a request answered "not yet"
    (``pending_at``): until that plus the retention, the server must list it; with no known
    retention, it must list every id."""
    answer = await client.get(f"{base_url}/_mock/requests", timeout=120)
    answer.raise_for_status()
    known = {r["request_id"]: r["status"] for r in answer.json()["requests"]}
    now = time.perf_counter()
    keep_for = math.inf if retention is None else retention
    for request_id, kind in report.submitted.items():
        status = known.get(request_id)
        seen, pending = report.completed.get(request_id), report.pending_at.get(request_id, 0.0)
        if status is None and (seen is None or now - pending < keep_for):
            age = "never seen COMPLETED" if seen is None else (
                f"not COMPLETED {now - pending:.1f} s ago, seen COMPLETED {now - seen:.1f} s ago"
            )  # fmt: skip
            report.lost.add(request_id)
            report.fail("lost", f"{kind} request {request_id} not known to the server ({age})")
        elif status is not None and status != "COMPLETED":
            report.fail("incomplete", f"{kind} request {request_id} is {status} on the server")


EXPIRY_SLACK: Final = 30.0
"""How long past the retention the session waits for the server to forget a round."""
PROBE: Final = "/queue/fal-ai/lipsync/requests/00000000-0000-4000-8000-000000000000/status"
"""A status poll for an id nobody has: answered 404, but the engine catches up (and forgets
what is past its retention) on every call, and ``/_mock/state`` alone does not call it."""


async def _settle(
    client: httpx.AsyncClient,
    base_url: str,
    session: Session,
    retention: float | None,
    slack: float = EXPIRY_SLACK,
) -> bool:
    """With retention: until the server has forgotten every request (at most retention + slack;
    False if it did not). Without: a moment's quiet."""
    if retention is None:
        await asyncio.sleep(1.0)
        return True
    give_up = time.perf_counter() + retention + slack
    while time.perf_counter() < give_up:  # polled: the server has no way to say "forgotten"
        await client.get(f"{base_url}{PROBE}")
        if not (await _state(client, base_url))["requests"]:
            return True
        await asyncio.sleep(0.5)
    return False


async def _session(
    results: Results, base_url: str, server: MockProcess | None, retention: float | None
) -> None:
    session = results.session
    sampler = MemorySampler(server) if server is not None else None
    sampling = asyncio.create_task(sampler.run()) if sampler is not None else None
    deadline = asyncio.timeout(session.deadline)
    try:
        async with deadline, httpx.AsyncClient(headers=AUTH) as client:
            # One lifecycle first: the placeholder engine renders its mp4 (and imports PyAV) on
            # the first completion, once per server; it belongs before the baseline.
            warm = await run_round(base_url, Plan(clients=1, lifecycles=1, held_streams=0))
            if not warm.passed:
                raise RuntimeError(f"the warm-up lifecycle failed: {warm.failures}")
            await asyncio.sleep(1.0)
            if sampler is not None:
                results.memory["before"] = sampler.sample()
            for number in range(1, session.rounds + 1):
                await _round(results, number, client, base_url, server, sampler, retention)
    except TimeoutError:
        if not deadline.expired():
            raise
        results.deadline_hit = True
        if results.rounds:
            results.rounds[-1].fail("deadline", f"the {session.deadline:g} s deadline passed")
    finally:
        if sampling is not None:
            sampling.cancel()
        if sampler is not None:
            for number in range(1, len(results.rounds) + 1):
                for phase in ("", " opening", " lifecycles", " cancelling"):
                    peak = sampler.peak(f"round {number}{phase}")
                    results.memory[f"round {number}{phase} peak"] = peak
            results.meta["rss_samples"] = [asdict(s) for s in sampler.samples]
            results.meta["rss_series"] = [asdict(s) for s in sampler.series(5.0)]


async def _round(
    results: Results,
    number: int,
    client: httpx.AsyncClient,
    base_url: str,
    server: MockProcess | None,
    sampler: MemorySampler | None,
    retention: float | None,
) -> None:
    """One round of load, its cross-check, and the wait until its results are forgotten."""
    report = RoundReport(results.session.plan)
    results.rounds.append(report)

    def on_phase(phase: str) -> None:
        if sampler is not None:
            sampler.phase = f"round {number} {phase}"
            sampler.sample()  # at least one sample in each phase, however short

    cpu = server.cpu_seconds() if server is not None else 0.0
    mine, started = time.process_time(), time.perf_counter()
    try:
        await run_round(base_url, results.session.plan, report, on_phase)
    finally:  # also when the deadline cuts the round short: what it measured is reported
        wall = time.perf_counter() - started
        usage = {"wall_s": wall, "client_cpu_use": (time.process_time() - mine) / wall}
        if server is not None and server.alive():
            usage["server_cpu_s"] = server.cpu_seconds() - cpu
            usage["server_cpu_use"] = usage["server_cpu_s"] / wall
        results.usage.append(usage)
    await _cross_check(client, base_url, report, retention)
    results.stored.append({"after": f"round {number}", **await _state(client, base_url)})
    measuring = sampler is not None and results.session.memory_check
    if number == results.session.rounds and not measuring:
        return  # nothing follows, and no memory to measure once it expired
    if sampler is not None:
        sampler.phase = f"after round {number}"
    results.expired[number] = await _settle(client, base_url, results.session, retention)
    results.stored.append({"after": f"expiry {number}", **await _state(client, base_url)})
    if sampler is not None:
        results.memory[f"after round {number}"] = sampler.sample()


def run(session: Session, base_url: str | None = None) -> Results:
    """Start a server (unless ``base_url`` names one), run the session, judge it. The retention
    is the session's on a server started here; on another, it is unknown: no id may then be
    missing from its list right after a round, and nothing waits for results to expire."""
    results = Results(session)
    server_cpu, client_cpu = cpu_plan() if session.pin and base_url is None else (None, None)
    _raise_fd_limit()  # the server inherits it: 700 sockets and more
    affinity = os.sched_getaffinity(0) if client_cpu is not None else None
    server: MockProcess | None = None
    retention: float | None = None
    try:
        if base_url is None:
            if session.plan.lifecycle_timeout > session.retention:
                raise ValueError("the retention must be at least the lifecycle timeout")
            args, env = server_settings(session)
            retention = session.retention
            server = MockProcess(args, env, cpu=server_cpu)
            _STARTED.append(server)
            server.start()
            base_url = server.base_url
            results.meta["server"] = {"command": server.command, "env": env}
        results.meta.update(
            session=session.name, base_url=base_url, server_cpu=server_cpu, client_cpu=client_cpu,
            plan=asdict(session.plan), client=CLIENT, retention=retention,
            load_average_before=os.getloadavg(),
        )  # fmt: skip
        if client_cpu is not None:
            os.sched_setaffinity(0, {client_cpu})
        asyncio.run(_session(results, base_url, server, retention))
        results.meta["load_average_after"] = os.getloadavg()
        if server is not None and not server.alive():
            results.checks.append(("the server kept running", False, server.log()))
    finally:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
        if server is not None:
            server.stop()
    judge(results, memory=server is not None and session.memory_check)
    return results


def _raise_fd_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="20 clients, 100 lifecycles, 20 held")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures here")
    parser.add_argument("--base-url", help="load this server instead of starting one (no RSS)")
    parser.add_argument("--clients", type=int)
    parser.add_argument("--lifecycles", type=int)
    parser.add_argument("--held", type=int, help="held SSE streams")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--deadline", type=float, help="seconds before it gives up (600)")
    parser.add_argument("--retention", type=float, help="result retention given to the server")
    args = parser.parse_args(argv)
    session = SMOKE if args.smoke else FULL
    plan_changes = {k: v for k, v in (("clients", args.clients), ("lifecycles", args.lifecycles),
                                      ("held_streams", args.held)) if v is not None}  # fmt: skip
    session = replace(session, plan=replace(session.plan, **plan_changes))
    changes = {k: v for k, v in (("rounds", args.rounds), ("deadline", args.deadline),
                                 ("retention", args.retention)) if v is not None}  # fmt: skip
    session = replace(session, **changes)
    watchdog = threading.Timer(session.deadline + 90, _give_up, (session.deadline,))
    watchdog.daemon = True
    watchdog.start()
    try:
        results = run(session, args.base_url)
    except (RuntimeError, ValueError) as problem:  # no server, a failed warm-up, bad options
        print(f"load test: {problem}", file=sys.stderr)
        return 2
    finally:
        watchdog.cancel()
    print("\n".join(table(results)), flush=True)
    if args.json is not None:
        data = {"meta": results.meta, "rounds": figures(results), "memory": results.memory,
                "stored": results.stored,
                "checks": [{"name": n, "passed": ok, "detail": d} for n, ok, d in results.checks],
                "passed": results.passed}  # fmt: skip
        args.json.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return 0 if results.passed else 1


def _give_up(deadline: float) -> None:
    """The backstop: the session's own deadline did not end it (something would not cancel)."""
    print(f"load test: still running 90 s past its {deadline:g} s deadline; giving up",
          file=sys.stderr, flush=True)  # fmt: skip
    for server in _STARTED:
        if server.alive():
            server.process.kill()  # type: ignore[union-attr]  # alive: it has a process
    os._exit(3)


if __name__ == "__main__":
    raise SystemExit(main())
