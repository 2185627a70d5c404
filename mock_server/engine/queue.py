"""The lifecycle engine: fal's queue in plain Python, deterministic from a seed.

Jobs move IN_QUEUE -> IN_PROGRESS -> COMPLETED and never back. Poll-driven jobs (``polls:N``)
move on their own status polls; clock-driven jobs (``virtual``, ``realtime``) share N simulated
runners in queue order, so queue positions are honest: the number of queued requests ahead.
State is computed lazily when observed; nothing runs in the background, so a virtual clock can
play an hour of queue in microseconds. Calls are serialised by one lock, because a live server
in a thread and the test that started it both call in.
"""

from __future__ import annotations

import math
import random
import threading
from collections import deque
from dataclasses import replace

from contracts.faults import FaultPlan
from contracts.schemas import CancelStatusName, LipsyncInput
from mock_server.engine.clock import Clock, VirtualClock, WallClock, iso
from mock_server.engine.config import EngineConfig
from mock_server.engine.faults import FaultInjector, faulted_outcome
from mock_server.engine.ids import SeededIds
from mock_server.engine.jobs import (
    CANCELLED,
    HistoryEntry,
    Job,
    JobListener,
    JobView,
    LogLine,
    SubmitOptions,
    inference_time,
    reveal_logs,
)
from mock_server.engine.journal import Journal
from mock_server.engine.policies import Policy
from mock_server.engine.results import (
    JobSpec,
    Outcome,
    ResultEngine,
    Success,
    engine_crash_failure,
    make_engine,
    start_timeout_failure,
)
from mock_server.engine.retention import Retention
from mock_server.engine.saved import SavedState
from mock_server.engine.waiting import ClockRunners, WaitingLine
from mock_server.storage import FileStore

# EngineConfig lives in config.py; re-exported because callers import it from here.
__all__ = ["EngineConfig", "JobListener", "QueueEngine"]

INF = math.inf
_SYNC_RUN = SubmitOptions(policy=Policy("immediate"))


