"""Locked: another process holds the database's write lock (SQLite: ``BEGIN IMMEDIATE`` and a
write; PostgreSQL: the tables locked in ``EXCLUSIVE`` mode) for longer than the busy timeout.

tests/cli/test_cli.py and tests/integration/test_concurrency.py take the lock inside the test
process; here it is another process, and the attacks are on what runs for a long time: the
command line as a scheduler runs it, a scraper with its heartbeat thread, and the monitor loop.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import text

from cleanup_core import COMPLETED, CleanupService, DatabaseLockedError, alerts, track_run
from cleanup_core.alerts import Monitor, run_forever
from cleanup_core.db import Database
from tests.reliability.conftest import (
    ROOT,
    LogRecords,
    child_env,
    real_ago,
    snapshot,
    wait_for,
)

BUSY = 0.5  # seconds a writer waits for the lock before giving up
LOCKED = "is locked: another process held its write lock for more than"


def cli(db_url, checkpoint_dir, *args: str, **settings: object) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "cleanup_core", *args, "--db", db_url]
    return subprocess.run(
        [*argv, "--checkpoint-dir", str(checkpoint_dir)],
        cwd=ROOT,
        env=child_env(busy_timeout_seconds=BUSY, **settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_lock_held_by_another_process(
    db_url, settings, runs, checkpoint_dir, lock_holder, observer
):
    dead = [runs.add(f"Portal {i}", started_at=real_ago(hours=30)) for i in range(3)]
    impatient_settings = settings.with_overrides(busy_timeout_seconds=BUSY)
    impatient = CleanupService(impatient_settings, database=Database(impatient_settings))
    assert [v.run_id for v in impatient.scan().dead] == dead  # connected before the lock
    lock_holder.lock()
    before = snapshot(observer)

    # A scheduler's clean-up: exit 1 with one clear line, nothing changed.
    clean = cli(db_url, checkpoint_dir, "clean", "--auto")
    assert clean.returncode == 1
    assert clean.stderr.count("\n") == 1 and clean.stderr.startswith("error: The database ")
    assert f"{LOCKED} {BUSY:g} s. Nothing was changed." in clean.stderr
    # The monitor from cron: the same.
    watch = cli(db_url, checkpoint_dir, "watch", "--once", notify_urls="json://alerts.invalid/hook")
    assert (watch.returncode, watch.stderr.count("\n")) == (1, 1), watch.stderr
    assert LOCKED in watch.stderr
    # Readers are not blocked by a writer.
    scan = cli(db_url, checkpoint_dir, "scan", "--json")
    assert scan.returncode == 0, scan.stderr
    assert [run["id"] for run in json.loads(scan.stdout)["dead_runs"]] == dead

    # The library: a DatabaseLockedError after waiting the busy timeout, nothing changed.
    started = time.monotonic()
    with pytest.raises(DatabaseLockedError, match=LOCKED):
        impatient.cleanup_runs(dead)
    assert BUSY * 0.8 <= time.monotonic() - started < 10
    assert snapshot(observer) == before

    # The holder dies without releasing anything: its lock dies with it.
    lock_holder.kill()
    assert impatient.cleanup_if_needed().cleaned == tuple(dead)
    impatient.db.dispose()


def heartbeat_of(observer, run_id: int) -> object:
    with observer.connect() as conn:
        return conn.execute(
            text("SELECT last_heartbeat_at FROM runs WHERE id = :id"), {"id": run_id}
        ).scalar_one()


def tenders(*ids: str) -> list[dict[str, str]]:
    return [{"tender_id": tender_id, "title": f"Tender {tender_id}"} for tender_id in ids]


def test_a_scraper_rides_out_a_long_lock(settings, runs, lock_holder, observer):
    fast = settings.with_overrides(busy_timeout_seconds=0.3, heartbeat_interval_seconds=0.1)
    worker = CleanupService(fast, database=Database(fast))

    # Claiming during the lock: a clear error, and no run.
    lock_holder.lock()
    with (
        pytest.raises(DatabaseLockedError, match=LOCKED),
        track_run("Assam Tenders", service=worker),
    ):
        pytest.fail("claimed a portal while the database was locked")
    lock_holder.release()
    assert runs.count() == 0

    with (
        LogRecords("cleanup_core.tracker") as log,
        track_run("Assam Tenders", service=worker) as run,
    ):
        run.add_tenders(tenders("T1", "T2"))
        lock_holder.lock()
        with pytest.raises(DatabaseLockedError, match=LOCKED):
            run.add_tenders(tenders("T3"))
        # The heartbeat thread says why each heartbeat failed, and keeps trying.
        failed = wait_for(
            lambda: len(log.messages("heartbeat failed")) >= 3 and log.messages("heartbeat failed"),
            what="failed heartbeats to be logged",
        )
        assert all(LOCKED in message for message in failed)
        beat = heartbeat_of(observer, run.run_id)
        lock_holder.release()
        wait_for(lambda: heartbeat_of(observer, run.run_id) != beat, what="a heartbeat after it")
        run.add_tenders(tenders("T3"))
    worker.db.dispose()

    row = runs.get(run.run_id)
    assert (row["status"], row["extracted_total_tenders"]) == (COMPLETED, 3)
    assert runs.count("tenders") == 3, "the refused batch was not half-written"
    warnings = [r.getMessage() for r in log.records if r.levelno >= logging.WARNING]
    assert all("heartbeat failed" in m and LOCKED in m for m in warnings), warnings


def test_the_monitor_records_a_locked_cycle_and_keeps_going(
    settings, runs, lock_holder, observer, monkeypatch
):
    runs.add("Assam Tenders", started_at=real_ago(hours=30))  # a dead run to tell about
    fast = settings.with_overrides(
        busy_timeout_seconds=0.3,
        monitor_interval_minutes=0.01,
        notify_urls="json://alerts.invalid/hook",
    )
    monkeypatch.setattr(alerts, "RETRY_AFTER_ERROR", 0.2)
    sent: list[str] = []
    lock_mid_cycle = threading.Event()
    lock_mid_cycle.set()

    def send(url: str, title: str, body: str) -> bool:
        """The channel delivers; meanwhile another process takes the lock (once)."""
        sent.append(title)
        if lock_mid_cycle.is_set():
            lock_holder.lock()
        return True

    class ReleaseOnFailure(LogRecords):
        """When the cycle has failed, the other process lets go, before the cycle is recorded."""

        def emit(self, record):
            super().emit(record)
            if lock_mid_cycle.is_set() and record.getMessage().startswith("monitor cycle failed"):
                lock_mid_cycle.clear()
                lock_holder.release()

    monitor = Monitor(CleanupService(fast, database=Database(fast)), send=send)
    reports, stop = [], threading.Event()
    loop = threading.Thread(
        target=run_forever, args=(monitor,), kwargs={"stop": stop, "on_cycle": reports.append}
    )
    with ReleaseOnFailure("cleanup_core.alerts") as log:
        loop.start()
        try:
            # A lock in the middle of a cycle: recorded as an 'error' cycle; the next one
            # delivers again what could not be recorded as delivered.
            wait_for(lambda: any(r.outcome == "ok" for r in reports), what="an ok cycle")
            assert reports[0].outcome == "error" and LOCKED in reports[0].detail
            assert sent[:2] == [sent[0], sent[0]]

            # A lock at the start of a cycle: nothing can be recorded; the loop says so and
            # retries until the lock is gone.
            lock_holder.lock()
            wait_for(
                lambda: len(log.messages("monitor cycle could not run")) >= 2,
                what="failed attempts to be logged",
            )
            assert loop.is_alive()
            seen = len(reports)
            lock_holder.release()
            wait_for(lambda: any(r.outcome == "ok" for r in reports[seen:]), what="an ok cycle")
        finally:
            stop.set()
            loop.join(10)
    assert not loop.is_alive()
    assert all(LOCKED in m for m in log.messages("monitor cycle could not run"))
    with observer.connect() as conn:
        cycles = conn.execute(
            text("SELECT outcome, detail FROM monitor_cycles WHERE outcome IS NOT NULL ORDER BY id")
        ).all()
    assert cycles[0].outcome == "error" and LOCKED in cycles[0].detail
    assert cycles[-1].outcome == "ok"
    monitor.service.db.dispose()
