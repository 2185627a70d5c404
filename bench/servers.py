"""Servers the benchmarks measure, each in a process of its own pinned to one core.

``python -m bench.servers KIND [--cpu N] [--settings JSON] [--reply FILE]`` serves one of:

- ``mock``: ``create_app(MockSettings(**settings))``, as ``fal-mock serve`` does;
- ``raw-fixed``: a bare ASGI app answering every request with the exact status, headers and body
  in FILE (bytes captured from the mock): the floor of uvicorn itself;
- ``raw-submit``: the same, after reading the body and validating it with the contract's
  ``LipsyncInput`` (422 if it does not validate): the floor of a pydantic POST;
- ``raw-sse``: ``GET /stream...`` opens a ``text/event-stream`` that sends FILE's body as one
  event at once and again after each ``POST`` (to any path), closing after the second: the floor
  of pushing events. Other GETs answer ``{}``.

All of them run under ``mock_server.serving.uvicorn_config``, so the uvicorn settings are the
mock's own (HTTP implementation, event loop, no access log). The child prints ``PORT n`` once
it listens; :class:`ServerProcess` starts it, reads its CPU time and stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

__all__ = ["KINDS", "Reply", "ServerProcess", "cpu_plan", "raise_fd_limit", "start_all"]

KINDS: Final = ("mock", "raw-fixed", "raw-submit", "raw-sse")
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer, as bytes: what a raw baseline sends back."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def to_json(self) -> str:
        body = base64.b64encode(self.body).decode()
        return json.dumps({"status": self.status, "headers": self.headers, "body": body})

    @classmethod
    def from_json(cls, text: str) -> Reply:
        data = json.loads(text)
        headers = tuple((str(k), str(v)) for k, v in data["headers"])
        return cls(int(data["status"]), headers, base64.b64decode(data["body"]))


def cpu_plan() -> tuple[int | None, int | None]:
    """(server core, load core): two different cores when this process may use two, else none
    (the figures per server CPU-second still hold; latency then includes the sharing)."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cores = sorted(os.sched_getaffinity(0))
    return (cores[0], cores[1]) if len(cores) >= 2 else (None, None)


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (thousands of streams need as many sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def pin(pid: int, cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(pid, {cpu})


# -- the raw ASGI baselines: no framework, no routing, bytes prepared once --------------------


def _start_message(reply: Reply, content_length: bool = True) -> Message:
    headers = [(k.lower().encode(), v.encode()) for k, v in reply.headers]
    headers = [(k, v) for k, v in headers if k != b"content-length"]
    if content_length:
        headers.append((b"content-length", str(len(reply.body)).encode()))
    return {"type": "http.response.start", "status": reply.status, "headers": headers}


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def raw_fixed(reply: Reply) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    start, body = _start_message(reply), {"type": "http.response.body", "body": reply.body}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(start)
        await send(body)

    return app


def raw_submit(reply: Reply) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    from pydantic import ValidationError

    from contracts.schemas import LipsyncInput

    start, body = _start_message(reply), {"type": "http.response.body", "body": reply.body}
    invalid = _start_message(Reply(422, (("content-type", "application/json"),), b"{}"))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            LipsyncInput.model_validate_json(await _read_body(receive))
        except ValidationError:
            await send(invalid)
            await send({"type": "http.response.body", "body": b"{}"})
            return
        await send(start)
        await send(body)

    return app


def raw_sse(reply: Reply) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """Streams wait on one shared future per generation: a POST wakes every stream at once."""
    sse = Reply(200, (("content-type", "text/event-stream"), ("cache-control", "no-cache")), b"")
    start = _start_message(sse, content_length=False)
    data = b"data: " + reply.body + b"\r\n\r\n"
    event: Message = {"type": "http.response.body", "body": data, "more_body": True}
    ok_start = _start_message(Reply(200, (("content-type", "application/json"),), b"{}"))
    ok_body = {"type": "http.response.body", "body": b"{}"}
    state: dict[str, asyncio.Future[None]] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        if "changed" not in state:
            state["changed"] = loop.create_future()
        if scope["method"] == "POST" or not scope["path"].startswith("/stream"):
            await _read_body(receive)
            if scope["method"] == "POST":
                changed, state["changed"] = state["changed"], loop.create_future()
                changed.set_result(None)
            await send(ok_start)
            await send(ok_body)
            return
        await send(start)
        await send(event)
        for _ in range(2):
            await state["changed"]
            await send(event)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


# -- the child ------------------------------------------------------------------------------


def _build_app(kind: str, settings: dict[str, Any], reply: Reply | None) -> Any:
    if kind == "mock":
        from mock_server.app import create_app
        from mock_server.settings import MockSettings

        return create_app(MockSettings(**settings))
    assert reply is not None, f"{kind} needs --reply"
    return {"raw-fixed": raw_fixed, "raw-submit": raw_submit, "raw-sse": raw_sse}[kind](reply)


async def _serve(app: Any, settings: dict[str, Any]) -> None:
    import uvicorn

    from mock_server.serving import uvicorn_config
    from mock_server.settings import MockSettings

    # The baselines run under the mock's own uvicorn settings (host, port 0, logging, loop).
    listen = MockSettings(port=0, **{k: v for k, v in settings.items() if k == "host"})
    server = uvicorn.Server(uvicorn_config(app, listen))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await serving  # raises what stopped it
            raise SystemExit("the server stopped before it listened")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    await serving


def child_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.servers")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--cpu", type=int, help="pin this process to one core")
    parser.add_argument("--settings", default="{}", help="MockSettings fields, as JSON")
    parser.add_argument("--reply", type=Path, help="a Reply (JSON) for the raw baselines")
    args = parser.parse_args(argv)
    settings = json.loads(args.settings)
    reply = Reply.from_json(args.reply.read_text()) if args.reply else None
    app = _build_app(args.kind, settings, reply)
    # Pinned once imported: servers started side by side import on both cores, and no thread
    # exists yet that would keep the old affinity.
    pin(0, args.cpu)
    raise_fd_limit()
    asyncio.run(_serve(app, settings))
    return 0


# -- the parent's handle --------------------------------------------------------------------


class ServerProcess:
    """``with ServerProcess("mock", settings={...}, cpu=0) as server: server.port``."""

    def __init__(
        self,
        kind: str,
        *,
        settings: dict[str, Any] | None = None,
        reply_file: Path | None = None,
        cpu: int | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.kind = kind
        self.args = [sys.executable, "-m", "bench.servers", kind]
        self.args += ["--settings", json.dumps(settings or {})]
        self.args += ["--reply", str(reply_file)] if reply_file else []
        self.args += ["--cpu", str(cpu)] if cpu is not None else []
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[str] | None = None
        self.errors: IO[str] | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        return self.launch().wait_ready()

    def launch(self) -> ServerProcess:
        """Start the process without waiting (see :func:`start_all`)."""
        # stderr to a file, not a pipe: a server that logs a lot would block on a full pipe.
        self.errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=self.errors, text=True
        )
        return self

    def wait_ready(self) -> ServerProcess:
        process, errors = self.process, self.errors
        if process is None or process.stdout is None or errors is None:
            raise RuntimeError("launch() first")
        stdout = process.stdout
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.start_timeout)
        if not (lines and lines[0].startswith("PORT ")):
            process.kill()  # also ends the reader's readline
            reader.join()
            self.stop(keep_errors=True)
            errors.seek(0)
            problem = f"{self.kind} server did not start: {lines}\n{errors.read()[-4000:]}"
            errors.close()
            raise RuntimeError(problem)
        self.port = int(lines[0].split()[1])
        return self

    def cpu_seconds(self) -> float:
        """The server's user + system CPU time so far (all its threads), from /proc."""
        assert self.process is not None
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime

    def interrupt(self) -> None:
        """Ask for uvicorn's graceful stop (1 s for open streams); :meth:`stop` waits."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)

    def stop(self, keep_errors: bool = False) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        if self.errors is not None and not keep_errors:
            self.errors.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def start_all(*servers: ServerProcess) -> Iterator[tuple[ServerProcess, ...]]:
    """Start several servers side by side (their imports take the longest) and stop them all
    at once at the end."""
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.interrupt()
        for server in servers:
            server.stop()


if __name__ == "__main__":
    raise SystemExit(child_main())
