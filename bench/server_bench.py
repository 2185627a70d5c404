"""Live-server benchmarks: status GET and submit POST per server CPU-second, latency at 32
connections, p99 as the store grows, and optionally Prism.

``python -m bench.server_bench [--quick] [--json OUT] [--repeat N] [--seconds S] [--tool T]
[--no-prism]``

Each server runs in a process of its own pinned to one core, the load (wrk, else the Python
generator in ``loadgen.py``) on another; the figure of record is requests per second of the
server's own CPU time (utime + stime from /proc), which holds when the load cannot keep the
server busy or another process steals its core. Baselines, in the same run and under the same
uvicorn settings:

- status GET: a bare ASGI app answering the exact bytes the mock answers (status, body and its
  headers), so the ratio is what the framework, routing and engine cost;
- submit POST: a bare ASGI app that reads the same body and validates it with the contract's
  ``LipsyncInput`` before answering the mock's bytes.

The mock runs ``polls:999999``: a job stays IN_QUEUE, so every poll answers the same bytes and
costs the same. Runs are interleaved (mock, baseline, mock, ...) and each figure is the best of N.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, Protocol

import httpx

from bench.common import AUTH, QUEUE_PATH, SUBMIT_BODY, best_of, meta, ratio, write_json
from bench.loadgen import TOOLS, Load, pick_tool, run_load
from bench.prism import PRISM_PACKAGE, start_prism
from bench.servers import CLOCK_TICKS, Reply, ServerProcess, cpu_plan, start_all

__all__ = ["FULL", "QUICK", "Config", "figure_keys", "main", "run"]

POLICY: Final = "polls:999999"
JSON_HEADERS: Final = (*AUTH, ("Content-Type", "application/json"))
ROW: Final = ("rps", "per_cpu", "cpu_use", "p50_ms", "p99_ms")
HIGHER: Final = ("rps", "per_cpu", "cpu_use")
STORE: Final = ("stored", "status_p50_ms", "status_p99_ms", "submit_p50_ms", "submit_p99_ms")


@dataclass(frozen=True, slots=True)
class Config:
    name: str
    seconds: float
    """Length of each measured load."""
    repeats: int
    store_sizes: tuple[int, int]
    store_seconds: float
    prefill_seconds: float
    """Time budget for filling the store (the figures say how far it got)."""
    prism: bool
    connections: int = 32
    warm_requests: int = 300


FULL: Final = Config("full", 5.0, 3, (1_000, 100_000), 2.0, 300.0, prism=True)
QUICK: Final = Config("quick", 0.2, 1, (50, 500), 0.2, 30.0, prism=False, warm_requests=50)


class Measured(Protocol):
    port: int

    def cpu_seconds(self) -> float: ...


def figure_keys(config: Config) -> list[str]:
    """Dotted paths of every figure :func:`run` reports (Prism, being optional, aside)."""
    keys = []
    for section in ("status", "submit"):
        keys += [f"{section}.{server}.{key}" for server in ("mock", "raw") for key in ROW]
        keys += [f"{section}.ratio.{key}" for key in ("per_cpu", "p50", "p99")]
    keys += [f"store.{size}.{key}" for size in ("small", "large") for key in STORE]
    keys += ["store.prefill_s", "store.ratio.status_p99", "store.ratio.submit_p99"]
    return keys


def _measure(server: Measured, load: Load, tool: str) -> dict[str, float]:
    before = server.cpu_seconds()
    result = run_load(replace(load, port=server.port), tool).check(f"{load.method} {load.path}")
    cpu = max(server.cpu_seconds() - before, 1 / CLOCK_TICKS)
    return {
        "rps": result.rate,
        "per_cpu": result.requests / cpu,
        "cpu_use": cpu / result.seconds,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
    }


def _warm(server: Measured, load: Load, count: int, seconds: float | None = None) -> None:
    """``count`` requests first (or ``seconds`` of load, for a JIT to settle): lazy imports
    and first-call caches are not the figure."""
    warm = replace(load, port=server.port, seconds=30, count=count)
    if seconds is not None:
        warm = replace(warm, seconds=seconds, count=None)
    run_load(warm, "python").check("warm-up")


def _capture(base_url: str) -> tuple[str, Reply, Reply]:
    """One submit and one poll on the mock: the request id and the bytes the baselines send."""
    with httpx.Client(base_url=base_url, headers=dict(JSON_HEADERS), timeout=30) as client:
        submitted = client.post(QUEUE_PATH, content=SUBMIT_BODY)
        submitted.raise_for_status()
        request_id = submitted.json()["request_id"]
        polled = client.get(f"{QUEUE_PATH}/requests/{request_id}/status")
        if polled.status_code != 202 or polled.json()["status"] != "IN_QUEUE":
            raise RuntimeError(f"unexpected status answer {polled.status_code}: {polled.text}")

    def reply(answer: httpx.Response) -> Reply:
        kept = tuple((k, v) for k, v in answer.headers.items() if k not in ("date", "server"))
        return Reply(answer.status_code, kept, answer.content)

    return request_id, reply(polled), reply(submitted)


def _stored(base_url: str) -> int:
    answer = httpx.get(f"{base_url}/_mock/state", timeout=60)
    answer.raise_for_status()
    return int(answer.json()["requests"])


def _pair(config: Config, tool: str, servers: Mapping[str, Measured], load: Load) -> dict[str, Any]:
    """mock against raw, interleaved so a slow spell on the machine hits both."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    for server in servers.values():
        _warm(server, load, config.warm_requests)
    for _ in range(config.repeats):
        for name, server in servers.items():
            runs[name].append(_measure(server, load, tool))
    figures: dict[str, Any] = {name: best_of(r, HIGHER) for name, r in runs.items()}
    mock, raw = figures["mock"], figures["raw"]
    figures["ratio"] = {
        "per_cpu": ratio(mock["per_cpu"], raw["per_cpu"]),
        "p50": ratio(mock["p50_ms"], raw["p50_ms"]),
        "p99": ratio(mock["p99_ms"], raw["p99_ms"]),
    }
    return figures


