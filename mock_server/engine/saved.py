"""What a state directory hands back to the engine when the mock starts on it again.

Built by :mod:`mock_server.persistence`, taken up by :meth:`QueueEngine.restore
<mock_server.engine.queue.QueueEngine.restore>`. Plain values: the engine knows nothing of how
they were kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from mock_server.engine.ids import SeededIds
from mock_server.engine.jobs import Job
from mock_server.engine.journal import Journal
from mock_server.storage import FileStore

__all__ = ["SavedState"]


@dataclass(slots=True)
class SavedState:
    clock: float
    """The clock's reading to go on from: never behind anything that was saved."""
    jobs: list[Job]
    """Every request still kept, in submission order, with ``task`` None: queued ones wait
    again, running ones start again, completed ones are answered as they were."""
    completed: list[str]
    """The completed ones' ids, in the order they completed (retention forgets in this order)."""
    ids: SeededIds
    store: FileStore
    journal: Journal
    tokens: set[str]
    """CDN tokens issued (they are credentials when the mock checks keys)."""
