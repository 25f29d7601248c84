"""The tables. ``runs`` and ``tenders`` usually exist already (written by the operator's scrapers);
the tool only ever adds nullable columns, indexes and its own tables to them (see ``db.adopt``).

Timestamp columns are read back raw (text on legacy SQLite files, datetimes on PostgreSQL) and
judged by ``timestamps.parse_timestamp``, so one odd legacy value can never break a query.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Field, SQLModel

from cleanup_core.timestamps import format_legacy, format_utc
from cleanup_core.vocabulary import RunStatus

# The names the public API has always exported, as the members they are.
RUNNING = RunStatus.RUNNING
COMPLETED = RunStatus.COMPLETED
FAILED = RunStatus.FAILED
CLEANED = RunStatus.CLEANED

# Run ids are 64-bit on PostgreSQL, so a huge id someone types is simply not found (an INTEGER
# bind would fail to cast it). SQLite keeps INTEGER: only "INTEGER PRIMARY KEY" is its rowid.
RunId = BigInteger().with_variant(Integer(), "sqlite")


def dialect_timezone(dialect: Dialect) -> tzinfo:
    """The zone naive timestamps are written in; ``db.make_engine`` stores it on the dialect."""
    return getattr(dialect, "cleanup_timezone", UTC)


class _Timestamp(TypeDecorator[Any]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String())
        return dialect.type_descriptor(DateTime(timezone=True))


class LegacyTimestamp(_Timestamp):
    """``started_at``/``completed_at``: on SQLite, naive wall-clock text in the configured zone,
    as the operator's own code writes them; on PostgreSQL, ``timestamptz``."""

    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if not isinstance(value, datetime) or dialect.name != "sqlite":
            return value
        zone = dialect_timezone(dialect)
        return format_legacy(value if value.tzinfo else value.replace(tzinfo=zone), zone)


class UtcTimestamp(_Timestamp):
    """The tool's own columns: UTC with an explicit offset (fixed width, sortable as text)."""

    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if not isinstance(value, datetime):
            return value
        if value.tzinfo is None:
            raise ValueError("the tool's own timestamps must be timezone-aware")
        return format_utc(value) if dialect.name == "sqlite" else value


class Run(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_portal_id", "portal_name", "id"),
        Index("ix_runs_status", "status"),
        # The completed runs of the last history_days (learned thresholds, issue 15).
        Index("ix_runs_status_completed", "status", "completed_at"),
        Index("ix_runs_portal_completed", "status", "portal_name", "completed_at"),
        {"extend_existing": True},
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=RunId)
    portal_name: str | None = Field(default=None, sa_type=Text)
    status: str | None = Field(default=None, sa_type=Text)
    started_at: Any = Field(default=None, sa_column=Column("started_at", LegacyTimestamp()))
    completed_at: Any = Field(default=None, sa_column=Column("completed_at", LegacyTimestamp()))
    extracted_total_tenders: int | None = Field(default=None)
    skipped_existing_total: int | None = Field(default=None)
    # Added by the tool (nullable, so adopting a legacy table rewrites nothing):
    last_heartbeat_at: Any = Field(
        default=None, sa_column=Column("last_heartbeat_at", UtcTimestamp())
    )
    last_progress_at: Any = Field(
        default=None, sa_column=Column("last_progress_at", UtcTimestamp())
    )
    worker_id: str | None = Field(default=None, sa_type=Text)
    attempt: int | None = Field(default=None)
    released_at: Any = Field(default=None, sa_column=Column("released_at", UtcTimestamp()))


def table(model: type[SQLModel]) -> Table:
    """The SQLAlchemy ``Table`` of a table class (what ``model.__table__`` is, typed)."""
    return SQLModel.metadata.tables[str(model.__tablename__)]


# The running runs of a portal (the pre-scrape check's lookup): a partial index, so it stays as
# small as the number of running runs however many finished runs there are.
_running_only = table(Run).c.status == RunStatus.RUNNING.value
Index(
    "ix_runs_running_portal",
    table(Run).c.portal_name,
    sqlite_where=_running_only,
    postgresql_where=_running_only,
)


