"""The hot queries use the indexes adoption creates (benchmarks/ shows why it matters: a
pre-scrape check on a million-run table reads one portal's running rows, not the table)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from cleanup_core.models import Run, RunEvent
from cleanup_core.storage import events, runs, tenders


def plan(conn: Any, statement: Any) -> str:
    """The database's plan for ``statement`` as one lower-case string."""
    sql = str(statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all()
        return " | ".join(str(row[-1]) for row in rows).lower()
    # Small test tables make a sequential scan cheapest; forbid it to see whether the index
    # can serve the query at all.
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    rows = conn.exec_driver_sql(f"EXPLAIN {sql}").all()
    return " | ".join(str(row[0]) for row in rows).lower()


@pytest.fixture
def conn(service, runs):
    for i in range(30):
        runs.add(f"Portal {i % 3}", status="running" if i % 2 else "completed")
    with service.db.read() as connection:
        yield connection


def running_of_portal() -> Any:
    return runs.running_query("Portal 1")


@pytest.mark.parametrize(
    ("name", "statement", "index"),
    [
        (
            "pre-scrape check: one portal's running runs",
            running_of_portal,
            "ix_runs_running_portal",
        ),
        (
            "scan: every running run",
            lambda: runs.running_query(),
            ("ix_runs_running_portal", "ix_runs_status"),
        ),
        (
            "portals page: each portal's newest run",
            lambda: select(Run.__table__.c.portal_name, func.max(Run.__table__.c.id)).group_by(
                Run.__table__.c.portal_name
            ),
            "ix_runs_portal_id",
        ),
        (
            "history of one run (its current incarnation)",
            lambda: (
                select(RunEvent.__table__)
                .where(events.events_filter(run_id=5))
                .order_by(RunEvent.__table__.c.id.desc())
            ),
            "ix_run_events_run_id",
        ),
        (
            "stored tenders of the runs that would otherwise be dead",
            lambda: tenders.stored_tenders_query([3, 5, 7]),
            "ix_tenders_run_id",
        ),
        (
            "history of one portal, newest first",
            lambda: (
                select(RunEvent.__table__)
                .where(RunEvent.__table__.c.portal_name == "Portal 1")
                .order_by(*events.HISTORY_ORDER)
                .limit(50)
            ),
            # On tiny test tables PostgreSQL may as well filter by the older (portal, id) index
            # and sort the few rows; either way an index serves it, never a scan of the trail.
            ("ix_run_events_portal_created", "ix_run_events_portal"),
        ),
        (
            "history, newest first",
            lambda: select(RunEvent.__table__).order_by(*events.HISTORY_ORDER).limit(50),
            "ix_run_events_created",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_hot_queries_use_their_index(conn, name, statement, index):
    chosen = plan(conn, statement())
    assert any(
        candidate in chosen for candidate in (index if isinstance(index, tuple) else (index,))
    ), f"{name}: {chosen}"
