"""The tool's closed sets of words, one ``StrEnum`` each.

A member is its string (``RunStatus.RUNNING == "running"``), so the database, JSON output and
the audit trail keep exactly the values they had; code names the member instead of spelling
the string. Pure: importing this pulls in nothing else.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """What the ``runs.status`` column holds (a legacy row may hold anything else too)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CLEANED = "Timeout - Auto-cleaned"


class RunState(StrEnum):
    """How a running run is judged (``classify``)."""

    ALIVE = "alive"
    YOUNG = "young"
    RESUMABLE = "resumable"
    DEAD = "dead"
    ATTENTION = "attention"


# How the Runs page calls runs that are not running, next to the states of running ones.
FINISHED = "finished"


class ThresholdSource(StrEnum):
    """Where a run's age threshold came from, strongest first (``Settings.policy_for``)."""

    REQUESTED = "requested"  # the --age-hours flag or the dashboard's threshold box
    CONFIG = "config"  # the portal's own age_threshold_hours in the config file
    LEARNED = "learned"  # from the portal's completed runs (adaptive_thresholds)
    DEFAULT = "default"  # the global age_threshold_hours


class Action(StrEnum):
    """What the pre-scrape check tells a scraper to do."""

    START = "start"
    RESUME = "resume"
    CLEANUP = "cleanup"
    WAIT = "wait"


ACTION_FOR_STATE = {
    RunState.ALIVE: Action.WAIT,
    RunState.YOUNG: Action.WAIT,
    RunState.RESUMABLE: Action.RESUME,
    RunState.DEAD: Action.CLEANUP,
    RunState.ATTENTION: Action.WAIT,
}


class AuditAction(StrEnum):
    """What an audit event (``run_events.action``) records."""

    CLEANUP = "cleanup"  # a person, the CLI or the monitor cleaned a run
    REVERT = "revert"  # a clean-up was undone
    DELETE = "delete"  # a person deleted the run record (tenders kept)
    START = "start"  # a worker started a new run
    RESUME = "resume"  # a worker took over a resumable run
    COMPLETE = "complete"  # the worker finished the run
    FAIL = "fail"  # the worker's scrape went wrong
    RELEASE = "release"  # the worker let go of the run (Ctrl-C, SIGTERM)
    RESUME_LAUNCHED = "resume_launched"  # a person, the CLI or the monitor started resume_command
    START_LAUNCHED = "start_launched"  # a person or the CLI started the start_command


class LaunchState(StrEnum):
    """How a launched scraper process is doing (``service.launches.launch_state``)."""

    STARTING = "starting"  # started; its run has not heartbeated or progressed since
    RUNNING = "running"  # its run heartbeated or made progress since the launch
    SUCCEEDED = "succeeded"  # the process exited with code 0
    FAILED = "failed"  # it could not start, or exited with another code
    EXPIRED = "expired"  # resume_backoff_minutes passed with no sign of it, and no exit seen


# What a person reads for each audit action (History, a run's events, the action filter).
AUDIT_ACTION_LABELS: dict[AuditAction, str] = {
    AuditAction.CLEANUP: "Clean-up",
    AuditAction.REVERT: "Revert",
    AuditAction.DELETE: "Delete",
    AuditAction.START: "Start",
    AuditAction.RESUME: "Resume",
    AuditAction.COMPLETE: "Complete",
    AuditAction.FAIL: "Fail",
    AuditAction.RELEASE: "Release",
    AuditAction.RESUME_LAUNCHED: "Resume launched",
    AuditAction.START_LAUNCHED: "Start launched",
}


class NotReverted(StrEnum):
    """Why a clean-up could not be reverted."""

    NO_SUCH_RUN = "no_such_run"
    NEVER_CLEANED = "never_cleaned"
    ALREADY_REVERTED = "already_reverted"  # its latest clean-up was reverted already
    CHANGED_SINCE = "changed_since"  # its status is no longer what the clean-up left


class Rule(StrEnum):
    """Every rule ``classify`` can fire; a verdict's reasons name them."""

    HEARTBEAT_FRESH = "heartbeat_fresh"
    HEARTBEAT_LOST = "heartbeat_lost"
    HEARTBEAT_UNREADABLE = "heartbeat_unreadable"
    RELEASED = "released"
    PROGRESS = "progress"
    NO_PROGRESS = "no_progress"
    COUNTERS_UNREADABLE = "counters_unreadable"
    TENDERS_STORED = "tenders_stored"
    NO_TENDERS_STORED = "no_tenders_stored"
    CHECKPOINT_UNREADABLE = "checkpoint_unreadable"
    CHECKPOINT_OTHER_RUN = "checkpoint_other_run"
    CHECKPOINT_DATA = "checkpoint_data"
    CHECKPOINT_EMPTY = "checkpoint_empty"
    NO_CHECKPOINT = "no_checkpoint"
    START_UNKNOWN = "start_unknown"
    START_IN_FUTURE = "start_in_future"
    YOUNG = "young"
    OLD = "old"
    PORTAL_EXCLUDED = "portal_excluded"
    RESUME_ATTEMPTS_EXHAUSTED = "resume_attempts_exhausted"
    # Not a verdict's reason but a flag beside it: running longer than the portal's p99 times
    # overdue_factor (judged only where the portal's completed runs are read: issue 15).
    OVERDUE = "overdue"


class ProblemKind(StrEnum):
    """What the monitor reports a running run as, in the order a notice lists them."""

    DEAD = "dead"
    STALLED = "stalled"
    OVERDUE = "overdue"  # running far longer than the portal's completed runs ever took
    ATTENTION = "attention"
    RESUMABLE = "resumable"


class CheckpointSource(StrEnum):
    """Where a run's checkpoint evidence came from: the database row its tracked worker wrote
    (read first), or the portal's checkpoint file (legacy scrapers, tools that read files)."""

    DATABASE = "database"
    FILE = "file"


class StallKind(StrEnum):
    """Why an alive run counts as stalled: its checkpoint cursor (organisation / department)
    has not moved, or (without a cursor in the database) it has reported no progress."""

    CURSOR = "cursor"
    PROGRESS = "progress"


class ProblemChange(StrEnum):
    """How a problem changed since the monitor's last report."""

    NEW = "new"
    REMINDER = "reminder"
    RECOVERED = "recovered"
    AUTO_RESUMED = "auto_resumed"  # the monitor launched the run's resume_command


class CycleOutcome(StrEnum):
    """How a monitoring cycle went (``monitor_cycles.outcome``)."""

    OK = "ok"
    SKIPPED = "skipped"  # another process held the lease, or a cycle ran just now
    ERROR = "error"


class Role(StrEnum):
    """What a dashboard account may do."""

    ADMIN = "admin"  # may change runs
    VIEWER = "viewer"  # may only look
