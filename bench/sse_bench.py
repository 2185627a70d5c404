"""SSE benchmark: many status streams held on one server worker, then state changes for all.

``python -m bench.sse_bench [--quick] [--json OUT] [--streams N] [--limit S]``

The mock (one uvicorn worker, pinned to one core) runs the ``virtual`` policy with a runner
for every job and exact durations (queue 1 s, inference 1 s), so each advance of the virtual
clock by 1 s through the control plane (``POST /_mock/clock/advance``) moves every job one state
on at once: IN_QUEUE -> IN_PROGRESS, then -> COMPLETED, after which each stream closes. The
client, in this process on the other core, opens N streams
(``GET /queue/fal-ai/lipsync/requests/{id}/status/stream``), holds them, then times every
event from the moment it sends the advance: events/s, delay p50/p99/max (goal: 50 ms at 1,000
streams), and what holding the idle streams costs the server (CPU share while nothing changes).

Baseline, same run and client: a bare ASGI app under the same uvicorn settings that pushes the
same status bytes to every open stream when it gets a POST (``servers.raw_sse``), with no
polling at all: the floor of delivering N events over N sockets from one worker.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import httpx

from bench.common import AUTH, QUEUE_PATH, SUBMIT_BODY, meta, ratio, write_json
from bench.loadgen import percentile
from bench.servers import Reply, ServerProcess, cpu_plan, raise_fd_limit
from bench.sse_client import StreamSet
from mock_server.settings import MockSettings

__all__ = ["FULL", "QUICK", "Config", "figure_keys", "main", "run"]

MAX_STREAMS: Final = 1024  # MockSettings.runners' bound: one runner per job keeps rounds whole
SETTINGS: Final = {
    "policy": "virtual",
    "runners": MAX_STREAMS,
    "queue_delay": [1.0, 1.0],
    "inference_time": [1.0, 1.0],
}
ROUNDS: Final = ("IN_PROGRESS", "COMPLETED")
FIGURES: Final = (
    "held", "open_s", "idle_cpu_use", "events_per_s", "p50_ms", "p99_ms", "max_ms", "missing",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Config:
    name: str
    streams: int
    hold_seconds: float
    """How long the open streams are held idle, to measure what that costs the server."""
    limit_seconds: float
    """Longest wait for one round of events: the benchmark stops by itself, and says what
    did not arrive."""


FULL: Final = Config("full", 1_000, 2.0, 60.0)
QUICK: Final = Config("quick", 20, 0.3, 20.0)


def figure_keys(config: Config) -> list[str]:
    keys = [f"{side}.{key}" for side in ("mock", "baseline") for key in FIGURES]
    keys += [f"ratio.{key}" for key in ("events_per_s", "p50", "p99", "max")]
    return keys


async def _submit_all(base_url: str, count: int) -> list[str]:
    headers = {**dict(AUTH), "Content-Type": "application/json"}
    slots = asyncio.Semaphore(32)  # 32 at a time: the rest wait here, not in the pool
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120) as client:

        async def submit() -> str:
            async with slots:
                answer = await client.post(QUEUE_PATH, content=SUBMIT_BODY)
            answer.raise_for_status()
            return str(answer.json()["request_id"])

        return list(await asyncio.gather(*(submit() for _ in range(count))))


def _warm(base_url: str) -> None:
    """One job completed first: the placeholder engine imports PyAV and renders its video on the
    first completion (once per server), which is not what the streams are timed for."""
    headers = {**dict(AUTH), "Content-Type": "application/json", "x-mock-policy": "immediate"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        submitted = client.post(QUEUE_PATH, content=SUBMIT_BODY)
        submitted.raise_for_status()
        client.get(submitted.json()["response_url"]).raise_for_status()


async def _streams(
    config: Config, server: ServerProcess, paths: list[str], trigger: str, states: bool
) -> dict[str, Any]:
    """Open, hold, then POST ``trigger`` for each round and time every stream's event
    (checking each event's status when ``states``: the baseline's never change)."""
    figures: dict[str, Any] = {}
    streams = StreamSet(server.port, AUTH)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=config.limit_seconds) as ctl:
        await ctl.get("/_mock/state")  # the control connection is open before any timing
        started = time.perf_counter()
        await streams.open(paths)
        opened = await streams.wait_for(1, config.limit_seconds)
        figures["open_s"] = time.perf_counter() - started
        figures["held"] = float(len(streams.arrivals(0)))
        if not opened or streams.errors():
            raise RuntimeError(f"streams did not open: {streams.errors()[:3]}")
        before = server.cpu_seconds()
        await asyncio.sleep(config.hold_seconds)
        figures["idle_cpu_use"] = (server.cpu_seconds() - before) / config.hold_seconds
        delays, spans, missing = [], [], 0
        for number, state in enumerate(ROUNDS, start=1):
            sent = time.perf_counter()
            answer = await ctl.post(trigger, json={"seconds": 1.0})
            answer.raise_for_status()
            await streams.wait_for(number + 1, config.limit_seconds)
            arrivals = streams.arrivals(number)
            wrong = [a.status for a in arrivals if states and a.status != state]
            if wrong:
                raise RuntimeError(f"round {number}: expected {state}, got {wrong[:3]}")
            missing += len(paths) - len(arrivals)
            round_delays = [a.at - sent for a in arrivals]
            delays += round_delays
            spans.append(max(round_delays, default=config.limit_seconds))
        streams.close()
    ms = [d * 1e3 for d in delays]
    figures.update(
        events_per_s=len(delays) / sum(spans),
        p50_ms=percentile(ms, 50),
        p99_ms=percentile(ms, 99),
        max_ms=max(ms, default=math.nan),
        missing=float(missing),
    )
    return figures


def run(config: Config) -> dict[str, Any]:
    """Every figure, as nested dicts (see :func:`figure_keys`)."""
    if not 1 <= config.streams <= MAX_STREAMS:
        raise ValueError(f"streams must be 1..{MAX_STREAMS} (one simulated runner per job)")
    server_cpu, load_cpu = cpu_plan()
    fd_limit = raise_fd_limit()
    if fd_limit < 2 * config.streams + 100:
        raise RuntimeError(f"RLIMIT_NOFILE {fd_limit} is too low for {config.streams} streams")
    results: dict[str, Any] = {
        "meta": meta(
            config.name,
            streams=config.streams,
            hold_seconds=config.hold_seconds,
            stream_tick=MockSettings().stream_tick,
            server_cpu=server_cpu,
            load_cpu=load_cpu,
            fd_limit=fd_limit,
        )
    }
    # The client shares this process: pinned to the load core while it runs, then restored.
    affinity = os.sched_getaffinity(0) if load_cpu is not None else None
    try:
        if load_cpu is not None:
            os.sched_setaffinity(0, {load_cpu})
        with tempfile.TemporaryDirectory(prefix="sse-bench-") as folder:
            with ServerProcess("mock", settings=SETTINGS, cpu=server_cpu) as mock:
                _warm(mock.base_url)
                ids = asyncio.run(_submit_all(mock.base_url, config.streams))
                polled = httpx.get(
                    f"{mock.base_url}{QUEUE_PATH}/requests/{ids[0]}/status", headers=dict(AUTH)
                )
                paths = [f"{QUEUE_PATH}/requests/{rid}/status/stream" for rid in ids]
                trigger = "/_mock/clock/advance"
                results["mock"] = asyncio.run(_streams(config, mock, paths, trigger, True))
            reply = Reply(200, (), polled.content)
            (Path(folder) / "status.json").write_text(reply.to_json())
            raw = ServerProcess("raw-sse", reply_file=Path(folder) / "status.json", cpu=server_cpu)
            with raw:
                paths = [f"/stream/{n}" for n in range(config.streams)]
                results["baseline"] = asyncio.run(_streams(config, raw, paths, "/", False))
    finally:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
    mock_, base = results["mock"], results["baseline"]
    results["ratio"] = {
        "events_per_s": ratio(mock_["events_per_s"], base["events_per_s"]),
        "p50": ratio(mock_["p50_ms"], base["p50_ms"]),
        "p99": ratio(mock_["p99_ms"], base["p99_ms"]),
        "max": ratio(mock_["max_ms"], base["max_ms"]),
    }
    return results


def _rows(results: dict[str, Any]) -> Iterator[str]:
    meta_ = results["meta"]
    yield (
        f"SSE status streams: {meta_['streams']} held on one uvicorn worker "
        f"({meta_['uvicorn_http']}, {meta_['uvicorn_loop']}), server on CPU "
        f"{meta_['server_cpu']}, client on CPU {meta_['load_cpu']}; mock stream_tick "
        f"{meta_['stream_tick']:g} s; {len(ROUNDS)} rounds of state changes"
    )
    head = ("held", "open s", "idle CPU", "events/s", "p50 ms", "p99 ms", "max ms", "missing")
    yield "\n  " + " " * 40 + "".join(f"{h:>10}" for h in head)
    labels = {"mock": "mock (virtual clock advance)", "baseline": "baseline: raw ASGI push"}
    for side in ("mock", "baseline"):
        f = results[side]
        yield (
            f"  {labels[side]:<40}{f['held']:10.0f}{f['open_s']:10.2f}{f['idle_cpu_use']:10.2f}"
            f"{f['events_per_s']:10.0f}{f['p50_ms']:10.1f}{f['p99_ms']:10.1f}{f['max_ms']:10.1f}"
            f"{f['missing']:10.0f}"
        )
    r = results["ratio"]
    yield (
        f"  {'ratio mock / baseline':<40}{'':30}{r['events_per_s']:10.3f}{r['p50']:10.2f}"
        f"{r['p99']:10.2f}{r['max']:10.2f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sse_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20 streams: a smoke run")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures here")
    parser.add_argument("--streams", type=int, metavar="N", help=f"1..{MAX_STREAMS}")
    parser.add_argument("--limit", type=float, metavar="S", help="longest wait per round")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    if args.streams is not None:
        config = replace(config, streams=args.streams)
    if args.limit is not None:
        config = replace(config, limit_seconds=args.limit)
    results = run(config)
    print("\n".join(_rows(results)), flush=True)
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
