"""Start times other code wrote as bare numbers, in a real legacy ``runs`` table on both backends.

Scrapers' own tables often hold ``20261201`` (a date), ``20261201093000`` (wall-clock time) or
epoch numbers, as text or as integers (an SQLite ``TIMESTAMP`` column turns digits into
integers). Read as epoch seconds, ``20261201`` is August 1970: a run started today would look
493,000 hours old and be cleaned. On PostgreSQL the tool's own ``timestamptz`` column cannot
hold these values, but an operator's legacy table with a ``text`` column can.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from cleanup_core import CLEANED, CleanupService, RunState
from cleanup_core.cli import cli
from tests.conftest import BACKENDS, NOW, TZ

# How a legacy table declares started_at: SQLite converts what is stored by the column's
# affinity (TEXT keeps text, TIMESTAMP turns digits into numbers, no type keeps both as written).
COLUMN_TYPES = {"sqlite": ["TEXT", "TIMESTAMP", ""], "postgresql": ["TEXT"]}
LEGACY_TABLES = [(b, t) for b in BACKENDS for t in COLUMN_TYPES[b]]
legacy_tables = pytest.mark.parametrize(
    ("db_url", "column_type"), LEGACY_TABLES, indirect=["db_url"], ids=repr
)

# NOW is 2026-11-28 12:00 UTC, 17:30 in Asia/Kolkata (the zone naive values are read in).
NEVER_DEAD = [
    "20261128",  # today, as a date: the run may have started a minute ago
    20261128,
    "20261201",
    20261201,
    "1",
    "1.5",
    1,
    1.5,
    0,
]


@pytest.fixture
def legacy(db_url: str, column_type: str, service: CleanupService) -> CleanupService:
    """The operator's own ``runs`` table, made before the tool first opens the database, with
    ``started_at`` declared as ``column_type``; the tool adopts it on first use."""
    engine = create_engine(db_url)
    key = "INTEGER PRIMARY KEY" if service.db.is_sqlite else "SERIAL PRIMARY KEY"
    with engine.begin() as conn:
        conn.execute(
            text(
                f"CREATE TABLE runs (id {key}, portal_name TEXT, status TEXT, "
                f"started_at {column_type}, completed_at {column_type}, "
                "extracted_total_tenders INTEGER, skipped_existing_total INTEGER)"
            )
        )
    engine.dispose()
    return service


def store(service: CleanupService, started_at: Any, portal: str = "Assam Tenders") -> int:
    """A running row as the scraper wrote it (PostgreSQL binds text into its text column)."""
    value = started_at if service.db.is_sqlite else str(started_at)
    with service.db.write() as conn:
        return conn.execute(
            text(
                "INSERT INTO runs (portal_name, status, started_at) "
                "VALUES (:portal, 'running', :started_at) RETURNING id"
            ),
            {"portal": portal, "started_at": value},
        ).scalar_one()


def stored(service: CleanupService, run_id: int) -> tuple[Any, Any]:
    with service.db.read() as conn:
        row = conn.execute(
            text("SELECT status, completed_at FROM runs WHERE id = :id"), {"id": run_id}
        ).one()
    return (row.status, row.completed_at)


@legacy_tables
@pytest.mark.parametrize("started_at", NEVER_DEAD, ids=repr)
def test_a_start_that_names_no_single_moment_needs_attention_and_is_never_cleaned(
    legacy, started_at
):
    run_id = store(legacy, started_at)

    (verdict,) = legacy.scan(now=NOW).verdicts
    assert verdict.state is RunState.ATTENTION, verdict.summary
    assert "start time is unreadable" in verdict.summary
    assert str(started_at) in verdict.summary
    assert legacy.check_portal("Assam Tenders", now=NOW).action.value == "wait"
    assert legacy.cleanup_if_needed(now=NOW).cleaned == ()
    assert legacy.cleanup_run(run_id, now=NOW) is False
    assert stored(legacy, run_id) == ("running", None)


@legacy_tables
@pytest.mark.parametrize(
    ("started_at", "state", "age_hours"),
    [
        (20261128093000, RunState.YOUNG, 8.0),  # this morning, not the year 2612
        ("20261128093000", RunState.YOUNG, 8.0),
        (202611280930, RunState.YOUNG, 8.0),
        (20261126093000, RunState.DEAD, 56.0),
        ("202611260930", RunState.DEAD, 56.0),
    ],
    ids=repr,
)
def test_compact_date_and_time_is_read_as_wall_clock_time(legacy, started_at, state, age_hours):
    run_id = store(legacy, started_at)

    (verdict,) = legacy.scan(now=NOW).verdicts
    assert verdict.state is state, verdict.summary
    assert verdict.age_hours == pytest.approx(age_hours)
    cleaned = legacy.cleanup_if_needed(now=NOW).cleaned
    assert cleaned == ((run_id,) if state is RunState.DEAD else ())
    assert stored(legacy, run_id)[0] == ("running" if state is RunState.YOUNG else CLEANED)


@legacy_tables
def test_clean_auto_leaves_every_unreadable_start_alone(legacy, db_url, checkpoint_dir):
    """The scheduler's command, judged by the real clock: none of these is ever dead."""
    ids = [store(legacy, value, portal=f"Portal {i}") for i, value in enumerate(NEVER_DEAD)]
    argv = ["--db", db_url, "--checkpoint-dir", str(checkpoint_dir), "--json"]
    runner = CliRunner(env={"CLEANUP_TIMEZONE": TZ})

    scanned = runner.invoke(cli, ["scan", *argv], catch_exceptions=False)
    assert json.loads(scanned.output)["attention_count"] == len(NEVER_DEAD)
    result = runner.invoke(cli, ["clean", "--auto", *argv], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["cleaned"] == []
    assert [stored(legacy, run_id) for run_id in ids] == [("running", None)] * len(ids)