def _store(config: Config, tool: str, mock: ServerProcess, status: Load, submit: Load) -> Any:
    """p99 with few and many requests stored: filled by submits, all kept (IN_QUEUE)."""
    figures: dict[str, Any] = {"prefill_s": 0.0}
    status = replace(status, seconds=config.store_seconds)
    submit = replace(submit, seconds=config.store_seconds)
    budget = time.monotonic() + config.prefill_seconds
    for name, size in zip(("small", "large"), config.store_sizes, strict=True):
        missing = size - _stored(mock.base_url)
        started = time.monotonic()
        if missing > 0:
            left = max(budget - started, 1.0)
            fill = replace(submit, port=mock.port, connections=64, count=missing, seconds=left)
            run_load(fill, "python").check("prefill")  # a count: the Python generator
        figures["prefill_s"] += time.monotonic() - started
        stored = _stored(mock.base_url)
        # Polls leave the store as it is: best of N. Each submit run adds to it: one run.
        polled = best_of([_measure(mock, status, tool) for _ in range(config.repeats)], HIGHER)
        submitted = _measure(mock, submit, tool)
        figures[name] = {
            "stored": float(stored),
            "stored_after": float(_stored(mock.base_url)),
            "status_p50_ms": polled["p50_ms"],
            "status_p99_ms": polled["p99_ms"],
            "submit_p50_ms": submitted["p50_ms"],
            "submit_p99_ms": submitted["p99_ms"],
        }
    small, large = figures["small"], figures["large"]
    figures["ratio"] = {
        "status_p99": ratio(large["status_p99_ms"], small["status_p99_ms"]),
        "submit_p99": ratio(large["submit_p99_ms"], small["submit_p99_ms"]),
    }
    return figures


def _prism(config: Config, tool: str, status: Load, raw: dict[str, float], cpu: int | None) -> Any:
    figures: dict[str, Any] = {}
    for name, silent in (("default", False), ("silent", True)):
        started = start_prism(cpu, silent=silent)
        if isinstance(started, str):
            return {"skipped": started}
        with started as prism:
            path = f"{QUEUE_PATH}/requests/prism/status"  # Prism answers the spec's example
            load = replace(status, path=path)
            _warm(prism, load, 0, seconds=3.0)  # node's JIT
            runs = [_measure(prism, load, tool) for _ in range(config.repeats)]
        figures[name] = best_of(runs, HIGHER)
        figures[name]["ratio_per_cpu"] = ratio(figures[name]["per_cpu"], raw["per_cpu"])
    return figures


def run(config: Config, tool: str = "auto", prism: bool | None = None) -> dict[str, Any]:
    """Every figure, as nested dicts (see :func:`figure_keys`)."""
    server_cpu, load_cpu = cpu_plan()
    probe = Load(0, "/", seconds=config.seconds, connections=config.connections, cpu=load_cpu)
    results: dict[str, Any] = {
        "meta": meta(
            config.name,
            tool=pick_tool(tool, probe),
            connections=config.connections,
            seconds=config.seconds,
            repeats=config.repeats,
            server_cpu=server_cpu,
            load_cpu=load_cpu,
            policy=POLICY,
        )
    }
    mock_status, mock_submit = (
        ServerProcess("mock", settings={"policy": POLICY}, cpu=server_cpu) for _ in range(2)
    )
    # Each mock its own: the submit runs grow the store, which would slow the status runs.
    with (
        tempfile.TemporaryDirectory(prefix="server-bench-") as name,
        start_all(mock_status, mock_submit),
    ):
        folder = Path(name)
        request_id, status_reply, submit_reply = _capture(mock_status.base_url)
        _capture(mock_submit.base_url)
        (folder / "status.json").write_text(status_reply.to_json())
        (folder / "submit.json").write_text(submit_reply.to_json())
        results["meta"]["status_bytes"] = len(status_reply.body)
        results["meta"]["submit_bytes"] = len(submit_reply.body)
        raw_status = ServerProcess("raw-fixed", reply_file=folder / "status.json", cpu=server_cpu)
        raw_submit = ServerProcess("raw-submit", reply_file=folder / "submit.json", cpu=server_cpu)
        status = replace(probe, path=f"{QUEUE_PATH}/requests/{request_id}/status", headers=AUTH)
        submit = replace(probe, path=QUEUE_PATH, method="POST", headers=JSON_HEADERS)
        submit = replace(submit, body=SUBMIT_BODY)
        with start_all(raw_status, raw_submit):
            pair = {"mock": mock_status, "raw": raw_status}
            results["status"] = _pair(config, tool, pair, status)
            pair = {"mock": mock_submit, "raw": raw_submit}
            results["submit"] = _pair(config, tool, pair, submit)
        results["store"] = _store(config, tool, mock_status, status, submit)

    if prism if prism is not None else config.prism:
        raw = results["status"]["raw"]
        results["prism"] = _prism(config, tool, status, raw, server_cpu)
    else:
        why = "not in --quick runs" if config.name == "quick" else "--no-prism"
        results["prism"] = {"skipped": why}
    return results


