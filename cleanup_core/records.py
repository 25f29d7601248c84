"""The records the storage layer reads and writes: typed, frozen, and free of SQL.

``RunFacts`` is a run as stored (``classify`` judges it); the others are rows of the tool's own
tables. Timestamps come back raw (text on legacy SQLite files, datetimes on PostgreSQL), as
``models`` explains: whoever reads them judges them with ``timestamps.parse_timestamp``.
``NewEvent`` is the one shape of an audit event to write; the storage layer serialises its
``details`` as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from cleanup_core.vocabulary import AuditAction, RunStatus

# The fields of a tender the ``tenders`` table stores (besides its run and portal).
TENDER_FIELDS = (
    "tender_id",
    "title",
    "organisation",
    "closing_date",
    "reference_number",
    "category",
    "value_inr",
    "published_date",
)


class RunFacts(NamedTuple):
    """A run as stored: raw values, exactly as the database returned them. (A named tuple:
    built for every running run of every scan, it has to be cheap.)"""

    id: int
    portal_name: str | None  # a legacy SQLite row may hold a BLOB or a number here
    status: str | None  # a RunStatus, or whatever a legacy scraper wrote
    started_at: object = None
    completed_at: object = None
    extracted_total_tenders: object = None
    skipped_existing_total: object = None
    last_heartbeat_at: object = None
    last_progress_at: object = None
    worker_id: str | None = None
    attempt: object = None
    released_at: object = None
    # How many tenders the run has stored (counted by the service only for runs that would
    # otherwise be dead; None: not counted).
    stored_tenders: int | None = None
    # How many times the monitor launched the run's resume_command (auto-resume), and the exit
    # code of the latest of those launches (None: still running or unknown). Read from the
    # ``launches`` table by the service; None: not counted.
    auto_resumes: int | None = None
    last_auto_resume_exit: int | None = None

    @property
    def is_running(self) -> bool:
        return self.status == RunStatus.RUNNING

    def stored_row(self) -> dict[str, Any]:
        """The row's columns as stored (without what the service counted beside it)."""
        row = self._asdict()
        for name in _COUNTED:
            del row[name]
        return row


# What the service counts beside a run's row (not columns of ``runs``).
_COUNTED = ("stored_tenders", "auto_resumes", "last_auto_resume_exit")
# The columns of a ``runs`` row, in ``RunFacts`` order.
RUN_COLUMNS = tuple(name for name in RunFacts._fields if name not in _COUNTED)


@dataclass(frozen=True)
class NewEvent:
    """An audit event to append: who did what to which run, and the evidence (``details``,
    stored as JSON)."""

    run_id: int
    portal_name: str | None
    action: AuditAction
    actor: str
    from_status: str | None
    to_status: str | None
    created_at: datetime
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredEvent:
    """An audit event as stored. ``run_deleted``: its run was deleted since (a later run may
    have the id); ``revertible``: a clean-up whose run is still in the state it left, with no
    clean-up or revert after it."""

    id: int
    run_id: int
    portal_name: str | None
    action: str
    actor: str
    from_status: str | None
    to_status: str | None
    created_at: object
    details: str | None
    run_deleted: bool = False
    revertible: bool = False


@dataclass(frozen=True)
class PortalStatusCount:
    """How many runs of a portal have a status."""

    portal_name: str | None
    status: str | None
    count: int


@dataclass(frozen=True)
class UserRecord:
    """A dashboard account as stored."""

    id: int
    username: str
    password_hash: str
    role: str


@dataclass(frozen=True)
class FailureCount:
    """Failed logins of one account or client (``kind``, ``name``)."""

    kind: str
    name: str
    failures: int
    last_failure_at: datetime | None
    blocked_until: datetime | None


@dataclass(frozen=True)
class DemoMark:
    """A run the demo wrote, with the run that has its id now (if any)."""

    run_id: int
    portal_name: str
    started_at: object
    run_exists: bool
    run_portal: str | None
    run_started_at: object


@dataclass(frozen=True)
class CycleRecord:
    """One monitoring cycle as stored."""

    id: int
    started_at: object
    finished_at: object
    holder: str
    outcome: str | None
    detail: str | None
    changes: int | None


@dataclass(frozen=True)
class ProblemRecord:
    """A problem the monitor reported and has not seen go away yet."""

    id: int
    run_id: int
    kind: str
    portal_name: str | None
    summary: str | None
    last_notified_at: object


@dataclass(frozen=True)
class NoticeRecord:
    """One message of the monitor's outbox."""

    id: int
    title: str
    body: str


@dataclass(frozen=True)
class LaunchRecord:
    """A scraper process the tool started (``launches``), as stored. ``argv`` is JSON text;
    ``run_id`` is ``None`` for a start (the run does not exist yet)."""

    id: int
    run_id: int | None
    portal_name: str
    action: str  # an Action: resume or start
    actor: str
    automatic: bool | None
    launched_at: object
    argv: str | None
    pid: int | None
    host: str | None
    log_path: str | None
    exit_code: int | None
    ended_at: object
    error: str | None


class StoredCheckpoint(NamedTuple):
    """A run's checkpoint row as stored (``run_checkpoints``): ``cursor`` and ``tender_ids``
    are the JSON text, timestamps raw."""

    run_id: int
    portal_name: str | None
    attempt: object
    cursor: str | None
    tender_count: object
    tender_ids: str | None
    updated_at: object
    cursor_changed_at: object