class Tender(SQLModel, table=True):
    __tablename__ = "tenders"
    __table_args__ = (
        Index("ix_tenders_run_id", "run_id"),
        Index("ix_tenders_portal_tender", "portal_name", "tender_id"),
        {"extend_existing": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int | None = Field(default=None, sa_type=RunId)
    portal_name: str | None = Field(default=None, sa_type=Text)
    tender_id: str | None = Field(default=None, sa_type=Text)
    title: str | None = Field(default=None, sa_type=Text)
    organisation: str | None = Field(default=None, sa_type=Text)
    closing_date: str | None = Field(default=None, sa_type=Text)
    reference_number: str | None = Field(default=None, sa_type=Text)
    category: str | None = Field(default=None, sa_type=Text)
    value_inr: float | None = Field(default=None, sa_type=Float)
    published_date: str | None = Field(default=None, sa_type=Text)


class RunEvent(SQLModel, table=True):
    """The audit trail: append-only, one row per change to a run."""

    __tablename__ = "run_events"
    __table_args__ = (
        Index("ix_run_events_run_id", "run_id", "id"),
        Index("ix_run_events_portal", "portal_name", "id"),
        Index("ix_run_events_action", "action", "id"),
        # History is ordered by time, newest first (id breaks ties): one index for the whole
        # trail, one for a portal's (schema version 5).
        Index("ix_run_events_created", "created_at", "id"),
        Index("ix_run_events_portal_created", "portal_name", "created_at", "id"),
        {"extend_existing": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(sa_type=RunId)
    portal_name: str | None = Field(default=None, sa_type=Text)
    action: str = Field(sa_type=Text)
    actor: str = Field(sa_type=Text)
    from_status: str | None = Field(default=None, sa_type=Text)
    to_status: str | None = Field(default=None, sa_type=Text)
    created_at: Any = Field(sa_column=Column("created_at", UtcTimestamp(), nullable=False))
    details: str | None = Field(default=None, sa_type=Text)


class DeletedRun(SQLModel, table=True):
    """What belonged to a run when a person deleted its record. Run ids can be handed out again
    (SQLite reuses the highest id; legacy scrapers insert their own), so a later run with the
    same id owns only the events and tenders with ids above the latest watermarks for that id;
    the rows at or below them stay the deleted run's."""

    __tablename__ = "deleted_runs"
    __table_args__ = (
        Index("ix_deleted_runs_run_id", "run_id", "last_event_id", "last_tender_id"),
        {"extend_existing": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(sa_type=RunId)
    portal_name: str | None = Field(default=None, sa_type=Text)
    deleted_at: Any = Field(sa_column=Column("deleted_at", UtcTimestamp(), nullable=False))
    last_event_id: int | None = Field(default=None, sa_type=BigInteger)  # its delete event
    last_tender_id: int | None = Field(default=None, sa_type=BigInteger)  # NULL: none stored


class DemoRun(SQLModel, table=True):
    """A run the demo fleet wrote, so reloading the demo replaces exactly its own rows. The
    portal and start time identify the row (a run someone else inserted under the same id, after
    the demo run was removed without the tool, is not the demo's); the floors are the highest
    tender and event ids already linked to the id when the demo took it, which stay untouched."""

    __tablename__ = "demo_runs"
    __table_args__ = ({"extend_existing": True},)

    run_id: int = Field(primary_key=True, sa_type=RunId, sa_column_kwargs={"autoincrement": False})
    portal_name: str = Field(sa_type=Text)
    started_at: Any = Field(sa_column=Column("started_at", UtcTimestamp(), nullable=False))
    tender_floor: int = Field(default=0, sa_type=BigInteger)
    event_floor: int = Field(default=0, sa_type=BigInteger)


class RunCheckpoint(SQLModel, table=True):
    """A tracked run's checkpoint in the database, one row per run, so a scraper resumed on any
    host (and a cleaner or dashboard anywhere) sees it. Written by the worker with a fenced
    heartbeat in one transaction; the checkpoint file is still written after the commit.
    ``cursor`` and ``tender_ids`` are JSON text; ``tender_ids`` is NULL when the list would be
    larger than ``max_checkpoint_mb`` (then the run's rows in ``tenders`` are its ids).
    ``cursor_changed_at`` is when the cursor last moved (kept by saves with the same cursor):
    the department-level stall is judged from it."""

    __tablename__ = "run_checkpoints"
    __table_args__ = ({"extend_existing": True},)

    run_id: int = Field(primary_key=True, sa_type=RunId, sa_column_kwargs={"autoincrement": False})
    portal_name: str | None = Field(default=None, sa_type=Text)
    attempt: int | None = Field(default=None)
    cursor: str | None = Field(default=None, sa_type=Text)
    tender_count: int | None = Field(default=None, sa_type=BigInteger)
    tender_ids: str | None = Field(default=None, sa_type=Text)
    updated_at: Any = Field(default=None, sa_column=Column("updated_at", UtcTimestamp()))
    cursor_changed_at: Any = Field(
        default=None, sa_column=Column("cursor_changed_at", UtcTimestamp())
    )
    # The run's started_at (and attempt) as it was when saved: a row counts only for the run that
    # wrote it, never for a later run that got the same id (SQLite reuses ids; legacy scrapers
    # insert their own).
    run_started_at: Any = Field(default=None, sa_column=Column("run_started_at", LegacyTimestamp()))


class SchemaVersion(SQLModel, table=True):
    """Which of the tool's additive schema steps this database has had."""

    __tablename__ = "cleanup_schema"
    __table_args__ = ({"extend_existing": True},)

    id: int = Field(default=1, primary_key=True)
    version: int = Field(sa_type=Integer)
    updated_at: Any = Field(sa_column=Column("updated_at", UtcTimestamp(), nullable=False))


class DashboardUser(SQLModel, table=True):
    """A dashboard account, created from the command line (there is no open registration)."""

    __tablename__ = "dashboard_users"
    __table_args__ = (
        Index("ux_dashboard_users_username", "username", unique=True),
        {"extend_existing": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_type=Text)
    password_hash: str = Field(sa_type=Text)
    role: str = Field(sa_type=Text)  # a vocabulary.Role
    created_at: Any = Field(sa_column=Column("created_at", UtcTimestamp(), nullable=False))


class DashboardSession(SQLModel, table=True):
    """A logged-in browser. Only a hash of the token is stored, so a copy of the database does
    not let anyone log in."""

    __tablename__ = "dashboard_sessions"
    __table_args__ = (
        Index("ix_dashboard_sessions_user", "user_id"),
        {"extend_existing": True},
    )

    token_hash: str = Field(sa_type=Text, primary_key=True)
    user_id: int = Field(sa_type=Integer)
    created_at: Any = Field(sa_column=Column("created_at", UtcTimestamp(), nullable=False))
    expires_at: Any = Field(sa_column=Column("expires_at", UtcTimestamp(), nullable=False))


class LoginFailure(SQLModel, table=True):
    """Failed dashboard logins of one account (``kind`` "account") or one client address
    ("client") since its last successful login: how many, and until when the next attempt is
    refused. In the database, so every dashboard worker and a restart see the same counts."""

    __tablename__ = "login_failures"
    __table_args__ = ({"extend_existing": True},)

    kind: str = Field(sa_type=Text, primary_key=True)
    name: str = Field(sa_type=Text, primary_key=True)
    failures: int = Field(sa_type=Integer)
    last_failure_at: Any = Field(
        sa_column=Column("last_failure_at", UtcTimestamp(), nullable=False)
    )
    blocked_until: Any = Field(default=None, sa_column=Column("blocked_until", UtcTimestamp()))


class MonitorCycle(SQLModel, table=True):
    """One monitoring cycle: when, by whom, and how it went (the watchdog reads this)."""

    __tablename__ = "monitor_cycles"
    __table_args__ = ({"extend_existing": True},)

    id: int | None = Field(default=None, primary_key=True)
    started_at: Any = Field(sa_column=Column("started_at", UtcTimestamp(), nullable=False))
    finished_at: Any = Field(default=None, sa_column=Column("finished_at", UtcTimestamp()))
    holder: str = Field(sa_type=Text)
    outcome: str | None = Field(default=None, sa_type=Text)
    detail: str | None = Field(default=None, sa_type=Text)
    changes: int | None = Field(default=None)


class MonitorProblem(SQLModel, table=True):
    """A problem the monitor reported, until it goes away (``resolved_at``)."""

    __tablename__ = "monitor_problems"
    __table_args__ = (
        Index("ix_monitor_problems_open", "resolved_at", "run_id"),
        {"extend_existing": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(sa_type=RunId)
    kind: str = Field(sa_type=Text)
    portal_name: str | None = Field(default=None, sa_type=Text)
    summary: str | None = Field(default=None, sa_type=Text)
    first_seen_at: Any = Field(sa_column=Column("first_seen_at", UtcTimestamp(), nullable=False))
    last_notified_at: Any = Field(
        sa_column=Column("last_notified_at", UtcTimestamp(), nullable=False)
    )
    resolved_at: Any = Field(default=None, sa_column=Column("resolved_at", UtcTimestamp()))


class MonitorNotice(SQLModel, table=True):
    """The outbox: one message per cycle with changes; channels deliver from here."""

    __tablename__ = "monitor_notices"
    __table_args__ = ({"extend_existing": True},)

    id: int | None = Field(default=None, primary_key=True)
    cycle_id: int = Field(sa_type=Integer)
    created_at: Any = Field(sa_column=Column("created_at", UtcTimestamp(), nullable=False))
    title: str = Field(sa_type=Text)
    body: str = Field(sa_type=Text)


class MonitorChannel(SQLModel, table=True):
    """How far each notification channel got through the outbox. Keyed by a hash of its URL,
    so no token or password is stored."""

    __tablename__ = "monitor_channels"
    __table_args__ = ({"extend_existing": True},)

    channel_key: str = Field(sa_type=Text, primary_key=True)
    delivered_notice_id: int = Field(sa_type=Integer)
    last_attempt_at: Any = Field(default=None, sa_column=Column("last_attempt_at", UtcTimestamp()))
    last_success_at: Any = Field(default=None, sa_column=Column("last_success_at", UtcTimestamp()))
    failures: int = Field(default=0, sa_type=Integer)


class MonitorLease(SQLModel, table=True):
    """Who may run the current monitoring cycle (one row per lease name)."""

    __tablename__ = "monitor_lease"
    __table_args__ = ({"extend_existing": True},)

    name: str = Field(sa_type=Text, primary_key=True)
    holder: str = Field(sa_type=Text)
    expires_at: Any = Field(sa_column=Column("expires_at", UtcTimestamp(), nullable=False))


class Launch(SQLModel, table=True):
    """A scraper process the tool started for a person, the CLI or the monitor: which run (a
    resume) or portal (a start: its run does not exist yet, so only the portal is recorded),
    who, when, the command as an argument list (JSON), the process and its log file, and, once
    it ended, its exit code (written by ``cleanup_core.launch_wrapper``, which waits for it)."""

    __tablename__ = "launches"
    __table_args__ = (
        Index("ix_launches_run", "run_id", "id"),
        Index("ix_launches_portal", "portal_name", "id"),
        {"extend_existing": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int | None = Field(default=None, sa_type=RunId)
    portal_name: str = Field(sa_type=Text)
    action: str = Field(sa_type=Text)  # a vocabulary.Action: resume or start
    actor: str = Field(sa_type=Text)
    automatic: bool = Field(default=False, sa_type=Boolean)  # launched by the monitor
    launched_at: Any = Field(sa_column=Column("launched_at", UtcTimestamp(), nullable=False))
    argv: str | None = Field(default=None, sa_type=Text)  # JSON array, never a shell string
    pid: int | None = Field(default=None, sa_type=Integer)
    host: str | None = Field(default=None, sa_type=Text)
    log_path: str | None = Field(default=None, sa_type=Text)
    exit_code: int | None = Field(default=None, sa_type=Integer)
    ended_at: Any = Field(default=None, sa_column=Column("ended_at", UtcTimestamp()))
    error: str | None = Field(default=None, sa_type=Text)  # why it could not start
