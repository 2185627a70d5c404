"""Closed-loop HTTP/1.1 load on loopback: ``wrk`` when it is on PATH, else a Python generator.

Each of ``connections`` keep-alive connections sends one request, waits for the whole answer and
sends the next, until ``seconds`` have passed (or ``count`` answers came back, Python only:
wrk's runs are whole seconds). The load runs in a process of its own, pinned to a core other than
the server's, so the two do not share a CPU and the load's own work never shows in the server's
CPU time.

The Python generator uses raw sockets through ``asyncio.Protocol`` (httpx costs more CPU per
request than the servers measured here, so it could not keep them busy) and parses just enough:
the status line, ``Content-Length`` or a chunked body's end.
``python -m bench.loadgen SPEC_JSON`` runs one load and prints its result as JSON.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

__all__ = ["Load", "LoadResult", "percentile", "pick_tool", "run_load"]

TOOLS: Final = ("auto", "wrk", "python")


@dataclass(frozen=True, slots=True)
class Load:
    port: int
    path: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    connections: int = 32
    seconds: float = 5.0
    """Always a time limit, so every load stops by itself; wrk rounds it up to whole seconds."""
    count: int | None = None
    """Stop after this many answers (Python only)."""
    cpu: int | None = None
    """Pin the load process to this core."""


@dataclass(slots=True)
class LoadResult:
    tool: str
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def check(self, what: str) -> LoadResult:
        """A load that got errors measured something else than the route: refuse its figures."""
        if self.requests == 0 or self.non_2xx or self.socket_errors:
            raise RuntimeError(
                f"{what}: {self.requests} answers, {self.non_2xx} not 2xx "
                f"({self.statuses}), {self.socket_errors} socket errors"
            )
        return self


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of an unsorted list (q in 0-100)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(math.ceil(q / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def pick_tool(tool: str = "auto", load: Load | None = None) -> str:
    """wrk when asked or on PATH, for loads it can run: whole seconds, no count."""
    fits = load is None or (load.count is None and load.seconds >= 1 and load.seconds % 1 == 0)
    if tool == "auto":
        return "wrk" if shutil.which("wrk") and fits else "python"
    if tool == "wrk" and not shutil.which("wrk"):
        raise RuntimeError("wrk is not on PATH")
    return tool if fits else "python"


def run_load(load: Load, tool: str = "auto") -> LoadResult:
    if pick_tool(tool, load) == "wrk":
        return _run_wrk(load)
    command = [sys.executable, "-m", "bench.loadgen", json.dumps(asdict(load))]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=load.seconds + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{done.stderr[-4000:]}")
    return LoadResult(**json.loads(done.stdout.strip().splitlines()[-1]))


# -- wrk --------------------------------------------------------------------------------------

# wrk's done() hook prints exact figures (latency in microseconds) as one JSON line, rather
# than the rounded human-readable table.
_WRK_SCRIPT: Final = """
wrk.method = {method}
wrk.body = {body}
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, '
    .. '"status": %d, "socket": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50.0), latency:percentile(99.0),
    latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def _lua_string(text: str) -> str:
    """A Lua long string: no escapes to get wrong, a level no ``]==]`` inside can close."""
    level = "=" * (max((len(m) for m in re.findall(r"\](=*)\]", text)), default=0) + 1)
    return f"[{level}[{text}]{level}]"


