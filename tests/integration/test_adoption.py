"""Adopting a database written by other code: additive, idempotent, automatic."""
# ruff: noqa: E501 - the legacy SQL reads best one row per line

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from cleanup_core import CleanupService, DatabaseError, DatabaseUnavailableError, RunState, Settings
from cleanup_core.db import SCHEMA_VERSION, Database
from tests.conftest import NOW, TZ

LEGACY_SQL = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    portal_name TEXT,
    status TEXT,
    started_at TEXT,
    completed_at TEXT,
    extracted_total_tenders INTEGER,
    skipped_existing_total INTEGER,
    operator_note TEXT,
    scraper_version TEXT
);
CREATE TABLE tenders (
    id INTEGER PRIMARY KEY, run_id INTEGER, portal_name TEXT, tender_id TEXT, title TEXT,
    organisation TEXT, closing_date TEXT, emd_amount TEXT
);
INSERT INTO runs VALUES (1, 'Assam Tenders', 'running', '2026-11-20 09:15:02', NULL, 0, 0, 'a', 'v1');
INSERT INTO runs VALUES (2, 'Assam Tenders', 'running', '2026-11-20T09:15:02.123456', NULL, NULL, NULL, 'b', 'v1');
INSERT INTO runs VALUES (3, 'MP Tenders', 'running', '2026-11-21T09:15:02+05:30', NULL, 12, NULL, 'c', 'v2');
INSERT INTO runs VALUES (4, 'MP Tenders', 'completed', '2026-11-20 09:15:02Z', '2026-11-20 11:00:00', 40, 2, NULL, NULL);
INSERT INTO runs VALUES (5, 'Kerala', 'running', '2026-11-28 16:00:00', NULL, NULL, NULL, NULL, NULL);
INSERT INTO runs VALUES (6, 'Kerala', 'failed', NULL, NULL, NULL, NULL, 'no start', NULL);
INSERT INTO tenders VALUES (1, 3, 'MP Tenders', '2026_PWD_1', 'Road', 'PWD', '2026-12-01', '5000');
"""


def make_legacy_sqlite(path: Path) -> None:
    con = sqlite3.connect(path)
    con.executescript(LEGACY_SQL)
    con.commit()
    con.close()


def dump(path: Path, table: str, columns: str = "*") -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute(f"SELECT {columns} FROM {table} ORDER BY id").fetchall()
    finally:
        con.close()


def legacy_service(path: Path, checkpoint_dir: Path) -> CleanupService:
    settings = Settings.load(
        {}, database_url=f"sqlite:///{path}", checkpoint_dir=str(checkpoint_dir), timezone=TZ
    )
    return CleanupService(settings)


LEGACY_COLUMNS = (
    "id, portal_name, status, started_at, completed_at, extracted_total_tenders, "
    "skipped_existing_total, operator_note, scraper_version"
)


def test_legacy_sqlite_is_adopted_on_first_use_without_touching_its_data(tmp_path):
    path = tmp_path / "legacy.db"
    make_legacy_sqlite(path)
    runs_before = dump(path, "runs")
    tenders_before = dump(path, "tenders")

    summary = legacy_service(path, tmp_path).scan(now=NOW)  # the first call adopts

    states = {v.run_id: v.state for v in summary.verdicts}
    assert states == {
        1: RunState.DEAD,
        2: RunState.DEAD,
        3: RunState.RESUMABLE,
        5: RunState.YOUNG,
    }
    columns = {c["name"] for c in inspect(create_engine(f"sqlite:///{path}")).get_columns("runs")}
    assert {"last_heartbeat_at", "last_progress_at", "worker_id", "attempt"} <= columns
    assert {"operator_note", "scraper_version"} <= columns, "unknown legacy columns are kept"
    assert dump(path, "runs", LEGACY_COLUMNS) == runs_before, "legacy values unchanged"
    assert [row[:8] for row in dump(path, "tenders")] == tenders_before
    new_values = dump(path, "runs", "last_heartbeat_at, last_progress_at, worker_id, attempt")
    assert set(new_values) == {(None, None, None, None)}
    con = sqlite3.connect(path)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    event_columns = {r[1] for r in con.execute("PRAGMA table_info(run_events)")}
    con.close()
    assert {"runs", "tenders", "run_events", "cleanup_schema"} <= tables
    assert {
        "id",
        "run_id",
        "action",
        "actor",
        "from_status",
        "to_status",
        "created_at",
        "details",
    } <= event_columns


def test_opening_twice_changes_nothing_the_second_time(tmp_path):
    path = tmp_path / "legacy.db"
    make_legacy_sqlite(path)
    legacy_service(path, tmp_path).scan(now=NOW)

    con = sqlite3.connect(path)
    schema_before = con.execute("PRAGMA schema_version").fetchone()
    master_before = con.execute("SELECT * FROM sqlite_master ORDER BY name").fetchall()
    version_row_before = con.execute("SELECT * FROM cleanup_schema").fetchall()
    con.close()

    legacy_service(path, tmp_path).scan(now=NOW)  # a new process would do exactly this

    con = sqlite3.connect(path)
    assert con.execute("PRAGMA schema_version").fetchone() == schema_before
    assert con.execute("SELECT * FROM sqlite_master ORDER BY name").fetchall() == master_before
    assert con.execute("SELECT * FROM cleanup_schema").fetchall() == version_row_before
    assert version_row_before[0][1] == SCHEMA_VERSION
    con.close()


def test_fresh_database_gets_the_same_schema_as_an_adopted_one(tmp_path):
    legacy, fresh = tmp_path / "legacy.db", tmp_path / "fresh.db"
    make_legacy_sqlite(legacy)
    legacy_service(legacy, tmp_path).scan(now=NOW)
    Database(legacy_service(fresh, tmp_path).settings, create_missing=True).engine.dispose()

    def shape(path: Path) -> dict[str, set[str]]:
        insp = inspect(create_engine(f"sqlite:///{path}"))
        return {
            table: {c["name"] for c in insp.get_columns(table)}
            | {f"index:{i['name']}" for i in insp.get_indexes(table)}
            for table in ("runs", "tenders", "run_events", "cleanup_schema")
        }

    adopted, created = shape(legacy), shape(fresh)
    assert created["runs"] <= adopted["runs"]
    assert adopted["runs"] - created["runs"] == {"operator_note", "scraper_version"}
    assert adopted["run_events"] == created["run_events"]
    assert adopted["cleanup_schema"] == created["cleanup_schema"]


def test_processes_adopting_at_once_do_not_race(tmp_path):
    path = tmp_path / "legacy.db"
    make_legacy_sqlite(path)
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def open_db():
        service = legacy_service(path, tmp_path)
        barrier.wait()
        try:
            service.scan(now=NOW)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            service.db.dispose()

    threads = [threading.Thread(target=open_db) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert dump(path, "cleanup_schema", "id, version") == [(1, SCHEMA_VERSION)]


def test_missing_database_file_is_a_clear_error(tmp_path):
    service = legacy_service(tmp_path / "nope.db", tmp_path)
    with pytest.raises(DatabaseUnavailableError, match=r"nope\.db does not exist"):
        service.scan()
    assert not (tmp_path / "nope.db").exists(), "a typo in the path must not create a database"


def test_the_default_database_is_created_by_init_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    service = CleanupService(Settings.load({}))
    with pytest.raises(DatabaseUnavailableError, match=r"run `python -m cleanup_core init`"):
        service.scan()
    assert not (tmp_path / "data").exists(), "reading never creates a database"
    assert "created table runs" in service.init_database()
    assert service.scan().verdicts == ()
    assert service.init_database() == [], "init is idempotent"


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(DatabaseError, match="not a usable SQLite database"):
        legacy_service(path, tmp_path).scan()
    assert path.read_text().startswith("these are my notes"), "the file is left as it was"


def test_a_runs_table_without_id_is_refused_unchanged(tmp_path):
    path = tmp_path / "odd.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE runs (portal_name TEXT, status TEXT)")
    con.commit()
    con.close()
    with pytest.raises(DatabaseError, match="no 'id' column"):
        legacy_service(path, tmp_path).scan()
    assert [r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(runs)")] == [
        "portal_name",
        "status",
    ]


@pytest.mark.postgres
def test_legacy_postgres_tables_are_adopted(pg_database, tmp_path):
    """An operator's PostgreSQL tables with naive ``timestamp`` columns and extra columns."""
    engine = create_engine(pg_database, isolation_level="AUTOCOMMIT")
    schema = "legacy_" + tmp_path.name[-8:].replace("-", "_").lower()
    with engine.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
        conn.execute(text(f"SET search_path = {schema}"))
        conn.execute(
            text(
                "CREATE TABLE runs (id SERIAL PRIMARY KEY, portal_name TEXT, status TEXT, "
                "started_at TIMESTAMP, completed_at TIMESTAMP, extracted_total_tenders INTEGER, "
                "skipped_existing_total INTEGER, operator_note TEXT)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO runs (portal_name, status, started_at, extracted_total_tenders, "
                "operator_note) VALUES ('Assam', 'running', '2026-11-20 09:15:02', NULL, 'x'), "
                "('Assam', 'running', '2026-11-20 09:15:02', 3, 'y')"
            )
        )
    url = f"{pg_database}?options=-csearch_path%3D{schema}"
    settings = Settings.load({}, database_url=url, checkpoint_dir=str(tmp_path), timezone=TZ)
    service = CleanupService(settings)
    try:
        states = {v.run_id: v.state for v in service.scan(now=NOW).verdicts}
        assert states == {1: RunState.DEAD, 2: RunState.RESUMABLE}
        assert service.cleanup_run(1, now=NOW)
        with engine.connect() as conn:
            conn.execute(text(f"SET search_path = {schema}"))
            row = conn.execute(
                text("SELECT status, completed_at, operator_note FROM runs WHERE id = 1")
            ).one()
        # NOW is 12:00 UTC = 17:30 in Asia/Kolkata: naive columns get local wall-clock time
        assert row.status == "Timeout - Auto-cleaned"
        assert row.completed_at.isoformat() == "2026-11-28T17:30:00"
        assert row.operator_note == "x"
        assert service.revert_cleanup(1)
    finally:
        service.db.dispose()
        with engine.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()
