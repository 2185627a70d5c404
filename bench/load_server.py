"""The load test's server: ``fal-mock serve`` as a real process, and what /proc says about it.

Started as users start it (the ``fal-mock`` console script, else ``python -m mock_server.cli``)
on a free port (``--port 0``: the banner names the port it picked), with settings the CLI has no
flag for passed as ``FAL_MOCK_*`` environment variables. Pinned to one core from before
``exec`` (every thread it ever starts inherits the affinity), so the load test's clients on the
other core never share a CPU with it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

import httpx

__all__ = ["MemorySampler", "MockProcess", "Sample"]

CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
MIB: Final = 1024 * 1024
_BANNER: Final = re.compile(r"serving fal-ai/lipsync at (http://\S+)")


def _command() -> list[str]:
    script = Path(sys.executable).with_name("fal-mock")
    if script.is_file():
        return [str(script), "serve"]
    found = shutil.which("fal-mock")
    return [found, "serve"] if found else [sys.executable, "-m", "mock_server.cli", "serve"]


class MockProcess:
    """``with MockProcess(args, env, cpu=0) as mock: mock.base_url, mock.rss_bytes()``."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        *,
        cpu: int | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.command = [*_command(), "--port", "0", *args]
        self.env = {**os.environ, **env}
        self.cpu = cpu
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.output: IO[str] | None = None
        self.base_url = ""

    @property
    def pid(self) -> int:
        assert self.process is not None, "start() first"
        return self.process.pid

    def start(self) -> MockProcess:
        # Output to a file, not a pipe: nothing reads it while the load runs, and a full pipe
        # would block the server.
        self.output = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in stop)
        cpu = self.cpu
        pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
        self.process = subprocess.Popen(
            self.command, stdout=self.output, stderr=subprocess.STDOUT, env=self.env,
            preexec_fn=pin,  # a single syscall in the child: safe before exec
        )  # fmt: skip
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if not self.base_url:
                self.output.seek(0)
                found = _BANNER.search(self.output.read())
                self.base_url = found.group(1) if found else ""
            if self.base_url and self._answers():
                return self
            time.sleep(0.05)
        problem = f"fal-mock serve did not start: {' '.join(self.command)}\n{self.log()}"
        self.stop()
        raise RuntimeError(problem)

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/_mock/state", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self, tail: int = 4000) -> str:
        if self.output is None or self.output.closed:
            return ""
        self.output.seek(0)
        return self.output.read()[-tail:]

    def rss_bytes(self) -> int:
        """Resident set size now (``VmRSS``), from ``/proc/PID/status``."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS in /proc status")

    def cpu_seconds(self) -> float:
        """User + system CPU time so far, all threads (``/proc/PID/stat``)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # uvicorn's graceful stop (1 s for streams)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            self.process = None
        if self.output is not None:
            self.output.close()

    def __enter__(self) -> MockProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True, slots=True)
class Sample:
    seconds: float
    """Since the sampler started."""
    rss_mib: float
    phase: str


@dataclass(slots=True)
class MemorySampler:
    """The server's RSS every ``interval`` seconds, each sample tagged with the phase it fell in
    (``phase`` is set by the session as it goes)."""

    server: MockProcess
    interval: float = 0.5
    phase: str = "start"
    samples: list[Sample] = field(default_factory=list)
    _started: float = field(default_factory=time.perf_counter)

    def sample(self) -> float:
        rss = self.server.rss_bytes() / MIB
        elapsed = time.perf_counter() - self._started
        self.samples.append(Sample(round(elapsed, 2), round(rss, 1), self.phase))
        return rss

    async def run(self) -> None:
        while self.server.alive():
            self.sample()
            await asyncio.sleep(self.interval)

    def peak(self, phase: str) -> float:
        """The highest sample of the phases named ``phase`` or starting ``phase + " "``."""
        return max(
            (
                s.rss_mib
                for s in self.samples
                if s.phase == phase or s.phase.startswith(phase + " ")
            ),
            default=float("nan"),
        )

    def series(self, every: float) -> list[Sample]:
        """One sample per ``every`` seconds (the first at or after each step), for printing."""
        picked, step = [], 0.0
        for sample in self.samples:
            if sample.seconds >= step:
                picked.append(sample)
                step = sample.seconds - sample.seconds % every + every
        return picked
