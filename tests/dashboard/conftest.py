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
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cleanup_core import CleanupService, Settings
from cleanup_core.accounts import ADMIN, VIEWER
from cleanup_core.db import Database
from cleanup_core.storage import accounts as stored_accounts
from tender_dashboard_reflex import backend
from tests.dashboard.support import (
    ADMIN_NAME,
    RECORD_ARGV,
    TIMEZONE,
    VIEWER_NAME,
    Dash,
    LiveRuns,
    password_hash,
    watch_effects,
)
from tests.helpers.live_fleet import seed_live_fleet


@pytest.fixture(autouse=True)
def effects(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the handlers show and where they send the browser, recorded (see ``toast``)."""
    watch_effects(monkeypatch)


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
        # Each handler test sees a change at once; the shared scan's reuse is tested on its own
        # (tests/dashboard/test_live.py sets it back).
        "CLEANUP_DASHBOARD_SCAN_SECONDS": "0",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.load()
    seeder = CleanupService(settings, database=Database(settings, create_missing=True))
    with seeder.db.write() as conn:
        for username, role in ((ADMIN_NAME, ADMIN), (VIEWER_NAME, VIEWER)):
            stored_accounts.insert_user(
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
    return seed_live_fleet(dash.runs.add, dash.checkpoint_dir)
