"""Runs: the facts of running runs, whole rows by id, pages and per-portal reads, and the
changes a person or the monitor makes (clean-up by compare-and-set, restore, delete)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    CursorResult,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    or_,
    select,
    true,
    update,
)

from cleanup_core.numbers import whole_number
from cleanup_core.records import RUN_COLUMNS, PortalStatusCount, RunFacts
from cleanup_core.storage.checkpoints import forget_orphans
from cleanup_core.storage.common import RUNS, chunks, current_tenders, tenders_link_runs
from cleanup_core.vocabulary import RunStatus

FACT_COLUMNS = tuple(RUNS.c[name] for name in RUN_COLUMNS)

# The two hot reads (every scan, every pre-scrape check), built once.
_RUNNING = select(*FACT_COLUMNS).where(RUNS.c.status == RunStatus.RUNNING).order_by(RUNS.c.id)
_RUNNING_OF_PORTAL = _RUNNING.where(RUNS.c.portal_name == bindparam("portal"))


def running_query(portal_name: str | None = None) -> Select[Any]:
    """The statement that reads running runs' facts (of one portal when named): for the
    query-plan tests."""
    if portal_name is None:
        return _RUNNING
    return _RUNNING_OF_PORTAL.params(portal=portal_name)


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
    stmt = _RUNNING if portal_name is None else _RUNNING_OF_PORTAL
    if lock:
        stmt = stmt.with_for_update()
    params = {} if portal_name is None else {"portal": portal_name}
    if run_ids is None:
        return _facts(conn.execute(stmt, params))
    return [
        facts
        for chunk in chunks(run_ids)
        for facts in _facts(conn.execute(stmt.where(RUNS.c.id.in_(chunk)), params))
    ]


def _facts(result: CursorResult[Any]) -> list[RunFacts]:
    """Rows straight from the driver's cursor: no result processing is needed (the columns
    come back raw by design), and skipping it halves the cost of a scan."""
    try:
        return [RunFacts(*row) for row in result.cursor.fetchall()]
    finally:
        result.close()


def runs_by_id(conn: Connection, run_ids: Sequence[int]) -> dict[int, RunFacts]:
    """Whole run rows (any status), by id; ids without a run are left out."""
    found: dict[int, RunFacts] = {}
    for chunk in chunks(run_ids):
        stmt = select(*FACT_COLUMNS).where(RUNS.c.id.in_(chunk)).order_by(RUNS.c.id)
        found.update((facts.id, facts) for facts in _facts(conn.execute(stmt)))
    return found


def portal_has_runs(conn: Connection, portal_name: str) -> bool:
    """Whether any run (of any status) is stored under exactly this portal name: one lookup in
    ``ix_runs_portal_id``."""
    stmt = select(RUNS.c.id).where(RUNS.c.portal_name == portal_name).limit(1)
    return conn.execute(stmt).first() is not None


def no_live_worker(heartbeat_cutoff: datetime) -> ColumnElement[bool]:
    """SQL: no heartbeat since ``heartbeat_cutoff``, or the worker released the run since."""
    heartbeat, released = RUNS.c.last_heartbeat_at, RUNS.c.released_at
    return or_(heartbeat.is_(None), heartbeat < heartbeat_cutoff, released >= heartbeat)


def _no_progress(counter: Any) -> ColumnElement[bool]:
    """SQL: the counter is 0, NULL or blank text (legacy SQLite rows), as ``classify`` reads it."""
    return or_(func.coalesce(counter, 0) == 0, func.trim(cast(counter, Text)) == "")


def mark_cleaned(
    conn: Connection,
    run_ids: Sequence[int],
    *,
    heartbeat_cutoff: datetime,
    completed_at: datetime,
    require_no_progress: bool = True,
) -> list[int]:
    """Compare-and-set clean-up: only rows that are still running, without a heartbeat newer
    than ``heartbeat_cutoff`` and (unless a person forces it) still without progress (counters,
    stored tenders) change. A live worker is never cut off, even when forced. Returns the ids
    that changed."""
    guards = [RUNS.c.status == RunStatus.RUNNING, no_live_worker(heartbeat_cutoff)]
    if require_no_progress:
        guards += [
            _no_progress(RUNS.c.extracted_total_tenders),
            _no_progress(RUNS.c.skipped_existing_total),
        ]
        if tenders_link_runs(conn):
            guards.append(~exists().where(current_tenders(RUNS.c.id)))
    cleaned: list[int] = []
    for chunk in chunks(run_ids):
        stmt = (
            update(RUNS)
            .where(RUNS.c.id.in_(chunk), *guards)
            .values(status=RunStatus.CLEANED, completed_at=completed_at)
            .returning(RUNS.c.id)
        )
        cleaned.extend(conn.execute(stmt).scalars())
    return cleaned


def restore_status(
    conn: Connection, run_id: int, *, expected_status: str, status: str | None, completed_at: Any
) -> bool:
    """Set a run's status and ``completed_at`` back, if its status is still ``expected_status``."""
    stmt = (
        update(RUNS)
        .where(RUNS.c.id == run_id, RUNS.c.status == expected_status)
        .values(status=status, completed_at=completed_at)
    )
    return conn.execute(stmt).rowcount == 1


