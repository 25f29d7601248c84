"""The worker side: claim a portal, heartbeat, report progress, save checkpoints, finish.

A scraper wraps one scrape in ``track_run``::

    with track_run("Assam Tenders") as run:  # starts, resumes, or raises PortalBusyError
        for page in portal_pages(after=run.cursor):
            run.add_tenders(page.tenders)  # skips tenders already stored or seen
            run.save_checkpoint(cursor=page.number)  # database row, then the file

Code that cannot wrap the scrape in one block (a Scrapy extension, an event loop) calls
``run.claim()`` and later exactly one of ``run.complete()``, ``run.fail(reason)`` or
``run.release(reason)``: the same steps the ``with`` block takes.

The claim (``CleanupService.claim_portal``) runs the pre-scrape check and acts on it in one
write transaction that holds the portal's lock, so any number of workers starting one portal at
once leave exactly one running run; a name spelled differently from a stored portal is that
portal (``run.portal_name`` is then the stored name). Each run carries an ``attempt`` number,
incremented on every resume; every write the worker makes is fenced by it (``WHERE id = ? AND
status = 'running' AND attempt = ?``), so a worker that froze, lost its run to a resume and
woke up again can no longer write and stops.
"""

from __future__ import annotations

import copy
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from cleanup_core.checkpoints import write_checkpoint
from cleanup_core.config import Settings
from cleanup_core.errors import ConfigError, DatabaseError, RefusedError, RunFencedError
from cleanup_core.service import Claim, CleanupService, PortalBusyError
from cleanup_core.tenders import checked_tender
from cleanup_core.timestamps import utc_now
from cleanup_core.vocabulary import Action, RunStatus

__all__ = [
    "AddedTenders",
    "PortalBusyError",
    "RunFencedError",
    "ScrapeOutcome",
    "Terminated",
    "TrackedRun",
    "default_worker_id",
    "start_portal",
    "track_run",
]

log = logging.getLogger("cleanup_core.tracker")

# The most one progress report may add: the legacy counter columns are 32-bit on PostgreSQL.
_COUNTER_MAX = 2**31 - 1


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
        self.status: RunStatus | None = None
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
                self.service.close()
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
        claim = self.service.claim_portal(
            self.portal_name, worker_id=self.worker_id, resume_run_id=self._resume_run_id
        )
        self._take(claim)
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

    def _take(self, claim: Claim) -> None:
        self.portal_name = claim.portal_name
        self.run_id, self.attempt = claim.run_id, claim.attempt
        self.action, self.reason = claim.action, claim.reason
        self.cleaned_run_ids = claim.cleaned_run_ids
        self.cursor = claim.cursor
        self._tenders = list(claim.tenders)
        self.seen_tender_ids = set(claim.seen_tender_ids)
        self.extracted_total, self.skipped_total = claim.extracted_total, claim.skipped_total
        self._dirty = claim.checkpoint_behind

    # -- while scraping ------------------------------------------------------------------

    def add_tenders(self, tenders: Iterable[Mapping[str, Any]]) -> AddedTenders:
        """Store the tenders this portal does not have yet (neither from an earlier run nor seen
        by this one) and count the others as skipped, with the counters, in one transaction.
        Each tender is a dict with at least ``tender_id``; ``title``, ``organisation``,
        ``closing_date``, ``reference_number``, ``category``, ``value_inr`` and
        ``published_date`` are stored, and every key is kept in the checkpoint."""
        self._ensure_owned()
        batch = [checked_tender(tender) for tender in tenders]
        candidates = [
            tender_id
            for tender_id in dict.fromkeys(t["tender_id"] for t in batch)
            if tender_id not in self.seen_tender_ids
        ]
        try:
            new = self.service.store_tenders(
                self.run_id, self.attempt, self.portal_name, batch, candidates=candidates
            )
        except RunFencedError as fenced:
            raise self._fence(fenced) from None
        skipped = len(batch) - len(new)
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
        try:
            self.service.record_worker_progress(
                self.run_id, self.attempt, extracted=extracted, skipped=skipped
            )
        except RunFencedError as fenced:
            raise self._fence(fenced) from None
        self.extracted_total += extracted
        self.skipped_total += skipped

    def save_checkpoint(self, *, cursor: Any) -> Path:
        """Save where the run is: ``cursor`` (JSON: where to continue, e.g. the organisations
        done) and the tenders so far. First into the database, with a fenced heartbeat in one
        transaction (a resume on any host continues from it; a zombie writes nothing), then,
        after the commit, into the portal's checkpoint file, replaced atomically, for tools
        that read files."""
        self._ensure_owned()
        path = self._write_checkpoint(cursor)
        self.cursor = cursor  # only once saved: a refused cursor leaves the last good one
        return path

    def _write_checkpoint(self, cursor: Any) -> Path:
        cursor = copy.deepcopy(cursor)  # the scraper may change it in place later
        try:
            self.service.save_worker_checkpoint(
                self.run_id,
                self.attempt,
                portal_name=self.portal_name,
                cursor=cursor,
                tender_ids=sorted(self.seen_tender_ids),
                tender_count=len(self._tenders),
            )
        except RunFencedError as fenced:
            raise self._fence(fenced) from None
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

    # -- heartbeat and fencing -----------------------------------------------------------

    def _heartbeat_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.service.worker_heartbeat(self.run_id, self.attempt)
            except RunFencedError as fenced:
                self._fence(fenced)
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

    def _fence(self, fenced: RunFencedError) -> RunFencedError:
        """A write matched no row: say why once, and stop heartbeating. Returns the first
        such error (the heartbeat thread and the scraper may both have hit one)."""
        with self._fence_lock:
            if self._fenced is None:
                self._fenced = fenced
                self._stop.set()
                log.warning("portal %r: %s", self.portal_name, fenced)
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
                self.service.close()

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
        try:
            self.service.finish_run(
                self.run_id,
                self.attempt,
                portal_name=self.portal_name,
                worker_id=self.worker_id,
                status=status,
                details=details,
            )
        except RunFencedError as fenced:
            self._fence(fenced)
            return
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
        try:
            if self._dirty or self.cursor != self._checkpoint_cursor:
                self._write_checkpoint(self.cursor)  # fenced, like the heartbeat it replaces
            else:
                self.service.worker_heartbeat(self.run_id, self.attempt)
            self.service.release_run(
                self.run_id,
                self.attempt,
                portal_name=self.portal_name,
                worker_id=self.worker_id,
                details={
                    "reason": reason,
                    "attempt": self.attempt,
                    "checkpoint_tenders": len(self._tenders),
                    "cursor": self.cursor,
                    "extracted_total_tenders": self.extracted_total,
                    "skipped_existing_total": self.skipped_total,
                },
            )
        except RunFencedError as fenced:
            self._fence(fenced)
            return
        self.status = RunStatus.RUNNING
        log.warning(
            "portal %r: run %d released after %s with %d tenders; it can be resumed now",
            self.portal_name,
            self.run_id,
            reason,
            len(self._tenders),
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
