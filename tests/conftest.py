"""Shared fixtures: a real database per test on each backend, a fixed clock, and run factories.

Integration tests run on both SQLite (a real file) and PostgreSQL (a throw-away database on the
local server, one schema per test). ``CLEANUP_TEST_BACKENDS=sqlite`` limits a local run to SQLite;
CI always runs both.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from cleanup_core import CleanupService, Settings
from cleanup_core.db import Database
from cleanup_core.models import Run

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TZ = "Asia/Kolkata"
PG_ADMIN_URL = os.environ.get(
    "CLEANUP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = [
    b.strip() for b in os.environ.get("CLEANUP_TEST_BACKENDS", "sqlite,postgresql").split(",")
]


def ago(**delta: float) -> datetime:
    """A moment before the tests' fixed ``NOW``."""
    return NOW - timedelta(**delta)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throw-away PostgreSQL database for this test run; dropped at the end."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"cleanup_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: an SQLite file, or a fresh schema in the PostgreSQL test database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runs.db'}"
        return
    base = request.getfixturevalue("pg_database")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def backend(db_url: str) -> str:
    return make_url(db_url).get_backend_name()


@pytest.fixture
def checkpoint_dir(tmp_path: Path) -> Path:
    path = tmp_path / "checkpoints"
    path.mkdir()
    return path


@pytest.fixture
def settings(db_url: str, checkpoint_dir: Path) -> Settings:
    return Settings.load(
        {},
        database_url=db_url,
        checkpoint_dir=str(checkpoint_dir),
        timezone=TZ,
        busy_timeout_seconds=2,
    )


@pytest.fixture
def service(settings: Settings) -> Iterator[CleanupService]:
    svc = CleanupService(settings, database=Database(settings, create_missing=True))
    yield svc
    svc.db.dispose()


class Runs:
    """Writes run rows straight into the database, as a scraper would."""

    def __init__(self, service: CleanupService):
        self.service = service

    def add(self, portal_name: str = "Assam Tenders", **values: Any) -> int:
        row = {"portal_name": portal_name, "status": "running", "started_at": ago(hours=48)}
        row.update(values)
        with self.service.db.write() as conn:
            return conn.execute(insert(Run.__table__).values(**row).returning(Run.id)).scalar_one()

    def update(self, run_id: int, **values: Any) -> None:
        table = Run.__table__
        with self.service.db.write() as conn:
            conn.execute(table.update().where(table.c.id == run_id).values(**values))

    def get(self, run_id: int) -> dict[str, Any] | None:
        table = Run.__table__
        with self.service.db.read() as conn:
            row = conn.execute(table.select().where(table.c.id == run_id)).first()
        return None if row is None else dict(row._mapping)

    def count(self, table_name: str = "runs", where: str = "1=1") -> int:
        with self.service.db.read() as conn:
            return conn.execute(
                text(f"SELECT count(*) FROM {table_name} WHERE {where}")
            ).scalar_one()


@pytest.fixture
def runs(service: CleanupService) -> Runs:
    return Runs(service)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The browser tests run in their own pytest process, ``python -m pytest tests/browser``
    (pytest-playwright's sync API must not share one with other tests): a plain ``pytest``
    leaves that folder out unless it is named on the command line."""
    browser_tests = Path(__file__).parent / "browser"
    if collection_path != browser_tests:
        return None
    asked = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    return not any(path == browser_tests or browser_tests in path.parents for path in asked)
