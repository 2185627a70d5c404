"""Progression policies: how fast a job moves IN_QUEUE -> IN_PROGRESS -> COMPLETED."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

PolicyKind = Literal["polls", "virtual", "realtime", "immediate"]

_POLLS = re.compile(r"^polls:(\d{1,6})$")

POLICY_HELP = (
    "'polls:N' (each N status polls or stream ticks advance one state), 'virtual' (a clock "
    "advanced through the control plane), 'realtime' (wall-clock durations with seeded "
    "jitter) or 'immediate'"
)


class PolicyError(ValueError):
    """A policy string that does not parse."""


@dataclass(frozen=True, slots=True)
class Policy:
    kind: PolicyKind
    polls: int = 1

    @classmethod
    def parse(cls, text: str) -> Policy:
        value = text.strip().lower()
        if value in ("virtual", "realtime", "immediate"):
            return cls(value)  # type: ignore[arg-type]  # narrowed by the membership test
        match = _POLLS.match(value)
        if match and int(match.group(1)) >= 1:
            return cls("polls", int(match.group(1)))
        raise PolicyError(f"unknown progression policy {text!r}: expected {POLICY_HELP}")

    @property
    def time_based(self) -> bool:
        """Jobs on a clock share the simulated runners; poll-driven jobs move on their own."""
        return self.kind in ("virtual", "realtime")

    def __str__(self) -> str:
        return f"polls:{self.polls}" if self.kind == "polls" else self.kind
