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

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any, TypeVar, cast

from cleanup_core import CleanupService, Settings
from cleanup_core.accounts import Accounts, LoginThrottle
from cleanup_core.records import PortalStatusCount
from cleanup_core.service import StuckRunSummary

log = logging.getLogger("tender_dashboard_reflex")
Changed = TypeVar("Changed")
Shared = TypeVar("Shared")
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
class _Read:
    value: Any
    service: CleanupService  # the one it came from (tests build a new one per database)
    started: float  # _clock() when the read began
    number: int  # how many shared reads had begun before it
    generation: int  # scan_changed() calls before it began


def _scan_seconds() -> float:
    """How old a shared read may be when a page shows it: changes made elsewhere show within
    this (``dashboard_scan_seconds``)."""
    return service().settings.dashboard_scan_seconds


class _Shared:
    """The last result of each read (a scan per threshold; the runs counted by portal and
    status), shared by the worker's tabs."""

    def __init__(self) -> None:
        self._guard = threading.Lock()  # guards the dicts and the counters
        self._locks: dict[Hashable, threading.Lock] = {}
        self._reads: dict[Hashable, _Read] = {}
        self._generation = 0
        self._begun = 0  # reads begun
        self.scans = 0  # how many scans ran (tests and the benchmark read it)
        self._refreshers: list[threading.Thread] = []

    def get(self, key: Hashable, read: Callable[[], Shared], *, fresh: bool) -> Shared:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
            asked = self._begun
            last = self._usable(key)
        keep = _scan_seconds()
        if last is not None and not fresh and keep > 0:  # (0: every page reads anew)
            if _clock() - last.started >= keep and lock.acquire(blocking=False):
                # Old: read again in the background (once), and give the last one meanwhile,
                # so no page waits for a slow read (counting a million runs takes a second).
                refresher = threading.Thread(target=self._refresh, args=(key, read, lock))
                self._refreshers.append(refresher)
                refresher.start()
            return cast("Shared", last.value)
        with lock:  # one read per key at a time; the others wait and share it
            with self._guard:
                last = self._usable(key)
            if (
                last is not None
                and _clock() - last.started < _scan_seconds()
                and (not fresh or last.number >= asked)  # begun after we asked: fresh
            ):
                return cast("Shared", last.value)
            return self._read(key, read)

    def _usable(self, key: Hashable) -> _Read | None:
        """The last read of ``key``, if nothing changed through this worker since."""
        last = self._reads.get(key)
        if last is None or last.service is not service() or last.generation != self._generation:
            return None
        return last

    def _read(self, key: Hashable, read: Callable[[], Shared]) -> Shared:
        started = _clock()
        with self._guard:
            number, generation = self._begun, self._generation
            self._begun += 1
        value = read()
        with self._guard:
            self.scans += isinstance(key, tuple) and key[0] == "scan"
            self._reads[key] = _Read(value, service(), started, number, generation)
        return value

    def _refresh(self, key: Hashable, read: Callable[[], Any], lock: threading.Lock) -> None:
        try:
            self._read(key, read)
        except Exception:  # the next page that asks reads in the foreground and says why
            log.warning("the dashboard's shared %s could not be read again", key, exc_info=True)
            with self._guard:
                self._reads.pop(key, None)
        finally:
            lock.release()

    def settle(self) -> None:
        """Wait for the background reads (tests)."""
        while self._refreshers:
            self._refreshers.pop().join()

    def changed(self) -> None:
        with self._guard:
            self._generation += 1
            self._reads.clear()


_shared = _Shared()


def shared_scan(hours: float | None = None, *, fresh: bool = False) -> StuckRunSummary:
    """Every running run judged with the threshold ``hours`` (``None``: the settings'), at
    most ``dashboard_scan_seconds`` old, and newer than the last change made through this worker;
    ``fresh`` (a person clicked Refresh): begun after this call."""
    return _shared.get(("scan", hours), lambda: service().scan(hours), fresh=fresh)


def shared_status_counts(*, fresh: bool = False) -> list[PortalStatusCount]:
    """The runs counted by portal and status (every run: on a big database the slowest read of
    Overview, and of the portal filters on Runs and History), shared like the scan."""
    return _shared.get(("counts",), service().read_status_counts, fresh=fresh)


def scan_changed() -> None:
    """Runs were changed through this worker: the next page that asks reads again."""
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


def settle() -> None:
    """Wait until the shared reads begun in the background have finished (tests)."""
    _shared.settle()


def scans_run() -> int:
    return _shared.scans