def _rows(results: dict[str, Any]) -> Iterator[str]:
    meta_ = results["meta"]
    pinning = (
        f"server on CPU {meta_['server_cpu']}, load on CPU {meta_['load_cpu']}"
        if meta_["server_cpu"] is not None
        else "not pinned (one core)"
    )
    yield (
        f"server benchmarks: load {meta_['tool']}, {meta_['connections']} connections, "
        f"{meta_['seconds']:g} s runs, best of {meta_['repeats']}; {pinning}; uvicorn "
        f"{meta_['versions']['uvicorn']} ({meta_['uvicorn_http']}, {meta_['uvicorn_loop']}), "
        f"Python {meta_['python']}"
    )
    head = f"{'req/s':>10}{'per CPU-s':>11}{'CPU use':>9}{'p50 ms':>9}{'p99 ms':>9}"

    def row(label: str, f: dict[str, float]) -> str:
        return (
            f"  {label:<44}{f['rps']:10.0f}{f['per_cpu']:11.0f}{f['cpu_use']:9.2f}"
            f"{f['p50_ms']:9.2f}{f['p99_ms']:9.2f}"
        )

    def ratios(label: str, r: dict[str, float]) -> str:
        return f"  {label:<44}{'':10}{r['per_cpu']:11.3f}{'':9}{r['p50']:9.2f}{r['p99']:9.2f}"

    status, submit = results["status"], results["submit"]
    yield "\n" + f"Status GET, IN_QUEUE ({meta_['status_bytes']} B body)".ljust(46) + head
    yield row("mock (fal-mock serve, polls:999999)", status["mock"])
    yield row("baseline: raw ASGI, same bytes", status["raw"])
    yield ratios("ratio mock / baseline", status["ratio"])
    yield "\n" + f"Submit POST ({meta_['submit_bytes']} B answer)".ljust(46) + head
    yield row("mock", submit["mock"])
    yield row("baseline: raw ASGI + LipsyncInput validation", submit["raw"])
    yield ratios("ratio mock / baseline", submit["ratio"])

    store = results["store"]
    small, large = store["small"], store["large"]
    yield (
        "\n"
        + "Requests stored (all IN_QUEUE)".ljust(46)
        + f"{'few':>12}{'many':>12}{'many/few':>10}"
    )
    for label, key in (("stored, at the start", "stored"), ("stored, at the end", "stored_after")):
        yield f"  {label:<44}{small[key]:12.0f}{large[key]:12.0f}"
    for label, key in (("status", "status"), ("submit", "submit")):
        for q in ("p50", "p99"):
            value = f"{small[f'{key}_{q}_ms']:12.2f}{large[f'{key}_{q}_ms']:12.2f}"
            last = f"{store['ratio'][f'{key}_p99']:10.2f}" if q == "p99" else ""
            yield f"  {f'{label} {q} ms':<44}{value}{last}"
    yield f"  {'filling the store took, s':<44}{store['prefill_s']:12.1f}"

    prism = results["prism"]
    yield "\n" + f"Prism ({PRISM_PACKAGE}), status GET".ljust(46) + head
    if "skipped" in prism:
        yield f"  skipped: {prism['skipped']}"
        return
    for name, label in (("default", "Prism, default logging"), ("silent", "Prism, -v silent")):
        yield row(label, prism[name])
    yield (
        f"  {'ratio per CPU-s: default, silent / raw ASGI':<44}{'':10}"
        f"{prism['default']['ratio_per_cpu']:11.3f}{prism['silent']['ratio_per_cpu']:9.3f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.server_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short loads: a smoke run")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures here")
    parser.add_argument("--repeat", type=int, metavar="N", help="best of N (default 3; quick 1)")
    parser.add_argument("--seconds", type=float, metavar="S", help="length of each load")
    parser.add_argument("--tool", choices=TOOLS, default="auto", help="load generator")
    parser.add_argument("--no-prism", dest="prism", action="store_false", default=None)
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    if args.repeat is not None:
        config = replace(config, repeats=max(args.repeat, 1))
    if args.seconds is not None:
        config = replace(config, seconds=args.seconds)
    results = run(config, args.tool, args.prism)
    print("\n".join(_rows(results)), flush=True)
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
