"""The worker side: claim a portal, heartbeat, report progress, save checkpoints, finish.

A scraper wraps one scrape in ``track_run``::

    with track_run("Assam Tenders") as run:  # starts, resumes, or raises PortalBusyError
        for page in portal_pages(after=run.cursor):
            run.add_tenders(page.tenders)  # skips tenders already stored or seen
            run.save_checkpoint(cursor=page.number)  # atomic file, after the commit

Code that cannot wrap the scrape in one block (a Scrapy extension, an event loop) calls
``run.claim()`` and later exactly one of ``run.complete()``, ``run.fail(reason)`` or
``run.release(reason)``: the same steps the ``with`` block takes.

The claim runs the pre-scrape check and acts on it in one write transaction that holds the
portal's lock, so any number of workers starting one portal at once leave exactly one running
run. Each run carries an ``attempt`` number, incremented on every resume; every write the worker
makes is fenced by it (``WHERE id = ? AND status = 'running' AND attempt = ?``), so a worker
that froze, lost its run to a resume and woke up again can no longer write and stops.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack, suppress
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from cleanup_core import repository
from cleanup_core.checkpoints import read_checkpoint, write_checkpoint
from cleanup_core.classify import Action, RunFacts
from cleanup_core.config import Settings
from cleanup_core.errors import CleanupError, ConfigError, DatabaseError, RefusedError
from cleanup_core.service import CleanupService, PortalCheck
from cleanup_core.timestamps import utc_now
from cleanup_core.vocabulary import AuditAction, RunStatus

log = logging.getLogger("cleanup_core.tracker")

# The most one progress report may add: the legacy counter columns are 32-bit on PostgreSQL.
_COUNTER_MAX = 2**31 - 1


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


class RunFencedError(CleanupError):
    """This worker no longer owns its run (another attempt took it over, or someone cleaned or
    finished it); none of its writes went through. The scraper must stop."""

    def __init__(self, run_id: int, attempt: int, message: str):
        self.run_id = run_id
        self.attempt = attempt
        super().__init__(message)


class Terminated(SystemExit):
    """SIGTERM, raised in the main thread so the run is released as on Ctrl-C; if nothing
    catches it the process exits with the conventional status 143."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


@dataclass(frozen=True)
class AddedTenders:
    """What one ``add_tenders`` call did."""

    added: int
    skipped: int


def default_worker_id() -> str:
    """``host:pid``: which process on which machine holds a run."""
    return f"{socket.gethostname()}:{os.getpid()}"


def track_run(
    portal_name: str,
    *,
    settings: Settings | None = None,
    service: CleanupService | None = None,
    resume_run_id: int | None = None,
    worker_id: str | None = None,
    handle_sigterm: bool = True,
) -> TrackedRun:
    """A context manager that claims ``portal_name`` on entry (start, resume, or clean up dead
    runs then start; ``PortalBusyError`` on wait), heartbeats while the block runs, and on exit
    marks the run completed, failed (exception) or released (Ctrl-C, SIGTERM).

    ``resume_run_id`` insists on resuming that run (``RefusedError`` if it is not resumable);
    without it the claim resumes whatever the pre-scrape check says to. Pass ``settings`` or a
    ``service`` (default: ``Settings.load()``). ``handle_sigterm=False`` leaves SIGTERM to the
    caller (a framework with its own shutdown, such as Scrapy), which then ends the run with
    ``release``."""
    if settings is not None and service is not None:
        raise ValueError("pass settings or service, not both")
    owns_service = service is None
    return TrackedRun(
        portal_name,
        service=service or CleanupService(settings or Settings.load()),
        owns_service=owns_service,
        resume_run_id=resume_run_id,
        worker_id=worker_id,
        handle_sigterm=handle_sigterm,
    )


