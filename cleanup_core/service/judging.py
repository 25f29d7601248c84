"""Judging running runs: the scan, the pre-scrape check of one portal, and what both return.

Reading a portal's policy and checkpoint once per portal, and counting stored tenders only for
the runs that would otherwise be dead, keeps a scan of thousands of runs and the check that
runs before every scrape cheap.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from cleanup_core.checkpoints import (
    CheckpointInfo,
    CheckpointStatus,
    inspect_checkpoint,
    portal_slug,
    stored_checkpoint_info,
)
from cleanup_core.classify import Verdict, classify
from cleanup_core.config import Policy
from cleanup_core.durations import PortalStats
from cleanup_core.errors import CleanupError
from cleanup_core.records import RunFacts
from cleanup_core.service.base import ServiceBase
from cleanup_core.stalls import judge_stall
from cleanup_core.storage import checkpoints, launches, runs, tenders
from cleanup_core.timestamps import parse_timestamp
from cleanup_core.vocabulary import Action, RunState, ThresholdSource

TENDERS_NOT_LINKED = (
    "note: stored tenders are not progress evidence here: the tenders table has no run_id "
    "column, so runs were judged by their counters, heartbeat and checkpoint only"
)


@dataclass(frozen=True)
class StuckRunSummary:
    """Every running run, judged at ``checked_at``."""

    verdicts: tuple[Verdict, ...]
    checked_at: datetime
    age_threshold_hours: float
    notes: tuple[str, ...] = ()  # what the operator should know about how runs were judged
    # Stored portals whose names differ only by case, spacing or punctuation: they share a
    # checkpoint file (and a config section), so a person must rename one.
    shared_checkpoints: tuple[tuple[str, ...], ...] = ()

    def of(self, state: RunState) -> list[Verdict]:
        return [v for v in self.verdicts if v.state is state]

    @property
    def stalled(self) -> list[Verdict]:
        """Alive runs that are not getting anywhere (``Verdict.stall``)."""
        return [v for v in self.verdicts if v.stall is not None]

    @property
    def dead(self) -> list[Verdict]:
        return self.of(RunState.DEAD)

    @property
    def resumable(self) -> list[Verdict]:
        return self.of(RunState.RESUMABLE)

    @property
    def attention(self) -> list[Verdict]:
        return self.of(RunState.ATTENTION)

    def to_dict(self) -> dict[str, Any]:
        """The seed's shape (``total_stuck``, ``resumable_count``, ``dead_count``,
        ``resumable_runs``, ``dead_runs``) plus the other states."""
        counts = {state: len(self.of(state)) for state in RunState}
        return {
            "total_stuck": counts[RunState.RESUMABLE] + counts[RunState.DEAD],
            "resumable_count": counts[RunState.RESUMABLE],
            "dead_count": counts[RunState.DEAD],
            "resumable_runs": [v.to_dict() for v in self.resumable],
            "dead_runs": [v.to_dict() for v in self.dead],
            "attention_count": counts[RunState.ATTENTION],
            "attention_runs": [v.to_dict() for v in self.attention],
            "stalled_count": len(self.stalled),
            "stalled_runs": [v.to_dict() for v in self.stalled],
            "alive_count": counts[RunState.ALIVE],
            "young_count": counts[RunState.YOUNG],
            "running_count": len(self.verdicts),
            "age_threshold_hours": self.age_threshold_hours,
            "checked_at": self.checked_at.isoformat(),
            "notes": list(self.notes),
            "shared_checkpoints": [
                {"checkpoint": f"{portal_slug(names[0])}.json", "portals": list(names)}
                for names in self.shared_checkpoints
            ],
        }


@dataclass(frozen=True)
class PortalCheck:
    """The pre-scrape verdict for one portal."""

    portal_name: str
    action: Action
    reason: str
    run_id: int | None = None
    run_ids: tuple[int, ...] = ()
    runs: tuple[Verdict, ...] = ()
    checked_at: datetime | None = None
    requested_name: str | None = None  # the name asked for, when it differs from the stored one

    @property
    def has_running(self) -> bool:
        return bool(self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "portal_name": self.portal_name,
            "has_running": self.has_running,
            "action": self.action.value,
            "run_id": self.run_id,
            "run_ids": list(self.run_ids),
            "reason": self.reason,
            "running_count": len(self.runs),
            "states": {state.value: n for state, n in Counter(v.state for v in self.runs).items()},
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
            "requested_name": self.requested_name,
        }


class PortalBusyError(CleanupError):
    """The pre-scrape check says wait: another run of the portal is alive, may still be
    starting, or needs a person's attention. Nothing was started."""

    def __init__(self, check: PortalCheck):
        self.check = check
        super().__init__(
            f"Portal {check.portal_name!r} is busy: {check.reason}. Nothing was started; "
            "try again later."
        )

    @property
    def run_id(self) -> int | None:
        return self.check.run_id

    @property
    def reason(self) -> str:
        return self.check.reason


