"""What the storage modules share: the tables, statement-sized chunks of ids, the clock, and
which rows a run id links (its current incarnation's)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, exists, func, inspect, select
from sqlalchemy.dialects import postgresql, sqlite

from cleanup_core.models import DeletedRun, Run, RunEvent, Tender, table
from cleanup_core.timestamps import utc_now

# Keeps every statement well under SQLite's and PostgreSQL's bound-parameter limits.
CHUNK = 5000

RUNS = table(Run)
EVENTS = table(RunEvent)
TENDERS = table(Tender)
DELETED = table(DeletedRun)


def storable(run_id: int) -> bool:
    """Whether an integer column can hold ``run_id`` at all. A larger id names no run; binding
    it would fail (SQLite raises OverflowError) instead of finding nothing."""
    return -(2**63) <= run_id < 2**63


def chunks(items: Sequence[int]) -> Iterator[list[int]]:
    """Statement-sized chunks of the ids, without those no run can have."""
    kept = [run_id for run_id in items if storable(run_id)]
    for start in range(0, len(kept), CHUNK):
        yield kept[start : start + CHUNK]


def database_now(conn: Connection) -> datetime:
    """The time to judge ages by. On a shared server it is the server's clock, so a scraper
    host whose clock is wrong cannot make healthy runs look dead; SQLite is local anyway."""
    if conn.dialect.name == "postgresql":
        moment: datetime = conn.execute(select(func.now())).scalar_one()
        return moment
    return utc_now()


def worker_clock(conn: Connection) -> Any:
    """What a worker writes into its heartbeat and progress times: the server's ``now()`` on
    PostgreSQL (a scraper host with a wrong clock cannot make a healthy run look dead), Python's
    clock on SQLite (local anyway)."""
    return func.now() if conn.dialect.name == "postgresql" else utc_now()


def insert_ignoring_duplicates(conn: Connection, target: Table, values: Mapping[str, Any]) -> None:
    """INSERT that does nothing when the primary key exists (SQLite and PostgreSQL)."""
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(target).values(**values).on_conflict_do_nothing())


def tenders_link_runs(conn: Connection) -> bool:
    """Whether the ``tenders`` table has a ``run_id`` column, so stored tenders can be counted
    per run. (Adoption adds it, but the operator's own table may have been replaced since.)"""
    inspector = inspect(conn)
    if not inspector.has_table(TENDERS.name):
        return False
    return any(column["name"] == "run_id" for column in inspector.get_columns(TENDERS.name))


# -- which rows a run id links: its current incarnation's --
#
# A run id can be handed out again after its run was deleted (SQLite reuses the highest id;
# legacy scrapers insert runs with ids of their own). Deleting runs records, per deleted run,
# the highest event and tender id it owned (``deleted_runs``); the run that has the id now owns
# only the rows above the latest of those watermarks. Every query that links rows to a run by
# its id goes through these conditions.


def deletion_floor(watermark: Any, run_id: Any) -> Any:
    """SQL: the highest id of ``watermark``'s kind that a deleted run with ``run_id`` owned
    (0 when none was deleted)."""
    return (
        select(func.coalesce(func.max(watermark), 0))
        .where(DELETED.c.run_id == run_id)
        .scalar_subquery()
    )


def _current(target: Table, watermark: Any, run_id: Any) -> ColumnElement[bool]:
    """SQL: ``target``'s rows linked to the run that has ``run_id`` now. ``run_id`` is a
    number, or a column of an enclosing statement (the floor then looks up the row's own run
    id, so the subquery correlates with ``target`` however deep the nesting)."""
    key = run_id if isinstance(run_id, int) else target.c.run_id
    return and_(target.c.run_id == run_id, target.c.id > deletion_floor(watermark, key))


def current_events(run_id: Any) -> ColumnElement[bool]:
    """SQL: the audit events of the run that has ``run_id`` now."""
    return _current(EVENTS, DELETED.c.last_event_id, run_id)


def current_tenders(run_id: Any) -> ColumnElement[bool]:
    """SQL: the tenders stored by the run that has ``run_id`` now."""
    return _current(TENDERS, DELETED.c.last_tender_id, run_id)


def event_of_deleted_run() -> ColumnElement[bool]:
    """SQL: the event (of ``run_events`` in the enclosing statement) is at or below a deletion
    watermark of its run id, so it belongs to a deleted run."""
    return exists().where(
        DELETED.c.run_id == EVENTS.c.run_id, DELETED.c.last_event_id >= EVENTS.c.id
    )
