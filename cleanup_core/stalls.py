"""When an alive run counts as stalled, and where (pure; the service judges every alive run
with it in each scan, and the monitor's stall alert is the same judgement).

- **cursor** (department-level): the run's checkpoint in the database has a cursor that has not
  moved for longer than the portal's ``stall_after_minutes``: it is stuck *in that
  organisation / department*, though its heartbeat is fresh.
- **progress**: a run without a checkpoint row in the database (a legacy or file-only scraper)
  has reported no progress for longer than ``stall_after_minutes`` (without any progress since
  it started, its start time counts).

A run with a database cursor is judged by its cursor only: a cursor that moves is a scraper
that moves, even through departments with nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cleanup_core.timestamps import parse_timestamp
from cleanup_core.vocabulary import CheckpointSource, RunState, StallKind

if TYPE_CHECKING:
    from cleanup_core.classify import Verdict


def cursor_location(cursor: Any) -> str:
    """Where a scraper was, from its checkpoint cursor: organisation / department / page."""
    if not isinstance(cursor, dict):
        return ""
    parts = []
    for key in ("organisation", "organization", "department", "current_organisation", "page"):
        value = cursor.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            parts.append(f"{key.replace('_', ' ')} {str(value)[:80]}")
    return ", ".join(parts)


@dataclass(frozen=True)
class Stall:
    """An alive run that is not getting anywhere: since when, for how long, and where."""

    kind: StallKind
    since: datetime
    minutes: float
    stall_after_minutes: float
    cursor: Any = None
    where: str = ""  # the cursor in words ("organisation PWD, department Roads")
    heartbeat_age_minutes: float | None = None
    no_progress_since_start: bool = False

    @property
    def message(self) -> str:
        beat = f"heartbeat {self.heartbeat_age_minutes or 0:.0f} min ago"
        limit = f"(stall_after {self.stall_after_minutes:g} min)"
        if self.kind is StallKind.CURSOR:
            at = self.where or "the same cursor"
            return (
                f"stalled in {at}: alive ({beat}) but its checkpoint cursor has not moved for "
                f"{self.minutes:.0f} min {limit}"
            )
        what = "no progress since it started" if self.no_progress_since_start else "no progress"
        at = f" at {self.where}" if self.where else ""
        return f"alive ({beat}) but {what} for {self.minutes:.0f} min{at} {limit}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "cursor": self.cursor,
            "where": self.where,
            "since": self.since.isoformat(),
            "minutes": round(self.minutes, 1),
            "stall_after_minutes": self.stall_after_minutes,
            "message": self.message,
        }


def judge_stall(verdict: Verdict, stall_after: timedelta, now: datetime) -> Stall | None:
    """Whether the alive run of ``verdict`` is stalled at ``now`` (see the module's rules)."""
    if verdict.state is not RunState.ALIVE:
        return None
    checkpoint = verdict.checkpoint
    limit = stall_after.total_seconds() / 60
    cursor_since = None
    if checkpoint.source is CheckpointSource.DATABASE and checkpoint.run_id == verdict.run_id:
        try:
            cursor_since = parse_timestamp(checkpoint.cursor_changed_at, verdict.tz)
        except ValueError:
            cursor_since = None
    since: datetime | None
    if cursor_since is not None:  # the cursor's own clock decides
        kind, since, never_progressed = StallKind.CURSOR, cursor_since, False
    else:  # no stored cursor: the last progress (or the start) decides
        progress = verdict.last_progress_at
        kind, since = StallKind.PROGRESS, progress or verdict.started_at
        never_progressed = progress is None
    if since is None or now - since <= stall_after:
        return None
    return Stall(
        kind,
        since,
        (now - since).total_seconds() / 60,
        limit,
        cursor=checkpoint.cursor,
        where=cursor_location(checkpoint.cursor),
        heartbeat_age_minutes=verdict.heartbeat_age_minutes,
        no_progress_since_start=never_progressed,
    )
