"""The audit trail (``run_events``): append, page, count. Append-only: nothing here changes or
removes an event (only the demo replaces its own, see ``storage.demo``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, func, select, true
from sqlalchemy.orm import aliased

from cleanup_core.records import NewEvent, StoredEvent
from cleanup_core.storage.common import (
    EVENTS,
    RUNS,
    current_events,
    event_of_deleted_run,
    storable,
)
from cleanup_core.vocabulary import AuditAction

_COLUMNS = (
    "run_id",
    "portal_name",
    "action",
    "actor",
    "from_status",
    "to_status",
    "created_at",
    "details",
)
_INSERT = {  # keyed by "the driver wants qmark placeholders"; built from constants only
    qmark: f"INSERT INTO run_events ({', '.join(_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join(['?' if qmark else '%s'] * len(_COLUMNS))})"
    for qmark in (True, False)
}


def insert_events(conn: Connection, events: Iterable[NewEvent]) -> None:
    """Append audit events, their details as JSON. A bulk clean-up writes thousands at once,
    so the rows go to the driver's ``executemany`` directly, with ``created_at`` converted by
    its column type."""
    to_db = EVENTS.c.created_at.type.bind_processor(conn.dialect) or (lambda value: value)
    stored: dict[datetime, Any] = {}
    values = []
    for event in events:
        created = event.created_at
        if created not in stored:
            stored[created] = to_db(created)
        values.append(
            (
                event.run_id,
                event.portal_name,
                event.action.value,
                event.actor,
                event.from_status,
                event.to_status,
                stored[created],
                json.dumps(dict(event.details), default=str),
            )
        )
    if values:
        conn.exec_driver_sql(_INSERT[conn.dialect.paramstyle == "qmark"], values)


def _stored(row: Any) -> StoredEvent:
    return StoredEvent(
        id=row.id,
        run_id=row.run_id,
        portal_name=row.portal_name,
        action=row.action,
        actor=row.actor,
        from_status=row.from_status,
        to_status=row.to_status,
        created_at=row.created_at,
        details=row.details,
        run_deleted=bool(getattr(row, "run_deleted", False)),
        revertible=bool(getattr(row, "revertible", False)),
    )


def latest_event(conn: Connection, run_id: int, actions: Sequence[str]) -> StoredEvent | None:
    """The newest of the run's events with one of ``actions`` (never a deleted run's)."""
    if not storable(run_id):
        return None
    stmt = (
        select(EVENTS)
        .where(current_events(run_id), EVENTS.c.action.in_(actions))
        .order_by(EVENTS.c.id.desc())
        .limit(1)
    )
    row = conn.execute(stmt).first()
    return None if row is None else _stored(row)


def _revertible() -> ColumnElement[bool]:
    """SQL: the event (of ``run_events`` in the enclosing statement) is a clean-up that can be
    reverted: of a run that was not deleted since, that is still in the status the clean-up
    left, with no clean-up or revert of the run after it."""
    later = aliased(EVENTS)
    undone_or_redone = exists().where(
        later.c.run_id == EVENTS.c.run_id,
        later.c.id > EVENTS.c.id,
        later.c.action.in_([AuditAction.CLEANUP, AuditAction.REVERT]),
    )
    still_as_left = exists().where(
        RUNS.c.id == EVENTS.c.run_id, RUNS.c.status == EVENTS.c.to_status
    )
    return and_(
        EVENTS.c.action == AuditAction.CLEANUP,
        ~event_of_deleted_run(),
        ~undone_or_redone,
        still_as_left,
    )


def events_filter(
    *,
    portal_name: str | None = None,
    run_id: int | None = None,
    actions: Sequence[str] | None = None,
) -> ColumnElement[bool]:
    """SQL: the events of a portal, of the run that has ``run_id`` now, with these actions."""
    conditions = []
    if portal_name is not None:
        conditions.append(EVENTS.c.portal_name == portal_name)
    if run_id is not None:
        conditions.append(current_events(run_id))
    if actions:
        conditions.append(EVENTS.c.action.in_(actions))
    return and_(true(), *conditions)


# The audit trail as people read it: by when each event happened, newest first; the id breaks
# ties (one clean-up writes its events with one time). Served by ix_run_events_created (and
# ix_run_events_portal_created for one portal's).
HISTORY_ORDER = (EVENTS.c.created_at.desc(), EVENTS.c.id.desc())


def events_page(
    conn: Connection,
    *,
    portal_name: str | None = None,
    run_id: int | None = None,
    actions: Sequence[str] | None = None,
    limit: int,
    offset: int = 0,
) -> tuple[list[StoredEvent], int]:
    """One page of the audit trail, newest first (``HISTORY_ORDER``), and how many events
    match in all. Each event says whether its run was deleted since (``run_deleted``) and
    whether it is a clean-up that can be reverted now (``revertible``), whatever else is on
    the page."""
    if run_id is not None and not storable(run_id):
        return [], 0
    where = events_filter(portal_name=portal_name, run_id=run_id, actions=actions)
    total: int = conn.execute(select(func.count()).select_from(EVENTS).where(where)).scalar_one()
    stmt = (
        select(
            EVENTS,
            event_of_deleted_run().label("run_deleted"),
            _revertible().label("revertible"),
        )
        .where(where)
        .order_by(*HISTORY_ORDER)
        .limit(limit)
        .offset(offset)
    )
    return [_stored(row) for row in conn.execute(stmt)], total


def event_counts_by_action(conn: Connection) -> dict[str, int]:
    """How many audit events there are of each action, over the whole trail."""
    stmt = select(EVENTS.c.action, func.count()).group_by(EVENTS.c.action)
    return {action: count for action, count in conn.execute(stmt)}


def event_times(conn: Connection, action: str, since: datetime) -> list[object]:
    """``created_at`` of every ``action`` event since ``since`` (raw values)."""
    stmt = select(EVENTS.c.created_at).where(
        EVENTS.c.action == action, EVENTS.c.created_at >= since
    )
    return list(conn.execute(stmt).scalars())
