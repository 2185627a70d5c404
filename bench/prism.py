"""Stoplight Prism (npm ``@stoplight/prism-cli@5``) mocking the committed openapi.yaml: the
tool users would otherwise reach for, measured the way the mock is.

Optional: :func:`start_prism` returns a note instead of a server when npx is missing or Prism
cannot be installed or started within the time limit (the first run downloads it).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Final

from bench.servers import CLOCK_TICKS

__all__ = ["PRISM_PACKAGE", "PrismProcess", "start_prism"]

PRISM_PACKAGE: Final = "@stoplight/prism-cli@5"
SPEC: Final = Path(__file__).resolve().parent.parent / "openapi.yaml"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _tree_cpu_seconds(root: int) -> float:
    """utime + stime of ``root`` and every process below it (npx starts node, which may fork)."""
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        times[pid] = int(fields[11]) + int(fields[12])
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return sum(times.get(pid, 0) for pid in tree) / CLOCK_TICKS


class PrismProcess:
    """A running Prism, in a process group of its own so that stopping it stops node too."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> None:
        self.process, self.port, self.log = process, port, log

    def cpu_seconds(self) -> float:
        return _tree_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the group this class created
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()

    def __enter__(self) -> PrismProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_prism(cpu: int | None, *, silent: bool, timeout: float = 180.0) -> PrismProcess | str:
    """Prism serving openapi.yaml on a free port, or why not (a note to print)."""
    npx = shutil.which("npx")
    if npx is None:
        return "npx is not on PATH"
    if not SPEC.is_file():
        return f"{SPEC} not found (Prism mocks the committed spec)"
    port = _free_port()
    command = [npx, "--yes", PRISM_PACKAGE, "mock", "-h", "127.0.0.1", "-p", str(port)]
    command += ["--verboseLevel", "silent"] if silent else []
    command.append(str(SPEC))
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(cpu), *command]  # inherited by node and its threads
    # Prism logs every request: to a file, so a full pipe never slows it down.
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by PrismProcess.stop)
    process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
    prism = PrismProcess(process, port, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return prism
        except OSError:
            time.sleep(0.2)
    log.seek(0)
    tail = log.read()[-600:].decode(errors="replace").strip()
    prism.stop()
    why = "exited" if process.returncode is not None else f"not listening after {timeout:g} s"
    return f"Prism {why}: {tail.splitlines()[-1] if tail else 'no output'}"
