"""How long the engine keeps what it has, so a mock left running for days stays bounded.

fal keeps a request's result for an hour after it completes (PROTOCOL.md section 5, "result"). The
mock does the same on its own clock (virtual or wall): ``result_retention`` seconds after a
request completes it is forgotten with its output files, and status, result and its file URLs
answer 404 as for a request never seen. At most ``finished_limit`` completed requests are kept
besides, the longest-completed going first.

Files a request produced are held by it and go with it. Every other file (uploads, the outputs
of sync runs, the output of a job that was cancelled or restarted) goes ``file_retention``
seconds after it was stored. fal's CDN keeps files until the account's expiration setting
(none by default), which a mock that must stay bounded cannot copy; a day (the default) is
longer than any test or development session needs an upload.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from mock_server.engine.config import EngineConfig
from mock_server.engine.jobs import Job
from mock_server.engine.results import Outcome, Success
from mock_server.storage import FILE_REF_SCHEME, FileStore

__all__ = ["Retention", "output_file_ids"]


class Retention:
    """A job listener that ties each job's output files to it, and the engine's trim step."""

    def __init__(self, store: Callable[[], FileStore]) -> None:
        self._store = store  # late-bound: reset (or a state directory) replaces the store
        self.on_trim: list[Callable[[float, list[str]], None]] = []
        """Told after every trim (each engine call runs one) of the clock's reading and the
        request ids it forgot: persistence deletes them, and keeps the virtual clock's reading
        (an advance is seen nowhere else). Called under the engine's lock: must be cheap."""

    def trim(
        self, jobs: dict[str, Job], completed: deque[str], config: EngineConfig, now: float
    ) -> None:
        """Forget completed jobs (``completed`` is in completion order, so the oldest are at
        its head) past their retention or beyond the count limit, with the files they hold;
        then the files nobody holds that are past theirs. O(1) when nothing is due."""
        cutoff = now - config.result_retention
        forgotten = []
        while completed:
            job = jobs.get(completed[0])
            within_limit = len(jobs) <= config.finished_limit
            if job is not None and within_limit and (job.finished_at or 0.0) > cutoff:
                break
            completed.popleft()
            if job is not None:
                del jobs[job.request_id]
                forgotten.append(job.request_id)
        store = self._store()
        if forgotten:
            store.release(forgotten)
        store.expire(now - config.file_retention)
        for callback in self.on_trim:
            callback(now, forgotten)

    # -- JobListener --------------------------------------------------------------------

    def on_submitted(self, job: Job) -> None:
        return None

    def on_started(self, job: Job) -> None:
        # A simulated engine's output exists the moment its job starts: held from then on, it
        # cannot age out while the job runs, however long that is.
        if job.task is not None and not job.sync and job.task.done():
            try:
                outcome = job.task.outcome()
            except Exception:  # the queue reports it when the job finishes
                return
            self._hold(job, outcome)

    def on_finished(self, job: Job) -> None:
        if job.outcome is not None and not job.sync:
            self._hold(job, job.outcome)

    def on_reset(self) -> None:
        return None

    def _hold(self, job: Job, outcome: Outcome) -> None:
        store = self._store()
        for file_id in output_file_ids(outcome, store):
            store.hold(file_id, job.request_id)


def output_file_ids(outcome: Outcome | None, store: FileStore) -> Iterator[str]:
    """The stored files a successful outcome's output refers to, wherever they sit in it."""
    if isinstance(outcome, Success):
        for text in _strings(outcome.output):
            if text.startswith(FILE_REF_SCHEME) and (found := store.lookup_ref(text)):
                yield found.file_id


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
