"""The monitor's bookkeeping, in the database so any process can run the next cycle: the lease
that lets one process run a cycle at a time, the record of each cycle, the problems already
reported, the outbox of notices, and how far each notification channel got through it.

``alerts.Monitor`` runs the cycles (judge, compare, notify); every transaction is here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from sqlalchemy import Connection

from cleanup_core.records import NoticeRecord
from cleanup_core.service.base import ServiceBase
from cleanup_core.storage import monitor, runs
from cleanup_core.timestamps import parse_timestamp
from cleanup_core.vocabulary import CycleOutcome, ProblemChange, ProblemKind

LEASE_NAME = "monitor"
KEEP_HISTORY = timedelta(days=30)

# What a problem is called in a message; they are listed in the order of ``ProblemKind``.
KINDS = tuple(ProblemKind)
_LABELS: dict[str, str] = {
    ProblemKind.DEAD: "DEAD",
    ProblemKind.STALLED: "STALLED",
    ProblemKind.OVERDUE: "OVERDUE",
    ProblemKind.ATTENTION: "NEEDS ATTENTION",
    ProblemKind.RESUMABLE: "RESUMABLE",
}


@dataclass(frozen=True)
class Problem:
    """A running run the operator should hear about."""

    run_id: int
    portal_name: str
    kind: ProblemKind
    summary: str


@dataclass(frozen=True)
class Change:
    """One line of a notice: a new problem, a reminder, or a recovery."""

    what: ProblemChange
    run_id: int
    portal_name: str
    kind: ProblemKind | str  # a kind an earlier version recorded may not be one of ours
    summary: str

    def line(self) -> str:
        label = _LABELS.get(self.kind, self.kind.upper())
        if self.what is ProblemChange.RECOVERED:
            return f"  RECOVERED run {self.run_id} (was {self.kind}): {self.summary}"
        if self.what is ProblemChange.AUTO_RESUMED:
            return f"  AUTO-RESUMED run {self.run_id}: {self.summary}"
        prefix = "STILL " if self.what is ProblemChange.REMINDER else "NEW "
        return f"  {prefix}{label} run {self.run_id}: {self.summary}"


@dataclass(frozen=True)
class CycleStart:
    """A cycle this process may run (``cycle_id``), or why it may not (``skipped``)."""

    started_at: datetime
    cycle_id: int | None = None
    skipped: str = ""


@dataclass(frozen=True)
class MonitorCycleRecord:
    """The monitor's latest finished cycle: when it started and how it went."""

    started_at: datetime | None
    outcome: str | None

    @property
    def ok(self) -> bool:
        return self.outcome == CycleOutcome.OK


@dataclass(frozen=True)
class MonitorStatus:
    """The watchdog's view: the last cycle, when the next is due, and whether it is late."""

    last_check: datetime | None
    next_check: datetime | None
    outcome: str | None
    detail: str
    late: bool
    never_ran: bool = False

    def describe(self, tz: tzinfo) -> str:
        if self.never_ran:
            return (
                "The monitor has never run. It checks the runs on a schedule and sends an alert "
                "when runs die or get stuck (it cleans nothing unless monitor_auto_clean is set). "
                'Start it with "python -m cleanup_core watch" (or "watch --once" from cron), or '
                "set monitor_in_dashboard = true to run it inside the dashboard."
            )
        last = self.last_check.astimezone(tz).strftime("%Y-%m-%d %H:%M") if self.last_check else "?"
        nxt = self.next_check.astimezone(tz).strftime("%Y-%m-%d %H:%M") if self.next_check else "?"
        late = " - LATE: the monitor has not run since; is it still running?" if self.late else ""
        return f"Last monitor check {last} ({self.outcome}: {self.detail}); next due {nxt}{late}"


