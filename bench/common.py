"""What the server, in-process and SSE benchmarks share: the request they send, best-of-N, the
run's description, and the dotted figure keys the smoke test checks."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
import os
import platform
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

__all__ = [
    "AUTH",
    "QUEUE_PATH",
    "SUBMIT_BODY",
    "best_of",
    "flatten",
    "meta",
    "ratio",
    "write_json",
]

QUEUE_PATH: Final = "/queue/fal-ai/lipsync"
"""The live server's queue host is a path prefix (DESIGN.md, "One app, three ways in")."""
AUTH: Final = (("Authorization", "Key bench"),)
SUBMIT_BODY: Final = json.dumps(
    {"video_url": "https://example.com/face.mp4", "audio_url": "https://example.com/speech.mp3"},
    separators=(",", ":"),
)
"""The input the tests use: the placeholder engine never reads it, so a submit costs only the
queue's own work."""


def best_of(runs: Sequence[dict[str, float]], higher: Iterable[str]) -> dict[str, float]:
    """Each figure's best over the runs: the highest for ``higher`` keys, else the lowest (noise
    on a shared machine only ever adds time)."""
    up = set(higher)
    return {key: (max if key in up else min)(run[key] for run in runs) for key in runs[0]}


def ratio(top: float, bottom: float) -> float:
    return top / bottom if bottom else math.inf


def meta(config_name: str, **extra: Any) -> dict[str, Any]:
    versions = {}
    for package in ("uvicorn", "fastapi", "starlette", "pydantic", "httpx", "h11"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "absent"
    # uvicorn picks httptools and uvloop when installed ("auto"), h11 and asyncio otherwise.
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return {
        "config": config_name,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "uvicorn_http": http,
        "uvicorn_loop": loop,
        "versions": versions,
        **extra,
    }


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def write_json(path: Path | None, results: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(results, indent=2) + "\n")
