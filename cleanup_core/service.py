"""The use cases: scan, check a portal, clean up, revert, delete, history.

Each method owns its transaction and writes one audit event per changed run inside it, so a crash
leaves either the whole change with its events or nothing. The dashboard, the CLI, the monitor and
scraper code all go through these methods.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cleanup_core import repository
from cleanup_core.checkpoints import CheckpointInfo, CheckpointStatus, inspect_checkpoint
from cleanup_core.classify import Action, RunFacts, RunState, Verdict, classify
from cleanup_core.config import Policy, Settings, validate_threshold_hours
from cleanup_core.db import Database
from cleanup_core.errors import RefusedError, RunNotFoundError
from cleanup_core.numbers import LARGEST_ID
from cleanup_core.timestamps import parse_timestamp
from cleanup_core.vocabulary import AuditAction, CycleOutcome, RunStatus

log = logging.getLogger("cleanup_core")

DEFAULT_ACTOR = "api"
MAX_PAGE = 1000

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

    def of(self, state: RunState) -> list[Verdict]:
        return [v for v in self.verdicts if v.state is state]

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
            "alive_count": counts[RunState.ALIVE],
            "young_count": counts[RunState.YOUNG],
            "running_count": len(self.verdicts),
            "age_threshold_hours": self.age_threshold_hours,
            "checked_at": self.checked_at.isoformat(),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class CleanupResult:
    """What a clean-up did: ``cleaned`` of ``requested``; the rest were left alone, with why."""

    requested: tuple[int, ...]
    cleaned: tuple[int, ...]
    left_alone: dict[int, str] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return f"Cleaned {len(self.cleaned)}/{len(self.requested)} dead runs"

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": list(self.requested),
            "cleaned": list(self.cleaned),
            "left_alone": {str(k): v for k, v in self.left_alone.items()},
            "message": self.message,
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
        }


@dataclass(frozen=True)
class AuditEvent:
    id: int
    run_id: int
    portal_name: str | None
    action: str
    actor: str
    from_status: str | None
    to_status: str | None
    created_at: datetime | None
    details: dict[str, Any]
    run_deleted: bool = False  # the run was deleted since; a later run may have its id

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run_id": self.run_id,
            "portal_name": self.portal_name,
            "action": self.action,
            "actor": self.actor,
            "from_status": self.from_status,
            "to_status": self.to_status,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "details": self.details,
            "run_deleted": self.run_deleted,
        }


@dataclass(frozen=True)
class HistoryPage:
    events: tuple[AuditEvent, ...]
    total: int


@dataclass(frozen=True)
class MonitorCycleRecord:
    """The monitor's latest finished cycle: when it started and how it went."""

    started_at: datetime | None
    outcome: str | None

    @property
    def ok(self) -> bool:
        return self.outcome == CycleOutcome.OK


def _checked_ids(run_ids: Iterable[object]) -> list[int]:
    """Unique run ids in the order given; anything that is not a whole number is refused."""
    seen: dict[int, None] = {}
    for value in run_ids:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"a run id must be a whole number, got {value!r}")
        seen[value] = None
    return list(seen)


def _encode_raw(value: Any) -> Any:
    """A stored timestamp as JSON, so revert can write back exactly what was there."""
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    return value