class MonitorBook(ServiceBase):
    """The monitor's transactions."""

    @property
    def monitor_interval(self) -> timedelta:
        return timedelta(minutes=self.settings.monitor_interval_minutes)

    def begin_cycle(
        self, holder: str, *, now: datetime | None = None, force: bool = False
    ) -> CycleStart:
        """Take the lease and record a new cycle, unless another process holds the lease or a
        cycle ran less than an interval ago (``force`` ignores the latter)."""
        interval = self.monitor_interval
        with self.db.write() as conn:
            now = self._now(conn, now)
            lease_until = now + max(interval, timedelta(minutes=5))
            if not monitor.take_lease(conn, LEASE_NAME, holder, now, lease_until):
                return CycleStart(now, skipped="another monitor is running a cycle")
            last = monitor.last_cycle(conn)
            if not force and last is not None:
                started = parse_timestamp(last.started_at, self.settings.timezone)
                if started is not None and now - started < interval * 0.9:
                    monitor.release_lease(conn, LEASE_NAME, holder)
                    ago = (now - started).total_seconds() / 60
                    return CycleStart(now, skipped=f"a cycle ran {ago:.0f} min ago")
            return CycleStart(now, monitor.start_cycle(conn, now, holder))

    def end_cycle(
        self,
        cycle_id: int,
        holder: str,
        *,
        outcome: CycleOutcome,
        detail: str,
        changes: int,
        started_at: datetime,
    ) -> None:
        """Record how the cycle went, let go of the lease, and forget old history."""
        with self.db.write() as conn:
            monitor.finish_cycle(conn, cycle_id, self._now(conn, None), outcome, detail, changes)
            monitor.release_lease(conn, LEASE_NAME, holder)
            monitor.prune_monitor(conn, started_at - KEEP_HISTORY)

    def record_problems(
        self,
        cycle_id: int,
        problems: Sequence[Problem],
        *,
        now: datetime,
        remind_after: timedelta,
        cleaned_by_monitor: Mapping[int, str],
        notice: Callable[[Sequence[Change]], tuple[str, str]],
        launched: Sequence[Change] = (),
    ) -> list[Change]:
        """Compare the problems with those already reported: record what is new, remind about
        what is old, resolve what went away (and the runs the monitor just cleaned, id ->
        portal); ``launched``: the runs the monitor just auto-resumed, reported as they are.
        When anything changed, queue one notice (``notice`` writes its title and body) in the
        same transaction. Returns the changes, per portal and kind."""
        with self.db.write() as conn:
            changes = self._compare(conn, problems, now, remind_after)
            reported = {c.run_id for c in changes}
            changes.extend(
                Change(
                    ProblemChange.RECOVERED,
                    run_id,
                    portal,
                    ProblemKind.DEAD,
                    "cleaned automatically by the monitor",
                )
                for run_id, portal in cleaned_by_monitor.items()
                if run_id not in reported
            )
            changes.extend(launched)
            if changes:
                title, body = notice(changes)
                monitor.insert_notice(conn, cycle_id, now, title, body)
        return changes

    def _compare(
        self,
        conn: Connection,
        problems: Sequence[Problem],
        now: datetime,
        remind_after: timedelta,
    ) -> list[Change]:
        current: dict[tuple[int, str], Problem] = {(p.run_id, p.kind): p for p in problems}
        open_rows = {(row.run_id, row.kind): row for row in monitor.open_problems(conn)}
        changes = []
        for key, problem in current.items():
            row = open_rows.get(key)
            if row is None:
                monitor.open_problem(
                    conn,
                    run_id=problem.run_id,
                    kind=problem.kind,
                    portal_name=problem.portal_name,
                    summary=problem.summary,
                    now=now,
                )
                what = ProblemChange.NEW
            else:
                notified = parse_timestamp(row.last_notified_at, self.settings.timezone)
                if notified is not None and now - notified < remind_after:
                    continue
                monitor.touch_problem(conn, row.id, now, problem.summary)
                what = ProblemChange.REMINDER
            changes.append(
                Change(what, problem.run_id, problem.portal_name, problem.kind, problem.summary)
            )
        gone = [run_id for run_id, kind in open_rows if (run_id, kind) not in current]
        stored = runs.runs_by_id(conn, gone)
        for key, row in open_rows.items():
            if key in current:
                continue
            monitor.resolve_problem(conn, row.id, now)
            run = stored.get(row.run_id)
            now_state = f"status is now {run.status!r}" if run else "run record deleted"
            kind = ProblemKind(row.kind) if row.kind in KINDS else row.kind
            changes.append(
                Change(ProblemChange.RECOVERED, row.run_id, row.portal_name or "", kind, now_state)
            )
        return sorted(
            changes,
            key=lambda c: (
                c.portal_name.lower(),
                KINDS.index(c.kind) if c.kind in KINDS else len(KINDS),
                c.run_id,
            ),
        )

    def undelivered_notices(self, channel_key: str, cycle_id: int) -> list[NoticeRecord]:
        """What the channel has not received yet, oldest first (a channel seen for the first
        time starts with this cycle's notice)."""
        with self.db.write() as conn:
            since = monitor.channel_cursor(conn, channel_key, cycle_id)
            return monitor.notices_after(conn, since)

    def record_delivery(self, channel_key: str, delivered_id: int | None, now: datetime) -> None:
        """After an attempt: the channel got everything up to ``delivered_id``, or (``None``)
        the attempt failed and is retried next cycle."""
        with self.db.write() as conn:
            monitor.record_delivery(conn, channel_key, delivered_id, now)

    def seconds_until_due(self, *, now: datetime | None = None) -> float:
        """How long to sleep before the next cycle is due (by the last cycle of any process,
        so every process converges on one schedule)."""
        interval = self.monitor_interval
        with self.db.read() as conn:
            now = self._now(conn, now)
            last = monitor.last_cycle(conn)
        started = parse_timestamp(last.started_at, self.settings.timezone) if last else None
        if started is None:
            return 0.0
        wait = (started + interval - now).total_seconds()
        return min(max(wait, 1.0), interval.total_seconds())

    def monitor_status(self, *, now: datetime | None = None) -> MonitorStatus:
        """The last finished cycle, when the next is due, and whether the monitor is late."""
        interval = self.monitor_interval
        with self.db.read() as conn:
            now = self._now(conn, now)
            last = monitor.last_cycle(conn, finished_only=True)
        if last is None:
            return MonitorStatus(None, None, None, "", late=False, never_ran=True)
        started = parse_timestamp(last.started_at, self.settings.timezone)
        next_due = started + interval if started else None
        late = next_due is not None and now > next_due + max(interval, timedelta(minutes=10))
        return MonitorStatus(started, next_due, last.outcome, last.detail or "", late=late)

    def last_monitor_cycle(self) -> MonitorCycleRecord | None:
        """The monitor's latest finished cycle, or ``None`` before its first."""
        with self.db.read() as conn:
            row = monitor.last_cycle(conn, finished_only=True)
        if row is None:
            return None
        try:
            started = parse_timestamp(row.started_at, self.settings.timezone)
        except ValueError:
            started = None
        return MonitorCycleRecord(started_at=started, outcome=row.outcome)