@dataclass(frozen=True)
class PortalName:
    """Which stored portal a name means: ``stored``, or ``None`` when several stored portals
    share its checkpoint file (``candidates``) and it cannot be told which."""

    requested: str
    stored: str | None
    candidates: tuple[str, ...] = ()

    @property
    def ambiguous_reason(self) -> str:
        listed = ", ".join(repr(name) for name in self.candidates)
        return (
            f"{self.requested!r} could be any of {listed}: they share the checkpoint file "
            f"{portal_slug(self.requested)}.json. Use the exact name (and rename one of them)"
        )


def match_portal(requested: str, stored_names: Iterable[object]) -> PortalName:
    """The stored portal ``requested`` means: itself when stored under exactly that name; else
    the one stored portal whose name differs only by case, spacing or punctuation (the same
    slug: the same checkpoint file and config section); else, when there is none, itself (a
    new portal). When several stored portals have that slug it is not guessed."""
    names = {name for name in stored_names if isinstance(name, str)}
    if requested in names:
        return PortalName(requested, requested)
    slug = portal_slug(requested)
    same = sorted(name for name in names if portal_slug(name) == slug)
    if not same:
        return PortalName(requested, requested)
    if len(same) == 1:
        return PortalName(requested, same[0])
    return PortalName(requested, None, tuple(same))


def shared_checkpoints(stored_names: Iterable[object]) -> tuple[tuple[str, ...], ...]:
    """Groups of stored portal names that share a checkpoint file (the same slug)."""
    by_slug: dict[str, list[str]] = defaultdict(list)
    for name in {name for name in stored_names if isinstance(name, str) and name}:
        by_slug[portal_slug(name)].append(name)
    return tuple(tuple(sorted(names)) for _, names in sorted(by_slug.items()) if len(names) > 1)


def _shared_note(names: tuple[str, ...]) -> str:
    listed = " and ".join(repr(name) for name in names)
    return (
        f"attention: portals {listed} share the checkpoint file {portal_slug(names[0])}.json "
        "(and a config section): a scraper of one can overwrite the other's checkpoint. Rename "
        "one of them in the runs table and in its scraper"
    )


def decide_portal(
    portal_name: str, verdicts: Sequence[Verdict], checked_at: datetime | None = None
) -> PortalCheck:
    """One verdict for a portal from its running runs: wait if any run is alive, young or needs
    attention; else resume the most advanced resumable run; else clean up all dead ones."""

    def check(
        action: Action, reason: str, run: Verdict | None, run_ids: Sequence[int] = ()
    ) -> PortalCheck:
        return PortalCheck(
            portal_name=portal_name,
            action=action,
            reason=reason,
            run_id=run.run_id if run else None,
            run_ids=tuple(run_ids) if run_ids else ((run.run_id,) if run else ()),
            runs=tuple(verdicts),
            checked_at=checked_at,
        )

    if not verdicts:
        return check(Action.START, f"no running run for {portal_name!r}", None)
    for state, label in (
        (RunState.ALIVE, "is alive"),
        (RunState.YOUNG, "may still be starting"),
        (RunState.ATTENTION, "needs a person's attention"),
    ):
        waiting = [v for v in verdicts if v.state is state]
        if waiting:
            first = waiting[0]
            return check(Action.WAIT, f"run {first.run_id} {label}: {first.summary}", first)
    resumable = [v for v in verdicts if v.state is RunState.RESUMABLE]
    if resumable:
        best = max(
            resumable,
            key=lambda v: (
                v.checkpoint_tenders
                + (v.stored_tenders or 0)
                + (v.extracted or 0)
                + (v.skipped or 0),
                v.run_id,
            ),
        )
        return check(Action.RESUME, f"run {best.run_id} can be resumed: {best.summary}", best)
    dead = [v for v in verdicts if v.state is RunState.DEAD]
    ids = [v.run_id for v in dead]
    noun = "run" if len(ids) == 1 else "runs"
    reason = f"dead {noun} {', '.join(map(str, ids))} to clean up first: {dead[0].summary}"
    return check(Action.CLEANUP, reason, dead[0], ids)