class TrackedRun:
    """One run claimed by this worker. Use through ``track_run``; after the claim ``run_id``,
    ``attempt``, ``action``, ``resumed``, ``cursor`` and ``seen_tender_ids`` are set."""

    def __init__(
        self,
        portal_name: str,
        *,
        service: CleanupService,
        owns_service: bool = False,
        resume_run_id: int | None = None,
        worker_id: str | None = None,
        handle_sigterm: bool = True,
    ):
        if not isinstance(portal_name, str) or not portal_name.strip():
            raise ValueError(f"portal_name must be a non-empty name, got {portal_name!r}")
        self.portal_name = portal_name
        self.service = service
        self.worker_id = worker_id or default_worker_id()
        self.actor = f"worker:{self.worker_id}"
        self._owns_service = owns_service
        self._resume_run_id = resume_run_id
        self._handle_sigterm = handle_sigterm
        self.run_id: int = 0
        self.attempt: int = 0
        self.action: Action = Action.START
        self.reason = ""
        self.cleaned_run_ids: tuple[int, ...] = ()
        self.cursor: Any = None
        self.seen_tender_ids: set[str] = set()
        self.extracted_total = 0
        self.skipped_total = 0
        self.status: str | None = None
        self._tenders: list[Any] = []
        self._dirty = False
        self._checkpoint_cursor: Any = None
        self._fenced: RunFencedError | None = None
        self._fence_lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        self._old_sigterm: Any = None
        self._sigterm_installed = False
        self._claimed = False
        self._ended = False
        self._closing = False  # ending (or SIGTERM already raised): a second SIGTERM waits

    @property
    def resumed(self) -> bool:
        return self.action is Action.RESUME

    @property
    def fenced(self) -> RunFencedError | None:
        """Why this worker lost its run (a write, or its heartbeat, matched no row), or
        ``None`` while the run is still its own."""
        return self._fenced

    # -- claiming ------------------------------------------------------------------------

    def __enter__(self) -> TrackedRun:
        return self.claim()

    def claim(self) -> TrackedRun:
        """Claim the portal (start, resume, or clean up dead runs then start; raises
        ``PortalBusyError`` on wait) and start heartbeating. Once only."""
        if self._claimed:
            raise RefusedError(f"Run {self.run_id} of {self.portal_name!r} is already claimed.")
        try:
            interval = self._heartbeat_interval()
            self._claim()
        except BaseException:
            if self._owns_service:
                self.service.db.dispose()
            raise
        self._claimed = True
        self._checkpoint_cursor = copy.deepcopy(self.cursor)
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeat_loop,
            args=(interval,),
            name=f"heartbeat-run-{self.run_id}",
            daemon=True,
        )
        self._heartbeat_thread.start()
        if self._handle_sigterm:
            self._install_sigterm()
        return self

    def _heartbeat_interval(self) -> float:
        settings = self.service.settings
        interval = settings.heartbeat_interval_seconds
        timeout = settings.policy_for(self.portal_name).heartbeat_timeout.total_seconds()
        if interval * 2 > timeout:
            raise ConfigError(
                f"heartbeat_interval_seconds ({interval:g} s) must be at most half the heartbeat "
                f"timeout of portal {self.portal_name!r} ({timeout:g} s), or a healthy run "
                "looks dead between two heartbeats"
            )
        return interval

    def _claim(self) -> None:
        with self.service.db.write() as conn:
            repository.lock_portal(conn, self.portal_name)
            now = repository.database_now(conn)
            check, facts = self.service.check_portal_locked(conn, self.portal_name, now=now)
            if self._resume_run_id is not None:
                check = self._aim_at_requested(check, self._resume_run_id)
            if check.action is Action.WAIT:
                raise PortalBusyError(check)
            self.action, self.reason = check.action, check.reason
            if check.action is Action.RESUME:
                assert check.run_id is not None
                self._take_over(conn, check, {f.id: f for f in facts}[check.run_id], now)
            else:
                if check.action is Action.CLEANUP:
                    self._clean_dead(conn, check, facts, now)
                self._start(conn, now)
        verb = "resumed" if self.resumed else "started"
        log.info(
            "portal %r: %s run %d (attempt %d) as %s: %s",
            self.portal_name,
            verb,
            self.run_id,
            self.attempt,
            self.worker_id,
            self.reason,
        )

    def _aim_at_requested(self, check: PortalCheck, wanted: int) -> PortalCheck:
        """The check, aimed at the run the caller asked to resume, if that run may be resumed."""
        verdict = next((v for v in check.runs if v.run_id == wanted), None)
        if verdict is None:
            raise RefusedError(
                f"Run {wanted} is not a running run of portal {self.portal_name!r}; "
                "nothing to resume."
            )
        if verdict.action is not Action.RESUME:
            raise RefusedError(
                f"Run {wanted} is {verdict.state.value}, not resumable: {verdict.summary}"
            )
        if check.action is Action.WAIT:  # another run of the portal is alive or starting
            return check
        return replace(
            check,
            run_id=wanted,
            run_ids=(wanted,),
            reason=f"run {wanted} can be resumed: {verdict.summary}",
        )

    def _start(self, conn: Any, now: datetime) -> None:
        self.attempt = 1
        self.run_id = repository.insert_run(
            conn,
            {
                "portal_name": self.portal_name,
                "status": RunStatus.RUNNING,
                "started_at": now,
                "worker_id": self.worker_id,
                "attempt": self.attempt,
                "last_heartbeat_at": now,
                "extracted_total_tenders": 0,
                "skipped_existing_total": 0,
            },
        )
        self._event(
            conn,
            AuditAction.START,
            now,
            from_status=None,
            to_status=RunStatus.RUNNING,
            details={"reason": self.reason, "cleaned_run_ids": list(self.cleaned_run_ids)},
        )

    def _clean_dead(
        self, conn: Any, check: PortalCheck, facts: list[RunFacts], now: datetime
    ) -> None:
        targets = [v for v in check.runs if v.run_id in check.run_ids]
        cleaned = self.service.clean_locked(conn, targets, facts, actor=self.actor, now=now)
        if cleaned != set(check.run_ids):
            raise RefusedError(
                f"Dead runs of portal {self.portal_name!r} changed while being cleaned up; "
                "nothing was started. Try again."
            )
        self.cleaned_run_ids = tuple(sorted(cleaned))

    def _take_over(self, conn: Any, check: PortalCheck, facts: RunFacts, now: datetime) -> None:
        verdict = next(v for v in check.runs if v.run_id == facts.id)
        attempt = repository.take_over_run(
            conn,
            facts.id,
            observed_attempt=facts.attempt,
            heartbeat_cutoff=now - verdict.policy.heartbeat_timeout,
            worker_id=self.worker_id,
            now=now,
        )
        if attempt is None:
            raise RefusedError(
                f"Run {facts.id} changed while being resumed; nothing was claimed. Try again."
            )
        self.run_id, self.attempt = facts.id, attempt
        self.extracted_total = _count(facts.extracted_total_tenders)
        self.skipped_total = _count(facts.skipped_existing_total)
        self._load_resume_state(conn)
        self._event(
            conn,
            AuditAction.RESUME,
            now,
            from_status=RunStatus.RUNNING,
            to_status=RunStatus.RUNNING,
            details={
                "attempt": attempt,
                "previous_attempt": facts.attempt,
                "previous_worker_id": facts.worker_id,
                "cursor": self.cursor,
                "seen_tenders": len(self.seen_tender_ids),
                "reasons": [reason.to_dict() for reason in verdict.reasons],
            },
        )

    def _load_resume_state(self, conn: Any) -> None:
        """The checkpoint's cursor and tenders, plus the run's stored tenders: a crash between
        the database commit and the checkpoint write must not make the scraper add them twice."""
        settings = self.service.settings
        checkpoint = read_checkpoint(
            settings.checkpoint_dir, self.portal_name, max_bytes=settings.max_checkpoint_bytes
        )
        if checkpoint.info.status.is_problem:
            raise RefusedError(
                f"The checkpoint {checkpoint.info.path} of run {self.run_id} became unreadable "
                f"({checkpoint.info.status.value}: {checkpoint.info.detail}); nothing was claimed."
            )
        if checkpoint.info.is_evidence_for(self.run_id):
            self.cursor = checkpoint.cursor
            self._tenders = list(checkpoint.tenders)
        self.seen_tender_ids = {i for i in map(_tender_id_of, self._tenders) if i is not None}
        for row in repository.run_tenders(conn, self.run_id):
            if row["tender_id"] not in self.seen_tender_ids:
                self.seen_tender_ids.add(row["tender_id"])
                self._tenders.append(_json_safe(row))
                self._dirty = True

    # -- while scraping ------------------------------------------------------------------

    def add_tenders(self, tenders: Iterable[Mapping[str, Any]]) -> AddedTenders:
        """Store the tenders this portal does not have yet (neither from an earlier run nor seen
        by this one) and count the others as skipped, with the counters, in one transaction.
        Each tender is a dict with at least ``tender_id``; ``title``, ``organisation``,
        ``closing_date``, ``reference_number``, ``category``, ``value_inr`` and
        ``published_date`` are stored, and every key is kept in the checkpoint."""
        self._ensure_owned()
        batch = [_checked_tender(tender) for tender in tenders]
        candidates = [
            tender_id
            for tender_id in dict.fromkeys(t["tender_id"] for t in batch)
            if tender_id not in self.seen_tender_ids
        ]
        with self.service.db.write() as conn:
            new_ids = set(candidates) - repository.stored_tender_ids(
                conn, self.portal_name, candidates
            )
            new = []
            for tender in batch:
                if tender["tender_id"] in new_ids:  # the first of any repeats in the batch
                    new_ids.discard(tender["tender_id"])
                    new.append(tender)
            skipped = len(batch) - len(new)
            if not repository.record_progress(
                conn, self.run_id, self.attempt, extracted=len(new), skipped=skipped
            ):
                raise self._fence(conn)
            repository.insert_tenders(conn, [self._row(t) for t in new])
        self.seen_tender_ids.update(t["tender_id"] for t in batch)
        self._tenders.extend(new)
        self._dirty = self._dirty or bool(new)
        self.extracted_total += len(new)
        self.skipped_total += skipped
        return AddedTenders(added=len(new), skipped=skipped)

    def progress(self, *, extracted: int = 0, skipped: int = 0) -> None:
        """Report tenders the scraper stored (or skipped) by itself, without ``add_tenders``."""
        for name, value in (("extracted", extracted), ("skipped", skipped)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not 0 <= value <= _COUNTER_MAX
            ):
                raise ValueError(
                    f"{name} must be a whole number from 0 to {_COUNTER_MAX}, got {value!r}"
                )
        self._ensure_owned()
        with self.service.db.write() as conn:
            if not repository.record_progress(
                conn, self.run_id, self.attempt, extracted=extracted, skipped=skipped
            ):
                raise self._fence(conn)
        self.extracted_total += extracted
        self.skipped_total += skipped

    def save_checkpoint(self, *, cursor: Any) -> Path:
        """Replace the portal's checkpoint atomically with every tender of the run so far and
        ``cursor`` (JSON: where to continue, e.g. the organisations done). It first checks that
        the run is still this worker's, so a zombie cannot overwrite its successor's file."""
        self._ensure_owned()
        with self.service.db.write() as conn:
            if not repository.record_heartbeat(conn, self.run_id, self.attempt):
                raise self._fence(conn)
        self.cursor = cursor
        return self._write_checkpoint()

    def _write_checkpoint(self) -> Path:
        cursor = copy.deepcopy(self.cursor)  # the scraper may change it in place later
        path = write_checkpoint(
            self.service.settings.checkpoint_dir,
            self.portal_name,
            tenders=self._tenders,
            run_id=self.run_id,
            cursor=cursor,
            updated_at=utc_now().isoformat(),
        )
        self._dirty = False
        self._checkpoint_cursor = cursor
        return path

    def _row(self, tender: Mapping[str, Any]) -> dict[str, Any]:
        row = {name: tender.get(name) for name in repository.TENDER_COLUMNS}
        return {**row, "run_id": self.run_id, "portal_name": self.portal_name}

    # -- heartbeat and fencing -----------------------------------------------------------

    def _heartbeat_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                with self.service.db.write() as conn:
                    if not repository.record_heartbeat(conn, self.run_id, self.attempt):
                        self._fence(conn)
            except DatabaseError as exc:
                log.warning(
                    "run %d: heartbeat failed (%s); retrying in %g s", self.run_id, exc, interval
                )
            if self._fenced is not None:
                return

    def _ensure_owned(self) -> None:
        if self._fenced is not None:
            raise self._fenced
        if not self._claimed or self._ended:
            raise RefusedError(
                "Use the run between its claim and its end (inside its `with track_run(...)` "
                "block)."
            )

    def _fence(self, conn: Any) -> RunFencedError:
        """A write matched no row: find out why, say so once, and stop heartbeating."""
        rows = repository.run_rows(conn, [self.run_id])
        row = rows[0] if rows else None
        if row is None:
            why = f"run {self.run_id} no longer exists"
        elif row["status"] != RunStatus.RUNNING:
            why = f"run {self.run_id} is no longer running (status {row['status']!r})"
        else:
            why = (
                f"run {self.run_id} was taken over by attempt {row['attempt']} "
                f"(worker {row['worker_id']})"
            )
        with self._fence_lock:
            if self._fenced is None:
                self._fenced = RunFencedError(
                    self.run_id,
                    self.attempt,
                    f"{why}; stopping (this worker had attempt {self.attempt})",
                )
                self._stop.set()
                log.warning("portal %r: %s", self.portal_name, self._fenced)
            return self._fenced

    # -- ending --------------------------------------------------------------------------

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.complete()
        elif isinstance(exc, Exception):
            with suppress(RunFencedError):  # the block's own error is the one to raise
                self.fail(exc)
        else:  # Ctrl-C, SIGTERM, SystemExit: we don't know it is done, keep it resumable
            with suppress(RunFencedError):
                self.release("SIGTERM" if isinstance(exc, Terminated) else type(exc).__name__)

    def complete(self) -> None:
        """The scrape is done: mark the run ``completed``, with one audit event. Raises
        ``RunFencedError`` (having written nothing) if the run is no longer this worker's."""
        self._end(lambda: self._finish(RunStatus.COMPLETED, None))

    def fail(self, error: BaseException | str) -> None:
        """The scrape went wrong: mark the run ``failed``; the audit event says why (the
        exception's type and message, or ``error`` as the reason). ``RunFencedError`` as in
        ``complete``."""
        self._end(lambda: self._finish(RunStatus.FAILED, error))

    def release(self, reason: str) -> None:
        """The scrape was interrupted (Ctrl-C, SIGTERM, a shutdown): flush the checkpoint and
        let go of the run, which stays ``running`` and can be resumed at once; ``reason`` goes
        into the audit event. ``RunFencedError`` as in ``complete``."""
        self._end(lambda: self._release(reason))

    def _end(self, write: Callable[[], None]) -> None:
        """Stop heartbeating, then ``write`` the ending unless the run is no longer ours."""
        if not self._claimed:
            raise RefusedError(f"Portal {self.portal_name!r}: no run was claimed; nothing to end.")
        if self._ended:
            raise RefusedError(f"Run {self.run_id} has already ended.")
        self._ended = self._closing = True
        try:
            self._stop.set()
            if self._heartbeat_thread is not None:
                self._heartbeat_thread.join()
            if self._fenced is None:  # once fenced, nothing is ours to write any more
                write()
            if self._fenced is not None:
                raise self._fenced
        finally:
            self._restore_sigterm()
            if self._owns_service:
                self.service.db.dispose()

    def _finish(self, status: RunStatus, error: BaseException | str | None) -> None:
        details: dict[str, Any] = {
            "attempt": self.attempt,
            "extracted_total_tenders": self.extracted_total,
            "skipped_existing_total": self.skipped_total,
        }
        if isinstance(error, BaseException):
            details["error_type"] = type(error).__qualname__
            details["error"] = str(error)[:2000]
        elif error is not None:
            details["reason"] = str(error)[:2000]
        with self.service.db.write() as conn:
            now = repository.database_now(conn)
            if not repository.finish_run(
                conn, self.run_id, self.attempt, status=status, completed_at=now
            ):
                self._fence(conn)
                return
            action = AuditAction.COMPLETE if status is RunStatus.COMPLETED else AuditAction.FAIL
            self._event(
                conn, action, now, from_status=RunStatus.RUNNING, to_status=status, details=details
            )
        self.status = status
        log.info(
            "portal %r: run %d %s (%d extracted, %d skipped)",
            self.portal_name,
            self.run_id,
            status,
            self.extracted_total,
            self.skipped_total,
        )

    def _release(self, reason: str) -> None:
        """Flush the checkpoint, then let go of the run so it can be resumed at once instead
        of after the heartbeat timeout. It stays ``running``."""
        with self.service.db.write() as conn:
            if not repository.record_heartbeat(conn, self.run_id, self.attempt):
                self._fence(conn)
                return
        if self._dirty or self.cursor != self._checkpoint_cursor:
            self._write_checkpoint()
        with self.service.db.write() as conn:
            now = repository.database_now(conn)
            if not repository.release_run(conn, self.run_id, self.attempt, released_at=now):
                self._fence(conn)
                return
            self._event(
                conn,
                AuditAction.RELEASE,
                now,
                from_status=RunStatus.RUNNING,
                to_status=RunStatus.RUNNING,
                details={
                    "reason": reason,
                    "attempt": self.attempt,
                    "checkpoint_tenders": len(self._tenders),
                    "cursor": self.cursor,
                    "extracted_total_tenders": self.extracted_total,
                    "skipped_existing_total": self.skipped_total,
                },
            )
        self.status = RunStatus.RUNNING
        log.warning(
            "portal %r: run %d released after %s with %d tenders; it can be resumed now",
            self.portal_name,
            self.run_id,
            reason,
            len(self._tenders),
        )

    def _event(
        self,
        conn: Any,
        action: AuditAction,
        now: datetime,
        *,
        from_status: str | None,
        to_status: str | None,
        details: dict[str, Any],
    ) -> None:
        repository.insert_events(
            conn,
            [
                {
                    "run_id": self.run_id,
                    "portal_name": self.portal_name,
                    "action": action,
                    "actor": self.actor,
                    "from_status": from_status,
                    "to_status": to_status,
                    "created_at": now,
                    "details": _dumps({"worker_id": self.worker_id, **details}),
                }
            ],
        )

    # -- SIGTERM -------------------------------------------------------------------------

    def _install_sigterm(self) -> None:
        """Turn SIGTERM into ``Terminated`` (only the main thread can receive signals)."""
        if threading.current_thread() is not threading.main_thread():
            return
        self._old_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        self._sigterm_installed = True

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if self._closing:
            log.warning("run %d: SIGTERM while finishing; finishing first", self.run_id)
            return
        self._closing = True
        raise Terminated()

    def _restore_sigterm(self) -> None:
        if self._sigterm_installed:
            previous = self._old_sigterm if self._old_sigterm is not None else signal.SIG_DFL
            signal.signal(signal.SIGTERM, previous)
            self._sigterm_installed = False


