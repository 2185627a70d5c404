"""Persistence across restarts (opt-in: ``fal-mock serve --state-dir DIR`` or
``FAL_MOCK_STATE_DIR``; without it the mock keeps everything in memory).

What a state directory keeps, written as it happens: every accepted request (input, options,
timings, status, outcome, logs, history), every stored file (bytes on disk, fsynced before they
are recorded), the journal, the CDN tokens issued and the pending webhook deliveries. Started
again on the same directory, the mock answers every request it accepted under the same id:
queued ones wait again in their order, running ones start again from the beginning (as fal
re-runs a request whose runner failed; they stay IN_PROGRESS), completed ones keep their result
and files byte for byte. New ids never collide with old ones, the clock never goes back, the
journal goes on numbering where it stopped, and pending webhooks are sent.

* :mod:`~mock_server.persistence.state`: :func:`open_state`, what the app calls at start.
* :mod:`~mock_server.persistence.recorder`: the engine's listener that writes each change.
* :mod:`~mock_server.persistence.database`: SQLite in WAL mode; which writes are fsynced.
* :mod:`~mock_server.persistence.blobs`: file bytes on disk (temp file, fsync, rename, record).
* :mod:`~mock_server.persistence.journal`: the journal and tokens, written through.
* :mod:`~mock_server.persistence.codec`: jobs and journal entries as JSON.
"""

from mock_server.persistence.state import StateDirectory, open_state

__all__ = ["StateDirectory", "open_state"]
