"""Detect, resume and safely clean up tender-scraper runs stuck in ``running``.

The seed's functions keep their names and shapes and use the ``CLEANUP_*`` settings::

    from cleanup_core import check_portal_resume, cleanup_run
    check = check_portal_resume("Assam Tenders")  # check["action"]: start/resume/cleanup/wait

For other settings (another database, explicit ``now`` in tests) use ``CleanupService``.
"""

from cleanup_core.checkpoints import CheckpointInfo, CheckpointStatus, portal_slug
from cleanup_core.classify import Action, Reason, RunFacts, RunState, Verdict, classify
from cleanup_core.config import Policy, PortalOverride, Settings
from cleanup_core.demo import DemoReport, load_demo
from cleanup_core.errors import (
    CleanupError,
    ConfigError,
    DatabaseError,
    DatabaseLockedError,
    DatabaseUnavailableError,
    NoRunsTableError,
    RefusedError,
    RunNotFoundError,
)
from cleanup_core.launcher import LaunchError, LaunchResult, launch_resume, launch_start
from cleanup_core.models import CLEANED, COMPLETED, FAILED, RUNNING
from cleanup_core.service import (
    AuditEvent,
    CleanupResult,
    CleanupService,
    HistoryPage,
    PortalCheck,
    StuckRunSummary,
    check_portal_resume,
    cleanup_if_needed,
    cleanup_run,
    cleanup_runs,
    configure,
    default_service,
    delete_runs,
    get_history,
    get_stuck_run_count,
    get_stuck_run_summary,
    revert_cleanup,
)
from cleanup_core.tracker import (
    AddedTenders,
    PortalBusyError,
    RunFencedError,
    ScrapeOutcome,
    TrackedRun,
    start_portal,
    track_run,
)

__all__ = [
    "CLEANED",
    "COMPLETED",
    "FAILED",
    "RUNNING",
    "Action",
    "AddedTenders",
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
    "RunFacts",
    "RunFencedError",
    "RunNotFoundError",
    "RunState",
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
