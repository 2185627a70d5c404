"""The lifecycle engine in plain Python: policies, runners, positions, timeouts, cancel."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from contracts.schemas import LipsyncInput, LogLevel
from mock_server.engine import EngineConfig, Failure, Policy, QueueEngine, SubmitOptions
from mock_server.engine.results import (
    ENGINES,
    EngineOptions,
    FinishedTask,
    JobSpec,
    RunningTask,
    Success,
)

INPUT = LipsyncInput(video_url="https://example.com/v.mp4", audio_url="https://example.com/a.mp3")
ORDER = ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]


class EchoEngine:
    """Finishes at once with the input echoed: the engine under test is the queue."""

    name = "echo"
    simulated_duration = True

    def __init__(self, options: EngineOptions) -> None:
        self.seed = options.seed

    def start(self, spec: JobSpec) -> RunningTask:
        return FinishedTask(
            Success({"echo": spec.input.video_url}),
            [("INFO", "one"), ("INFO", "two"), ("INFO", "three")],
        )


class CrashingEngine(EchoEngine):
    name = "crash"

    def start(self, spec: JobSpec) -> RunningTask:
        raise RuntimeError("boom")


@pytest.fixture(autouse=True)
def _test_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ENGINES, "echo", EchoEngine)
    monkeypatch.setitem(ENGINES, "crash", CrashingEngine)


def make(policy: str = "polls:1", **overrides: object) -> QueueEngine:
    config = replace(EngineConfig(engine="echo"), policy=Policy.parse(policy), **overrides)
    return QueueEngine(config)


def submit(engine: QueueEngine, **options: object) -> str:
    return engine.submit(INPUT, "fal-ai/lipsync", SubmitOptions(**options)).request_id  # type: ignore[arg-type]


def statuses(engine: QueueEngine, request_id: str, polls: int) -> list[str]:
    seen = []
    for _ in range(polls):
        view = engine.observe(request_id)
        assert view is not None
        seen.append(view.status)
    return seen


@pytest.mark.parametrize("n", [1, 2, 5])
def test_polls_policy_shows_each_state_for_n_polls(n: int) -> None:
    engine = make(f"polls:{n}")
    request_id = submit(engine)
    assert statuses(engine, request_id, 3 * n) == (
        ["IN_QUEUE"] * n + ["IN_PROGRESS"] * n + ["COMPLETED"] * n
    )


def test_polls_policy_reveals_logs_progressively_and_they_only_grow() -> None:
    engine = make("polls:3")
    request_id = submit(engine)
    counts = []
    for _ in range(7):
        view = engine.observe(request_id)
        assert view is not None
        counts.append(len(view.logs))
    assert counts == sorted(counts)
    assert counts[3:6] == [1, 2, 3]  # one of three lines per IN_PROGRESS poll
    final = engine.peek(request_id)
    assert final is not None and final.logs[-1].message.startswith("Completed in")


def test_peek_does_not_count_as_a_poll() -> None:
    engine = make("polls:1")
    request_id = submit(engine)
    for _ in range(5):
        view = engine.peek(request_id)
        assert view is not None and view.status == "IN_QUEUE"


def test_virtual_clock_runners_and_honest_positions() -> None:
    engine = make("virtual", runners=1, queue_delay=(0.0, 0.0), inference_time=(1.0, 1.0))
    ids = [submit(engine) for _ in range(3)]
    positions = [engine.peek(r).queue_position for r in ids]  # type: ignore[union-attr]
    assert [engine.peek(r).status for r in ids] == ["IN_PROGRESS", "IN_QUEUE", "IN_QUEUE"]  # type: ignore[union-attr]
    assert positions == [None, 0, 1]
    engine.advance_clock(1.0)
    assert [engine.peek(r).status for r in ids] == ["COMPLETED", "IN_PROGRESS", "IN_QUEUE"]  # type: ignore[union-attr]
    assert engine.peek(ids[2]).queue_position == 0  # type: ignore[union-attr]
    engine.advance_clock(2.0)
    assert all(engine.peek(r).status == "COMPLETED" for r in ids)  # type: ignore[union-attr]
    starts = [h for r in ids for h in engine.history(r) or [] if h.status == "IN_PROGRESS"]
    assert [h.time for h in starts] == [0.0, 1.0, 2.0]


def test_low_priority_waits_behind_normal() -> None:
    engine = make("virtual", runners=1, queue_delay=(0.0, 0.0), inference_time=(1.0, 1.0))
    running = submit(engine)
    low = submit(engine, priority="low")
    normal = submit(engine)
    assert engine.peek(running).status == "IN_PROGRESS"  # type: ignore[union-attr]
    assert engine.peek(normal).queue_position == 0  # type: ignore[union-attr]
    assert engine.peek(low).queue_position == 1  # type: ignore[union-attr]


def test_start_timeout_ends_a_job_that_never_started() -> None:
    engine = make("virtual", runners=1, queue_delay=(0.0, 0.0), inference_time=(10.0, 10.0))
    submit(engine)
    waiting = submit(engine, start_timeout=2.0)
    engine.advance_clock(3.0)
    found = engine.outcome(waiting)
    assert found is not None
    view, outcome = found
    assert view.status == "COMPLETED" and view.error_type == "request_timeout"
    assert isinstance(outcome, Failure) and outcome.status_code == 504
    assert outcome.headers["x-fal-request-timeout-type"] == "user"
    assert [h.time for h in engine.history(waiting) or []][-1] == 2.0


def test_cancel_frees_the_runner_and_ends_completed_with_error() -> None:
    engine = make("virtual", runners=1, queue_delay=(0.0, 0.0), inference_time=(5.0, 5.0))
    first, second = submit(engine), submit(engine)
    assert engine.cancel(first) == "CANCELLATION_REQUESTED"
    assert engine.peek(second).status == "IN_PROGRESS"  # type: ignore[union-attr]
    assert engine.cancel(first) == "ALREADY_COMPLETED"
    assert engine.cancel("nope") == "NOT_FOUND"
    view, outcome = engine.outcome(first)  # type: ignore[misc]
    assert view.error_type == "request_cancelled" and isinstance(outcome, Failure)


def test_immediate_policy_completes_at_submit() -> None:
    engine = make("immediate")
    request_id = submit(engine)
    assert engine.peek(request_id).status == "COMPLETED"  # type: ignore[union-attr]
    assert [h.status for h in engine.history(request_id) or []] == ORDER


def test_realtime_policy_follows_the_wall_clock() -> None:
    engine = make("realtime", queue_delay=(0.05, 0.05), inference_time=(0.05, 0.05))
    request_id = submit(engine)
    seen = [engine.observe(request_id).status]  # type: ignore[union-attr]
    deadline = time.monotonic() + 5
    while seen[-1] != "COMPLETED" and time.monotonic() < deadline:
        time.sleep(0.01)
        seen.append(engine.observe(request_id).status)  # type: ignore[union-attr]
    assert seen[0] == "IN_QUEUE" and seen[-1] == "COMPLETED"
    assert "IN_PROGRESS" in seen
    assert seen == sorted(seen, key=ORDER.index)
    with pytest.raises(ValueError, match="wall clock"):
        engine.advance_clock(1)


def test_per_request_policy_overrides_the_server_policy() -> None:
    engine = make("polls:100")
    request_id = submit(engine, policy=Policy.parse("immediate"))
    assert engine.peek(request_id).status == "COMPLETED"  # type: ignore[union-attr]


def test_engine_crash_ends_the_job_not_the_engine() -> None:
    engine = make("immediate", engine="crash")
    request_id = submit(engine)
    view, outcome = engine.outcome(request_id)  # type: ignore[misc]
    assert view.status == "COMPLETED" and view.error_type == "internal_error"
    assert isinstance(outcome, Failure) and "boom" in outcome.error
    assert engine.peek(submit(engine)) is not None  # still serving


def test_same_seed_same_ids_other_seed_other_ids() -> None:
    def ids(seed: int) -> list[str]:
        engine = make("polls:1", seed=seed)
        return [submit(engine) for _ in range(3)]

    assert ids(7) == ids(7)
    assert ids(7) != ids(8)


def test_reset_forgets_everything_and_replays_ids() -> None:
    engine = make("polls:1")
    first = submit(engine)
    engine.reset()
    assert engine.peek(first) is None
    assert submit(engine) == first


def test_completed_requests_beyond_the_limit_are_forgotten_oldest_first() -> None:
    engine = make("immediate", finished_limit=3)
    ids = [submit(engine) for _ in range(5)]
    assert engine.request_ids() == ids[2:]


def test_policy_parsing() -> None:
    assert str(Policy.parse(" Polls:3 ")) == "polls:3"
    for bad in ("polls:0", "polls:x", "fast", ""):
        with pytest.raises(ValueError, match="unknown progression policy"):
            Policy.parse(bad)


class ManualTask:
    """A task that finishes when the test says so: stands in for real work in a worker."""

    def __init__(self) -> None:
        self.finished = False
        self.cancelled = False

    def done(self) -> bool:
        return self.finished

    def outcome(self) -> Success:
        return Success({"done": True})

    def cancel(self) -> None:
        self.cancelled = True

    def take_logs(self) -> list[tuple[LogLevel, str]]:
        return []


class RealWorkEngine:
    """Like the reference engine: no simulated duration, jobs last as long as their task."""

    name = "real"
    simulated_duration = False
    tasks: list[ManualTask] = []

    def __init__(self, options: EngineOptions) -> None:
        RealWorkEngine.tasks = []

    def start(self, spec: JobSpec) -> RunningTask:
        task = ManualTask()
        RealWorkEngine.tasks.append(task)
        return task


@pytest.mark.parametrize("policy", ["virtual", "polls:1"])
def test_real_work_engine_completes_when_its_task_is_done(
    monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    monkeypatch.setitem(ENGINES, "real", RealWorkEngine)
    engine = make(policy, engine="real", queue_delay=(0.0, 0.0), inference_time=(5.0, 5.0))
    request_id = submit(engine)
    for _ in range(3):
        if policy == "virtual":
            engine.advance_clock(100.0)  # far past any simulated duration: still not done
        view = engine.observe(request_id)
        assert view is not None and view.status != "COMPLETED"
    if policy == "virtual":
        engine.advance_clock(2.5)
    RealWorkEngine.tasks[0].finished = True
    view = engine.observe(request_id)
    assert view is not None and view.status == "COMPLETED" and view.error is None
    if policy == "virtual":
        # Ends when the task was seen done, not at start + the simulated 5 s.
        assert view.inference_time == 302.5


def test_reset_cancels_running_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ENGINES, "real", RealWorkEngine)
    engine = make("polls:1", engine="real")
    request_id = submit(engine)
    engine.observe(request_id)
    engine.observe(request_id)  # the second poll starts it (polls:1)
    [task] = RealWorkEngine.tasks
    engine.reset()
    assert task.cancelled


def test_real_work_logs_show_as_they_arrive_on_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ENGINES, "real", RealWorkEngine)
    monkeypatch.setattr(
        ManualTask,
        "take_logs",
        lambda self: [("INFO", "Rendering: 1/2 frames")] if not self.finished else [],
    )
    engine = make("virtual", engine="real", queue_delay=(0.0, 0.0))
    request_id = submit(engine)
    engine.advance_clock(0.1)
    view = engine.observe(request_id)
    assert view is not None and view.status == "IN_PROGRESS"
    assert [line.message for line in view.logs][:1] == ["Rendering: 1/2 frames"]


def test_one_long_clock_advance_plays_every_job_in_turn() -> None:
    """Jobs started during a catch-up end at start + duration, not at the advance's end."""
    engine = make("virtual", runners=1, queue_delay=(0.0, 0.0), inference_time=(1.0, 1.0))
    ids = [submit(engine) for _ in range(3)]
    engine.advance_clock(100.0)
    views = [engine.observe(request_id) for request_id in ids]
    assert [v.status for v in views if v is not None] == ["COMPLETED"] * 3
    finished = [engine.history(request_id)[-1].time for request_id in ids]  # type: ignore[index]
    assert [round(t - finished[0], 3) for t in finished] == [0.0, 1.0, 2.0]
