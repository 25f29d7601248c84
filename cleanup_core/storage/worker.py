"""What a scraper's worker writes: the portal's claim lock, a new run, the take-over of a
resumable run, and its fenced writes (heartbeat, progress, finish, release). Every write after
the claim is fenced by the run's ``attempt``, so a worker that lost its run writes nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, insert, select, update

from cleanup_core.storage.common import RUNS, worker_clock
from cleanup_core.storage.runs import no_live_worker
from cleanup_core.vocabulary import RunStatus


def portal_lock_key(lock_name: str) -> int:
    """A portal's PostgreSQL advisory-lock key: a signed 64-bit hash of its lock name, the same
    in every process and on every host."""
    digest = hashlib.sha256(b"cleanup_core.portal:" + lock_name.encode("utf-8", "surrogatepass"))
    return int.from_bytes(digest.digest()[:8], "big", signed=True)


def lock_portal(conn: Connection, lock_name: str) -> None:
    """Hold a portal's claim lock until this transaction ends, so two workers starting the same
    portal decide one after the other. PostgreSQL: a transaction-level advisory lock; SQLite:
    the write transaction (``BEGIN IMMEDIATE``) already holds the database's only write lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(portal_lock_key(lock_name))))


def insert_run(conn: Connection, values: Mapping[str, Any]) -> int:
    """A new run row; returns its id."""
    run_id: int = conn.execute(insert(RUNS).values(**values).returning(RUNS.c.id)).scalar_one()
    return run_id


def take_over_run(
    conn: Connection,
    run_id: int,
    *,
    observed_attempt: Any,
    heartbeat_cutoff: datetime,
    worker_id: str,
    now: datetime,
) -> int | None:
    """Compare-and-set resume: give a running run without a live worker to ``worker_id`` with the
    next attempt number (the fencing token), if its attempt is still ``observed_attempt``.
    Returns the new attempt, or ``None`` when someone else changed the run first."""
    stmt = (
        update(RUNS)
        .where(
            RUNS.c.id == run_id,
            RUNS.c.status == RunStatus.RUNNING,
            RUNS.c.attempt.is_not_distinct_from(observed_attempt),
            no_live_worker(heartbeat_cutoff),
        )
        .values(
            attempt=func.coalesce(RUNS.c.attempt, 0) + 1,
            worker_id=worker_id,
            last_heartbeat_at=now,
            released_at=None,
        )
        .returning(RUNS.c.attempt)
    )
    attempt: int | None = conn.execute(stmt).scalar_one_or_none()
    return attempt


def _fenced(run_id: int, attempt: int) -> tuple[ColumnElement[bool], ...]:
    """Only the worker holding the run's current attempt may write to it."""
    return (RUNS.c.id == run_id, RUNS.c.status == RunStatus.RUNNING, RUNS.c.attempt == attempt)


def record_heartbeat(conn: Connection, run_id: int, attempt: int) -> bool:
    """Fenced heartbeat; ``False`` when the run is no longer this attempt's."""
    stmt = (
        update(RUNS).where(*_fenced(run_id, attempt)).values(last_heartbeat_at=worker_clock(conn))
    )
    return conn.execute(stmt).rowcount == 1


def record_progress(
    conn: Connection, run_id: int, attempt: int, *, extracted: int, skipped: int
) -> bool:
    """Fenced: add to the run's counters and refresh its progress and heartbeat times."""
    clock = worker_clock(conn)
    stmt = (
        update(RUNS)
        .where(*_fenced(run_id, attempt))
        .values(
            extracted_total_tenders=func.coalesce(RUNS.c.extracted_total_tenders, 0) + extracted,
            skipped_existing_total=func.coalesce(RUNS.c.skipped_existing_total, 0) + skipped,
            last_progress_at=clock,
            last_heartbeat_at=clock,
        )
    )
    return conn.execute(stmt).rowcount == 1


def finish_run(
    conn: Connection, run_id: int, attempt: int, *, status: RunStatus, completed_at: datetime
) -> bool:
    """Fenced: end the run with ``status`` (completed or failed)."""
    stmt = (
        update(RUNS)
        .where(*_fenced(run_id, attempt))
        .values(status=status, completed_at=completed_at)
    )
    return conn.execute(stmt).rowcount == 1


def release_run(conn: Connection, run_id: int, attempt: int, *, released_at: datetime) -> bool:
    """Fenced: the worker lets go of a run it could not finish; it stays ``running`` and, with
    progress or a checkpoint, is resumable at once."""
    stmt = update(RUNS).where(*_fenced(run_id, attempt)).values(released_at=released_at)
    return conn.execute(stmt).rowcount == 1