def _run_wrk(load: Load) -> LoadResult:
    headers = "\n".join(
        f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in load.headers
    )
    script = _WRK_SCRIPT.format(
        method=_lua_string(load.method), body=_lua_string(load.body), headers=headers
    )
    seconds = max(math.ceil(load.seconds), 1)
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as folder:
        path = Path(folder) / "load.lua"
        path.write_text(script)
        command = ["wrk", "-t1", f"-c{load.connections}", f"-d{seconds}s", "--timeout", "10s"]
        command += ["-s", str(path), f"http://127.0.0.1:{load.port}{load.path}"]
        if load.cpu is not None and shutil.which("taskset"):
            command = ["taskset", "-c", str(load.cpu), *command]  # before wrk starts its thread
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = process.communicate(timeout=seconds + 60)
    line = next((x for x in out.decode().splitlines() if x.startswith("WRKJSON ")), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{out.decode()}{err.decode()}")
    figures = json.loads(line.removeprefix("WRKJSON "))
    return LoadResult(
        tool="wrk",
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        non_2xx=figures["status"],  # wrk counts answers with status > 399
        socket_errors=figures["socket"],
        p50_ms=figures["p50_us"] / 1e3,
        p99_ms=figures["p99_us"] / 1e3,
        max_ms=figures["max_us"] / 1e3,
    )


# -- the Python generator ---------------------------------------------------------------------


class _Shared:
    def __init__(self, load: Load, request: bytes) -> None:
        self.request = request
        self.deadline = time.perf_counter() + load.seconds
        self.remaining = load.count if load.count is not None else math.inf
        self.latencies: list[float] = []
        self.statuses: dict[str, int] = {}
        self.socket_errors = 0
        self.open = load.connections
        self.finished = asyncio.get_running_loop().create_future()

    def closed(self) -> None:
        self.open -= 1
        if self.open == 0 and not self.finished.done():
            self.finished.set_result(None)


class _Connection(asyncio.Protocol):
    def __init__(self, shared: _Shared) -> None:
        self.shared = shared
        self.buffer = b""
        self.need = -1  # bytes that make the whole answer, once the head is read
        self.chunked = False
        self.status = b""
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._send()

    def _send(self) -> None:
        shared = self.shared
        assert self.transport is not None
        if shared.remaining <= 0 or time.perf_counter() >= shared.deadline:
            self.transport.close()
            return
        shared.remaining -= 1
        self.sent_at = time.perf_counter()
        self.transport.write(shared.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self._answer_complete():
            now = time.perf_counter()
            shared = self.shared
            shared.latencies.append(now - self.sent_at)
            key = self.status.decode()
            shared.statuses[key] = shared.statuses.get(key, 0) + 1
            self._send()

    def _answer_complete(self) -> bool:
        if self.need < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            head = self.buffer[:end].lower()
            self.status = head[9:12]
            match = re.search(rb"\r\ncontent-length: *(\d+)", head)
            self.chunked = match is None and b"\r\ntransfer-encoding: chunked" in head
            self.need = end + 4 + (int(match.group(1)) if match else 0)
        if self.chunked:
            end = self.buffer.find(b"0\r\n\r\n", self.need)
            if end < 0:
                return False
            self.need = end + 5
        elif len(self.buffer) < self.need:
            return False
        self.buffer = self.buffer[self.need :]
        self.need = -1
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None or self.need >= 0 or self.buffer:
            self.shared.socket_errors += 1
        self.shared.closed()


def _request_bytes(load: Load) -> bytes:
    body = load.body.encode()
    lines = [f"{load.method} {load.path} HTTP/1.1", f"Host: 127.0.0.1:{load.port}"]
    lines += [f"{k}: {v}" for k, v in load.headers]
    if body or load.method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _python_load(load: Load) -> LoadResult:
    loop = asyncio.get_running_loop()
    shared = _Shared(load, _request_bytes(load))
    started = time.perf_counter()
    for _ in range(load.connections):
        try:
            await loop.create_connection(lambda: _Connection(shared), "127.0.0.1", load.port)
        except OSError:
            shared.socket_errors += 1
            shared.closed()
    await asyncio.wait_for(shared.finished, timeout=load.seconds + 30)
    elapsed = time.perf_counter() - started
    ok = sum(n for status, n in shared.statuses.items() if status.startswith("2"))
    ms = [x * 1e3 for x in shared.latencies]
    return LoadResult(
        tool="python",
        requests=len(ms),
        seconds=elapsed,
        non_2xx=len(ms) - ok,
        socket_errors=shared.socket_errors,
        p50_ms=percentile(ms, 50),
        p99_ms=percentile(ms, 99),
        max_ms=max(ms, default=math.nan),
        statuses=shared.statuses,
    )


def main(argv: list[str] | None = None) -> int:
    spec = json.loads((argv or sys.argv[1:])[0])
    spec["headers"] = tuple(tuple(pair) for pair in spec["headers"])
    load = Load(**spec)
    if load.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {load.cpu})
    result = asyncio.run(_python_load(load))
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
