"""Run checkpoints in the database (``run_checkpoints``): one row per tracked run, upserted by
its worker inside the fenced transaction of its checkpoint save, read first by the scan and the
resume (the checkpoint file is the fallback for scrapers that only write files)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cleanup_core.models import RunCheckpoint, table
from cleanup_core.records import StoredCheckpoint
from cleanup_core.storage.common import RUNS, chunks, storable

CHECKPOINTS = table(RunCheckpoint)
_COLUMNS = [CHECKPOINTS.c[name] for name in StoredCheckpoint._fields]


def upsert_checkpoint(
    conn: Connection,
    run_id: int,
    *,
    portal_name: str,
    attempt: int,
    cursor: str,
    tender_count: int,
    tender_ids: str | None,
    now: datetime,
) -> None:
    """Insert or replace the run's checkpoint. ``cursor_changed_at`` becomes ``now`` only when
    the cursor (canonical JSON text) differs from the stored one; a save with the same cursor
    keeps the time it last moved."""
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(CHECKPOINTS).values(
        run_id=run_id,
        portal_name=portal_name,
        attempt=attempt,
        cursor=cursor,
        tender_count=tender_count,
        tender_ids=tender_ids,
        updated_at=now,
        cursor_changed_at=now,
        run_started_at=_start_to_keep(conn, run_id),
    )
    moved = case(
        (
            CHECKPOINTS.c.cursor.is_not_distinct_from(stmt.excluded.cursor)
            & CHECKPOINTS.c.cursor_changed_at.is_not(None),
            CHECKPOINTS.c.cursor_changed_at,
        ),
        else_=stmt.excluded.cursor_changed_at,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[CHECKPOINTS.c.run_id],
        set_={
            "portal_name": stmt.excluded.portal_name,
            "attempt": stmt.excluded.attempt,
            "cursor": stmt.excluded.cursor,
            "tender_count": stmt.excluded.tender_count,
            "tender_ids": stmt.excluded.tender_ids,
            "updated_at": stmt.excluded.updated_at,
            "cursor_changed_at": moved,
            "run_started_at": stmt.excluded.run_started_at,
        },
    )
    conn.execute(stmt)


def _start_to_keep(conn: Connection, run_id: int) -> object:
    """The run's ``started_at`` as the checkpoint keeps it, to tell a later run under the same
    id apart. On PostgreSQL a legacy table's text or number start cannot go into the
    ``timestamptz`` column: ``None`` then (ids there come from a sequence and are not reused)."""
    started = conn.execute(select(RUNS.c.started_at).where(RUNS.c.id == run_id)).scalar()
    if conn.dialect.name == "postgresql" and not isinstance(started, datetime):
        return None
    return started


def _same_start(kept: object, current: object) -> bool:
    """Whether a checkpoint kept for a run that started at ``kept`` belongs to the run that now
    has its id and started at ``current`` (compared in Python: a legacy column's type may not
    compare with the checkpoint's in SQL)."""
    if kept is None:
        return current is None or not isinstance(current, datetime)
    return bool(kept == current)


def restart_cursor_clock(conn: Connection, run_id: int, now: datetime) -> None:
    """A new attempt took the run over: its cursor has not been stuck since before the resume."""
    conn.execute(
        update(CHECKPOINTS).where(CHECKPOINTS.c.run_id == run_id).values(cursor_changed_at=now)
    )


def forget_checkpoint(conn: Connection, run_id: int) -> None:
    """Drop a stale row under a run id that a new run now has (ids can be handed out again)."""
    if storable(run_id):
        conn.execute(delete(CHECKPOINTS).where(CHECKPOINTS.c.run_id == run_id))


def forget_orphans(conn: Connection, run_ids: Sequence[int]) -> None:
    """Drop the checkpoints of these run ids whose run row is gone (deleted runs)."""
    for chunk in chunks(run_ids):
        conn.execute(
            delete(CHECKPOINTS).where(
                CHECKPOINTS.c.run_id.in_(chunk),
                ~exists().where(RUNS.c.id == CHECKPOINTS.c.run_id),
            )
        )


def run_checkpoints(conn: Connection, run_ids: Sequence[int]) -> dict[int, StoredCheckpoint]:
    """The stored checkpoints of these runs, by run id (runs without one are left out). A row
    counts only for the run that wrote it: same start time, and an attempt the run has reached
    (a later run under a reused id, or one a legacy scraper inserted, has neither)."""
    found: dict[int, StoredCheckpoint] = {}
    for chunk in chunks(run_ids):
        stmt = (
            select(*_COLUMNS, CHECKPOINTS.c.run_started_at, RUNS.c.started_at)
            .join(RUNS, RUNS.c.id == CHECKPOINTS.c.run_id)
            .where(CHECKPOINTS.c.run_id.in_(chunk), RUNS.c.attempt >= CHECKPOINTS.c.attempt)
        )
        for *values, started_then, started_now in conn.execute(stmt):
            if _same_start(started_then, started_now):
                stored = StoredCheckpoint(*values)
                found[stored.run_id] = stored
    return found
