"""The use cases, behind one facade: ``CleanupService``.

Every use case is one method that owns its transaction and writes one audit event per changed
run inside it, so a crash leaves either the whole change with its events or nothing. The CLI,
the dashboard, the tracker, the monitor and the demo all call these methods; none of them opens
a transaction or runs SQL itself. The methods live in one module per group of use cases:

- ``judging``: scan, the pre-scrape check
- ``cleaning``: clean-ups (batched, compare-and-set)
- ``history``: revert, delete, the audit trail
- ``worker``: a scraper's claim and its fenced writes
- ``launches``: resume, start, clean up & start; the launches and their state
- ``monitoring``: the monitor's lease, cycles, problems and outbox
- ``reads``: what the dashboard's pages read
- ``demo``: writing the demo fleet

A new use case goes into the module of its group (or a new one mixed in below).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cleanup_core.config import Settings
from cleanup_core.service.audit import AuditEvent
from cleanup_core.service.base import DEFAULT_ACTOR
from cleanup_core.service.cleaning import BATCH_SIZE, CleanupInterrupted, CleanupResult
from cleanup_core.service.demo import DemoLoad, DemoLoading, PlannedRun
from cleanup_core.service.history import HistoryPage, RevertResult
from cleanup_core.service.judging import (
    PortalBusyError,
    PortalCheck,
    PortalThreshold,
    StuckRunSummary,
    decide_portal,
    match_portal,
    shared_checkpoints,
)
from cleanup_core.service.launches import CleanUpAndStart, Launching, LaunchResult, LaunchView
from cleanup_core.service.monitoring import (
    Change,
    CycleStart,
    MonitorBook,
    MonitorCycleRecord,
    MonitorStatus,
    Problem,
)
from cleanup_core.service.reads import Reads, RunData, RunsPageData
from cleanup_core.service.worker import Claim

__all__ = [
    "BATCH_SIZE",
    "DEFAULT_ACTOR",
    "AuditEvent",
    "Change",
    "Claim",
    "CleanUpAndStart",
    "CleanupInterrupted",
    "CleanupResult",
    "CleanupService",
    "CycleStart",
    "DemoLoad",
    "HistoryPage",
    "LaunchResult",
    "LaunchView",
    "MonitorCycleRecord",
    "MonitorStatus",
    "PlannedRun",
    "PortalBusyError",
    "PortalCheck",
    "PortalThreshold",
    "Problem",
    "RevertResult",
    "RunData",
    "RunsPageData",
    "StuckRunSummary",
    "check_portal_resume",
    "cleanup_if_needed",
    "cleanup_run",
    "cleanup_runs",
    "configure",
    "decide_portal",
    "default_service",
    "delete_runs",
    "get_history",
    "get_stuck_run_count",
    "get_stuck_run_summary",
    "match_portal",
    "revert_cleanup",
    "shared_checkpoints",
]


class CleanupService(Launching, DemoLoading, Reads, MonitorBook):
    """The tool's use cases against one database and checkpoint folder."""


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
        _default.close()
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