@dataclass(frozen=True)
class ScrapeOutcome:
    """What ``start_portal`` did: ``action`` is ``start``, ``resume``, ``cleanup`` (cleaned dead
    runs, then started) or ``wait`` (nothing ran; ``run_id`` is the run it waits for)."""

    portal_name: str
    action: Action
    reason: str
    run_id: int | None
    cleaned_run_ids: tuple[int, ...] = ()
    status: str | None = None
    result: Any = None

    @property
    def scraped(self) -> bool:
        return self.action is not Action.WAIT

    def to_dict(self) -> dict[str, Any]:
        return {
            "portal_name": self.portal_name,
            "action": self.action.value,
            "reason": self.reason,
            "run_id": self.run_id,
            "cleaned_run_ids": list(self.cleaned_run_ids),
            "status": self.status,
        }


def start_portal(
    portal_name: str,
    scrape: Callable[[TrackedRun], Any],
    *,
    settings: Settings | None = None,
    service: CleanupService | None = None,
) -> ScrapeOutcome:
    """The seed's recommended pre-scrape flow in one call: start, resume, or clean up dead runs
    then start, and run ``scrape(run)`` inside ``track_run``; on wait, scrape nothing and say
    why. Errors from ``scrape`` mark the run failed and are raised."""
    with ExitStack() as stack:
        try:
            run = stack.enter_context(track_run(portal_name, settings=settings, service=service))
        except PortalBusyError as busy:
            log.info("portal %r: not scraped: %s", portal_name, busy.reason)
            return ScrapeOutcome(portal_name, Action.WAIT, busy.reason, busy.run_id)
        result = scrape(run)
    return ScrapeOutcome(
        portal_name,
        run.action,
        run.reason,
        run.run_id,
        run.cleaned_run_ids,
        run.status,
        result,
    )


