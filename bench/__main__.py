"""Run every benchmark in ``bench/``: ``python -m bench [--quick] [--json-dir DIR] [--only NAME]``.

A benchmark is a module with ``main(argv) -> int`` that accepts ``--quick`` and ``--json OUT``
and prints its own table. Add new ones to ``BENCHMARKS``; they run in that order, one after the
other (never side by side: they would time each other).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Final

__all__ = ["BENCHMARKS", "main"]

BENCHMARKS: Final[dict[str, str]] = {
    "lipsync": "bench.lipsync_bench",
    "server": "bench.server_bench",
    "inproc": "bench.inproc_bench",
    "sse": "bench.sse_bench",
    "webhooks": "bench.webhooks_bench",
    "persistence": "bench.persistence_bench",
}
"""Short name -> module. The short name names the JSON file and ``--only`` picks by it."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny inputs: a smoke run")
    parser.add_argument(
        "--json-dir",
        type=Path,
        metavar="DIR",
        help="write each benchmark's figures to DIR/NAME.json",
    )
    parser.add_argument(
        "--only", action="append", choices=sorted(BENCHMARKS), metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.json_dir:
        args.json_dir.mkdir(parents=True, exist_ok=True)
    failed = []
    for name, module_name in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        options = ["--quick"] if args.quick else []
        if args.json_dir:
            options += ["--json", str(args.json_dir / f"{name}.json")]
        print(f"== {name} ({module_name}) ==", flush=True)
        started = time.perf_counter()
        # One failing benchmark should not hide the others' figures: report it and go on.
        try:
            code = importlib.import_module(module_name).main(options)
        except Exception:
            traceback.print_exc()
            code = 1
        print(f"== {name}: {time.perf_counter() - started:.0f} s ==\n", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
