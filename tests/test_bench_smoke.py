"""The benchmarks run and report every figure, on tiny clips (``--quick``).

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
from bench import lipsync_bench


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """One quick run of every benchmark through the runner, as ``nox -s bench -- --quick``."""
    folder = tmp_path_factory.mktemp("bench")
    capture = folder / "stdout.txt"
    with capture.open("w") as out, contextlib.redirect_stdout(out):
        code = bench_runner.main(["--quick", "--json-dir", str(folder)])
    assert code == 0
    figures = {name: json.loads((folder / f"{name}.json").read_text())
               for name in bench_runner.BENCHMARKS}  # fmt: skip
    return capture.read_text(), figures


def test_every_registered_benchmark_runs_and_writes_json(
    quick_run: tuple[str, dict[str, Any]],
) -> None:
    stdout, figures = quick_run
    assert set(figures) == set(bench_runner.BENCHMARKS)
    for name in bench_runner.BENCHMARKS:
        assert f"== {name} " in stdout


def test_lipsync_reports_every_figure_as_a_positive_number(
    quick_run: tuple[str, dict[str, Any]],
) -> None:
    flat = _flatten(quick_run[1]["lipsync"])
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
