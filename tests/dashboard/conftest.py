"""Fixtures for the dashboard's state handlers, called directly (no browser, no server).

The dashboard's backend singletons (``backend.service()`` / ``backend.accounts()``) read the
``CLEANUP_*`` environment, so each test points that environment at its own SQLite file and
checkpoint folder and clears the singletons. Runs are seeded relative to the real clock (the
dashboard judges ages with the database's "now") through a service built from the same settings,
so naive timestamps are written in the same zone the dashboard reads them in.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cleanup_core import CleanupService, Settings, repository
from cleanup_core.accounts import ADMIN, VIEWER
from cleanup_core.checkpoints import checkpoint_path
from cleanup_core.db import Database
from tender_dashboard_reflex import backend
from tests.dashboard.support import (
    ADMIN_NAME,
    RECORD_ARGV,
    TIMEZONE,
    VIEWER_NAME,
    Dash,
    LiveRuns,
    hours_ago,
    password_hash,
)


@pytest.fixture
def dash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dash]:
    for name in list(os.environ):
        if name.startswith("CLEANUP_"):
            monkeypatch.delenv(name)
    checkpoint_dir = tmp_path / "checkpoints"
    checkpoint_dir.mkdir()
    record = tmp_path / "launched.json"
    recorder = f"{{python}} {shlex.quote(str(RECORD_ARGV))} {shlex.quote(str(record))}"
    env = {
        "CLEANUP_DATABASE_URL": f"sqlite:///{tmp_path / 'dashboard.db'}",
        "CLEANUP_CHECKPOINT_DIR": str(checkpoint_dir),
        "CLEANUP_TIMEZONE": TIMEZONE,
        "CLEANUP_LOG_DIR": str(tmp_path / "logs"),
        "CLEANUP_RESUME_COMMAND": f"{recorder} resume {{portal}} {{run_id}}",
        "CLEANUP_START_COMMAND": f"{recorder} start {{portal}}",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.load()
    seeder = CleanupService(settings, database=Database(settings, create_missing=True))
    with seeder.db.write() as conn:
        for username, role in ((ADMIN_NAME, ADMIN), (VIEWER_NAME, VIEWER)):
            repository.insert_user(
                conn,
                {
                    "username": username,
                    "password_hash": password_hash(),
                    "role": role,
                    "created_at": datetime.now(UTC),
                },
            )
    backend.service.cache_clear()
    backend.accounts.cache_clear()
    try:
        yield Dash(seeder, LiveRuns(seeder), checkpoint_dir, record)
    finally:
        if backend.service.cache_info().currsize:
            backend.service().db.dispose()
        backend.service.cache_clear()
        backend.accounts.cache_clear()
        seeder.db.dispose()


@pytest.fixture
def fleet(dash: Dash) -> dict[str, int]:
    """One running run in each state, plus finished runs, on several portals."""
    corrupt = checkpoint_path(dash.checkpoint_dir, "West Bengal eTender")
    assert corrupt is not None
    corrupt.write_text('{"tenders": [{"tender_id": "WB-1"')
    add = dash.runs.add
    return {
        "dead": add("Assam Tenders", age_hours=30),
        "dead_old": add("CPPP Central", age_hours=50, extracted_total_tenders=None),
        "resumable": add("MP Tenders", age_hours=40, extracted_total_tenders=7),
        "young": add("Kerala eTenders", age_hours=2),
        "alive": add(
            "Gujarat Tenders",
            age_hours=90,
            last_heartbeat_at=datetime.now(UTC) - timedelta(minutes=3),
            worker_id="scraper-01:4242",
        ),
        "attention": add("West Bengal eTender", age_hours=31),
        "completed": add(
            "Assam Tenders",
            status="completed",
            age_hours=80,
            completed_at=hours_ago(78),
            extracted_total_tenders=120,
        ),
        "finished": add(
            "Tamil Nadu Tenders", status="completed", age_hours=20, completed_at=hours_ago(18)
        ),
    }
