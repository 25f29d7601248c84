"""Launches: the scraper processes the tool started, their lock, and what the rules count of
them (automatic resume launches per run)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from cleanup_core.models import Launch, table
from cleanup_core.records import LaunchRecord
from cleanup_core.storage.common import chunks, storable
from cleanup_core.storage.worker import lock_portal
from cleanup_core.vocabulary import Action

LAUNCHES = table(Launch)
_COLUMNS = (
    LAUNCHES.c.id,
    LAUNCHES.c.run_id,
    LAUNCHES.c.portal_name,
    LAUNCHES.c.action,
    LAUNCHES.c.actor,
    LAUNCHES.c.automatic,
    LAUNCHES.c.launched_at,
    LAUNCHES.c.argv,
    LAUNCHES.c.pid,
    LAUNCHES.c.host,
    LAUNCHES.c.log_path,
    LAUNCHES.c.exit_code,
    LAUNCHES.c.ended_at,
    LAUNCHES.c.error,
)


def _record(row: Any) -> LaunchRecord:
    return LaunchRecord(*row)


def lock_launches(conn: Connection, slug: str) -> None:
    """Hold the launch lock of a portal (by slug) until this transaction ends, so two launchers
    (two clicks, two admins, two monitors) decide one after the other whether a launch is
    already starting. PostgreSQL: an advisory lock of its own (not the claim lock the scraper
    takes); SQLite: the write transaction already holds the only write lock."""
    lock_portal(conn, f"launch:{slug}")


def insert_launch(conn: Connection, values: Mapping[str, Any]) -> int:
    """A new launch row; returns its id."""
    stmt = insert(LAUNCHES).values(**values).returning(LAUNCHES.c.id)
    launch_id: int = conn.execute(stmt).scalar_one()
    return launch_id


def record_spawned(conn: Connection, launch_id: int, pid: int) -> None:
    conn.execute(update(LAUNCHES).where(LAUNCHES.c.id == launch_id).values(pid=pid))


def record_end(
    conn: Connection, launch_id: int, *, exit_code: int, ended_at: datetime, error: str | None
) -> bool:
    """The process ended (or never started): its exit code, once. ``False`` when the launch is
    unknown or its end was recorded already."""
    stmt = (
        update(LAUNCHES)
        .where(LAUNCHES.c.id == launch_id, LAUNCHES.c.exit_code.is_(None))
        .values(exit_code=exit_code, ended_at=ended_at, error=error)
    )
    return bool(conn.execute(stmt).rowcount == 1)


def launch_by_id(conn: Connection, launch_id: int) -> LaunchRecord | None:
    if not storable(launch_id):
        return None
    row = conn.execute(select(*_COLUMNS).where(LAUNCHES.c.id == launch_id)).first()
    return None if row is None else _record(row)


def latest_launches(
    conn: Connection,
    *,
    run_id: int | None = None,
    portal_name: str | None = None,
    action: Action | None = None,
    limit: int = 50,
) -> list[LaunchRecord]:
    """Launches, newest first: of one run, one portal, one action, or all."""
    stmt = select(*_COLUMNS).order_by(LAUNCHES.c.id.desc()).limit(limit)
    if run_id is not None:
        if not storable(run_id):
            return []
        stmt = stmt.where(LAUNCHES.c.run_id == run_id)
    if portal_name is not None:
        stmt = stmt.where(LAUNCHES.c.portal_name == portal_name)
    if action is not None:
        stmt = stmt.where(LAUNCHES.c.action == action.value)
    return [_record(row) for row in conn.execute(stmt)]


def latest_per_portal(conn: Connection, portal_names: Sequence[str]) -> dict[str, LaunchRecord]:
    """The latest launch of each named portal (those without one are left out)."""
    if not portal_names:
        return {}
    newest = (
        select(func.max(LAUNCHES.c.id))
        .where(LAUNCHES.c.portal_name.in_(list(portal_names)))
        .group_by(LAUNCHES.c.portal_name)
    )
    stmt = select(*_COLUMNS).where(LAUNCHES.c.id.in_(newest))
    return {row.portal_name: _record(row) for row in conn.execute(stmt)}


def auto_resume_counts(
    conn: Connection, run_ids: Sequence[int] | None = None
) -> dict[int, tuple[int, int | None]]:
    """Per run (of ``run_ids``, or every run with one): how many automatic resume launches it
    had, and the exit code of the latest (``None`` while it runs). One grouped read of a small
    table (only resumable runs are ever launched)."""
    base = (
        select(
            LAUNCHES.c.run_id,
            func.count().label("launches"),
            func.max(LAUNCHES.c.id).label("latest"),
        )
        .where(LAUNCHES.c.automatic.is_(True), LAUNCHES.c.action == Action.RESUME.value)
        .group_by(LAUNCHES.c.run_id)
    )
    if run_ids is None:
        grouped = list(conn.execute(base))
    else:
        grouped = [
            row
            for chunk in chunks(run_ids)
            for row in conn.execute(base.where(LAUNCHES.c.run_id.in_(chunk)))
        ]
    if not grouped:
        return {}
    latest = {row.latest for row in grouped}
    exits = dict(
        conn.execute(
            select(LAUNCHES.c.id, LAUNCHES.c.exit_code).where(LAUNCHES.c.id.in_(latest))
        ).all()
    )
    return {row.run_id: (int(row.launches), exits.get(row.latest)) for row in grouped}


def forget_runs(conn: Connection, run_ids: Sequence[int]) -> None:
    """Drop the launches of deleted runs: a later run that gets the same id must not inherit
    their automatic attempts or a "starting" launch (their audit events stay)."""
    for chunk in chunks(run_ids):
        conn.execute(delete(LAUNCHES).where(LAUNCHES.c.run_id.in_(chunk)))