def delete_finished_runs(conn: Connection, run_ids: Sequence[int]) -> int:
    """Delete run rows that are not running. Tenders are not touched."""
    deleted = 0
    for chunk in chunks(run_ids):
        stmt = delete(RUNS).where(
            RUNS.c.id.in_(chunk), RUNS.c.status.is_distinct_from(RunStatus.RUNNING)
        )
        deleted += conn.execute(stmt).rowcount
    forget_orphans(conn, run_ids)
    return deleted


def count_runs(conn: Connection) -> int:
    count: int = conn.execute(select(func.count()).select_from(RUNS)).scalar_one()
    return count


# -- reads for pages ------------------------------------------------------------------------

# The columns the runs page may sort by: a whitelist, never a name from the browser.
_SORTABLE = {
    "id": RUNS.c.id,
    "portal_name": RUNS.c.portal_name,
    "status": RUNS.c.status,
    "started_at": RUNS.c.started_at,
    "completed_at": RUNS.c.completed_at,
    "extracted_total_tenders": RUNS.c.extracted_total_tenders,
    "skipped_existing_total": RUNS.c.skipped_existing_total,
    "last_heartbeat_at": RUNS.c.last_heartbeat_at,
}
SORTABLE_RUN_COLUMNS = frozenset(_SORTABLE)


def runs_page(
    conn: Connection,
    *,
    statuses: Sequence[str] | None = None,
    portal_name: str | None = None,
    search: str | None = None,
    sort: str = "id",
    descending: bool = True,
    limit: int,
    offset: int = 0,
    run_ids: Sequence[int] | None = None,
    finished: bool = False,
) -> tuple[list[RunFacts], int]:
    """One page of runs (any status) with the total matching the filters: ``run_ids`` keeps
    only those runs (the ones judged in one state), ``finished`` only runs not running."""
    conditions: list[ColumnElement[bool]] = []
    if statuses:
        conditions.append(RUNS.c.status.in_(statuses))
    if run_ids is not None:
        conditions.append(RUNS.c.id.in_(list(run_ids)))
    if finished:
        conditions.append(RUNS.c.status.is_distinct_from(RunStatus.RUNNING))
    if portal_name is not None:
        conditions.append(RUNS.c.portal_name == portal_name)
    if search:
        matches = [
            column.icontains(search, autoescape=True)
            for column in (RUNS.c.portal_name, RUNS.c.worker_id, RUNS.c.status)
        ]
        if (run_id := whole_number(search)) is not None:
            matches.append(RUNS.c.id == run_id)
        conditions.append(or_(*matches))
    where = and_(true(), *conditions)
    total: int = conn.execute(select(func.count()).select_from(RUNS).where(where)).scalar_one()
    column = _SORTABLE[sort]
    order = (column.desc(), RUNS.c.id.desc()) if descending else (column.asc(), RUNS.c.id.asc())
    stmt = select(*FACT_COLUMNS).where(where).order_by(*order).limit(limit).offset(offset)
    return _facts(conn.execute(stmt)), total


def status_counts_by_portal(conn: Connection) -> list[PortalStatusCount]:
    """How many runs each portal has of each status."""
    stmt = select(RUNS.c.portal_name, RUNS.c.status, func.count()).group_by(
        RUNS.c.portal_name, RUNS.c.status
    )
    return [
        PortalStatusCount(portal, status, count) for portal, status, count in conn.execute(stmt)
    ]


def latest_runs_by_portal(conn: Connection) -> list[RunFacts]:
    """The newest run (highest id) of each portal."""
    newest = select(func.max(RUNS.c.id).label("id")).group_by(RUNS.c.portal_name).subquery()
    stmt = select(*FACT_COLUMNS).join(newest, RUNS.c.id == newest.c.id).order_by(RUNS.c.portal_name)
    return _facts(conn.execute(stmt))


def completed_in_window_query(since: datetime, portal_name: str | None = None) -> Select[Any]:
    """The portal name, start and end of every run completed since ``since`` (of one portal
    when named): what the statistics of run durations are computed from. Served by
    ``ix_runs_status_completed`` (``ix_runs_portal_completed`` for one portal), so its cost
    follows the runs in the window, not the size of the table."""
    stmt = select(RUNS.c.portal_name, RUNS.c.started_at, RUNS.c.completed_at).where(
        RUNS.c.status == RunStatus.COMPLETED, RUNS.c.completed_at >= since
    )
    if portal_name is not None:
        stmt = stmt.where(RUNS.c.portal_name == portal_name)
    return stmt


def completed_in_window(
    conn: Connection, since: datetime, portal_name: str | None = None
) -> list[tuple[object, object, object]]:
    """(portal name, started_at, completed_at) of the runs completed since ``since``, raw as
    stored (``timestamps.parse_timestamp`` reads them; odd ones are the caller's to skip). A
    legacy text ``completed_at`` in another shape than the tool's may compare oddly with
    ``since``: the caller checks the window again after reading each value."""
    result = conn.execute(completed_in_window_query(since, portal_name))
    try:
        return [tuple(row) for row in result.cursor.fetchall()]
    finally:
        result.close()


def portal_names(conn: Connection) -> list[object]:
    """Every portal name stored in ``runs``, once each (a legacy row's may be a number or a
    BLOB; NULL is left out)."""
    stmt = select(RUNS.c.portal_name).where(RUNS.c.portal_name.is_not(None)).distinct()
    return list(conn.execute(stmt).scalars())
