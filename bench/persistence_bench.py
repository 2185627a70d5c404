"""What a state directory costs: submit and status with and without ``--state-dir``, the
directory's size after N requests, and memory and disk once retention has expired.

``python -m bench.persistence_bench [--quick] [--json OUT] [--repeat N] [--seconds S]
[--requests N] [--rounds N] [--state-parent DIR]``

- ``wire``: three live servers in the same run: in memory, on a state directory with
  ``--state-sync full`` (the default: a submit is fsynced before its 200) and with
  ``--state-sync normal`` (written, not fsynced: survives a killed process); the directories in
  ``--state-parent`` (default the system's temporary folder: fsync costs what that disk costs).
  Each server is pinned to one core, the closed-loop load to another; runs interleaved, best
  of N. A status poll writes its journal entry (never fsynced). Per request: server CPU (ms),
  p50, p99, and each state directory's ratio to memory.
- ``size``: N full lifecycles in-process (submit, status, result, the output file) on a fresh
  state directory: ``state.db`` once checkpointed, the WAL's high-water mark before (SQLite
  checkpoints it every 1000 pages), the blobs, and database bytes per request.
- ``retention``: rounds of uploads and lifecycles on the virtual clock, each round followed by
  an advance past the retention: requests kept, traced Python memory, database and blob bytes
  after each round. Flat once the mock's bounded caches are full is the figure of record: the
  journal (``journal_limit``, set low here), the rendered status bodies (4096), the waiting
  line's and the file ages' slack (1024 each, rebuilt beyond). ``size`` and ``retention`` use
  ``--state-sync normal``: what is kept is the same, fsyncs would only slow the run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sqlite3
import tempfile
import tracemalloc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import httpx

from bench.common import AUTH, QUEUE_PATH, SUBMIT_BODY, best_of, meta, ratio, write_json
from bench.loadgen import Load, run_load
from bench.servers import ServerProcess, cpu_plan

__all__ = ["FULL", "QUICK", "Config", "figure_keys", "main", "run"]

POLICY: Final = "polls:999999"
"""Jobs stay IN_QUEUE: every poll costs the same, and a submit is only the queue's work."""
JSON_HEADERS: Final = (*AUTH, ("Content-Type", "application/json"))
ROW: Final = ("rps", "cpu_ms", "p50_ms", "p99_ms")
SIDES: Final = ("memory", "full", "normal")
"""In memory, ``--state-sync full``, ``--state-sync normal``."""


@dataclass(frozen=True, slots=True)
class Config:
    name: str
    seconds: float
    repeats: int
    requests: int
    rounds: int
    round_requests: int
    connections: int = 8


FULL: Final = Config("full", 4.0, 3, 2_000, 8, 600)
QUICK: Final = Config("quick", 0.3, 1, 40, 3, 20)


def figure_keys(config: Config) -> list[str]:
    keys = []
    for op in ("submit", "status"):
        keys += [f"wire.{op}.{side}.{key}" for side in SIDES for key in ROW]
        for side in SIDES[1:]:
            keys += [f"wire.{op}.ratio_{side}.{key}" for key in ("cpu_ms", "p99_ms")]
            keys += [f"wire.{op}.added_cpu_ms_{side}"]
    keys += [f"size.{key}" for key in ("db_bytes", "wal_bytes", "blob_bytes", "bytes_per_request")]
    for n in range(1, config.rounds + 1):
        keys += [f"retention.round_{n}.{k}" for k in ("traced_kb", "db_kb", "blob_kb")]
    return keys


# -- wire -------------------------------------------------------------------------------------


