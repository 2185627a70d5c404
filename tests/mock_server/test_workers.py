"""The worker pool: results, logs, failures, dead workers, cancellation, order."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import mock_server.engine.workers as workers
from mock_server.engine.workers import Ticket, WorkerPool

JOBS = "tests.mock_server.worker_jobs"


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    pool = WorkerPool(2)
    yield pool
    pool.close()


def wait(ticket: Ticket, timeout: float = 30) -> Ticket:
    deadline = time.monotonic() + timeout
    while not ticket.finished():
        assert time.monotonic() < deadline, f"ticket still {ticket.state}"
        time.sleep(0.01)
    return ticket


def test_result_and_logs_come_back(pool: WorkerPool) -> None:
    ticket = wait(pool.submit(f"{JOBS}:echo", {"value": 42}))
    assert ticket.state == "done"
    assert ticket.value["value"] == 42
    assert ticket.take_logs() == [("INFO", "echo 42")]
    assert ticket.take_logs() == []


def test_an_exception_fails_the_job_not_the_worker(pool: WorkerPool) -> None:
    ticket = wait(pool.submit(f"{JOBS}:fail", {"why": "testing"}))
    assert ticket.state == "failed" and not ticket.disconnected
    assert "RuntimeError: job failed on purpose: testing" in (ticket.failure or "")
    assert wait(pool.submit(f"{JOBS}:echo", {"value": 1})).state == "done"


def test_a_dead_worker_is_reported_and_replaced(pool: WorkerPool) -> None:
    ticket = wait(pool.submit(f"{JOBS}:crash", {}))
    assert ticket.state == "failed" and ticket.disconnected
    assert "exited" in (ticket.failure or "")
    # The pool is whole again: two jobs at once still run on two live workers.
    tickets = [pool.submit(f"{JOBS}:echo", {"value": n}) for n in range(2)]
    assert [wait(t).value["value"] for t in tickets] == [0, 1]


def test_cancel_stops_a_running_job(pool: WorkerPool) -> None:
    ticket = pool.submit(f"{JOBS}:wait_for_cancel", {})
    while ticket.state != "running" or not ticket.logs:
        time.sleep(0.01)
    finished: list[str] = []
    ticket.on_finish(lambda: finished.append(ticket.state))
    pool.cancel(ticket)
    assert wait(ticket, timeout=5).state == "cancelled"
    assert finished == ["cancelled"]


def test_cancel_of_a_waiting_job_never_runs_it(pool: WorkerPool) -> None:
    busy = [pool.submit(f"{JOBS}:wait_for_cancel", {}) for _ in range(2)]
    queued = pool.submit(f"{JOBS}:echo", {"value": "never"})
    assert queued.state == "waiting"
    pool.cancel(queued)
    assert queued.state == "cancelled"
    for ticket in busy:
        pool.cancel(ticket)
        wait(ticket)
    assert queued.value is None


def test_a_job_that_ignores_cancel_is_terminated(
    pool: WorkerPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "CANCEL_GRACE_S", 0.3)
    ticket = pool.submit(f"{JOBS}:ignore_cancel", {})
    while not ticket.logs:
        time.sleep(0.01)
    pool.cancel(ticket)
    assert wait(ticket, timeout=10).state == "cancelled"
    assert wait(pool.submit(f"{JOBS}:echo", {"value": 2})).state == "done"


def test_jobs_start_in_submission_order() -> None:
    single = WorkerPool(1)
    try:
        tickets = [single.submit(f"{JOBS}:echo", {"value": n}) for n in range(5)]
        assert [t.state for t in tickets[1:]] == ["waiting"] * 4
        assert [wait(t).value["value"] for t in tickets] == list(range(5))
    finally:
        single.close()
    with pytest.raises(RuntimeError, match="closed"):
        single.submit(f"{JOBS}:echo", {"value": 0})


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least one"):
        WorkerPool(0)
