"""The monitor's bookkeeping: its lease, cycles, open problems, the outbox of notices and how
far each notification channel got through it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from cleanup_core.models import (
    MonitorChannel,
    MonitorCycle,
    MonitorLease,
    MonitorNotice,
    MonitorProblem,
    table,
)
from cleanup_core.records import CycleRecord, NoticeRecord, ProblemRecord
from cleanup_core.storage.common import insert_ignoring_duplicates

_CYCLES = table(MonitorCycle)
_PROBLEMS = table(MonitorProblem)
_NOTICES = table(MonitorNotice)
_CHANNELS = table(MonitorChannel)
_LEASE = table(MonitorLease)


def take_lease(conn: Connection, name: str, holder: str, now: datetime, until: datetime) -> bool:
    """Compare-and-set: take the lease if it is free, expired, or already ours."""
    insert_ignoring_duplicates(conn, _LEASE, {"name": name, "holder": "", "expires_at": now})
    stmt = (
        update(_LEASE)
        .where(
            _LEASE.c.name == name,
            or_(_LEASE.c.holder == holder, _LEASE.c.holder == "", _LEASE.c.expires_at <= now),
        )
        .values(holder=holder, expires_at=until)
    )
    return conn.execute(stmt).rowcount == 1


def release_lease(conn: Connection, name: str, holder: str) -> None:
    conn.execute(
        update(_LEASE).where(_LEASE.c.name == name, _LEASE.c.holder == holder).values(holder="")
    )


def last_cycle(conn: Connection, *, finished_only: bool = False) -> CycleRecord | None:
    stmt = (
        select(
            _CYCLES.c.id,
            _CYCLES.c.started_at,
            _CYCLES.c.finished_at,
            _CYCLES.c.holder,
            _CYCLES.c.outcome,
            _CYCLES.c.detail,
            _CYCLES.c.changes,
        )
        .order_by(_CYCLES.c.id.desc())
        .limit(1)
    )
    if finished_only:
        stmt = stmt.where(_CYCLES.c.finished_at.is_not(None))
    row = conn.execute(stmt).first()
    return None if row is None else CycleRecord(*row)


def start_cycle(conn: Connection, now: datetime, holder: str) -> int:
    stmt = insert(_CYCLES).values(started_at=now, holder=holder).returning(_CYCLES.c.id)
    cycle_id: int = conn.execute(stmt).scalar_one()
    return cycle_id


def finish_cycle(
    conn: Connection, cycle_id: int, now: datetime, outcome: str, detail: str, changes: int
) -> None:
    conn.execute(
        update(_CYCLES)
        .where(_CYCLES.c.id == cycle_id)
        .values(finished_at=now, outcome=outcome, detail=detail[:2000], changes=changes)
    )


def open_problems(conn: Connection) -> list[ProblemRecord]:
    stmt = select(
        _PROBLEMS.c.id,
        _PROBLEMS.c.run_id,
        _PROBLEMS.c.kind,
        _PROBLEMS.c.portal_name,
        _PROBLEMS.c.summary,
        _PROBLEMS.c.last_notified_at,
    ).where(_PROBLEMS.c.resolved_at.is_(None))
    return [ProblemRecord(*row) for row in conn.execute(stmt)]


def open_problem(
    conn: Connection, *, run_id: int, kind: str, portal_name: str, summary: str, now: datetime
) -> None:
    conn.execute(
        insert(_PROBLEMS).values(
            run_id=run_id,
            kind=kind,
            portal_name=portal_name,
            summary=summary,
            first_seen_at=now,
            last_notified_at=now,
        )
    )


def touch_problem(conn: Connection, problem_id: int, now: datetime, summary: str) -> None:
    conn.execute(
        update(_PROBLEMS)
        .where(_PROBLEMS.c.id == problem_id)
        .values(last_notified_at=now, summary=summary)
    )


def resolve_problem(conn: Connection, problem_id: int, now: datetime) -> None:
    conn.execute(update(_PROBLEMS).where(_PROBLEMS.c.id == problem_id).values(resolved_at=now))


def insert_notice(conn: Connection, cycle_id: int, now: datetime, title: str, body: str) -> None:
    conn.execute(insert(_NOTICES).values(cycle_id=cycle_id, created_at=now, title=title, body=body))


def channel_cursor(conn: Connection, key: str, cycle_id: int) -> int:
    """The last notice the channel received. A channel seen for the first time starts just
    before this cycle's notice, so a newly added channel is not sent the whole history."""
    before = select(func.coalesce(func.max(_NOTICES.c.id), 0)).where(_NOTICES.c.cycle_id < cycle_id)
    insert_ignoring_duplicates(
        conn,
        _CHANNELS,
        {"channel_key": key, "delivered_notice_id": conn.execute(before).scalar_one()},
    )
    stmt = select(_CHANNELS.c.delivered_notice_id).where(_CHANNELS.c.channel_key == key)
    cursor: int = conn.execute(stmt).scalar_one()
    return cursor


def notices_after(conn: Connection, notice_id: int, *, limit: int = 50) -> list[NoticeRecord]:
    """Undelivered notices, oldest first (the newest ``limit`` of them)."""
    stmt = (
        select(_NOTICES.c.id, _NOTICES.c.title, _NOTICES.c.body)
        .where(_NOTICES.c.id > notice_id)
        .order_by(_NOTICES.c.id.desc())
        .limit(limit)
    )
    return [NoticeRecord(*row) for row in reversed(conn.execute(stmt).all())]


def record_delivery(conn: Connection, key: str, delivered_id: int | None, now: datetime) -> None:
    """After an attempt: advance the channel's cursor on success, count a failure otherwise."""
    if delivered_id is None:
        values: dict[str, Any] = {"last_attempt_at": now, "failures": _CHANNELS.c.failures + 1}
    else:
        values = {
            "last_attempt_at": now,
            "last_success_at": now,
            "failures": 0,
            "delivered_notice_id": delivered_id,
        }
    conn.execute(update(_CHANNELS).where(_CHANNELS.c.channel_key == key).values(**values))


def prune_monitor(conn: Connection, before: datetime) -> None:
    """Forget notices, resolved problems and cycles older than ``before``."""
    conn.execute(delete(_NOTICES).where(_NOTICES.c.created_at < before))
    conn.execute(
        delete(_PROBLEMS).where(
            _PROBLEMS.c.resolved_at.is_not(None), _PROBLEMS.c.resolved_at < before
        )
    )
    conn.execute(delete(_CYCLES).where(_CYCLES.c.started_at < before))
