"""A scraper's worker: claim a portal, then heartbeat, store tenders, finish or release.

The claim runs the pre-scrape check and acts on it in one write transaction that holds the
portal's lock, so any number of workers starting one portal at once leave exactly one running
run. Each run carries an ``attempt`` number, incremented on every resume; every write after the
claim is fenced by it, so a worker that froze, lost its run to a resume and woke up again gets
``RunFencedError`` (having written nothing) and stops.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from cleanup_core.checkpoints import (
    canonical_json,
    portal_slug,
    read_checkpoint,
    stored_checkpoint_info,
    stored_tender_ids,
)
from cleanup_core.errors import RefusedError, RunFencedError
from cleanup_core.records import RunFacts
from cleanup_core.service.audit import worker_event
from cleanup_core.service.cleaning import Cleaning
from cleanup_core.service.judging import PortalBusyError, PortalCheck, decide_portal
from cleanup_core.storage import checkpoints, events, runs, tenders, worker
from cleanup_core.storage.common import database_now
from cleanup_core.tenders import json_safe, stored_row, tender_id_of
from cleanup_core.vocabulary import Action, AuditAction, RunStatus


@dataclass(frozen=True)
class Claim:
    """A run this worker now holds. ``action``: ``start``, ``resume``, or ``cleanup`` (dead runs
    cleaned, then a new run started). For a resume, ``cursor`` and ``tenders`` are what the
    checkpoint (the run's row in the database first, else the portal's file) and the stored
    tenders hold of the run so far; ``checkpoint_behind`` says the checkpoint file lacks some
    (a crash between a commit and the checkpoint save, or a resume on another host)."""

    portal_name: str
    run_id: int
    attempt: int
    action: Action
    reason: str
    cleaned_run_ids: tuple[int, ...] = ()
    cursor: Any = None
    tenders: tuple[dict[str, Any], ...] = ()
    seen_tender_ids: frozenset[str] = frozenset()
    extracted_total: int = 0
    skipped_total: int = 0
    checkpoint_behind: bool = False


class WorkerWrites(Cleaning):
    """Every write a scraper's worker makes."""

    def claim_portal(
        self, portal_name: str, *, worker_id: str, resume_run_id: int | None = None
    ) -> Claim:
        """Start, resume, or clean up dead runs then start, as the pre-scrape check says;
        ``PortalBusyError`` when it says wait. ``resume_run_id`` insists on resuming that run
        (``RefusedError`` if it is not resumable)."""
        with self.db.write() as conn:
            # By slug: two spellings of one portal wait for each other, then agree which one
            # it is (match_portal) before either starts a run.
            worker.lock_portal(conn, portal_slug(portal_name))
            now = database_now(conn)
            check, facts = self._check_in(conn, portal_name, now=now, lock=True)
            if resume_run_id is not None:
                check = _aim_at_requested(check, resume_run_id)
            if check.action is Action.WAIT:
                raise PortalBusyError(check)
            if check.action is Action.RESUME:
                assert check.run_id is not None
                found = {f.id: f for f in facts}[check.run_id]
                return self._take_over(conn, check, found, worker_id, now)
            cleaned: tuple[int, ...] = ()
            if check.action is Action.CLEANUP:
                cleaned = self._clean_dead(conn, check, facts, worker_id, now)
            return self._start(conn, check, cleaned, worker_id, now)

    def _clean_dead(
        self,
        conn: Connection,
        check: PortalCheck,
        facts: list[RunFacts],
        worker_id: str,
        now: datetime,
    ) -> tuple[int, ...]:
        targets = [v for v in check.runs if v.run_id in check.run_ids]
        actor = f"worker:{worker_id}"
        cleaned = self._clean_locked(conn, targets, facts, actor=actor, now=now)
        if cleaned != set(check.run_ids):
            raise RefusedError(
                f"Dead runs of portal {check.portal_name!r} changed while being cleaned up; "
                "nothing was started. Try again."
            )
        return tuple(sorted(cleaned))

    def _start(
        self,
        conn: Connection,
        check: PortalCheck,
        cleaned: tuple[int, ...],
        worker_id: str,
        now: datetime,
    ) -> Claim:
        run_id = worker.insert_run(
            conn,
            {
                "portal_name": check.portal_name,
                "status": RunStatus.RUNNING,
                "started_at": now,
                "worker_id": worker_id,
                "attempt": 1,
                "last_heartbeat_at": now,
                "extracted_total_tenders": 0,
                "skipped_existing_total": 0,
            },
        )
        checkpoints.forget_checkpoint(conn, run_id)  # a reused id inherits no checkpoint
        details = {"reason": check.reason, "cleaned_run_ids": list(cleaned)}
        event = worker_event(
            AuditAction.START,
            run_id=run_id,
            portal_name=check.portal_name,
            worker_id=worker_id,
            now=now,
            details=details,
        )
        events.insert_events(conn, [event])
        return Claim(check.portal_name, run_id, 1, check.action, check.reason, cleaned)

    def _take_over(
        self, conn: Connection, check: PortalCheck, facts: RunFacts, worker_id: str, now: datetime
    ) -> Claim:
        verdict = next(v for v in check.runs if v.run_id == facts.id)
        attempt = worker.take_over_run(
            conn,
            facts.id,
            observed_attempt=facts.attempt,
            heartbeat_cutoff=now - verdict.policy.heartbeat_timeout,
            worker_id=worker_id,
            now=now,
        )
        if attempt is None:
            raise RefusedError(
                f"Run {facts.id} changed while being resumed; nothing was claimed. Try again."
            )
        cursor, kept, seen, behind = self._resume_state(conn, check.portal_name, facts.id)
        # The new attempt starts at the stored cursor now: the time the run lay dead before the
        # resume is not a stall in its department.
        checkpoints.restart_cursor_clock(conn, facts.id, now)
        details = {
            "attempt": attempt,
            "previous_attempt": facts.attempt,
            "previous_worker_id": facts.worker_id,
            "cursor": cursor,
            "seen_tenders": len(seen),
            "reasons": [reason.to_dict() for reason in verdict.reasons],
        }
        event = worker_event(
            AuditAction.RESUME,
            run_id=facts.id,
            portal_name=check.portal_name,
            worker_id=worker_id,
            now=now,
            details=details,
        )
        events.insert_events(conn, [event])
        return Claim(
            check.portal_name,
            facts.id,
            attempt,
            Action.RESUME,
            check.reason,
            cursor=cursor,
            tenders=tuple(kept),
            seen_tender_ids=frozenset(seen),
            extracted_total=_count(facts.extracted_total_tenders),
            skipped_total=_count(facts.skipped_existing_total),
            checkpoint_behind=behind,
        )

    def _resume_state(
        self, conn: Connection, portal_name: str, run_id: int
    ) -> tuple[Any, list[dict[str, Any]], set[str], bool]:
        """Where to continue: the run's checkpoint in the database first (any host sees it),
        then the portal's checkpoint file (legacy, file-only), plus the run's stored tenders
        neither lists: a crash between the database commit and the checkpoint save must not
        make the scraper add them twice. Returns the cursor, the tenders (for the file), the
        ids seen, and whether the file lacks some of them (so it is rewritten)."""
        settings = self.settings
        stored = checkpoints.run_checkpoints(conn, [run_id]).get(run_id)
        in_db = stored_checkpoint_info(stored) if stored is not None else None
        checkpoint = read_checkpoint(
            settings.checkpoint_dir, portal_name, max_bytes=settings.max_checkpoint_bytes
        )
        info = checkpoint.info
        if info.status.is_problem and (in_db is None or in_db.status.is_problem):
            raise RefusedError(
                f"The checkpoint {info.path} of run {run_id} became unreadable "
                f"({info.status.value}: {info.detail}); nothing was claimed."
            )
        if in_db is not None and in_db.status.is_problem:
            raise RefusedError(
                f"The checkpoint of run {run_id} in the database is unreadable "
                f"({in_db.status.value}: {in_db.detail}); nothing was claimed."
            )
        cursor: Any = None
        kept: list[dict[str, Any]] = []
        if info.is_evidence_for(run_id) and (in_db is None or info.run_id == run_id):
            cursor, kept = checkpoint.cursor, list(checkpoint.tenders)
        if in_db is not None:
            cursor = in_db.cursor  # the database copy wins: it was saved with the fence
        seen = {i for i in map(tender_id_of, kept) if i is not None}
        behind = False
        for row in tenders.run_tenders(conn, run_id):
            if row["tender_id"] not in seen:
                seen.add(row["tender_id"])
                kept.append(json_safe(row))
                behind = True
        if stored is not None:
            listed = set(stored_tender_ids(stored)) - seen
            if listed:  # ids the worker saw whose tenders are not in this database's rows
                seen.update(listed)
                behind = True
        return cursor, kept, seen, behind

    # -- the fenced writes after the claim -------------------------------------------------

    def worker_heartbeat(self, run_id: int, attempt: int) -> None:
        """The worker is alive. ``RunFencedError`` when the run is no longer this attempt's."""
        with self.db.write() as conn:
            if not worker.record_heartbeat(conn, run_id, attempt):
                raise _fenced(conn, run_id, attempt)

    def save_worker_checkpoint(
        self,
        run_id: int,
        attempt: int,
        *,
        portal_name: str,
        cursor: Any,
        tender_ids: Sequence[str],
        tender_count: int,
    ) -> None:
        """The worker's checkpoint into the database: a fenced heartbeat and the run's
        checkpoint row in one transaction, so a worker that lost its run writes neither.
        ``tender_ids`` (every tender id the worker has seen, for the resume's skipping) are kept
        as a JSON list while cursor and ids fit in ``max_checkpoint_mb``, else left out (the
        run's rows in ``tenders`` then tell a resume which it has); ``tender_count`` is how many
        tenders the run itself holds (the file's ``tenders``: progress evidence). A cursor alone
        over that size is refused."""
        limit = self.settings.max_checkpoint_bytes
        cursor_text = canonical_json(cursor)  # ASCII: one character is one byte
        if len(cursor_text) > limit:
            raise ValueError(
                f"the checkpoint cursor is {len(cursor_text):,} bytes as JSON, over "
                f"the {limit:,}-byte limit (max_checkpoint_mb); keep it small (where to continue)"
            )
        listed = canonical_json(list(tender_ids))
        ids_text = listed if len(cursor_text) + len(listed) <= limit else None
        with self.db.write() as conn:
            if not worker.record_heartbeat(conn, run_id, attempt):
                raise _fenced(conn, run_id, attempt)
            checkpoints.upsert_checkpoint(
                conn,
                run_id,
                portal_name=portal_name,
                attempt=attempt,
                cursor=cursor_text,
                tender_count=tender_count,
                tender_ids=ids_text,
                now=database_now(conn),
            )

    def store_tenders(
        self,
        run_id: int,
        attempt: int,
        portal_name: str,
        batch: Sequence[Mapping[str, Any]],
        *,
        candidates: Collection[str],
    ) -> list[Mapping[str, Any]]:
        """Store the tenders of ``batch`` whose ids are among ``candidates`` (those the worker
        has not seen) and the portal does not have yet (from any run), and count the others as
        skipped, with the run's counters, in one transaction. Returns the stored tenders."""
        with self.db.write() as conn:
            new_ids = set(candidates) - tenders.stored_tender_ids(
                conn, portal_name, list(candidates)
            )
            new = []
            for tender in batch:
                if tender["tender_id"] in new_ids:  # the first of any repeats in the batch
                    new_ids.discard(tender["tender_id"])
                    new.append(tender)
            skipped = len(batch) - len(new)
            if not worker.record_progress(
                conn, run_id, attempt, extracted=len(new), skipped=skipped
            ):
                raise _fenced(conn, run_id, attempt)
            tenders.insert_tenders(
                conn, [stored_row(t, run_id=run_id, portal_name=portal_name) for t in new]
            )
        return new

    def record_worker_progress(
        self, run_id: int, attempt: int, *, extracted: int, skipped: int
    ) -> None:
        """Tenders the scraper stored (or skipped) by itself: add them to the counters."""
        with self.db.write() as conn:
            if not worker.record_progress(
                conn, run_id, attempt, extracted=extracted, skipped=skipped
            ):
                raise _fenced(conn, run_id, attempt)

    def finish_run(
        self,
        run_id: int,
        attempt: int,
        *,
        portal_name: str,
        worker_id: str,
        status: RunStatus,
        details: Mapping[str, Any],
    ) -> None:
        """End the run ``completed`` or ``failed``, with its audit event."""
        with self.db.write() as conn:
            now = database_now(conn)
            if not worker.finish_run(conn, run_id, attempt, status=status, completed_at=now):
                raise _fenced(conn, run_id, attempt)
            action = AuditAction.COMPLETE if status is RunStatus.COMPLETED else AuditAction.FAIL
            event = worker_event(
                action,
                run_id=run_id,
                portal_name=portal_name,
                worker_id=worker_id,
                now=now,
                details=details,
            )
            events.insert_events(conn, [event])

    def release_run(
        self,
        run_id: int,
        attempt: int,
        *,
        portal_name: str,
        worker_id: str,
        details: Mapping[str, Any],
    ) -> None:
        """Let go of a run the worker could not finish; it stays ``running`` and can be resumed
        at once instead of after the heartbeat timeout."""
        with self.db.write() as conn:
            now = database_now(conn)
            if not worker.release_run(conn, run_id, attempt, released_at=now):
                raise _fenced(conn, run_id, attempt)
            event = worker_event(
                AuditAction.RELEASE,
                run_id=run_id,
                portal_name=portal_name,
                worker_id=worker_id,
                now=now,
                details=details,
            )
            events.insert_events(conn, [event])


