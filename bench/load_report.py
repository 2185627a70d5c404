"""The load test's verdict and figures: the checks, the table, the JSON (``bench.load``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from bench.load_model import Plan, RoundReport, percentile

__all__ = ["FULL", "SMOKE", "Results", "Session", "figures", "judge", "table"]

QUEUE_DELAY: Final = (0.05, 0.3)
INFERENCE_TIME: Final = (0.05, 0.3)
RUNNERS: Final = 256
"""More than the clients: a job never waits for a runner, only for its own queue delay."""
TOLERANCE_MIB: Final = 8.0
TOLERANCE_SHARE: Final = 0.10
"""Flat: round 2's peak RSS exceeds round 1's by at most the larger of 8 MiB and 10 % of what
round 1 added to the server's RSS (a leak as large as a round's requests adds it all again)."""
LATENCIES: Final = ("submit", "status", "stream", "result", "file")


@dataclass(frozen=True, slots=True)
class Session:
    name: str
    plan: Plan
    rounds: int = 2
    deadline: float = 600.0
    retention: float = 60.0
    """``--result-retention`` (s) of the server started here: short, so a session sees its
    results expire between rounds, and no shorter than a lifecycle may take (``Plan.
    lifecycle_timeout``), so that a 404 within a lifecycle is a lost request, never one whose
    retention passed."""
    memory_check: bool = True
    pin: bool = True


FULL: Final = Session("full", Plan(), retention=60.0)
SMOKE: Final = Session(
    "smoke",
    Plan(clients=20, lifecycles=100, held_streams=20, lifecycle_timeout=30, open_timeout=30),
    rounds=1,
    deadline=120.0,
    retention=30.0,
    memory_check=False,  # a few seconds of load: its RSS is noise, and tests assert no figures
    pin=False,
)


@dataclass(slots=True)
class Results:
    session: Session
    meta: dict[str, Any] = field(default_factory=dict)
    rounds: list[RoundReport] = field(default_factory=list)
    usage: list[dict[str, float]] = field(default_factory=list)
    stored: list[dict[str, Any]] = field(default_factory=list)
    """``/_mock/state`` counts after each round, and after its results expired."""
    memory: dict[str, float] = field(default_factory=dict)
    expired: dict[int, bool] = field(default_factory=dict)
    """Round number -> whether the server forgot all its requests once their retention passed
    (for rounds the session waited after)."""
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    deadline_hit: bool = False

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.checks)


# -- judging and reporting --------------------------------------------------------------------


def judge(results: Results, memory: bool) -> None:
    """The checks, each with what it found: every one must pass for exit 0."""
    checks = results.checks
    for number, report in enumerate(results.rounds, start=1):
        plan, name = report.plan, f"round {number}:"
        missing = sorted(report.submitted.keys() - report.completed.keys())
        held = (report.held_opened, report.held_completed)
        checks += [
            (f"{name} every lifecycle completed", report.lifecycles_done == plan.lifecycles
             and not report.failed("incomplete"),
             f"{report.lifecycles_done}/{plan.lifecycles}; failures: {_counts(report)}; "
             + _examples(report, "incomplete")),
            (f"{name} no request lost", not report.lost and not report.failed("lost"),
             f"{len(report.lost)} ids; " + _examples(report, "lost")),
            (f"{name} every submitted request reached COMPLETED", not missing,
             f"{len(missing)} of {len(report.submitted)} never seen COMPLETED: {missing[:3]}"),
            (f"{name} no 5xx (none injected)", not report.server_errors()
             and not report.failed("5xx"), _examples(report, "5xx")),
            (f"{name} every held stream open through the load, COMPLETED after its cancel",
             held == (plan.held_streams,) * 2 and not report.failed("held stream"),
             f"opened {held[0]}, completed {held[1]} of {plan.held_streams}; "
             + _examples(report, "held stream")),
            (f"{name} every answer as the contract says", not report.failed("wrong answer"),
             _examples(report, "wrong answer")),
            (f"{name} within the deadline", not report.failed("deadline"),
             _examples(report, "deadline")),
        ]  # fmt: skip
        if number in results.expired:  # waited for: before a next round, or to measure memory
            name_ = f"{name} every request forgotten once its retention passed"
            checks.append((name_, results.expired[number], "requests still stored 30 s after"))
    if results.deadline_hit and not results.rounds:
        checks.append(("within the deadline", False, "the deadline passed before round 1"))
    if len(results.rounds) < results.session.rounds:
        checks.append((f"all {results.session.rounds} rounds ran", False, f"{len(results.rounds)}"))
    if memory and len(results.rounds) >= 2:
        checks.append(memory_check(results.memory, len(results.rounds)))


def memory_check(memory: dict[str, float], rounds: int) -> tuple[str, bool, str]:
    before, first, last = memory["before"], memory["round 1 peak"], memory[f"round {rounds} peak"]
    tolerance = max(TOLERANCE_MIB, TOLERANCE_SHARE * (first - before))
    growth = last - first
    detail = (
        f"round {rounds} peak {last:.1f} MiB - round 1 peak {first:.1f} MiB = {growth:+.1f} MiB; "
        f"tolerance {tolerance:.1f} MiB (max of {TOLERANCE_MIB:g} MiB and "
        f"{TOLERANCE_SHARE:.0%} of round 1's growth, {first - before:.1f} MiB)"
    )
    return ("memory flat once round 1's results are gone", growth <= tolerance, detail)


def _examples(report: RoundReport, category: str) -> str:
    failure = report.failures.get(category)
    if failure is None:
        return ""
    return f"{failure.count} {category}, e.g. " + " | ".join(failure.examples[:3])


def _counts(report: RoundReport) -> str:
    return ", ".join(f"{k} {v.count}" for k, v in report.failures.items()) or "none"


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{percentile(values, 50) * 1e3:.1f} / {percentile(values, 99) * 1e3:.1f}"


def figures(results: Results) -> list[dict[str, Any]]:
    """Per round, the figures printed and written as JSON."""
    rows = []
    for report, usage in zip(results.rounds, results.usage, strict=False):
        seconds = report.seconds or float("nan")
        row: dict[str, Any] = {
            "lifecycles_completed": report.lifecycles_done,
            "lifecycles_streamed": sum(1 for k in report.submitted.values() if k == "stream"),
            "held_streams_opened": report.held_opened,
            "held_streams_completed": report.held_completed,
            "requests_lost": len(report.lost),
            "answers_5xx": report.server_errors(),
            "lifecycle_seconds": report.seconds,
            "lifecycles_per_s": report.lifecycles_done / seconds,
            "answers_per_s": report.requests_in_lifecycles / seconds,
            # Per server CPU-second: what a shared machine's other load does not change.
            "lifecycles_per_server_cpu_s": report.lifecycles_done / usage["server_cpu_s"]
            if usage.get("server_cpu_s")
            else float("nan"),
            **usage,
        }
        for op in LATENCIES:
            values = report.latencies.get(op, [])
            row[f"{op}_p50_ms"] = percentile(values, 50) * 1e3
            row[f"{op}_p99_ms"] = percentile(values, 99) * 1e3
            row[f"{op}_count"] = len(values)
        row["codes"] = {op: dict(counter) for op, counter in report.codes.items()}
        rows.append(row)
    return rows


def table(results: Results) -> Iterator[str]:
    session, meta = results.session, results.meta
    plan = session.plan
    server = meta.get("server", {})
    yield (
        f"Load ({session.name}): {plan.clients} clients, {plan.lifecycles} lifecycles per round "
        f"({plan.sse_share:.0%} streamed, polls every {plan.poll_interval:g} s), "
        f"{plan.held_streams} held SSE streams, {session.rounds} rounds, deadline "
        f"{session.deadline:g} s; {meta.get('client')}"
    )
    yield (
        f"  server: {' '.join(server.get('command', [meta.get('base_url', '?')])[-12:])} "
        f"queue {QUEUE_DELAY[0]:g}-{QUEUE_DELAY[1]:g} s, inference "
        f"{INFERENCE_TIME[0]:g}-{INFERENCE_TIME[1]:g} s"
    )
    loads = [meta.get(f"load_average_{when}") for when in ("before", "after")]
    yield (
        f"  server on CPU {meta.get('server_cpu')}, clients on CPU {meta.get('client_cpu')}; "
        f"result retention {meta.get('retention')} s; machine load average (1/5/15 min) "
        + " -> ".join(" ".join(f"{x:.2f}" for x in load) for load in loads if load)
    )
    rows = figures(results)
    head = "".join(f"{'round ' + str(n):>18}" for n in range(1, len(rows) + 1))
    yield f"\n  {'':<34}{head}"
    lines: list[tuple[str, Any]] = [
        ("lifecycles completed", lambda r, rep: f"{r['lifecycles_completed']}/{plan.lifecycles}"),
        ("  of which streamed", lambda r, rep: r["lifecycles_streamed"]),
        ("held streams opened / completed",
         lambda r, rep: f"{r['held_streams_opened']} / {r['held_streams_completed']}"),
        ("requests lost", lambda r, rep: r["requests_lost"]),
        ("5xx answers", lambda r, rep: r["answers_5xx"]),
        ("lifecycles wall s", lambda r, rep: f"{r['lifecycle_seconds']:.1f}"),
        ("lifecycles/s", lambda r, rep: f"{r['lifecycles_per_s']:.1f}"),
        ("HTTP answers/s (lifecycles)", lambda r, rep: f"{r['answers_per_s']:.0f}"),
        *((f"{op} p50 / p99 ms", lambda r, rep, op=op: _ms(rep.latencies.get(op, [])))
          for op in LATENCIES),
        ("server CPU s (round)", lambda r, rep: f"{r.get('server_cpu_s', float('nan')):.1f}"),
        ("lifecycles per server CPU-s",
         lambda r, rep: f"{r['lifecycles_per_server_cpu_s']:.1f}"),
        ("server CPU use (round)", lambda r, rep: f"{r.get('server_cpu_use', float('nan')):.2f}"),
        ("client CPU use (round)", lambda r, rep: f"{r['client_cpu_use']:.2f}"),
    ]  # fmt: skip
    for label, cell in lines:
        values = "".join(
            f"{cell(r, rep)!s:>18}" for r, rep in zip(rows, results.rounds, strict=False)
        )
        yield f"  {label:<34}{values}"
    yield "  (stream p50/p99: from opening a lifecycle's status stream to its first event)"
    yield from _memory_lines(results)
    yield ""
    for name, ok, detail in results.checks:
        yield f"  {'PASS' if ok else 'FAIL'}  {name}" + ("" if ok else f": {detail.strip('; ')}")
    yield f"\n{'PASSED' if results.passed else 'FAILED'}"


def _memory_lines(results: Results) -> Iterator[str]:
    memory = results.memory
    if not memory:
        return
    yield f"\n  server RSS, MiB: before the load {memory.get('before', float('nan')):.1f}"
    for number in range(1, len(results.rounds) + 1):
        phases = ", ".join(
            f"{phase} {memory[f'round {number} {phase} peak']:.1f}"
            for phase in ("opening", "lifecycles", "cancelling")
            if f"round {number} {phase} peak" in memory
        )
        after = memory.get(f"after round {number}")
        yield (
            f"    round {number}: peak {memory.get(f'round {number} peak', float('nan')):.1f} "
            f"(by phase: {phases})"
            + ("" if after is None else f"; after its results expired {after:.1f}")
        )
    for stored in results.stored:
        yield (
            f"  stored after {stored['after']:<12} requests {stored['requests']:>6}, files "
            f"{stored['files']:>6}, journal entries {stored['journal_entries']:>6}"
        )
    series = results.meta.get("rss_series", [])
    for first in range(0, len(series), 10):
        chunk = series[first : first + 10]
        yield "  RSS over time: " + "  ".join(
            f"{s['seconds']:.0f}s {s['rss_mib']:.0f}" for s in chunk
        )
