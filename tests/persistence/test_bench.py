"""The persistence benchmark runs and reports every figure (``--quick``). Correctness only:
how fast is the benchmark's business, never a test's."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import pytest

from bench import persistence_bench
from bench.common import flatten


@pytest.mark.slow
def test_the_persistence_benchmark_reports_every_figure(tmp_path: Path) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = persistence_bench.main(["--quick", "--json", str(tmp_path / "p.json")])
    assert code == 0
    flat = flatten(json.loads((tmp_path / "p.json").read_text()))
    expected = persistence_bench.figure_keys(persistence_bench.QUICK)
    assert not set(expected) - set(flat), set(expected) - set(flat)
    for key in expected:
        value = flat[key]
        assert isinstance(value, float) and math.isfinite(value), (key, value)
    # Retention left nothing kept after any round, whatever the sizes.
    rounds = json.loads((tmp_path / "p.json").read_text())["retention"]
    assert [r["requests_kept"] for r in rounds.values()] == [0.0] * persistence_bench.QUICK.rounds
    for row in ("submit, in memory", "--state-sync full", "--state-sync normal", "round_1"):
        assert row in out.getvalue()
