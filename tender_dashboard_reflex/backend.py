"""The dashboard's handles on the core: one service and one account store per process, built
from the CLEANUP_* settings on first use (never at import, so importing the app for a build
does not open the database); and the shared scan its live pages read.

**The shared scan.** Overview, Stuck runs and Portals show a judgement of every running run.
Each tab of those pages re-reads it every few seconds (auto-refresh), so instead of one scan per
tab and tick, a backend worker keeps the last scan per threshold for ``dashboard_scan_seconds``
(default 3) and its tabs share it: N tabs asking at once cause one scan (the others wait for it,
in their worker threads). A change made through this worker (clean-up, revert, resume, start)
drops it at once (``changing``); a change made elsewhere (a scraper, another worker, the CLI)
shows within ``dashboard_scan_seconds``. Called from worker threads only, never on the event
loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import TypeVar

from cleanup_core import CleanupService, Settings
from cleanup_core.accounts import Accounts, LoginThrottle
from cleanup_core.service import StuckRunSummary

Changed = TypeVar("Changed")
_clock = time.monotonic  # (tests move it on instead of waiting)


@cache
def service() -> CleanupService:
    return CleanupService(Settings.load())


@cache
def accounts() -> Accounts:
    settings = service().settings
    return Accounts(
        service().db,
        session_ttl=timedelta(hours=settings.session_hours),
        throttle=LoginThrottle.from_settings(settings),
    )


@dataclass(frozen=True)
class _Scanned:
    summary: StuckRunSummary
    service: CleanupService  # the one it came from (tests build a new one per database)
    started: float  # _clock() when the scan began
    number: int  # how many scans had begun before it
    generation: int  # scan_changed() calls before it began


def _scan_seconds() -> float:
    """How old a shared scan may be when a page shows it: changes made elsewhere show within
    this (``dashboard_scan_seconds``)."""
    return service().settings.dashboard_scan_seconds


class _SharedScan:
    def __init__(self) -> None:
        self._guard = threading.Lock()  # guards the two dicts and the generation
        self._locks: dict[float | None, threading.Lock] = {}
        self._scans: dict[float | None, _Scanned] = {}
        self._generation = 0
        self._begun = 0  # scans begun
        self.scans = 0  # how many scans ran (tests and the benchmark read it)

    def get(self, hours: float | None, *, fresh: bool) -> StuckRunSummary:
        with self._guard:
            lock = self._locks.setdefault(hours, threading.Lock())
            asked = self._begun
        with lock:  # one scan per threshold at a time; the others wait and share it
            with self._guard:
                scanned, generation = self._scans.get(hours), self._generation
            if (
                scanned is not None
                and scanned.service is service()
                and scanned.generation == generation
                and _clock() - scanned.started < _scan_seconds()
                and (not fresh or scanned.number >= asked)  # begun after we asked: fresh
            ):
                return scanned.summary
            started = _clock()
            with self._guard:
                number = self._begun
                self._begun += 1
            summary = service().scan(hours)
            with self._guard:
                self.scans += 1
                self._scans[hours] = _Scanned(summary, service(), started, number, generation)
            return summary

    def changed(self) -> None:
        with self._guard:
            self._generation += 1
            self._scans.clear()


_shared = _SharedScan()


def shared_scan(hours: float | None = None, *, fresh: bool = False) -> StuckRunSummary:
    """Every running run judged with the threshold ``hours`` (``None``: the settings'), at
    most ``dashboard_scan_seconds`` old, and newer than the last change made through this worker;
    ``fresh`` (a person clicked Refresh): begun after this call."""
    return _shared.get(hours, fresh=fresh)


def scan_changed() -> None:
    """Runs were changed through this worker: the next page that asks scans again."""
    _shared.changed()


def changing(change: Callable[[], Changed]) -> Callable[[], Changed]:
    """``change`` (a clean-up, revert or launch), dropping the shared scan once it has run,
    also when it failed part-way (some batches may have been written)."""

    def run() -> Changed:
        try:
            return change()
        finally:
            scan_changed()

    return run


def scans_run() -> int:
    return _shared.scans
