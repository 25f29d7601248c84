"""Detect, resume and safely clean up tender-scraper runs stuck in ``running``.

The seed's functions keep their names and shapes and use the ``CLEANUP_*`` settings::

    from cleanup_core import check_portal_resume, cleanup_run
    check = check_portal_resume("Assam Tenders")  # check["action"]: start/resume/cleanup/wait

For other settings (another database, explicit ``now`` in tests) use ``CleanupService``.

Every name below is imported when first used, so importing the rules (``cleanup_core.classify``)
or this package does not load the database layer, the demo or the notification libraries.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Where each public name lives.
_EXPORTS = {
    "cleanup_core.checkpoints": ("CheckpointInfo", "CheckpointStatus", "portal_slug"),
    "cleanup_core.classify": ("Reason", "Verdict", "classify"),
    "cleanup_core.config": ("Policy", "PortalOverride", "Settings"),
    "cleanup_core.demo": ("DemoReport", "load_demo"),
    "cleanup_core.errors": (
        "CleanupError",
        "ConfigError",
        "DatabaseError",
        "DatabaseLockedError",
        "DatabaseUnavailableError",
        "LaunchError",
        "NoRunsTableError",
        "RefusedError",
        "RunFencedError",
        "RunNotFoundError",
    ),
    "cleanup_core.models": ("CLEANED", "COMPLETED", "FAILED", "RUNNING"),
    "cleanup_core.records": ("RunFacts",),
    "cleanup_core.service": (
        "AuditEvent",
        "CleanupResult",
        "CleanupService",
        "HistoryPage",
        "LaunchResult",
        "PortalBusyError",
        "PortalCheck",
        "RevertResult",
        "StuckRunSummary",
        "check_portal_resume",
        "cleanup_if_needed",
        "cleanup_run",
        "cleanup_runs",
        "configure",
        "default_service",
        "delete_runs",
        "get_history",
        "get_stuck_run_count",
        "get_stuck_run_summary",
        "revert_cleanup",
    ),
    "cleanup_core.service.launches": ("launch_resume", "launch_start"),
    "cleanup_core.tracker": (
        "AddedTenders",
        "ScrapeOutcome",
        "TrackedRun",
        "start_portal",
        "track_run",
    ),
    "cleanup_core.vocabulary": ("Action", "AuditAction", "RunState", "RunStatus"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "CLEANED",
    "COMPLETED",
    "FAILED",
    "RUNNING",
    "Action",
    "AddedTenders",
    "AuditAction",
    "AuditEvent",
    "CheckpointInfo",
    "CheckpointStatus",
    "CleanupError",
    "CleanupResult",
    "CleanupService",
    "ConfigError",
    "DatabaseError",
    "DatabaseLockedError",
    "DatabaseUnavailableError",
    "DemoReport",
    "HistoryPage",
    "LaunchError",
    "LaunchResult",
    "NoRunsTableError",
    "Policy",
    "PortalBusyError",
    "PortalCheck",
    "PortalOverride",
    "Reason",
    "RefusedError",
    "RevertResult",
    "RunFacts",
    "RunFencedError",
    "RunNotFoundError",
    "RunState",
    "RunStatus",
    "ScrapeOutcome",
    "Settings",
    "StuckRunSummary",
    "TrackedRun",
    "Verdict",
    "check_portal_resume",
    "classify",
    "cleanup_if_needed",
    "cleanup_run",
    "cleanup_runs",
    "configure",
    "default_service",
    "delete_runs",
    "get_history",
    "get_stuck_run_count",
    "get_stuck_run_summary",
    "launch_resume",
    "launch_start",
    "load_demo",
    "portal_slug",
    "revert_cleanup",
    "start_portal",
    "track_run",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'cleanup_core' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # the next use finds it without this hook
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
