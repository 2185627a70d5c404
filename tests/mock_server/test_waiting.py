"""The queue's O(log n) bookkeeping answers exactly what a scan of the queue would."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from contracts.schemas import LipsyncInput
from mock_server.engine import EngineConfig, Policy, QueueEngine, SubmitOptions
from mock_server.engine import waiting as waiting_module
from mock_server.engine.jobs import Job
from mock_server.engine.waiting import ClockRunners, WaitingLine

INPUT = LipsyncInput(video_url="https://example.com/v.mp4", audio_url="https://example.com/a.mp3")


def job(seq: int, priority: str = "normal", policy: str = "virtual", **options: object) -> Job:
    return Job(
        request_id=f"r{seq}",
        seq=seq,
        app_id="fal-ai/lipsync",
        input=INPUT,
        options=SubmitOptions(priority=priority, **options),  # type: ignore[arg-type]
        policy=Policy.parse(policy),
        task_seed=seq,
        submitted_at=0.0,
        ready_at=0.0,
        duration=1.0,
    )


def queue_order(j: Job) -> tuple[bool, int]:
    return (j.options.priority == "low", j.seq)


@pytest.mark.parametrize("slack", [2, 1024])
def test_positions_match_a_scan_after_any_joins_and_departures(
    slack: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(waiting_module, "_COMPACT_SLACK", slack)  # 2: rebuilds all the time
    rng = random.Random(slack)
    line, seq = WaitingLine(), 0
    waiting: list[Job] = []
    for _ in range(3000):
        if waiting and rng.random() < 0.45:
            leaving = waiting.pop(rng.randrange(len(waiting)))
            line.leave(leaving)
            assert leaving not in line
        else:
            seq += 1
            new = job(seq, rng.choice(["normal", "low"]), rng.choice(["virtual", "polls:1"]))
            line.join(new)
            waiting.append(new)
        for j in rng.sample(waiting, min(5, len(waiting))):
            assert line.ahead_of(j) == sum(queue_order(o) < queue_order(j) for o in waiting)
        on_clock = [j for j in waiting if j.policy.time_based]
        expected_head = min(on_clock, key=queue_order, default=None)
        assert line.next_on_clock() is expected_head
        assert len(line) == len(waiting)


def test_a_job_that_never_joined_counts_as_last_of_its_priority() -> None:
    line = WaitingLine()
    for seq, priority in enumerate(["normal", "low", "normal", "low"], start=1):
        line.join(job(seq, priority))
    assert line.ahead_of(job(9, "normal")) == 2
    assert line.ahead_of(job(9, "low")) == 4


def test_first_to_expire_breaks_ties_in_queue_order() -> None:
    line = WaitingLine()
    late, low, first, second = (
        job(1, start_timeout=9.0),
        job(2, "low", start_timeout=2.0),
        job(3, start_timeout=2.0),
        job(4, start_timeout=2.0),
    )
    for j in (late, low, first, second):
        line.join(j)
    assert line.first_to_expire() is first  # normal before low, then first come
    line.leave(first)
    assert line.first_to_expire() is second


def test_next_ending_breaks_ties_in_start_order_and_waits_for_real_work() -> None:
    runners = ClockRunners(lambda: 0.0)
    a, b, c = job(1), job(2), job(3)
    for j in (a, b, c):
        j.started_at = 0.0
    c.duration = 0.5
    for j in (b, a, c):
        runners.add(j)
    assert runners.next_ending() == (c, 0.5)
    runners.remove(c)
    assert runners.next_ending() == (b, 1.0)  # a ends at the same time but started later
    assert list(runners) == [b, a]


def test_completed_requests_are_forgotten_in_completion_order() -> None:
    config = replace(EngineConfig(), policy=Policy.parse("polls:1"), finished_limit=3)
    engine = QueueEngine(config)
    first, second = (engine.submit(INPUT, "fal-ai/lipsync", SubmitOptions()) for _ in range(2))
    while (view := engine.observe(second.request_id)) and view.status != "COMPLETED":
        pass
    while (view := engine.observe(first.request_id)) and view.status != "COMPLETED":
        pass
    third = engine.submit(INPUT, "fal-ai/lipsync", SubmitOptions())
    fourth = engine.submit(INPUT, "fal-ai/lipsync", SubmitOptions())
    # Four stored, limit three: the one that completed longest ago goes, though submitted later.
    assert engine.request_ids() == [first.request_id, third.request_id, fourth.request_id]
