"""Pointed at the wrong database - another application's, an empty one, a path with a typo - every
command refuses with one clear line and creates nothing there: no table, no WAL switch, no file.
The schema is created only by ``init`` (and the demo), and adopted where a ``runs`` table exists.
On a real SQLite file and on a schema of the real PostgreSQL server."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cleanup_core import (
    CleanupService,
    DatabaseError,
    NoRunsTableError,
    Settings,
    load_demo,
    track_run,
)
from cleanup_core.alerts import Monitor
from tests.conftest import BACKENDS, TZ

ROOT = Path(__file__).resolve().parents[2]
NOT_OURS = "no runs table in "
QUESTION = "is this the scrapers' database?"

# Every command that reads (or would write) runs, as an operator or a scheduler types it.
COMMANDS = [
    ("status", "--fail-if-dead"),
    ("scan",),
    ("check", "Assam Tenders"),
    ("history",),
    ("watch", "--once"),
    ("clean", "--auto"),
    ("admin", "create", "alice", "--password-stdin"),
    ("admin", "list"),
]


@dataclass
class Wrong:
    """A database this tool must not touch, and a way to see that it was not touched."""

    url: str
    fingerprint: Callable[[], object]
    missing_file: Path | None = None


def sqlite_fingerprint(path: Path) -> Callable[[], object]:
    def take() -> object:
        if not path.exists():
            return sorted(os.listdir(path.parent))
        con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            schema = con.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name")
            schema = schema.fetchall()
            journal = con.execute("PRAGMA journal_mode").fetchone()
        finally:
            con.close()
        stat = path.stat()
        return (
            schema,
            journal,  # not switched to WAL
            hashlib.sha256(path.read_bytes()).hexdigest(),
            stat.st_size,
            stat.st_mtime_ns,
            sorted(os.listdir(path.parent)),  # no -wal / -shm left behind
        )

    return take


def pg_fingerprint(admin_url: str, schema: str) -> Callable[[], object]:
    def take() -> object:
        engine = create_engine(admin_url)
        try:
            with engine.connect() as conn:
                return conn.execute(
                    text(
                        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n "
                        "ON n.oid = c.relnamespace WHERE n.nspname = :schema ORDER BY 1"
                    ),
                    {"schema": schema},
                ).all()
        finally:
            engine.dispose()

    return take


CASES = [
    case
    for case in ("sqlite-notes", "sqlite-missing", "postgresql-empty", "postgresql-notes")
    if case.split("-")[0] in BACKENDS
]


@pytest.fixture(params=CASES)
def wrong(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Wrong]:
    backend, kind = request.param.split("-")
    if backend == "sqlite":
        path = tmp_path / "db" / ("notes.db" if kind == "notes" else "tendrs.db")
        path.parent.mkdir()
        if kind == "notes":  # another application's database
            con = sqlite3.connect(path)
            con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
            con.execute("INSERT INTO notes (body) VALUES ('buy milk')")
            con.commit()
            con.close()
        yield Wrong(
            f"sqlite:///{path}", sqlite_fingerprint(path), path if kind == "missing" else None
        )
        return
    base = request.getfixturevalue("pg_database")
    schema = f"w_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        if kind == "notes":
            conn.execute(text(f'CREATE TABLE "{schema}".notes (id SERIAL PRIMARY KEY, body TEXT)'))
            conn.execute(text(f"INSERT INTO \"{schema}\".notes (body) VALUES ('buy milk')"))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield Wrong(url.render_as_string(hide_password=False), pg_fingerprint(base, schema))
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def cli(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CLEANUP_")}
    env.update(PYTHONPATH=str(ROOT), CLEANUP_TIMEZONE=TZ)
    return subprocess.run(
        [sys.executable, "-m", "cleanup_core", *args, "--db", url],
        input="a-long-enough-password\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


def test_every_command_refuses_the_wrong_database_and_creates_nothing(wrong, tmp_path):
    before = wrong.fingerprint()
    for args in COMMANDS:
        done = cli(wrong.url, tmp_path, *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        error = done.stderr.strip().splitlines()[-1]
        if wrong.missing_file is not None:
            assert error.startswith(f"error: The database file {wrong.missing_file} does not "), (
                args,
                done.stderr,
            )
        else:
            assert error.startswith(f"error: {NOT_OURS}"), (args, done.stderr)
            assert QUESTION in error
        assert "python -m cleanup_core init" in error, "it says what to do"
        assert "Traceback" not in done.stderr
        assert wrong.fingerprint() == before, f"{args} changed the database"


def settings_for(url: str, tmp_path: Path) -> Settings:
    return Settings.load({}, database_url=url, checkpoint_dir=str(tmp_path), timezone=TZ)


def test_the_tracker_and_the_monitor_refuse_it_too(wrong, tmp_path):
    before = wrong.fingerprint()
    settings = settings_for(wrong.url, tmp_path)
    expected = "does not exist" if wrong.missing_file else QUESTION
    with (
        pytest.raises(DatabaseError, match=expected) as raised,
        track_run("Assam Tenders", settings=settings),
    ):
        pytest.fail("a run was claimed in a database without a runs table")
    if wrong.missing_file is None:
        assert isinstance(raised.value, NoRunsTableError)
    service = CleanupService(settings)
    try:
        with pytest.raises(DatabaseError, match=expected):
            Monitor(service).run_cycle()
    finally:
        service.db.dispose()
    assert wrong.fingerprint() == before


def test_init_sets_up_an_empty_or_missing_database_once(wrong, tmp_path):
    before = wrong.fingerprint()
    first = cli(wrong.url, tmp_path, "init")
    if wrong.missing_file is None and "notes" in str(before):
        # Another application's tables: init asks for --force and still creates nothing.
        assert first.returncode == 1, first.stderr
        assert NOT_OURS in first.stderr and "init --force" in first.stderr
        assert wrong.fingerprint() == before
        first = cli(wrong.url, tmp_path, "init", "--force")
    assert first.returncode == 0, first.stderr
    assert "created table runs" in first.stdout
    second = cli(wrong.url, tmp_path, "init")
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout
    status = cli(wrong.url, tmp_path, "status", "--fail-if-dead")
    assert status.returncode == 0, status.stderr
    assert "Dead runs: 0" in status.stdout
    engine = create_engine(wrong.url)
    try:
        with engine.connect() as conn:
            if "notes" in str(before):
                assert conn.execute(text("SELECT body FROM notes")).scalars().all() == [
                    "buy milk"
                ], "the other application's rows are untouched"
            assert conn.execute(text("SELECT count(*) FROM runs")).scalar_one() == 0
    finally:
        engine.dispose()


def test_init_adopts_a_scrapers_database_and_reads_it(tmp_path):
    path = tmp_path / "scrapers.db"
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, portal_name TEXT, status TEXT, "
        "started_at TEXT, completed_at TEXT, extracted_total_tenders INTEGER, "
        "skipped_existing_total INTEGER)"
    )
    con.execute("INSERT INTO runs VALUES (1, 'Assam Tenders', 'completed', NULL, NULL, 3, 0)")
    con.commit()
    con.close()
    first = cli(f"sqlite:///{path}", tmp_path, "init")
    assert first.returncode == 0, first.stderr
    assert "added column runs.last_heartbeat_at" in first.stdout
    assert "created table runs" not in first.stdout
    again = cli(f"sqlite:///{path}", tmp_path, "init")
    assert "nothing to do" in again.stdout


def test_the_demo_refuses_another_applications_database(tmp_path):
    path = tmp_path / "notes.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    con.commit()
    con.close()
    before = sqlite_fingerprint(path)()
    done = cli(f"sqlite:///{path}", tmp_path, "demo")
    assert done.returncode == 1
    assert NOT_OURS in done.stderr and QUESTION in done.stderr
    assert sqlite_fingerprint(path)() == before


def test_the_default_database_is_created_by_init_not_by_reading(tmp_path):
    env = {name: value for name, value in os.environ.items() if not name.startswith("CLEANUP_")}
    env["PYTHONPATH"] = str(ROOT)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cleanup_core", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )

    status = run("status")
    assert status.returncode == 1
    assert "python -m cleanup_core init" in status.stderr
    assert not (tmp_path / "data").exists(), "reading never creates the default database"
    init = run("init")
    assert init.returncode == 0, init.stderr
    assert (tmp_path / "data" / "tenders.db").exists()
    assert run("status").returncode == 0


def test_the_demo_sets_up_a_new_database_itself(tmp_path):
    path = tmp_path / "new" / "demo.db"
    service = CleanupService(settings_for(f"sqlite:///{path}", tmp_path / "checkpoints"))
    try:
        report = load_demo(service)
        assert report.runs["dead"], "the demo fleet is there"
        assert service.scan().dead
    finally:
        service.db.dispose()
