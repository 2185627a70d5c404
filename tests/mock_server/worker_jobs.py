"""Job functions for the worker-pool tests; imported by name inside the spawned workers."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

Log = Callable[[str, str], None]
Stop = Callable[[], bool]


def echo(payload: dict[str, Any], log: Log, should_stop: Stop) -> dict[str, Any]:
    log("INFO", f"echo {payload['value']}")
    return {"value": payload["value"], "pid": os.getpid()}


def fail(payload: dict[str, Any], log: Log, should_stop: Stop) -> None:
    raise RuntimeError(f"job failed on purpose: {payload['why']}")


def crash(payload: dict[str, Any], log: Log, should_stop: Stop) -> None:
    os._exit(3)  # the worker process dies under the job, as after a segfault or an OOM kill


def wait_for_cancel(payload: dict[str, Any], log: Log, should_stop: Stop) -> str:
    log("INFO", "waiting")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if should_stop():
            return "stopped"
        time.sleep(0.01)
    return "never cancelled"


def ignore_cancel(payload: dict[str, Any], log: Log, should_stop: Stop) -> str:
    log("INFO", "busy")
    time.sleep(30)  # never looks at should_stop: only termination ends it
    return "finished"
