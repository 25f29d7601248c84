"""Two cleaners at once, and a database someone else has locked."""

import threading

import pytest
from sqlalchemy import create_engine, text

from cleanup_core import CLEANED, CleanupService, DatabaseLockedError
from cleanup_core.db import Database
from tests.conftest import NOW, ago


def test_two_cleaners_clean_each_run_exactly_once(service, settings, runs):
    ids = [runs.add(f"Portal {i % 5}", started_at=ago(hours=30)) for i in range(60)]
    cleaners = [
        CleanupService(settings, database=Database(settings, create_missing=True)) for _ in range(2)
    ]
    barrier = threading.Barrier(2)
    results, errors = [], []

    def clean(cleaner):
        barrier.wait()
        try:
            results.append(cleaner.cleanup_runs(ids, actor=f"cleaner-{id(cleaner)}", now=NOW))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=clean, args=(c,)) for c in cleaners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for cleaner in cleaners:
        cleaner.db.dispose()

    assert errors == []
    first, second = (set(r.cleaned) for r in results)
    assert first | second == set(ids)
    assert first & second == set(), "no run cleaned twice"
    assert runs.count("run_events") == len(ids), "one event per cleaned run"
    assert runs.count("runs", f"status = '{CLEANED}'") == len(ids)
    per_run = service.history(limit=1000).events
    assert sorted(e.run_id for e in per_run) == sorted(ids)


def test_a_cleaner_and_a_worker_reporting_progress(service, settings, runs):
    """Racing a worker that reports progress: each run either got its progress in first (and
    then is never cleaned) or was cleaned first (and then the worker's write finds no running
    run) - never both, never neither."""
    from cleanup_core.models import Run

    table = Run.__table__
    ids = [runs.add("Race", started_at=ago(hours=30)) for _ in range(40)]
    progressing = ids[::2]
    landed: dict[int, bool] = {}
    barrier = threading.Barrier(2)

    def worker():
        barrier.wait()
        for run_id in progressing:
            with service.db.write() as conn:
                stmt = (
                    table.update()
                    .where(table.c.id == run_id, table.c.status == "running")
                    .values(extracted_total_tenders=1, last_heartbeat_at=NOW)
                )
                landed[run_id] = conn.execute(stmt).rowcount == 1

    def cleaner():
        barrier.wait()
        for run_id in ids:
            service.cleanup_run(run_id, now=NOW)

    threads = [threading.Thread(target=worker), threading.Thread(target=cleaner)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for run_id in progressing:
        cleaned = runs.get(run_id)["status"] == CLEANED
        assert cleaned != landed[run_id], f"run {run_id}: cleaned={cleaned}"
    for run_id in ids[1::2]:
        assert runs.get(run_id)["status"] == CLEANED


def hold_write_lock(settings, backend, run_id):
    """Another process's open write transaction, as raw SQL outside the tool."""
    engine = create_engine(
        settings.database_url.split("?")[0] if backend == "sqlite" else settings.database_url
    )
    conn = engine.connect()
    if backend == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        conn.exec_driver_sql("UPDATE runs SET worker_id = 'other' WHERE id = -1")
    else:
        conn.execute(text("SELECT id FROM runs WHERE id = :id FOR UPDATE"), {"id": run_id})
    return engine, conn


def test_a_locked_database_is_a_clear_error_and_changes_nothing(service, settings, runs, backend):
    run_id = runs.add(started_at=ago(hours=30))
    fast = settings.with_overrides(busy_timeout_seconds=0.5)
    impatient = CleanupService(fast, database=Database(fast, create_missing=True))
    impatient.scan(now=NOW)  # opened before the lock is taken
    engine, conn = hold_write_lock(settings, backend, run_id)
    try:
        with pytest.raises(DatabaseLockedError, match=r"is locked: another process .* 0\.5 s"):
            impatient.cleanup_runs([run_id], now=NOW)
    finally:
        conn.rollback()
        conn.close()
        engine.dispose()
    assert runs.get(run_id)["status"] == "running"
    assert runs.count("run_events") == 0
    assert impatient.cleanup_run(run_id, now=NOW) is True, "works again once the lock is gone"
    impatient.db.dispose()
