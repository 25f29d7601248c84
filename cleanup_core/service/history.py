"""The audit trail and the changes a person makes to it: revert a clean-up, delete run records,
read the history."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cleanup_core.errors import RefusedError, RunNotFoundError
from cleanup_core.numbers import LARGEST_ID
from cleanup_core.service.audit import AuditEvent, decode_raw, delete_event, revert_event
from cleanup_core.service.base import DEFAULT_ACTOR, ServiceBase, checked_ids, is_whole_number
from cleanup_core.storage import deletions, events, launches, runs
from cleanup_core.vocabulary import AuditAction, NotReverted, RunStatus

log = logging.getLogger("cleanup_core")

MAX_PAGE = 1000


@dataclass(frozen=True)
class HistoryPage:
    events: tuple[AuditEvent, ...]
    total: int


@dataclass(frozen=True)
class RevertResult:
    """What a revert did: ``reverted``, or ``why_not`` (with the run's ``status`` now when it
    changed since the clean-up)."""

    run_id: int
    reverted: bool
    why_not: NotReverted | None = None
    status: str | None = None
    event_id: int | None = None  # the clean-up that was (or would have been) reverted

    @property
    def message(self) -> str:
        if self.reverted:
            return f"Reverted the clean-up of run {self.run_id}: it is running again."
        why = {
            NotReverted.NO_SUCH_RUN: "there is no such run",
            NotReverted.NEVER_CLEANED: "it was never cleaned up",
            NotReverted.ALREADY_REVERTED: "its latest clean-up was already reverted",
            NotReverted.CHANGED_SINCE: (
                f"its status changed since the clean-up (it is {self.status!r} now)"
            ),
        }
        reason = why[self.why_not] if self.why_not else "unknown"
        return f"Nothing to revert for run {self.run_id}: {reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "reverted": self.reverted,
            "why_not": self.why_not.value if self.why_not else None,
            "message": self.message,
        }


class Auditing(ServiceBase):
    """Revert, delete and the history."""

    def revert(self, run_id: int, *, actor: str = DEFAULT_ACTOR) -> RevertResult:
        """Undo the latest clean-up of a run in one transaction: restore its exact previous
        status and ``completed_at``, if the run is still in the state that clean-up left.
        The result says why not otherwise."""
        if not is_whole_number(run_id):
            raise ValueError(f"a run id must be a whole number, got {run_id!r}")
        with self.db.write() as conn:
            latest = events.latest_event(conn, run_id, (AuditAction.CLEANUP, AuditAction.REVERT))
            run = runs.runs_by_id(conn, [run_id]).get(run_id)
            if latest is None or latest.action != AuditAction.CLEANUP:
                if run is None:
                    why = NotReverted.NO_SUCH_RUN
                elif latest is None:
                    why = NotReverted.NEVER_CLEANED
                else:
                    why = NotReverted.ALREADY_REVERTED
                return RevertResult(run_id, False, why, None if run is None else run.status)
            details = json.loads(latest.details or "{}")
            restored = runs.restore_status(
                conn,
                run_id,
                expected_status=latest.to_status or RunStatus.CLEANED,
                status=latest.from_status,
                completed_at=decode_raw(details.get("previous_completed_at")),
            )
            if not restored:
                log.info("revert of run %d refused: its status changed since the clean-up", run_id)
                why = NotReverted.NO_SUCH_RUN if run is None else NotReverted.CHANGED_SINCE
                status = None if run is None else run.status
                return RevertResult(run_id, False, why, status, latest.id)
            event = revert_event(
                latest,
                details.get("previous_completed_at"),
                actor=actor,
                now=self._now(conn, None),
            )
            events.insert_events(conn, [event])
        log.info("reverted clean-up of run %d (event %d) by %s", run_id, latest.id, actor)
        return RevertResult(run_id, True, event_id=latest.id)

    def revert_cleanup(self, run_id: int, *, actor: str = DEFAULT_ACTOR) -> bool:
        """``revert`` for callers that only need to know whether it happened: ``False`` when
        there is nothing to revert (never cleaned, already reverted, changed since)."""
        if not is_whole_number(run_id):
            return False
        return self.revert(run_id, actor=actor).reverted

    def delete_runs(
        self, run_ids: Iterable[int], *, confirm: bool = False, actor: str = DEFAULT_ACTOR
    ) -> int:
        """Delete run records that are not running; tenders are never deleted. All or nothing:
        an unknown or running run refuses the whole request. Needs ``confirm=True``. What each
        run owned (its events, its tenders) is recorded with it, so a later run that gets the
        same id inherits none of it and the demo never replaces it."""
        ids = checked_ids(run_ids)
        if not confirm:
            raise RefusedError("Deleting run records is permanent: pass confirm=True to do it.")
        if not ids:
            return 0
        with self.db.write() as conn:
            found = runs.runs_by_id(conn, ids)
            missing = [i for i in ids if i not in found]
            if missing:
                raise RunNotFoundError(missing)
            rows = sorted(found.values(), key=lambda run: run.id)
            running = [run.id for run in rows if run.is_running]
            if running:
                listed = ", ".join(map(str, running))
                raise RefusedError(
                    f"Run {listed} is still running and cannot be deleted; clean it up first. "
                    "Nothing was deleted."
                )
            deleted = runs.delete_finished_runs(conn, ids)
            launches.forget_runs(conn, ids)
            if deleted != len(ids):
                raise RefusedError("Runs changed while being deleted. Nothing was deleted.")
            now = self._now(conn, None)
            events.insert_events(conn, (delete_event(run, actor=actor, now=now) for run in rows))
            deletions.record_deletions(
                conn, {run.id: run.portal_name for run in rows}, deleted_at=now
            )
        log.info("deleted %d run records by %s: %s", deleted, actor, ", ".join(map(str, ids)))
        return deleted

    def run_status(self, run_id: int) -> str | None:
        """The run's status, or ``None`` when there is no such run."""
        with self.db.read() as conn:
            found = runs.runs_by_id(conn, [run_id])
        return found[run_id].status if run_id in found else None

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
        if not is_whole_number(limit) or not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit!r}")
        if not is_whole_number(offset) or not 0 <= offset <= LARGEST_ID:
            raise ValueError(f"offset must be from 0 to {LARGEST_ID}, got {offset!r}")
        with self.db.read() as conn:
            stored, total = events.events_page(
                conn,
                portal_name=portal_name,
                run_id=run_id,
                actions=actions,
                limit=limit,
                offset=offset,
            )
        tz = self.settings.timezone
        return HistoryPage(tuple(AuditEvent.from_stored(event, tz) for event in stored), total)

    def event_counts(self) -> dict[str, int]:
        """How many audit events there are of each action (``cleanup``, ``revert``, ``start``,
        ...), over the whole trail."""
        with self.db.read() as conn:
            return events.event_counts_by_action(conn)
