"""The plain-Python core of the mock: queue, clock, policies, journal, result engines.

Nothing in this package imports a web framework; the HTTP layer translates to these calls.
"""

from mock_server.engine.clock import EPOCH, VirtualClock, WallClock, iso
from mock_server.engine.config import EngineConfig
from mock_server.engine.jobs import HistoryEntry, JobView, LogLine, SubmitOptions
from mock_server.engine.journal import Journal, JournalEntry
from mock_server.engine.policies import POLICY_HELP, Policy, PolicyError
from mock_server.engine.queue import QueueEngine
from mock_server.engine.results import ENGINES, Failure, Outcome, ResultEngine, Success

__all__ = [
    "ENGINES",
    "EPOCH",
    "POLICY_HELP",
    "EngineConfig",
    "Failure",
    "HistoryEntry",
    "JobView",
    "Journal",
    "JournalEntry",
    "LogLine",
    "Outcome",
    "Policy",
    "PolicyError",
    "QueueEngine",
    "ResultEngine",
    "SubmitOptions",
    "Success",
    "VirtualClock",
    "WallClock",
    "iso",
]