def _aim_at_requested(check: PortalCheck, wanted: int) -> PortalCheck:
    """The check, aimed at the run the caller asked to resume, if that run may be resumed."""
    verdict = next((v for v in check.runs if v.run_id == wanted), None)
    if verdict is None:
        raise RefusedError(
            f"Run {wanted} is not a running run of portal {check.portal_name!r}; nothing to resume."
        )
    if not verdict.resumable_by_hand:
        raise RefusedError(
            f"Run {wanted} is {verdict.state.value}, not resumable: {verdict.summary}"
        )
    others = decide_portal(
        check.portal_name, [v for v in check.runs if v.run_id != wanted], check.checked_at
    )
    if others.action is Action.WAIT:  # another run of the portal is alive or starting
        return replace(
            check,
            action=Action.WAIT,
            reason=others.reason,
            run_id=others.run_id,
            run_ids=others.run_ids,
        )
    return replace(
        check,
        action=Action.RESUME,
        run_id=wanted,
        run_ids=(wanted,),
        reason=f"run {wanted} can be resumed: {verdict.summary}",
    )


def _fenced(conn: Connection, run_id: int, attempt: int) -> RunFencedError:
    """A fenced write matched no row: say why."""
    run = runs.runs_by_id(conn, [run_id]).get(run_id)
    if run is None:
        why = f"run {run_id} no longer exists"
    elif not run.is_running:
        why = f"run {run_id} is no longer running (status {run.status!r})"
    else:
        why = f"run {run_id} was taken over by attempt {run.attempt} (worker {run.worker_id})"
    return RunFencedError(run_id, attempt, f"{why}; stopping (this worker had attempt {attempt})")


def _count(raw: object) -> int:
    """A stored counter as a number for the worker's own tally (the database keeps the truth)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return 0
    try:
        return max(int(raw or 0), 0)
    except (TypeError, ValueError, OverflowError):
        return 0