class QueueEngine:
    def __init__(self, config: EngineConfig) -> None:
        self._lock = threading.RLock()
        self._job_rng = random.Random()
        self.config = config
        self.clock: Clock = VirtualClock()
        self.retention = Retention(lambda: self.store)  # holds each job's output files
        self.listeners: list[JobListener] = [self.retention]
        """Told of each job's submit, start and finish (webhooks, persistence); they survive
        ``reset`` and are told of it. Called under the engine's lock: they must not block."""
        self.reset()

    # -- configuration ------------------------------------------------------------------

    def reset(
        self, seed: int | None = None, policy: Policy | None = None, engine: str | None = None
    ) -> None:
        """Forget every request, file and journal entry; start again from the seed."""
        with self._lock:
            # Work still running for the requests being forgotten is stopped, not orphaned.
            for job in getattr(self, "_jobs", {}).values():
                if job.task is not None:
                    job.task.cancel()
            config = self.config
            self.config = replace(
                config,
                seed=config.seed if seed is None else seed,
                policy=policy or config.policy,
                engine=engine or config.engine,
            )
            self.results: ResultEngine = make_engine(
                self.config.engine, self.config.engine_options()
            )
            self.ids = SeededIds(self.config.seed)
            self.store = FileStore(self.ids.token, self.config.max_file_bytes, self._clock_now)
            self.journal = Journal(self.config.journal_limit)
            self.clock = WallClock() if self.config.policy.kind == "realtime" else VirtualClock()
            self._jobs: dict[str, Job] = {}  # submission order
            self._completed: deque[str] = deque()  # ids in _jobs that are COMPLETED, oldest first
            self._line = WaitingLine()  # every IN_QUEUE job, in queue order
            self._running_on_clock = ClockRunners(self._clock_now)
            self._processed_until = 0.0
            self._seq = 0
            self._tokens: set[str] = set()
            self.faults = FaultInjector(self.config.faults)
            for listener in self.listeners:
                listener.on_reset()

    def set_policy(self, policy: Policy) -> None:
        """Policy for new requests. Switching between wall and virtual time keeps the clock's
        reading, so time never goes backwards."""
        with self._lock:
            now = self.clock.now()
            if policy.kind == "realtime" and not isinstance(self.clock, WallClock):
                self.clock = WallClock(now)
            elif policy.kind != "realtime" and isinstance(self.clock, WallClock):
                self.clock = VirtualClock(now)
            self.config = replace(self.config, policy=policy)

    def set_faults(self, plan: FaultPlan) -> None:
        """Faults for what comes next; the plan's counters start from zero."""
        with self._lock:
            self.faults = FaultInjector(plan)

    def restore(self, saved: SavedState) -> None:
        """Take up a saved state (mock_server/persistence) after a reset. Running jobs start
        again from the beginning, as fal re-runs a request whose runner failed; they stay
        IN_PROGRESS on the wire (a status never goes back)."""
        with self._lock:
            self.ids, self.store, self.journal = saved.ids, saved.store, saved.journal
            self._tokens = saved.tokens
            now = self._processed_until = saved.clock
            self.clock = WallClock(now) if isinstance(self.clock, WallClock) else VirtualClock(now)
            for job in saved.jobs:
                self._jobs[job.request_id] = job
                self._seq = max(self._seq, job.seq)
                if job.status == "IN_QUEUE":
                    self._line.join(job)
            self._completed.extend(saved.completed)
            for job in [job for job in saved.jobs if job.status == "IN_PROGRESS"]:
                self._start(job, now)
            self._catch_up(now)

    def advance_clock(self, seconds: float) -> float:
        with self._lock:
            if not isinstance(self.clock, VirtualClock):
                raise ValueError("the clock is the wall clock under the realtime policy")
            now = self.clock.advance(seconds)
            self._catch_up(now)
            return now

    # -- the queue protocol -------------------------------------------------------------

    def submit(self, payload: LipsyncInput, app_id: str, options: SubmitOptions) -> JobView:
        with self._lock:
            now = self.clock.now()
            self._catch_up(now)
            job = self._new_job(payload, app_id, options, now)
            self._jobs[job.request_id] = job
            self._trim_finished()
            self._record(job, now)
            if job.policy.kind == "immediate":
                self._start(job, now)
                self._try_finish_immediate(job, now)
            else:
                self._line.join(job)
                if job.policy.time_based:
                    self._catch_up(now)
            self._record(job)
            for listener in self.listeners:
                listener.on_submitted(job)
            return self._view(job)

    def observe(self, request_id: str) -> JobView | None:
        """A status poll (or a stream tick): counts towards ``polls:N`` progression."""
        with self._lock:
            now = self.clock.now()
            self._catch_up(now)  # first: it forgets requests past their retention
            job = self._jobs.get(request_id)
            if job is None:
                return None
            if job.policy.kind == "polls":
                self._step_polled(job, now)
            elif job.policy.kind == "immediate":
                self._try_finish_immediate(job, now)
            self._record(job)
            return self._view(job)

    def peek(self, request_id: str) -> JobView | None:
        """The current status, without counting as a poll."""
        with self._lock:
            self._catch_up(self.clock.now())
            job = self._jobs.get(request_id)
            if job is None:
                return None
            return self._view(job)

    def outcome(self, request_id: str) -> tuple[JobView, Outcome | None] | None:
        """A result fetch: the outcome once COMPLETED, else None (still in progress)."""
        with self._lock:
            self._catch_up(self.clock.now())
            job = self._jobs.get(request_id)
            if job is None:
                return None
            return self._view(job), job.outcome

    def cancel(self, request_id: str) -> CancelStatusName:
        with self._lock:
            now = self.clock.now()
            self._catch_up(now)
            job = self._jobs.get(request_id)
            if job is None:
                return "NOT_FOUND"
            if job.status == "COMPLETED":
                return "ALREADY_COMPLETED"
            if job.task is not None:
                job.task.cancel()
            self._finish(job, now, CANCELLED)
            return "CANCELLATION_REQUESTED"

    def run_now(self, payload: LipsyncInput, app_id: str, faults: FaultPlan | None = None) -> Job:
        """A sync run: no queue; the caller waits on ``sync_outcome``."""
        with self._lock:
            now = self.clock.now()
            options = _SYNC_RUN if faults is None else replace(_SYNC_RUN, faults=faults)
            job = self._new_job(payload, app_id, options, now)
            job.sync = True
            self._start(job, now)
            return job

    def sync_outcome(self, job: Job) -> Outcome | None:
        with self._lock:
            self._try_finish_immediate(job, self.clock.now())
            return job.outcome

    def issue_token(self) -> str:
        """A CDN upload token (fal-client fetches one before uploading)."""
        with self._lock:
            token = self.ids.token(16)
            self._tokens.add(token)
            return token

    def token_issued(self, token: str) -> bool:
        with self._lock:
            return token in self._tokens

    def history(self, request_id: str) -> list[HistoryEntry] | None:
        with self._lock:
            job = self._jobs.get(request_id)
            return None if job is None else list(job.history)

    def request_ids(self) -> list[str]:
        with self._lock:
            self._catch_up(self.clock.now())  # what retention let go is not listed
            return list(self._jobs)

    # -- progression --------------------------------------------------------------------

    def _new_job(
        self, payload: LipsyncInput, app_id: str, options: SubmitOptions, now: float
    ) -> Job:
        self._seq += 1
        request_id = self.ids.uuid()
        # One generator reseeded per job: each job draws all it will need here, in a fixed
        # order, so no job keeps a generator's 2.5 KB of state for its lifetime.
        rng = self._job_rng
        rng.seed(f"job:{self.config.seed}:{request_id}")
        policy = options.policy or self.config.policy
        ready_at = now + rng.uniform(*self.config.queue_delay)
        # Drawn for every engine, so the draws after it do not depend on the engine.
        duration = round(rng.uniform(*self.config.inference_time), 3)
        # A per-request plan (X-Mock-Faults) stands alone; otherwise the engine's plan counts it.
        faults = self.faults if options.faults is None else FaultInjector(options.faults)
        return Job(
            request_id=request_id,
            seq=self._seq,
            app_id=app_id,
            input=payload,
            options=options,
            policy=policy,
            task_seed=rng.getrandbits(32),
            submitted_at=now,
            ready_at=ready_at,
            duration=duration if self.results.simulated_duration else 0.0,
            fault=faults.job_fault(),
        )

    def _step_polled(self, job: Job, now: float) -> None:
        if job.status != "COMPLETED" and job.polls_in_state >= job.policy.polls:
            if job.status == "IN_QUEUE":
                self._start(job, now)
            elif job.task is None or job.task.done():
                self._finish(job, now, self._task_outcome(job))
        if job.status == "COMPLETED":
            return
        job.polls_in_state += 1
        if job.status == "IN_PROGRESS":
            reveal_logs(job, job.polls_in_state / job.policy.polls, now)

    def _try_finish_immediate(self, job: Job, now: float) -> None:
        if job.status == "IN_PROGRESS" and (job.task is None or job.task.done()):
            self._finish(job, now, self._task_outcome(job))

    def _catch_up(self, now: float) -> None:
        """Play clock-driven events (starts, completions, start timeouts) up to ``now``.

        At equal times a completion goes first (it frees a runner), then a start timeout, then a
        start; each lookup is O(log n) (waiting.py), so a long queue costs no request a scan."""
        t = self._processed_until
        while True:
            free = self.config.runners - len(self._running_on_clock)
            head = self._line.next_on_clock() if free > 0 else None
            next_start = max(head.ready_at, t) if head is not None else INF
            ending, end_time = self._running_on_clock.next_ending()
            next_end = max(end_time, t)
            expiring = self._line.first_to_expire()
            next_deadline = expiring.start_deadline if expiring is not None else INF
            event = min(next_start, next_end, next_deadline)
            if event > now:
                break
            t = event
            if ending is not None and event == next_end:
                self._finish(ending, t, self._task_outcome(ending))
            elif expiring is not None and event == next_deadline:
                timeout = expiring.options.start_timeout or 0.0
                self._finish(expiring, t, start_timeout_failure(timeout))
            elif head is not None:
                self._start(head, t)
        self._processed_until = max(self._processed_until, now)
        self._trim_finished()
        for job in self._running_on_clock:
            if job.started_at is not None and job.duration > 0:
                reveal_logs(job, (now - job.started_at) / job.duration, now)
            elif job.started_at is not None:
                # Real work: its log lines are written as it goes, so show them as they come.
                reveal_logs(job, 1.0, now)

    def _clock_now(self) -> float:
        return self.clock.now()  # late-bound: set_policy may swap the clock

    def _start(self, job: Job, now: float) -> None:
        self._line.leave(job)
        job.status, job.started_at, job.polls_in_state = "IN_PROGRESS", now, 0
        if job.policy.time_based:
            self._running_on_clock.add(job)
        try:
            job.task = self.results.start(
                JobSpec(job.request_id, job.task_seed, job.input, self.store)
            )
        except Exception as exc:  # an engine bug must end the job, never the server
            self._finish(job, now, engine_crash_failure(exc))
            return
        if job.task.done():
            # Done the moment it started (simulated engines): stamp it now, at the event's
            # time, not at the end of a catch-up that may be far later.
            job.task_done_at = now
        self._record(job, now)
        for listener in self.listeners:
            listener.on_started(job)

    def _task_outcome(self, job: Job) -> Outcome:
        if job.task is None:
            return engine_crash_failure(RuntimeError("job finished without a task"))
        try:
            return faulted_outcome(job.fault, job.task.outcome())
        except Exception as exc:
            return engine_crash_failure(exc)

    def _finish(self, job: Job, now: float, outcome: Outcome) -> None:
        self._line.leave(job)
        self._running_on_clock.remove(job)
        job.status, job.finished_at, job.outcome = "COMPLETED", now, outcome
        if not job.sync:
            self._completed.append(job.request_id)
        reveal_logs(job, 1.0, now)
        if isinstance(outcome, Success):
            line = LogLine(f"Completed in {inference_time(job):.3f} s", "INFO", iso(now))
            job.logs += (line,)
        job.task = None
        self._record(job, now)
        for listener in self.listeners:
            listener.on_finished(job)

    def _position(self, job: Job) -> int | None:
        if job.status != "IN_QUEUE":
            return None
        return self._line.ahead_of(job)

    def _record(self, job: Job, at: float | None = None) -> None:
        """Add to the job's status history when its status or position changed."""
        position = self._position(job)
        last = job.history[-1] if job.history else None
        if last is None or last.status != job.status or last.queue_position != position:
            time = self.clock.now() if at is None else at
            job.history.append(HistoryEntry(job.status, position, time))

    def _view(self, job: Job) -> JobView:
        return JobView.of(job, self._position(job))

    def _trim_finished(self) -> None:
        """Forget completed jobs past their retention or beyond the limit, with their files."""
        self.retention.trim(self._jobs, self._completed, self.config, self.clock.now())