def _decode_raw(value: Any) -> Any:
    if isinstance(value, dict) and "datetime" in value:
        return datetime.fromisoformat(value["datetime"])
    return value


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class CleanupService:
    """The tool's use cases against one database and checkpoint folder."""

    def __init__(self, settings: Settings | None = None, *, database: Database | None = None):
        self.settings = settings or Settings.load()
        self.db = database or Database(self.settings)

    def init_database(self, *, beside_other_tables: bool = False) -> list[str]:
        """Create this tool's schema in a missing or empty database, or adopt it where a
        ``runs`` table exists (``init``, the demo); what was done, nothing when it was there.
        Another application's database is refused unless ``beside_other_tables``."""
        return self.db.initialize(beside_other_tables=beside_other_tables)

    # -- judging -------------------------------------------------------------------------

    def clock(self, conn: Any, now: datetime | None) -> datetime:
        """``now`` if given (it must be aware), else the time to judge by: the database
        server's clock on PostgreSQL, this machine's on SQLite."""
        if now is None:
            return repository.database_now(conn)
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware (e.g. datetime.now(timezone.utc))")
        return now

    def judge(
        self, facts: Sequence[RunFacts], now: datetime, age_threshold_hours: float | None
    ) -> list[Verdict]:
        """Classify running runs, reading each portal's policy and checkpoint once."""
        tz = self.settings.timezone
        contexts: dict[object, tuple[RunFacts | None, Policy, CheckpointInfo]] = {}
        verdicts = []
        for run in facts:
            context = contexts.get(run.portal_name)
            if context is None:
                context = contexts[run.portal_name] = self._portal_context(
                    run.portal_name, age_threshold_hours
                )
            renamed, policy, checkpoint = context
            if renamed is not None:
                run = run._replace(portal_name=renamed)
            verdicts.append(classify(run, checkpoint=checkpoint, policy=policy, now=now, tz=tz))
        return verdicts

    def judge_with_tenders(
        self,
        conn: Any,
        facts: Sequence[RunFacts],
        now: datetime,
        age_threshold_hours: float | None,
    ) -> tuple[list[Verdict], tuple[str, ...]]:
        """``judge``, then count the stored tenders of the runs that would otherwise be dead (one
        indexed query, so a scan stays cheap) and judge those again with them: tenders in the
        database are progress. Returns the verdicts and notes for the operator (stored tenders
        could not be counted)."""
        verdicts = self.judge(facts, now, age_threshold_hours)
        candidates = [i for i, v in enumerate(verdicts) if v.state is RunState.DEAD]
        if not candidates:
            return verdicts, ()
        counts = repository.stored_tender_counts(conn, [verdicts[i].run_id for i in candidates])
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

    def _portal_context(
        self, name: object, age_threshold_hours: float | None
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
            return None, settings.policy_for(portal, age_threshold_hours), checkpoint
        text = name.decode("utf-8", "backslashreplace") if isinstance(name, bytes) else str(name)
        unreadable = CheckpointInfo(
            None,
            CheckpointStatus.UNREADABLE,
            detail="the stored portal name is not text, so its checkpoint cannot be found",
        )
        return text, settings.policy_for(text, age_threshold_hours), unreadable

    def _threshold(self, age_threshold_hours: float | None) -> float | None:
        if age_threshold_hours is None:
            return None
        return validate_threshold_hours(age_threshold_hours)

    def scan(
        self,
        age_threshold_hours: float | None = None,
        *,
        portal_name: str | None = None,
        now: datetime | None = None,
    ) -> StuckRunSummary:
        """Judge every running run (or one portal's). Read-only."""
        threshold = self._threshold(age_threshold_hours)
        with self.db.read() as conn:
            now = self.clock(conn, now)
            facts = repository.running_facts(conn, portal_name=portal_name)
            verdicts, notes = self.judge_with_tenders(conn, facts, now, threshold)
        return StuckRunSummary(
            tuple(verdicts),
            now,
            threshold if threshold else self.settings.age_threshold_hours,
            notes,
        )

    def check_portal(
        self,
        portal_name: str,
        age_threshold_hours: float | None = None,
        *,
        now: datetime | None = None,
    ) -> PortalCheck:
        """The pre-scrape verdict: ``start``, ``resume``, ``cleanup`` or ``wait``, with why."""
        if not isinstance(portal_name, str) or not portal_name.strip():
            raise ValueError(f"portal_name must be a non-empty name, got {portal_name!r}")
        summary = self.scan(age_threshold_hours, portal_name=portal_name, now=now)
        return decide_portal(portal_name, summary.verdicts, summary.checked_at)

    # -- cleaning ------------------------------------------------------------------------

    def cleanup_runs(
        self,
        run_ids: Iterable[int],
        *,
        actor: str = DEFAULT_ACTOR,
        age_threshold_hours: float | None = None,
        force: bool = False,
        now: datetime | None = None,
    ) -> CleanupResult:
        """Mark the given runs ``Timeout - Auto-cleaned`` if they are dead now, in one
        transaction. Each run is judged again with fresh facts (and stored tenders) while the
        rows are locked, and the UPDATE re-checks status, progress, stored tenders and
        heartbeat, so a run that changed since it was shown is left alone. ``force`` (a
        person's explicit decision) also cleans resumable and attention runs, never alive or
        young ones."""
        ids = _checked_ids(run_ids)
        threshold = self._threshold(age_threshold_hours)
        if not ids:
            return CleanupResult((), ())
        allowed = {RunState.DEAD}
        if force:
            allowed |= {RunState.RESUMABLE, RunState.ATTENTION}
        with self.db.write() as conn:
            now = self.clock(conn, now)
            facts = repository.running_facts(conn, run_ids=ids, lock=True)
            judged, _ = self.judge_with_tenders(conn, facts, now, threshold)
            verdicts = {v.run_id: v for v in judged}
            targets = [v for v in verdicts.values() if v.state in allowed]
            cleaned = self.clean_locked(conn, targets, facts, actor=actor, now=now, force=force)
            left_alone = self._why_left_alone(conn, ids, cleaned, verdicts, allowed)
        if log.isEnabledFor(logging.INFO):  # a line per run: only when someone reads them
            for run_id in ids:
                if run_id in cleaned:
                    v = verdicts[run_id]
                    log.info(
                        "cleaned run %d (%s) by %s: %s", run_id, v.portal_name, actor, v.summary
                    )
                else:
                    log.info("left run %d alone: %s", run_id, left_alone[run_id])
        result = CleanupResult(tuple(ids), tuple(i for i in ids if i in cleaned), left_alone)
        log.info("%s (by %s)", result.message, actor)
        return result

    def clean_locked(
        self,
        conn: Any,
        targets: Sequence[Verdict],
        facts: Sequence[RunFacts],
        *,
        actor: str,
        now: datetime,
        force: bool = False,
    ) -> set[int]:
        """Inside the caller's write transaction, with ``facts`` read under lock: clean the
        judged ``targets`` by compare-and-set and write one audit event per cleaned run.
        Returns the ids this call cleaned. Shared by ``cleanup_runs`` and the worker's claim."""
        by_timeout: dict[timedelta, list[int]] = defaultdict(list)
        for verdict in targets:
            by_timeout[verdict.policy.heartbeat_timeout].append(verdict.run_id)
        cleaned: set[int] = set()
        for timeout, group in by_timeout.items():
            cleaned.update(
                repository.mark_cleaned(
                    conn,
                    group,
                    heartbeat_cutoff=now - timeout,
                    completed_at=now,
                    require_no_progress=not force,
                )
            )
        completed_raw = {f.id: f.completed_at for f in facts}
        repository.insert_events(
            conn,
            (
                self._cleanup_event(v, completed_raw[v.run_id], actor, now, force)
                for v in targets
                if v.run_id in cleaned
            ),
        )
        return cleaned

    def check_portal_locked(
        self, conn: Any, portal_name: str, *, now: datetime
    ) -> tuple[PortalCheck, list[RunFacts]]:
        """The pre-scrape verdict inside the caller's write transaction, reading the portal's
        running rows under lock so they cannot change before it ends (the worker's claim)."""
        facts = repository.running_facts(conn, portal_name=portal_name, lock=True)
        verdicts, _ = self.judge_with_tenders(conn, facts, now, None)
        return decide_portal(portal_name, verdicts, now), facts

    def _cleanup_event(
        self, verdict: Verdict, previous_completed_at: Any, actor: str, now: datetime, force: bool
    ) -> dict[str, Any]:
        details = {
            "previous_completed_at": _encode_raw(previous_completed_at),
            "state": verdict.state.value,
            "forced": force,
            "age_threshold_hours": verdict.policy.age_threshold_hours,
            "reasons": [reason.to_dict() for reason in verdict.reasons],
        }
        return {
            "run_id": verdict.run_id,
            "portal_name": verdict.portal_name,
            "action": AuditAction.CLEANUP,
            "actor": actor,
            "from_status": RunStatus.RUNNING,
            "to_status": RunStatus.CLEANED,
            "created_at": now,
            "details": json.dumps(details, default=str),
        }

    def _why_left_alone(
        self,
        conn: Any,
        ids: list[int],
        cleaned: set[int],
        verdicts: dict[int, Verdict],
        allowed: set[RunState],
    ) -> dict[int, str]:
        missing = [i for i in ids if i not in cleaned and i not in verdicts]
        statuses = repository.run_statuses(conn, missing) if missing else {}
        why: dict[int, str] = {}
        for run_id in ids:
            if run_id in cleaned:
                continue
            if run_id in verdicts:
                verdict = verdicts[run_id]
                if verdict.state in allowed:
                    why[run_id] = (
                        "changed while being cleaned (progress, stored tenders or heartbeat)"
                    )
                else:
                    why[run_id] = f"{verdict.state.value}: {verdict.summary}"
            elif run_id in statuses:
                why[run_id] = f"not running (status {statuses[run_id].status!r})"
            else:
                why[run_id] = "no such run"
        return why

    def cleanup_run(
        self,
        run_id: int,
        *,
        actor: str = DEFAULT_ACTOR,
        age_threshold_hours: float | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Clean one run if it is dead; ``True`` only if this call cleaned it."""
        if isinstance(run_id, bool) or not isinstance(run_id, int):
            return False
        result = self.cleanup_runs(
            [run_id], actor=actor, age_threshold_hours=age_threshold_hours, now=now
        )
        return bool(result.cleaned)

    def cleanup_if_needed(
        self,
        age_threshold_hours: float | None = None,
        *,
        actor: str = DEFAULT_ACTOR,
        now: datetime | None = None,
    ) -> CleanupResult:
        """Clean every dead run (never resumable, alive, young or attention ones)."""
        summary = self.scan(age_threshold_hours, now=now)
        dead = [v.run_id for v in summary.dead]
        return self.cleanup_runs(
            dead, actor=actor, age_threshold_hours=age_threshold_hours, now=now
        )

    # -- undo and deletion ---------------------------------------------------------------

    def revert_cleanup(self, run_id: int, *, actor: str = DEFAULT_ACTOR) -> bool:
        """Undo the latest clean-up of a run: restore its exact previous status and
        ``completed_at``. ``False`` when there is nothing to revert (never cleaned, already
        reverted, or changed since by something else)."""
        if isinstance(run_id, bool) or not isinstance(run_id, int):
            return False
        with self.db.write() as conn:
            event = repository.latest_event(conn, run_id, (AuditAction.CLEANUP, AuditAction.REVERT))
            if event is None or event.action != AuditAction.CLEANUP:
                return False
            details = json.loads(event.details or "{}")
            previous = _decode_raw(details.get("previous_completed_at"))
            restored = repository.restore_status(
                conn,
                run_id,
                expected_status=event.to_status,
                status=event.from_status,
                completed_at=previous,
            )
            if not restored:
                log.info("revert of run %d refused: its status changed since the clean-up", run_id)
                return False
            now = self.clock(conn, None)
            repository.insert_events(
                conn,
                [
                    {
                        "run_id": run_id,
                        "portal_name": event.portal_name,
                        "action": AuditAction.REVERT,
                        "actor": actor,
                        "from_status": event.to_status,
                        "to_status": event.from_status,
                        "created_at": now,
                        "details": json.dumps(
                            {
                                "reverted_event_id": event.id,
                                "restored_completed_at": details.get("previous_completed_at"),
                            }
                        ),
                    }
                ],
            )
        log.info("reverted clean-up of run %d (event %d) by %s", run_id, event.id, actor)
        return True

    def delete_runs(
        self, run_ids: Iterable[int], *, confirm: bool = False, actor: str = DEFAULT_ACTOR
    ) -> int:
        """Delete run records that are not running; tenders are never deleted. All or nothing:
        an unknown or running run refuses the whole request. Needs ``confirm=True``. What each
        run owned (its events, its tenders) is recorded with it, so a later run that gets the
        same id inherits none of it and the demo never replaces it."""
        ids = _checked_ids(run_ids)
        if not confirm:
            raise RefusedError("Deleting run records is permanent: pass confirm=True to do it.")
        if not ids:
            return 0
        with self.db.write() as conn:
            rows = repository.run_rows(conn, ids)
            found = {row["id"] for row in rows}
            missing = [i for i in ids if i not in found]
            if missing:
                raise RunNotFoundError(missing)
            running = [row["id"] for row in rows if row["status"] == RunStatus.RUNNING]
            if running:
                listed = ", ".join(map(str, running))
                raise RefusedError(
                    f"Run {listed} is still running and cannot be deleted; clean it up first. "
                    "Nothing was deleted."
                )
            deleted = repository.delete_finished_runs(conn, ids)
            if deleted != len(ids):
                raise RefusedError("Runs changed while being deleted. Nothing was deleted.")
            now = self.clock(conn, None)
            repository.insert_events(
                conn,
                (
                    {
                        "run_id": row["id"],
                        "portal_name": row["portal_name"],
                        "action": AuditAction.DELETE,
                        "actor": actor,
                        "from_status": row["status"],
                        "to_status": None,
                        "created_at": now,
                        "details": json.dumps(
                            {"deleted_row": {k: _json_value(v) for k, v in row.items()}},
                            default=str,
                        ),
                    }
                    for row in rows
                ),
            )
            repository.record_deletions(
                conn, {row["id"]: row["portal_name"] for row in rows}, deleted_at=now
            )
        log.info("deleted %d run records by %s: %s", deleted, actor, ", ".join(map(str, ids)))
        return deleted

    def run_status(self, run_id: int) -> str | None:
        """The run's status, or ``None`` when there is no such run."""
        with self.db.read() as conn:
            found = repository.run_statuses(conn, [run_id])
        return found[run_id].status if run_id in found else None

    # -- history -------------------------------------------------------------------------

    def history(
        self,
        *,
        portal_name: str | None = None,
        run_id: int | None = None,
        actions: Sequence[str] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> HistoryPage:
        """The audit trail, newest first. ``run_id`` selects the events of the run that has
        that id now; a deleted run's events stay in the unfiltered trail, marked
        ``run_deleted``."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit!r}")
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= LARGEST_ID:
            raise ValueError(f"offset must be from 0 to {LARGEST_ID}, got {offset!r}")
        with self.db.read() as conn:
            rows, total = repository.events_page(
                conn,
                portal_name=portal_name,
                run_id=run_id,
                actions=actions,
                limit=limit,
                offset=offset,
            )
        return HistoryPage(tuple(self._event(row) for row in rows), total)

    def event_counts(self) -> dict[str, int]:
        """How many audit events there are of each action (``cleanup``, ``revert``, ``start``,
        ...), over the whole trail."""
        with self.db.read() as conn:
            return repository.event_counts_by_action(conn)

    # -- the monitor's record ------------------------------------------------------------

    def last_monitor_cycle(self) -> MonitorCycleRecord | None:
        """The monitor's latest finished cycle, or ``None`` before its first."""
        with self.db.read() as conn:
            row = repository.last_cycle(conn, finished_only=True)
        if row is None:
            return None
        return MonitorCycleRecord(started_at=self._moment(row.started_at), outcome=row.outcome)

    def _moment(self, raw: object) -> datetime | None:
        """A stored time, or ``None`` when it is missing or cannot be read."""
        try:
            return parse_timestamp(raw, self.settings.timezone)
        except ValueError:
            return None

    def _event(self, row: Any) -> AuditEvent:
        created = self._moment(row.created_at)
        try:
            details = json.loads(row.details) if row.details else {}
        except ValueError:
            details = {"unreadable": row.details}
        return AuditEvent(
            id=row.id,
            run_id=row.run_id,
            portal_name=row.portal_name,
            action=row.action,
            actor=row.actor,
            from_status=row.from_status,
            to_status=row.to_status,
            created_at=created,
            details=details if isinstance(details, dict) else {"value": details},
            run_deleted=bool(row.run_deleted),
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
        runs = [v for v in verdicts if v.state is state]
        if runs:
            return check(Action.WAIT, f"run {runs[0].run_id} {label}: {runs[0].summary}", runs[0])
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


# -- the seed's module-level API, on the settings from the environment ------------------

_default: CleanupService | None = None


def default_service() -> CleanupService:
    """The service for ``CLEANUP_*`` settings, created on first use."""
    global _default
    if _default is None:
        _default = CleanupService(Settings.load())
    return _default


def configure(settings: Settings | None = None) -> CleanupService:
    """Point the module-level functions at other settings (``None``: re-read the environment)."""
    global _default
    if _default is not None:
        _default.db.dispose()
    _default = CleanupService(settings or Settings.load())
    return _default


def get_stuck_run_summary(age_threshold_hours: float | None = None) -> dict[str, Any]:
    """Resumable and dead runs with counts, as dicts (see ``StuckRunSummary.to_dict``)."""
    return default_service().scan(age_threshold_hours).to_dict()


def get_stuck_run_count(age_threshold_hours: float | None = None) -> int:
    """How many dead runs there are (what a clean-up would change)."""
    return len(default_service().scan(age_threshold_hours).dead)


def cleanup_run(run_id: int) -> bool:
    """Clean one dead run; ``True`` only if this call cleaned it."""
    return default_service().cleanup_run(run_id)


def cleanup_if_needed(age_threshold_hours: float | None = None) -> int:
    """Clean every dead run; returns how many were cleaned."""
    return len(default_service().cleanup_if_needed(age_threshold_hours).cleaned)


def check_portal_resume(
    portal_name: str, age_threshold_hours: float | None = None
) -> dict[str, Any]:
    """The pre-scrape check: ``{'has_running', 'action', 'run_id', 'run_ids', 'reason', ...}``."""
    return default_service().check_portal(portal_name, age_threshold_hours).to_dict()


def cleanup_runs(run_ids: Iterable[int], *, actor: str = DEFAULT_ACTOR) -> CleanupResult:
    return default_service().cleanup_runs(run_ids, actor=actor)


def revert_cleanup(run_id: int) -> bool:
    return default_service().revert_cleanup(run_id)


def delete_runs(run_ids: Iterable[int], *, confirm: bool = False) -> int:
    return default_service().delete_runs(run_ids, confirm=confirm)


def get_history(
    *, portal_name: str | None = None, run_id: int | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The audit trail as dicts, newest first."""
    page = default_service().history(portal_name=portal_name, run_id=run_id, limit=limit)
    return [event.to_dict() for event in page.events]
