"""What a deleted run owned: the highest audit-event and tender id under its id when a person
deleted it (``deleted_runs``). A later run that gets the same id owns only rows above these
watermarks (``common.current_events`` / ``current_tenders``), so it inherits nothing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection, case, delete, exists, func, insert, select

from cleanup_core.models import DemoRun, table
from cleanup_core.storage.common import DELETED, EVENTS, RUNS, TENDERS, chunks, tenders_link_runs
from cleanup_core.vocabulary import AuditAction

_DEMO = table(DemoRun)


def record_deletions(
    conn: Connection, portals: Mapping[int, str | None], *, deleted_at: datetime
) -> None:
    """After deleting the runs ``portals`` names (id -> portal) and writing their delete events:
    remember the highest event id (the delete event) and tender id each one owned, so a run that
    gets the id later inherits neither; and drop their demo marks (the demo never replaces a
    deleted run's rows)."""
    ids = list(portals)
    last_event: dict[int, int] = {}
    last_tender: dict[int, int] = {}
    link_tenders = tenders_link_runs(conn)
    for chunk in chunks(ids):
        newest = select(EVENTS.c.run_id, func.max(EVENTS.c.id)).where(EVENTS.c.run_id.in_(chunk))
        last_event.update(
            (run_id, event_id)
            for run_id, event_id in conn.execute(newest.group_by(EVENTS.c.run_id))
        )
        if link_tenders:
            newest = select(TENDERS.c.run_id, func.max(TENDERS.c.id)).where(
                TENDERS.c.run_id.in_(chunk)
            )
            last_tender.update(
                (run_id, tender_id)
                for run_id, tender_id in conn.execute(newest.group_by(TENDERS.c.run_id))
            )
        conn.execute(delete(_DEMO).where(_DEMO.c.run_id.in_(chunk)))
    if ids:
        conn.execute(
            insert(DELETED),
            [
                {
                    "run_id": run_id,
                    "portal_name": portals[run_id],
                    "deleted_at": deleted_at,
                    "last_event_id": last_event.get(run_id),
                    "last_tender_id": last_tender.get(run_id),
                }
                for run_id in ids
            ],
        )


def record_earlier_deletions(conn: Connection) -> None:
    """Schema version 4: watermarks for the runs deleted before the tool kept them, from their
    delete events. Every event up to a delete event is the deleted run's; its tenders are known
    only while no run has that id again (then every tender linked to the id is the deleted
    runs'), otherwise they stay with the run that has the id now."""
    id_is_free = ~exists().where(RUNS.c.id == EVENTS.c.run_id)
    highest_tender = (
        select(func.max(TENDERS.c.id)).where(TENDERS.c.run_id == EVENTS.c.run_id).scalar_subquery()
    )
    rows = select(
        EVENTS.c.run_id,
        EVENTS.c.portal_name,
        EVENTS.c.created_at,
        EVENTS.c.id,
        case((id_is_free, highest_tender)),
    ).where(EVENTS.c.action == AuditAction.DELETE)
    columns = ["run_id", "portal_name", "deleted_at", "last_event_id", "last_tender_id"]
    conn.execute(DELETED.insert().from_select(columns, rows))