def _wire(config: Config, state_parent: Path | None) -> dict[str, Any]:
    server_cpu, load_cpu = cpu_plan()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="state-bench-", dir=state_parent) as folder:
        state = Path(folder) / "state"
        sides: dict[str, dict[str, str]] = {
            "memory": {"policy": POLICY},
            "full": {"policy": POLICY, "state_dir": str(state), "state_sync": "full"},
            "normal": {"policy": POLICY, "state_dir": str(state), "state_sync": "normal"},
        }
        for op in ("submit", "status"):
            runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
            for _ in range(config.repeats):
                for side, settings in sides.items():  # interleaved: drift hits all
                    _empty(state)
                    with ServerProcess("mock", settings=settings, cpu=server_cpu) as server:
                        runs[side].append(_measure(server, op, config, load_cpu))
            best = {side: best_of(runs[side], ("rps",)) for side in sides}
            figures[op] = dict(best)
            for side in SIDES[1:]:
                figures[op][f"ratio_{side}"] = {
                    key: ratio(best[side][key], best["memory"][key]) for key in ("cpu_ms", "p99_ms")
                }
                figures[op][f"added_cpu_ms_{side}"] = (
                    best[side]["cpu_ms"] - best["memory"]["cpu_ms"]
                )
    return figures


def _empty(state: Path) -> None:
    import shutil

    shutil.rmtree(state, ignore_errors=True)


def _measure(
    server: ServerProcess, op: str, config: Config, load_cpu: int | None
) -> dict[str, float]:
    if op == "submit":
        load = Load(server.port, QUEUE_PATH, "POST", JSON_HEADERS, SUBMIT_BODY)
    else:
        submitted = httpx.post(
            server.base_url + QUEUE_PATH, content=SUBMIT_BODY, headers=dict(JSON_HEADERS)
        ).json()
        path = f"{QUEUE_PATH}/requests/{submitted['request_id']}/status"
        load = Load(server.port, path, headers=AUTH)
    load = replace(load, connections=config.connections, seconds=config.seconds, cpu=load_cpu)
    run_load(replace(load, seconds=min(0.3, config.seconds)), "python")  # warm
    before = server.cpu_seconds()
    result = run_load(load, "python").check(f"{op} on {server.kind}")
    cpu = server.cpu_seconds() - before
    return {
        "rps": result.rate,
        "cpu_ms": 1000 * cpu / result.requests,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
    }


# -- size and retention (in-process) ----------------------------------------------------------


async def _size(config: Config, state_parent: Path | None) -> dict[str, float]:
    from mock_server.app import create_app
    from mock_server.settings import MockSettings

    with tempfile.TemporaryDirectory(prefix="state-size-", dir=state_parent) as folder:
        state = Path(folder) / "state"
        app = create_app(MockSettings(policy="immediate", state_dir=state, state_sync="normal"))
        async with _client(app) as client:
            for _ in range(config.requests):
                job = (await client.post(QUEUE_PATH, content=SUBMIT_BODY, headers=_JSON)).json()
                await client.get(job["status_url"])
                result = (await client.get(job["response_url"])).json()
                await client.get(result["video"]["url"])
        _, wal, blobs = _disk(state)
        app.state.state_dir.close()
        checkpoint = sqlite3.connect(state / "state.db")
        checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        checkpoint.close()
        db, _, _ = _disk(state)
    return {
        "requests": float(config.requests),
        "db_bytes": float(db),
        "wal_bytes": float(wal),
        "blob_bytes": float(blobs),
        "bytes_per_request": db / config.requests,
    }


async def _retention(config: Config, state_parent: Path | None) -> dict[str, Any]:
    from mock_server.app import create_app
    from mock_server.settings import MockSettings

    rounds: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="state-retention-", dir=state_parent) as folder:
        state = Path(folder) / "state"
        settings = MockSettings(
            policy="virtual",
            runners=64,
            state_dir=state,
            state_sync="normal",  # what is kept is the same; fsyncs would only slow the run
            result_retention=60,
            file_retention=120,
            journal_limit=50,
        )
        app = create_app(settings)
        tracemalloc.start()
        try:
            async with _client(app) as client:
                for n in range(1, config.rounds + 1):
                    for i in range(config.round_requests):
                        await client.post("/cdn/files/upload", content=b"%d %d" % (n, i) * 200)
                        job = (
                            await client.post(QUEUE_PATH, content=SUBMIT_BODY, headers=_JSON)
                        ).json()
                        await client.get(job["status_url"])
                    await client.post("/_mock/clock/advance", json={"seconds": 600})
                    gc.collect()
                    db, wal, blobs = _disk(state)
                    rounds[f"round_{n}"] = {
                        "requests_kept": float(len(app.state.engine.request_ids())),
                        "traced_kb": tracemalloc.get_traced_memory()[0] / 1024,
                        "db_kb": (db + wal) / 1024,
                        "blob_kb": blobs / 1024 or 0.0,
                    }
        finally:
            tracemalloc.stop()
            app.state.state_dir.close()
    return rounds


