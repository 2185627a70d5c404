"""A small process pool for result engines that do real work (the CPU reference lip-sync).

Why not ``concurrent.futures.ProcessPoolExecutor``: a running job there cannot be cancelled,
and it has no channel for progress. Here each worker is a spawned process with its own pipe:

- the parent sends ``("run", job_id, function, payload)``; the worker calls
  ``function(payload, log, should_stop)``, where ``log(level, message)`` sends a log line back
  and ``should_stop()`` is true once the parent has sent ``("cancel", job_id)``;
- the worker answers ``("done", job_id, value)`` or ``("failed", job_id, text)``;
- a pump thread in the parent reads every pipe, hands waiting jobs to idle workers in order,
  and notices dead workers: their job fails as ``runner_disconnected`` and a fresh worker
  takes the slot. A worker that ignores a cancel for ``CANCEL_GRACE_S`` is terminated.

Nothing here knows about lip-sync: ``function`` is named as ``"module:attribute"`` and imported
in the worker, so the parent never loads PyAV or OpenCV for it. Workers are started with
``spawn`` (forking a process that runs uvicorn's threads is unsafe) and are daemons, so they
never outlive the server.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import itertools
import multiprocessing
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Final, Literal

__all__ = ["CANCEL_GRACE_S", "Ticket", "WorkerPool", "shared_pool"]

CANCEL_GRACE_S: Final = 5.0
_PUMP_TICK_S: Final = 0.05

TicketState = Literal["waiting", "running", "done", "failed", "cancelled"]


@dataclass(eq=False)
class Ticket:
    """One job's handle: its state, its result or failure, and the log lines not yet taken."""

    job_id: int
    function: str
    payload: dict[str, Any]
    state: TicketState = "waiting"
    value: Any = None
    failure: str | None = None
    disconnected: bool = False
    """True when the worker died under the job (not an exception raised by the job)."""
    logs: list[tuple[str, str]] = field(default_factory=list)
    cancel_sent_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _callbacks: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def on_finish(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the ticket has finished (at once if it has)."""
        with self._lock:
            if not self.finished():
                self._callbacks.append(callback)
                return
        callback()

    def _settle(self, state: TicketState, value: Any = None, failure: str | None = None) -> None:
        with self._lock:
            self.value, self.failure, self.state = value, failure, state
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def take_logs(self) -> list[tuple[str, str]]:
        with self._lock:
            taken, self.logs = self.logs, []
            return taken


class _Worker:
    def __init__(self, context: Any) -> None:
        parent_end, child_end = multiprocessing.Pipe(duplex=True)
        self.conn: Connection = parent_end
        self.process: BaseProcess = context.Process(
            target=_worker_main, args=(child_end,), daemon=True, name="fal-mock-worker"
        )
        self.process.start()
        child_end.close()
        self.ticket: Ticket | None = None

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(("stop",))
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=2)
        self.conn.close()


class WorkerPool:
    """``size`` worker processes serving tickets in submission order."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a worker pool needs at least one worker, got {size}")
        self.size = size
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._waiting: deque[Ticket] = deque()
        self._workers = [_Worker(self._context) for _ in range(size)]
        self._closed = False
        self._pump = threading.Thread(target=self._pump_forever, name="fal-mock-pump", daemon=True)
        self._pump.start()

    def submit(self, function: str, payload: dict[str, Any]) -> Ticket:
        ticket = Ticket(next(self._ids), function, payload)
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is closed")
            self._waiting.append(ticket)
            self._dispatch()
        return ticket

    def cancel(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket.state == "waiting":
                self._waiting.remove(ticket)
                ticket._settle("cancelled")
            elif ticket.state == "running" and ticket.cancel_sent_at is None:
                worker = self._worker_of(ticket)
                ticket.cancel_sent_at = time.monotonic()
                if worker is not None:
                    _send(worker, ("cancel", ticket.job_id))

    def busy(self) -> int:
        """Workers running a job now."""
        with self._lock:
            return sum(1 for w in self._workers if w.ticket is not None)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for ticket in self._waiting:
                ticket._settle("cancelled")
            self._waiting.clear()
        self._pump.join(timeout=2)
        for worker in self._workers:
            if worker.ticket is not None and not worker.ticket.finished():
                worker.ticket._settle("cancelled")
            worker.stop()

    # -- the pump thread ----------------------------------------------------------------

    def _pump_forever(self) -> None:
        while not self._closed:
            workers = list(self._workers)
            sentinels = [w.process.sentinel for w in workers]
            try:
                ready = wait([*(w.conn for w in workers), *sentinels], timeout=_PUMP_TICK_S)
            except OSError:  # a pipe closed under us while the pool was being closed
                continue
            with self._lock:
                for worker, sentinel in zip(workers, sentinels, strict=True):
                    if worker.conn in ready:
                        self._receive(worker)
                    # Read what it sent before it died, then replace it.
                    if sentinel in ready and not worker.process.is_alive():
                        self._replace(worker, "the worker process exited")
                self._enforce_cancel_grace()
                self._dispatch()

    def _receive(self, worker: _Worker) -> None:
        while True:
            try:
                if not worker.conn.poll():
                    return
                message = worker.conn.recv()
            except (EOFError, OSError):
                return  # the sentinel reports the death
            kind, job_id = message[0], message[1]
            ticket = worker.ticket
            if ticket is None or ticket.job_id != job_id:
                continue  # a late message for a job already given up on
            if kind == "log":
                with ticket._lock:
                    ticket.logs.append((message[2], message[3]))
                continue
            worker.ticket = None
            if kind == "done":
                ticket._settle("done", value=message[2])
            elif kind == "cancelled":
                ticket._settle("cancelled")
            else:
                ticket._settle("failed", failure=message[2])

    def _replace(self, worker: _Worker, reason: str) -> None:
        ticket = worker.ticket
        if ticket is not None and not ticket.finished():
            if ticket.cancel_sent_at is not None:
                ticket._settle("cancelled")
            else:
                ticket.disconnected = True
                ticket._settle("failed", failure=f"{reason} during the job")
        worker.ticket = None
        worker.conn.close()
        index = self._workers.index(worker)
        self._workers[index] = _Worker(self._context)

    def _enforce_cancel_grace(self) -> None:
        now = time.monotonic()
        for worker in list(self._workers):
            ticket = worker.ticket
            sent = None if ticket is None else ticket.cancel_sent_at
            if sent is not None and now - sent > CANCEL_GRACE_S:
                worker.process.terminate()
                worker.process.join(timeout=2)
                self._replace(worker, "cancelled: the worker was terminated")

    def _dispatch(self) -> None:
        for worker in self._workers:
            if not self._waiting:
                return
            if worker.ticket is None and worker.process.is_alive():
                ticket = self._waiting.popleft()
                ticket.state, worker.ticket = "running", ticket
                if not _send(worker, ("run", ticket.job_id, ticket.function, ticket.payload)):
                    worker.ticket, ticket.disconnected = None, True
                    ticket._settle("failed", failure="the worker could not be reached")

    def _worker_of(self, ticket: Ticket) -> _Worker | None:
        return next((w for w in self._workers if w.ticket is ticket), None)


def _send(worker: _Worker, message: tuple[Any, ...]) -> bool:
    try:
        worker.conn.send(message)
        return True
    except (OSError, ValueError):
        return False


_pools: dict[int, WorkerPool] = {}
_pools_lock = threading.Lock()


def shared_pool(size: int) -> WorkerPool:
    """One pool per size for the whole process, started on first use and closed at exit, so
    resetting the mock (which makes a new engine) does not respawn workers."""
    with _pools_lock:
        pool = _pools.get(size)
        if pool is None:
            pool = _pools[size] = WorkerPool(size)
        return pool


@atexit.register
def _close_pools() -> None:
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


# -- the worker side ----------------------------------------------------------------------


def _worker_main(conn: Connection) -> None:
    pending_cancel: set[int] = set()
    stopping = False
    while not stopping:
        try:
            message = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if message[0] == "stop":
            return
        if message[0] == "cancel":
            continue  # for a job that already ended
        _, job_id, function, payload = message
        pending_cancel.discard(job_id)

        def should_stop(job_id: int = job_id) -> bool:
            nonlocal stopping
            try:
                while conn.poll():
                    incoming = conn.recv()
                    if incoming[0] == "cancel" and incoming[1] == job_id:
                        pending_cancel.add(job_id)
                    elif incoming[0] == "stop":
                        stopping = True
                        pending_cancel.add(job_id)
            except (EOFError, OSError):  # the server is gone: nobody wants the result
                stopping = True
                pending_cancel.add(job_id)
            return job_id in pending_cancel

        def log(level: str, text: str, job_id: int = job_id) -> None:
            with contextlib.suppress(OSError, ValueError):  # a gone server ends us via recv
                conn.send(("log", job_id, level, text))

        try:
            value = _resolve(function)(payload, log, should_stop)
            reply: tuple[Any, ...] = (
                ("cancelled", job_id) if should_stop() else ("done", job_id, value)
            )
        except Exception as error:
            if should_stop():
                reply = ("cancelled", job_id)
            else:
                text = "".join(traceback.format_exception_only(error)).strip()
                reply = ("failed", job_id, text)
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return


def _resolve(reference: str) -> Callable[..., Any]:
    module_name, _, attribute = reference.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module_name), attribute)
    return function