def _with_auto_resumes(conn: Connection, facts: Sequence[RunFacts]) -> Sequence[RunFacts]:
    """The facts with how often the monitor launched each run's resume_command (the rules
    send a run it tried ``max_resume_attempts`` times to a person)."""
    if not facts:
        return facts
    counts = launches.auto_resume_counts(conn, [f.id for f in facts] if len(facts) <= 500 else None)
    if not counts:
        return facts
    return [
        f._replace(auto_resumes=counts[f.id][0], last_auto_resume_exit=counts[f.id][1])
        if f.id in counts
        else f
        for f in facts
    ]


@dataclass(frozen=True)
class PortalThreshold:
    """One portal's statistics of completed runs and the threshold in effect for it now."""

    portal_name: str
    stats: PortalStats | None  # None: no completed run in the window
    learned_threshold_hours: float | None  # None: not enough history
    threshold_hours: float
    source: ThresholdSource
    adaptive: bool  # adaptive_thresholds is on for the portal

    def to_dict(self) -> dict[str, Any]:
        stats = self.stats.to_dict() if self.stats else {}
        return {
            "portal": self.portal_name,
            "completed_runs": stats.get("completed_runs", 0),
            "p50_minutes": stats.get("p50_minutes"),
            "p95_minutes": stats.get("p95_minutes"),
            "p99_minutes": stats.get("p99_minutes"),
            "longest_minutes": stats.get("longest_minutes"),
            "learned_threshold_hours": _round2(self.learned_threshold_hours),
            "threshold_hours": _round2(self.threshold_hours),
            "source": self.source.value,
        }


