"""The benchmarks run and report every figure, on tiny inputs (``--quick``).

Correctness only: how fast or how small is the benchmarks' business (``nox -s bench``), never a
test's, because wall-clock assertions fail on a busy machine for no fault in the code.
"""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import pytest

from bench import __main__ as bench_runner
from bench import inproc_bench, lipsync_bench, server_bench, sse_bench
from bench.common import flatten
from bench.loadgen import Load, LoadResult, pick_tool, run_load
from bench.servers import Reply, ServerProcess

SMOKED_HERE = ("lipsync", "server", "inproc", "sse")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """One quick run of every benchmark through the runner, as ``nox -s bench -- --quick``."""
    folder = tmp_path_factory.mktemp("bench")
    capture = folder / "stdout.txt"
    only = [arg for name in SMOKED_HERE for arg in ("--only", name)]
    with capture.open("w") as out, contextlib.redirect_stdout(out):
        code = bench_runner.main(["--quick", "--json-dir", str(folder), *only])
    assert code == 0
    figures = {name: json.loads((folder / f"{name}.json").read_text())
               for name in SMOKED_HERE}  # fmt: skip
    return capture.read_text(), figures


def test_every_registered_benchmark_runs_and_writes_json(
    quick_run: tuple[str, dict[str, Any]],
) -> None:
    stdout, figures = quick_run
    assert set(figures) == set(SMOKED_HERE)
    for name in SMOKED_HERE:
        assert f"== {name} " in stdout
    # The others have smoke runs of their own: webhooks in tests/webhooks, persistence (slow,
    # 12 s) in tests/persistence/test_bench.py.
    assert set(bench_runner.BENCHMARKS) - set(SMOKED_HERE) == {"webhooks", "persistence"}


def test_lipsync_reports_every_figure_as_a_positive_number(
    quick_run: tuple[str, dict[str, Any]],
) -> None:
    flat = flatten(quick_run[1]["lipsync"])
    expected = lipsync_bench.figure_keys(lipsync_bench.QUICK)
    assert not set(expected) - set(flat), "figures missing from the JSON"
    for key in expected:
        value = flat[key]
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (key, value)
    landmarks = quick_run[1]["lipsync"]["landmarks"]
    assert "skipped" in landmarks or all(v["fps"] > 0 for v in landmarks.values())


def test_lipsync_table_prints_every_row(quick_run: tuple[str, dict[str, Any]]) -> None:
    stdout = quick_run[0]
    rows = [
        "reference lip-sync (haar), fps",
        "round trip decode->encode, fps",
        "ratio reference / round trip",
        "prototype fps, dlib landmarks",
        "prototype fps, mediapipe mesh",
        "landmarks backend, fps",
        "decode (iter_frames)",
        "track (haar update)",
        "render (per face frame)",
        "encode",
        "video stages alone would give, fps",
        "baseline: import pipeline",
        "baseline: transcode",
        *lipsync_bench.MODES,
    ]
    lines = stdout.splitlines()
    for row in rows:
        assert any(line.strip().startswith(row) for line in lines), f"no row {row!r}"
    for width, height in lipsync_bench.QUICK.sizes:
        assert f"{width}x{height}" in stdout


def test_quick_keys_cover_every_size_and_mode() -> None:
    """The key list the smoke test checks is the full run's list, at other sizes."""
    full, quick = (lipsync_bench.figure_keys(c) for c in (lipsync_bench.FULL, lipsync_bench.QUICK))
    assert len(full) == len(quick)
    assert "throughput.1280x720.ratio" in full and "memory.bounce.60s_mb" in full


def _finite(flat: dict[str, Any], keys: list[str], positive: bool = True) -> None:
    assert not set(keys) - set(flat), f"figures missing from the JSON: {set(keys) - set(flat)}"
    for key in keys:
        value = flat[key]
        ok = isinstance(value, float) and math.isfinite(value) and (value > 0 or not positive)
        assert ok, (key, value)


def test_server_reports_every_figure(quick_run: tuple[str, dict[str, Any]]) -> None:
    figures = quick_run[1]["server"]
    _finite(flatten(figures), server_bench.figure_keys(server_bench.QUICK))
    assert figures["prism"] == {"skipped": "not in --quick runs"}
    small, large = server_bench.QUICK.store_sizes
    assert figures["store"]["small"]["stored"] >= small
    assert figures["store"]["large"]["stored"] >= large
    for row in ("mock (fal-mock serve", "baseline: raw ASGI, same bytes", "ratio mock / baseline"):
        assert row in quick_run[0]


def test_inproc_reports_every_figure(quick_run: tuple[str, dict[str, Any]]) -> None:
    figures = quick_run[1]["inproc"]
    _finite(flatten(figures), inproc_bench.figure_keys(inproc_bench.QUICK))
    assert figures["meta"]["calls_per_lifecycle"] == 5
    assert "baseline: httpx.MockTransport" in quick_run[0]


def test_sse_reports_every_figure_and_every_event_arrived(
    quick_run: tuple[str, dict[str, Any]],
) -> None:
    figures = quick_run[1]["sse"]
    keys = sse_bench.figure_keys(sse_bench.QUICK)
    # Counts that may be zero (nothing missing, no CPU spent idling) need only be finite.
    zeros = [k for k in keys if k.endswith((".missing", ".idle_cpu_use"))]
    _finite(flatten(figures), [k for k in keys if k not in zeros])
    _finite(flatten(figures), zeros, positive=False)
    for side in ("mock", "baseline"):
        assert figures[side]["held"] == sse_bench.QUICK.streams
        assert figures[side]["missing"] == 0


def test_inproc_lifecycle_checks_its_answers() -> None:
    """The lifecycle refuses a wrong answer, so a broken way in cannot pass for a fast one."""
    import asyncio

    import httpx

    def wrong(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": "no"})

    async def drive() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(wrong)) as client:
            await inproc_bench.lifecycle(client)

    with pytest.raises(RuntimeError, match="submit answered 404"):
        asyncio.run(drive())


@pytest.fixture(scope="module")
def raw_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    reply = tmp_path_factory.mktemp("raw") / "reply.json"
    reply.write_text(Reply(202, (("content-type", "application/json"),), b'{"a":1}').to_json())
    with ServerProcess("raw-fixed", reply_file=reply) as server:
        yield server


def test_python_load_counts_exactly_and_sees_every_status(raw_server: ServerProcess) -> None:
    load = Load(raw_server.port, "/anything", connections=4, seconds=30, count=50)
    result = run_load(load, "python").check("raw")
    assert result.requests == 50 and result.statuses == {"202": 50}
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms


def test_a_load_with_errors_gives_no_figures() -> None:
    result = LoadResult("python", 10, 1.0, 1, 0, 1.0, 2.0, 3.0, {"202": 9, "500": 1})
    with pytest.raises(RuntimeError, match="1 not 2xx"):
        result.check("raw")


@pytest.mark.skipif(pick_tool("auto", Load(0, "/", seconds=1)) != "wrk", reason="no wrk on PATH")
def test_wrk_output_is_parsed(raw_server: ServerProcess) -> None:
    result = run_load(Load(raw_server.port, "/x", connections=2, seconds=1), "wrk").check("wrk")
    assert result.tool == "wrk" and result.requests > 0 and 0.5 < result.seconds < 5
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