_TEXT_COLUMNS = tuple(c for c in repository.TENDER_COLUMNS if c != "value_inr")


def _checked_tender(tender: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-safe copy of one tender, with the stored fields in the types the table holds."""
    if not isinstance(tender, Mapping):
        raise ValueError(f"a tender must be a dict with a 'tender_id', got {type(tender).__name__}")
    checked = {str(key): _json_safe(value) for key, value in tender.items()}
    tender_id = _tender_id_of(checked)
    if tender_id is None:
        raise ValueError(f"a tender needs a non-empty 'tender_id', got {tender.get('tender_id')!r}")
    checked["tender_id"] = tender_id
    for name in _TEXT_COLUMNS:
        if checked.get(name) is not None and not isinstance(checked[name], str):
            checked[name] = str(checked[name])
    value = checked.get("value_inr")
    if value is not None:
        checked["value_inr"] = _amount(tender_id, value)
    return checked


def _amount(tender_id: str, value: Any) -> float:
    problem = ValueError(
        f"tender {tender_id!r}: value_inr must be a finite number, got {_shown(value)}"
    )
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise problem
    try:
        amount = float(value)
    except (ValueError, OverflowError):  # "twelve lakh"; an int beyond a float's range
        raise problem from None
    if not math.isfinite(amount):  # "1e400", nan: no column or report can use them
        raise problem
    return amount


def _shown(value: Any) -> str:
    """A value for an error message, shortened."""
    try:
        text = repr(value)
    except ValueError:  # an integer with more digits than Python will print
        return "a number too long to show"
    return text if len(text) <= 40 else f"{text[:30]}... ({len(text)} characters)"


def _tender_id_of(tender: Any) -> str | None:
    if not isinstance(tender, Mapping):
        return None
    value = tender.get("tender_id")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _count(raw: object) -> int:
    """A stored counter as a number for the worker's own tally (the database keeps the truth)."""
    try:
        return max(int(raw or 0), 0)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


def _dumps(details: dict[str, Any]) -> str:
    return json.dumps(details, default=str)