def _round2(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def durations_by_portal(
    rows: Iterable[tuple[object, object, object]], tz: Any, since: datetime, now: datetime
) -> dict[str, PortalStats]:
    """Per-portal statistics of completed runs from raw (portal, started_at, completed_at)
    rows. A value that cannot be read, a run that ended before it started, one that ended
    outside the window or a portal name that is not text is skipped, never an error."""
    seconds: dict[str, list[float]] = defaultdict(list)
    for portal, started_raw, completed_raw in rows:
        if not isinstance(portal, str):
            continue
        try:
            started = parse_timestamp(started_raw, tz)
            completed = parse_timestamp(completed_raw, tz)
        except ValueError:
            continue
        if started is None or completed is None or not since <= completed <= now:
            continue
        taken = (completed - started).total_seconds()
        if taken > 0:
            seconds[portal].append(taken)
    return {
        portal: stats
        for portal, values in seconds.items()
        if (stats := PortalStats.of(portal, values)) is not None
    }


class Judging(ServiceBase):
    """Scan and check: read the running runs, judge them, never change anything."""

    def scan(
        self,
        age_threshold_hours: float | None = None,
        *,
        portal_name: str | None = None,
        now: datetime | None = None,
    ) -> StuckRunSummary:
        """Judge every running run (or one portal's). Read-only."""
        threshold = self._threshold(age_threshold_hours)
        shared: tuple[tuple[str, ...], ...] = ()
        with self.db.read() as conn:
            now = self._now(conn, now)
            facts = runs.running_facts(conn, portal_name=portal_name)
            verdicts, notes = self._judge_with_tenders(conn, facts, now, threshold)
            if portal_name is None:
                shared = shared_checkpoints(runs.portal_names(conn))
        return StuckRunSummary(
            tuple(verdicts),
            now,
            threshold if threshold else self.settings.age_threshold_hours,
            (*notes, *map(_shared_note, shared)),
            shared,
        )

    def check_portal(
        self,
        portal_name: str,
        age_threshold_hours: float | None = None,
        *,
        now: datetime | None = None,
    ) -> PortalCheck:
        """The pre-scrape verdict for the stored portal ``portal_name`` means (see
        ``match_portal``): ``start``, ``resume``, ``cleanup`` or ``wait``, with why."""
        if not isinstance(portal_name, str) or not portal_name.strip():
            raise ValueError(f"portal_name must be a non-empty name, got {portal_name!r}")
        threshold = self._threshold(age_threshold_hours)
        with self.db.read() as conn:
            now = self._now(conn, now)
            check, _ = self._check_in(conn, portal_name, now=now, threshold=threshold)
        return check

    def _check_in(
        self,
        conn: Connection,
        requested: str,
        *,
        now: datetime,
        threshold: float | None = None,
        lock: bool = False,
    ) -> tuple[PortalCheck, list[RunFacts]]:
        """The pre-scrape verdict inside the caller's transaction, with the portal's running
        rows. ``lock`` reads them under lock so they cannot change before the transaction ends
        (a worker's claim)."""
        name, facts = self._portal_runs(conn, requested, lock=lock)
        if name.stored is None:
            check = PortalCheck(requested, Action.WAIT, name.ambiguous_reason, checked_at=now)
            return check, []
        verdicts, _ = self._judge_with_tenders(conn, facts, now, threshold)
        check = decide_portal(name.stored, verdicts, now)
        if name.stored != requested:
            check = replace(check, requested_name=requested)
        return check, facts

    def _portal_runs(
        self, conn: Connection, requested: str, *, lock: bool
    ) -> tuple[PortalName, list[RunFacts]]:
        """Which stored portal ``requested`` means, and its running runs. The exact name with
        running runs (the usual pre-scrape check) costs the one indexed read it needs anyway;
        only a name no run is stored under is compared with every stored portal's."""
        facts = runs.running_facts(conn, portal_name=requested, lock=lock)
        if facts or runs.portal_has_runs(conn, requested):
            return PortalName(requested, requested), facts
        name = match_portal(requested, runs.portal_names(conn))
        if name.stored is None or name.stored == requested:
            return name, []
        return name, runs.running_facts(conn, portal_name=name.stored, lock=lock)

    def thresholds(self, *, now: datetime | None = None) -> list[PortalThreshold]:
        """Every stored portal's statistics of completed runs (in the last ``history_days``),
        its learned threshold and the threshold in effect now, by portal name. Read-only."""
        settings = self.settings
        with self.db.read() as conn:
            now = self._now(conn, now)
            history = self._read_history(conn, now)
            names = {name for name in runs.portal_names(conn) if isinstance(name, str)}
        rows = []
        for name in sorted(names | set(history), key=lambda n: (n.lower(), n)):
            stats = history.get(name)
            policy = settings.policy_for(name, None, stats)
            rows.append(
                PortalThreshold(
                    portal_name=name,
                    stats=stats,
                    learned_threshold_hours=settings.learned_threshold_hours(stats),
                    threshold_hours=policy.age_threshold_hours,
                    source=ThresholdSource(policy.threshold_source),
                    adaptive=settings.adaptive_for(name),
                )
            )
        return rows

    def _read_history(
        self, conn: Connection, now: datetime, portal_name: str | None = None
    ) -> dict[str, PortalStats]:
        """The statistics of the runs completed in the last ``history_days`` (one portal's
        when named), computed once per scan or check."""
        since = now - timedelta(days=self.settings.history_days)
        rows = runs.completed_in_window(conn, since, portal_name)
        return durations_by_portal(rows, self.settings.timezone, since, now)

    def _history_for(
        self, conn: Connection, facts: Sequence[RunFacts], now: datetime
    ) -> Mapping[str, PortalStats]:
        """The statistics the portals of ``facts`` need: none unless some portal learns its
        threshold (``adaptive_thresholds``); one portal's when all runs are of one portal."""
        if not facts or not self.settings.reads_history:
            return {}
        names = {run.portal_name for run in facts}
        if len(names) == 1:
            (name,) = names
            if not isinstance(name, str) or not self.settings.adaptive_for(name):
                return {}
            return self._read_history(conn, now, name)
        return self._read_history(conn, now)

    def _judge(
        self,
        conn: Connection,
        facts: Sequence[RunFacts],
        now: datetime,
        age_threshold_hours: float | None,
        history: Mapping[str, PortalStats] | None = None,
    ) -> list[Verdict]:
        """Classify running runs, reading each portal's policy and checkpoint file once. A run's
        checkpoint in the database, where its tracked worker wrote one, is read first; the file
        is the evidence for runs without one (legacy, file-only scrapers)."""
        tz = self.settings.timezone
        history = history or {}
        contexts: dict[object, tuple[str | None, Policy, CheckpointInfo]] = {}
        stored = checkpoints.run_checkpoints(conn, [run.id for run in facts])
        verdicts = []
        for run in facts:
            context = contexts.get(run.portal_name)
            if context is None:
                context = contexts[run.portal_name] = self._portal_context(
                    run.portal_name, age_threshold_hours, history
                )
            renamed, policy, checkpoint = context
            if renamed is not None:
                run = run._replace(portal_name=renamed)
            row = stored.get(run.id)
            if row is not None:
                checkpoint = stored_checkpoint_info(row)
            verdicts.append(classify(run, checkpoint=checkpoint, policy=policy, now=now, tz=tz))
        return verdicts

    def _judge_with_tenders(
        self,
        conn: Connection,
        facts: Sequence[RunFacts],
        now: datetime,
        age_threshold_hours: float | None,
    ) -> tuple[list[Verdict], tuple[str, ...]]:
        """``_judge``, then count the stored tenders of the runs that would otherwise be dead
        (one indexed query, so a scan stays cheap) and judge those again with them: tenders in
        the database are progress. Returns the verdicts and notes for the operator (stored
        tenders could not be counted)."""
        history = self._history_for(conn, facts, now)
        verdicts = self._with_stalls(
            self._judge(conn, _with_auto_resumes(conn, facts), now, age_threshold_hours, history),
            now,
        )
        candidates = [i for i, v in enumerate(verdicts) if v.state is RunState.DEAD]
        if not candidates:
            return verdicts, ()
        counts = tenders.stored_tender_counts(conn, [verdicts[i].run_id for i in candidates])
        if counts is None:
            return verdicts, (TENDERS_NOT_LINKED,)
        tz = self.settings.timezone
        for i in candidates:
            v = verdicts[i]
            counted = v.facts._replace(stored_tenders=counts.get(v.run_id, 0))
            verdicts[i] = classify(
                counted, checkpoint=v.checkpoint, policy=v.policy, now=now, tz=tz
            )
        return verdicts, ()

    def _with_stalls(self, verdicts: list[Verdict], now: datetime) -> list[Verdict]:
        """Judge each alive run for a stall (``stalls.judge_stall``) with its portal's
        ``stall_after_minutes``: the scan, the run page and the monitor all read this one
        judgement."""
        settings = self.settings
        for i, verdict in enumerate(verdicts):
            if verdict.state is RunState.ALIVE:
                minutes = settings.stall_after_minutes_for(verdict.portal_name or "")
                stall = judge_stall(verdict, timedelta(minutes=minutes), now)
                if stall is not None:
                    verdicts[i] = replace(verdict, stall=stall)
        return verdicts

    def _portal_context(
        self,
        name: object,
        age_threshold_hours: float | None,
        history: Mapping[str, PortalStats],
    ) -> tuple[str | None, Policy, CheckpointInfo]:
        """The policy and checkpoint for a stored portal name. A legacy SQLite row whose portal
        name is a BLOB or a number is judged under a text form of it (so messages, the audit
        trail and notifications can show it), with its checkpoint counted as unreadable so no
        evidence is ruled out."""
        settings = self.settings
        if name is None or isinstance(name, str):
            portal = name or ""
            checkpoint = inspect_checkpoint(
                settings.checkpoint_dir, portal, max_bytes=settings.max_checkpoint_bytes
            )
            policy = settings.policy_for(portal, age_threshold_hours, history.get(portal))
            return None, policy, checkpoint
        text = name.decode("utf-8", "backslashreplace") if isinstance(name, bytes) else str(name)
        unreadable = CheckpointInfo(
            None,
            CheckpointStatus.UNREADABLE,
            detail="the stored portal name is not text, so its checkpoint cannot be found",
        )
        return text, settings.policy_for(text, age_threshold_hours), unreadable
