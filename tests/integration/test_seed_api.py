"""The seed's module-level functions, configured only through CLEANUP_* variables."""

import sqlite3
from datetime import datetime, timedelta

import pytest

import cleanup_core
from cleanup_core import (
    check_portal_resume,
    cleanup_if_needed,
    cleanup_run,
    get_history,
    get_stuck_run_count,
    get_stuck_run_summary,
    revert_cleanup,
)


@pytest.fixture
def legacy_env(tmp_path, monkeypatch):
    """A legacy SQLite file with naive local timestamps, as ``datetime.now()`` code writes."""
    path = tmp_path / "tenders.db"
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, portal_name TEXT, status TEXT, "
        "started_at TEXT, completed_at TEXT, extracted_total_tenders INTEGER, "
        "skipped_existing_total INTEGER)"
    )
    now = datetime.now()
    rows = [
        (1, "Assam Tenders", "running", now - timedelta(hours=30), 0, 0),
        (2, "Assam Tenders", "running", now - timedelta(hours=30), 5, 0),
        (3, "MP Tenders", "running", now - timedelta(hours=1), 0, 0),
        (4, "Kerala", "running", now - timedelta(hours=100), None, None),
    ]
    con.executemany(
        "INSERT INTO runs (id, portal_name, status, started_at, extracted_total_tenders, "
        "skipped_existing_total) VALUES (?, ?, ?, ?, ?, ?)",
        [(i, p, s, str(t), e, k) for i, p, s, t, e, k in rows],
    )
    con.commit()
    con.close()
    monkeypatch.setenv("CLEANUP_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("CLEANUP_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.delenv("CLEANUP_TIMEZONE", raising=False)
    cleanup_core.configure()
    yield path
    cleanup_core.configure()


def test_seed_functions_work_on_the_environment_settings(legacy_env):
    summary = get_stuck_run_summary()
    assert (summary["total_stuck"], summary["resumable_count"], summary["dead_count"]) == (3, 1, 2)
    assert get_stuck_run_count() == 2
    assert get_stuck_run_count(age_threshold_hours=48.0) == 1

    assert check_portal_resume("MP Tenders")["action"] == "wait"
    assert check_portal_resume("Nowhere")["action"] == "start"
    check = check_portal_resume("Assam Tenders")
    assert (check["has_running"], check["action"], check["run_id"]) == (True, "resume", 2)

    assert cleanup_run(4) is True
    assert cleanup_run(2) is False
    assert cleanup_if_needed() == 1  # run 1
    assert get_stuck_run_count() == 0
    assert revert_cleanup(4) is True
    assert [e["action"] for e in get_history()] == ["revert", "cleanup", "cleanup"]
    con = sqlite3.connect(legacy_env)
    statuses = dict(con.execute("SELECT id, status FROM runs").fetchall())
    assert statuses == {
        1: "Timeout - Auto-cleaned",
        2: "running",
        3: "running",
        4: "running",
    }


def test_seed_threshold_argument_is_validated(legacy_env):
    with pytest.raises(ValueError, match="age_threshold_hours"):
        get_stuck_run_summary(age_threshold_hours=-2)
    with pytest.raises(ValueError, match="age_threshold_hours"):
        check_portal_resume("Assam Tenders", age_threshold_hours=float("nan"))
