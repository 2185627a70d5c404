"""The engine's settings as one frozen value: what the server starts with and ``reset`` replaces.

Apart from :mod:`mock_server.engine.queue` so settings and tests can build one without the
lifecycle logic. :meth:`EngineConfig.engine_options` is the subset a result engine is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts.faults import FaultPlan
from mock_server.engine.policies import Policy
from mock_server.engine.results import EngineOptions, LipsyncOptions

__all__ = ["EngineConfig"]


@dataclass(frozen=True, slots=True)
class EngineConfig:
    seed: int = 0
    policy: Policy = field(default_factory=lambda: Policy("polls", 1))
    engine: str = "placeholder"
    runners: int = 2
    queue_delay: tuple[float, float] = (0.2, 0.6)
    inference_time: tuple[float, float] = (0.8, 2.0)
    max_file_bytes: int = 100 * 1024 * 1024
    journal_limit: int = 10_000
    finished_limit: int = 10_000
    result_retention: float = 3600.0
    """Seconds a completed request is kept (fal: one hour); see retention.py."""
    file_retention: float = 86_400.0
    """Seconds a file no request holds (an upload) is kept."""
    lipsync: LipsyncOptions = field(default_factory=LipsyncOptions)
    faults: FaultPlan = field(default_factory=FaultPlan.none)

    def engine_options(self) -> EngineOptions:
        return EngineOptions(seed=self.seed, runners=self.runners, lipsync=self.lipsync)
