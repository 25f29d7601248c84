"""Every SQL statement the tool runs. Functions take an open ``Connection`` inside a transaction
the service started; none of them commits. Values come back raw (see ``models``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, delete, func, insert, or_, select, update

from cleanup_core.classify import RunFacts
from cleanup_core.models import CLEANED, RUNNING, Run, RunEvent
from cleanup_core.timestamps import utc_now

# Keeps every statement well under SQLite's and PostgreSQL's bound-parameter limits.
CHUNK = 5000

_runs = Run.__table__
_events = RunEvent.__table__

FACT_COLUMNS = (
    _runs.c.id,
    _runs.c.portal_name,
    _runs.c.status,
    _runs.c.started_at,
    _runs.c.completed_at,
    _runs.c.extracted_total_tenders,
    _runs.c.skipped_existing_total,
    _runs.c.last_heartbeat_at,
    _runs.c.last_progress_at,
    _runs.c.worker_id,
    _runs.c.attempt,
    _runs.c.released_at,
)


def _chunks(items: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def database_now(conn: Connection) -> datetime:
    """The time to judge ages by. On a shared server it is the server's clock, so a scraper
    host whose clock is wrong cannot make healthy runs look dead; SQLite is local anyway."""
    if conn.dialect.name == "postgresql":
        return conn.execute(select(func.now())).scalar_one()
    return utc_now()


def running_facts(
    conn: Connection,
    *,
    portal_name: str | None = None,
    run_ids: Sequence[int] | None = None,
    lock: bool = False,
) -> list[RunFacts]:
    """Facts of ``running`` runs (optionally one portal's or some ids'), oldest first.

    ``lock`` takes row locks (PostgreSQL) so the rows cannot change before this transaction
    ends; on SQLite the write transaction already holds the database's write lock."""

    def query(extra: Any = None) -> Select[Any]:
        stmt = select(*FACT_COLUMNS).where(_runs.c.status == RUNNING)
        if portal_name is not None:
            stmt = stmt.where(_runs.c.portal_name == portal_name)
        if extra is not None:
            stmt = stmt.where(extra)
        stmt = stmt.order_by(_runs.c.id)
        return stmt.with_for_update() if lock else stmt

    if run_ids is None:
        rows = conn.execute(query()).all()
    else:
        rows = [
            row for chunk in _chunks(run_ids) for row in conn.execute(query(_runs.c.id.in_(chunk)))
        ]
    return [RunFacts(*row) for row in rows]  # FACT_COLUMNS are in RunFacts' field order


@dataclass(frozen=True)
class RunStatus:
    id: int
    portal_name: str | None
    status: str | None
    completed_at: Any


def run_statuses(conn: Connection, run_ids: Sequence[int]) -> dict[int, RunStatus]:
    columns = (_runs.c.id, _runs.c.portal_name, _runs.c.status, _runs.c.completed_at)
    found: dict[int, RunStatus] = {}
    for chunk in _chunks(run_ids):
        for row in conn.execute(select(*columns).where(_runs.c.id.in_(chunk))):
            found[row.id] = RunStatus(*row)
    return found


def no_live_worker(heartbeat_cutoff: datetime) -> Any:
    """SQL: no heartbeat since ``heartbeat_cutoff``, or the worker released the run since."""
    heartbeat, released = _runs.c.last_heartbeat_at, _runs.c.released_at
    return or_(heartbeat.is_(None), heartbeat < heartbeat_cutoff, released >= heartbeat)


def mark_cleaned(
    conn: Connection,
    run_ids: Sequence[int],
    *,
    heartbeat_cutoff: datetime,
    completed_at: datetime,
    require_no_progress: bool = True,
) -> list[int]:
    """Compare-and-set clean-up: only rows that are still running, without a heartbeat newer
    than ``heartbeat_cutoff`` and (unless a person forces it) still without progress change.
    A live worker is never cut off, even when forced. Returns the ids that changed."""
    guards = [_runs.c.status == RUNNING, no_live_worker(heartbeat_cutoff)]
    if require_no_progress:
        guards += [
            func.coalesce(_runs.c.extracted_total_tenders, 0) == 0,
            func.coalesce(_runs.c.skipped_existing_total, 0) == 0,
        ]
    cleaned: list[int] = []
    for chunk in _chunks(run_ids):
        stmt = (
            update(_runs)
            .where(_runs.c.id.in_(chunk), *guards)
            .values(status=CLEANED, completed_at=completed_at)
            .returning(_runs.c.id)
        )
        cleaned.extend(conn.execute(stmt).scalars())
    return cleaned


def restore_status(
    conn: Connection, run_id: int, *, expected_status: str, status: str | None, completed_at: Any
) -> bool:
    """Set a run's status and ``completed_at`` back, if its status is still ``expected_status``."""
    stmt = (
        update(_runs)
        .where(_runs.c.id == run_id, _runs.c.status == expected_status)
        .values(status=status, completed_at=completed_at)
    )
    return conn.execute(stmt).rowcount == 1


def run_rows(conn: Connection, run_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Whole run rows (the columns the tool knows), as stored."""
    rows: list[dict[str, Any]] = []
    for chunk in _chunks(run_ids):
        result = conn.execute(select(_runs).where(_runs.c.id.in_(chunk)).order_by(_runs.c.id))
        rows.extend(dict(row._mapping) for row in result)
    return rows


def delete_finished_runs(conn: Connection, run_ids: Sequence[int]) -> int:
    """Delete run rows that are not running. Tenders are not touched."""
    deleted = 0
    for chunk in _chunks(run_ids):
        stmt = delete(_runs).where(_runs.c.id.in_(chunk), _runs.c.status.is_distinct_from(RUNNING))
        deleted += conn.execute(stmt).rowcount
    return deleted


def insert_events(conn: Connection, events: Iterable[dict[str, Any]]) -> None:
    rows = list(events)
    if rows:
        conn.execute(insert(_events), rows)


def latest_event(conn: Connection, run_id: int, actions: Sequence[str]) -> Any:
    stmt = (
        select(_events)
        .where(_events.c.run_id == run_id, _events.c.action.in_(actions))
        .order_by(_events.c.id.desc())
        .limit(1)
    )
    return conn.execute(stmt).first()


def events_page(
    conn: Connection,
    *,
    portal_name: str | None = None,
    run_id: int | None = None,
    actions: Sequence[str] | None = None,
    limit: int,
    offset: int = 0,
) -> tuple[list[Any], int]:
    """One page of the audit trail, newest first, and how many events match in all."""
    conditions = []
    if portal_name is not None:
        conditions.append(_events.c.portal_name == portal_name)
    if run_id is not None:
        conditions.append(_events.c.run_id == run_id)
    if actions:
        conditions.append(_events.c.action.in_(actions))
    where = and_(True, *conditions)
    total = conn.execute(select(func.count()).select_from(_events).where(where)).scalar_one()
    stmt = select(_events).where(where).order_by(_events.c.id.desc()).limit(limit).offset(offset)
    return list(conn.execute(stmt)), total
