"""Stored tenders: how many each run stored, which a portal already has, a run's own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, insert, select

from cleanup_core.records import TENDER_FIELDS
from cleanup_core.storage.common import (
    CHUNK,
    DELETED,
    TENDERS,
    chunks,
    current_tenders,
    tenders_link_runs,
)


def stored_tenders_query(run_ids: Sequence[int] | None = None) -> Select[Any]:
    """How many tenders each of ``run_ids`` stored (its current incarnation's): one indexed
    count (``ix_tenders_run_id``), grouped by run. Without ``run_ids``: the statement with an
    expanding ``ids`` parameter, built once (it runs in every pre-scrape check)."""
    ids: Any = bindparam("ids", expanding=True) if run_ids is None else run_ids
    floors = (
        select(DELETED.c.run_id, func.max(DELETED.c.last_tender_id).label("floor"))
        .where(DELETED.c.run_id.in_(ids))
        .group_by(DELETED.c.run_id)
        .subquery()
    )
    return (
        select(TENDERS.c.run_id, func.count().label("stored"))
        .select_from(TENDERS.outerjoin(floors, floors.c.run_id == TENDERS.c.run_id))
        .where(TENDERS.c.run_id.in_(ids), TENDERS.c.id > func.coalesce(floors.c.floor, 0))
        .group_by(TENDERS.c.run_id)
    )


_STORED_TENDERS = stored_tenders_query()


def stored_tender_counts(conn: Connection, run_ids: Sequence[int]) -> dict[int, int] | None:
    """Tenders stored per run (runs without any are left out), or ``None`` when the
    ``tenders`` table cannot link tenders to runs."""
    if not tenders_link_runs(conn):
        return None
    counts: dict[int, int] = {}
    for chunk in chunks(run_ids):
        counts.update(
            (run_id, count) for run_id, count in conn.execute(_STORED_TENDERS, {"ids": chunk})
        )
    return counts


def stored_tender_ids(conn: Connection, portal_name: str, tender_ids: Sequence[str]) -> set[str]:
    """Which of ``tender_ids`` the portal already has in ``tenders`` (from any run)."""
    found: set[str] = set()
    for start in range(0, len(tender_ids), CHUNK):
        chunk = tender_ids[start : start + CHUNK]
        stmt = select(TENDERS.c.tender_id).where(
            TENDERS.c.portal_name == portal_name, TENDERS.c.tender_id.in_(chunk)
        )
        found.update(conn.execute(stmt).scalars())
    return found


def run_tenders(conn: Connection, run_id: int) -> list[dict[str, Any]]:
    """The tenders a run stored (not those of a deleted run that had its id), oldest first, as
    dicts of ``TENDER_FIELDS``."""
    columns = [TENDERS.c[name] for name in TENDER_FIELDS]
    stmt = select(*columns).where(current_tenders(run_id)).order_by(TENDERS.c.id)
    return [dict(row._mapping) for row in conn.execute(stmt)]


def insert_tenders(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append tenders (each a dict of ``TENDER_FIELDS`` plus ``run_id`` and ``portal_name``)."""
    if rows:
        conn.execute(insert(TENDERS), list(rows))
