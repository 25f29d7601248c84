"""The demo fleet's marks on the runs it wrote (``demo_runs``), so loading the demo again
replaces exactly its own rows and never a real run's."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, exists, func, insert, select

from cleanup_core.models import DemoRun, table
from cleanup_core.records import DemoMark, RunFacts
from cleanup_core.storage.checkpoints import forget_orphans
from cleanup_core.storage.common import (
    DELETED,
    EVENTS,
    RUNS,
    TENDERS,
    chunks,
    deletion_floor,
)
from cleanup_core.storage.runs import FACT_COLUMNS

_DEMO = table(DemoRun)


def demo_marks(conn: Connection) -> list[DemoMark]:
    """Every demo mark with the run row that has its id now, if any, for the demo to tell its
    own runs from others'."""
    stmt = (
        select(
            _DEMO.c.run_id,
            _DEMO.c.portal_name,
            _DEMO.c.started_at,
            RUNS.c.id.is_not(None),
            RUNS.c.portal_name,
            RUNS.c.started_at,
        )
        .select_from(_DEMO.outerjoin(RUNS, RUNS.c.id == _DEMO.c.run_id))
        .order_by(_DEMO.c.run_id)
    )
    return [DemoMark(*row) for row in conn.execute(stmt)]


def unmarked_runs_of_worker(conn: Connection, worker_prefix: str) -> list[RunFacts]:
    """Runs written by workers whose id starts with ``worker_prefix`` that carry no demo mark
    and whose id no deleted run had (the demo's rows from before it marked them)."""
    stmt = select(*FACT_COLUMNS).where(
        RUNS.c.worker_id.startswith(worker_prefix, autoescape=True),
        ~exists().where(_DEMO.c.run_id == RUNS.c.id),
        ~exists().where(DELETED.c.run_id == RUNS.c.id),
    )
    return [RunFacts(*row) for row in conn.execute(stmt.order_by(RUNS.c.id))]


def mark_demo_run(
    conn: Connection, run_id: int, *, portal_name: str, started_at: datetime, fresh: bool = True
) -> None:
    """Mark ``run_id`` as the demo's. ``fresh``: the demo just inserted it, so the tenders and
    events already linked to the id are someone else's and stay below its floors; otherwise
    (a demo run written before the marks existed) everything linked to it is the demo's."""
    if fresh:
        tender_floor: Any = _floor_of(TENDERS, run_id)
        event_floor: Any = _floor_of(EVENTS, run_id)
    else:
        tender_floor = event_floor = 0
    conn.execute(
        insert(_DEMO).values(
            run_id=run_id,
            portal_name=portal_name,
            started_at=started_at,
            tender_floor=tender_floor,
            event_floor=event_floor,
        )
    )


def _floor_of(target: Table, run_id: int) -> Any:
    """SQL: the highest id among ``target``'s rows linked to ``run_id`` (0: none)."""
    return (
        select(func.coalesce(func.max(target.c.id), 0))
        .where(target.c.run_id == run_id)
        .scalar_subquery()
    )


def delete_demo_runs(conn: Connection, run_ids: Sequence[int]) -> None:
    """Remove the demo's own runs with the tenders and events each wrote: only rows above the
    run's demo floors and in its current incarnation. Only for runs the demo marked (and still
    are the ones it marked), which a person asked to replace; the tool never does this to real
    runs."""
    for chunk in chunks(run_ids):
        for target, demo_floor, watermark in (
            (TENDERS, _DEMO.c.tender_floor, DELETED.c.last_tender_id),
            (EVENTS, _DEMO.c.event_floor, DELETED.c.last_event_id),
        ):
            own_floor = select(demo_floor).where(_DEMO.c.run_id == target.c.run_id)
            conn.execute(
                delete(target).where(
                    target.c.run_id.in_(chunk),
                    target.c.id > own_floor.scalar_subquery(),
                    target.c.id > deletion_floor(watermark, target.c.run_id),
                )
            )
        conn.execute(delete(RUNS).where(RUNS.c.id.in_(chunk)))
        conn.execute(delete(_DEMO).where(_DEMO.c.run_id.in_(chunk)))
        forget_orphans(conn, chunk)


def forget_demo_marks(conn: Connection, run_ids: Sequence[int]) -> None:
    """Drop demo marks whose run is gone or is not the demo's any more; its rows stay."""
    for chunk in chunks(run_ids):
        conn.execute(delete(_DEMO).where(_DEMO.c.run_id.in_(chunk)))
