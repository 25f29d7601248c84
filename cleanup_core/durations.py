"""How long a portal's runs take: statistics of its completed runs and the age threshold learned
from them (``adaptive_thresholds``, issue 15). Pure: durations in, figures out.

The learned threshold is the largest of three bounds (docs/architecture.md, "Learned
thresholds", says why):

- ``learned_threshold_floor_hours`` (default 2 h): a legacy scraper that has not written
  anything for less than this is never judged by age alone;
- 1.5 x the longest completed run in the window: no run the portal has ever finished in that
  time would have been judged dead, with room to spare for a slightly longer one;
- 3 x the 99th percentile (``P99_MARGIN``): a percentile read from a few dozen runs
  underestimates the tail, and run times are heavy-tailed (log-normal-like); three times the
  p99 still covers a portal whose runs vary a lot when its window holds few of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

# The bounds of the learned threshold (see the module's docstring).
LONGEST_MARGIN = 1.5
P99_MARGIN = 3.0


def percentile(ordered: list[float], share: float) -> float:
    """The ``share`` percentile (0..1) of an ascending, non-empty list, interpolated linearly
    between the two nearest values (what PostgreSQL's ``percentile_cont`` gives)."""
    position = (len(ordered) - 1) * share
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class PortalStats:
    """One portal's completed runs in the window: how many, and how long they took (seconds)."""

    portal_name: str
    completed_runs: int
    p50_seconds: float
    p95_seconds: float
    p99_seconds: float
    longest_seconds: float

    @classmethod
    def of(cls, portal_name: str, seconds: Iterable[float]) -> PortalStats | None:
        """The statistics of some durations (``None`` when there are none)."""
        ordered = sorted(seconds)
        if not ordered:
            return None
        return cls(
            portal_name,
            len(ordered),
            percentile(ordered, 0.50),
            percentile(ordered, 0.95),
            percentile(ordered, 0.99),
            ordered[-1],
        )

    @property
    def p99(self) -> timedelta:
        return timedelta(seconds=self.p99_seconds)

    @property
    def longest_hours(self) -> float:
        return self.longest_seconds / 3600

    def learned_threshold_hours(self, *, min_runs: int, floor_hours: float) -> float | None:
        """The threshold these runs justify, or ``None`` with fewer than ``min_runs``."""
        if self.completed_runs < min_runs:
            return None
        return max(
            floor_hours,
            LONGEST_MARGIN * self.longest_seconds / 3600,
            P99_MARGIN * self.p99_seconds / 3600,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "completed_runs": self.completed_runs,
            "p50_minutes": _minutes(self.p50_seconds),
            "p95_minutes": _minutes(self.p95_seconds),
            "p99_minutes": _minutes(self.p99_seconds),
            "longest_minutes": _minutes(self.longest_seconds),
        }


def _minutes(seconds: float) -> float:
    return round(seconds / 60, 1)