_JSON: Final = {"content-type": "application/json"}


def _client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app)
    return httpx.AsyncClient(transport=transport, base_url="http://m", headers=dict(AUTH))


def _disk(state: Path) -> tuple[int, int, int]:
    def size(path: Path) -> int:
        return path.stat().st_size if path.exists() else 0

    blobs = sum(size(p) for p in (state / "blobs").iterdir())
    return size(state / "state.db"), size(state / "state.db-wal"), blobs


# -- report -----------------------------------------------------------------------------------


def run(config: Config, state_parent: Path | None = None) -> dict[str, Any]:
    return {
        "meta": meta(config.name, connections=config.connections, seconds=config.seconds),
        "wire": _wire(config, state_parent),
        "size": asyncio.run(_size(config, state_parent)),
        "retention": asyncio.run(_retention(config, state_parent)),
    }


def _rows(results: dict[str, Any]) -> Iterator[str]:
    m = results["meta"]
    yield (
        f"Persistence: live servers ({m['uvicorn_http']}, {m['uvicorn_loop']}), "
        f"{m['connections']} connections, {m['seconds']:g} s runs, best of N"
    )
    yield (
        "\n  " + " " * 34 + "".join(f"{h:>12}" for h in ("req/s", "CPU ms/req", "p50 ms", "p99 ms"))
    )
    labels = {"memory": "in memory", "full": "--state-sync full", "normal": "--state-sync normal"}
    for op in ("submit", "status"):
        figures = results["wire"][op]
        for side in SIDES:
            f = figures[side]
            yield (
                f"  {op + ', ' + labels[side]:<34}{f['rps']:12.0f}{f['cpu_ms']:12.3f}"
                f"{f['p50_ms']:12.2f}{f['p99_ms']:12.2f}"
            )
        for side in SIDES[1:]:
            r, added = figures[f"ratio_{side}"], figures[f"added_cpu_ms_{side}"]
            yield (
                f"  {'  ratio ' + side + ' / memory':<34}{'':12}{r['cpu_ms']:12.2f}{'':12}"
                f"{r['p99_ms']:12.2f}   (+{added:.3f} ms CPU per request)"
            )
    s = results["size"]
    yield (
        f"\n  size after {s['requests']:.0f} lifecycles: state.db {s['db_bytes'] / 1024:.0f} KB"
        f" checkpointed ({s['bytes_per_request']:.0f} B per request), WAL up to"
        f" {s['wal_bytes'] / 1024:.0f} KB before, blobs {s['blob_bytes'] / 1024:.0f} KB"
    )
    yield "\n  retention (virtual clock), after each round:"
    yield (
        "  "
        + " " * 12
        + "".join(f"{h:>14}" for h in ("kept", "traced KB", "db+WAL KB", "blobs KB"))
    )
    for name, f in results["retention"].items():
        yield (
            f"  {name:<12}{f['requests_kept']:14.0f}{f['traced_kb']:14.0f}{f['db_kb']:14.0f}"
            f"{f['blob_kb']:14.0f}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.persistence_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny runs: a smoke run")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures here")
    parser.add_argument("--repeat", type=int, metavar="N", help="runs per figure (best of N)")
    parser.add_argument("--seconds", type=float, metavar="S", help="length of each load")
    parser.add_argument("--requests", type=int, metavar="N", help="lifecycles for the size")
    parser.add_argument("--rounds", type=int, metavar="N", help="retention rounds")
    parser.add_argument("--state-parent", type=Path, metavar="DIR", help="where state dirs go")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    for name, value in (
        ("repeats", args.repeat),
        ("seconds", args.seconds),
        ("requests", args.requests),
        ("rounds", args.rounds),
    ):
        if value is not None:
            config = replace(config, **{name: value})
    results = run(config, args.state_parent)
    print("\n".join(_rows(results)), flush=True)
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
