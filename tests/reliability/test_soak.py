"""Soak: 20 scrapers, two pre-scrape starters and two cleaners, each its own process, on one
database for a bounded time; then the audit trail, the rows and every process's journal are
checked against the safety invariants (docs/architecture.md, "Safety invariants").

Heartbeats every 0.2 s, a heartbeat older than 3 s is lost, and the age threshold is 3.6 s, so in
15 s runs are claimed, resumed, crash, die and get cleaned many times over. Scrapers crash hard
(``os._exit``) in the middle of runs, before or after making progress; the two cleaners loop the
whole time, one of them handing ``cleanup_runs`` every running run it sees. Legacy rows that
turn dead one after another during the soak keep the cleaners racing each other and the
claimers, and legacy rows that are resumable or need attention must survive it all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, func, select, text

from cleanup_core import CLEANED, COMPLETED, FAILED, RUNNING
from cleanup_core.models import Run, RunEvent, Tender
from cleanup_core.timestamps import parse_timestamp
from tests.conftest import TZ
from tests.reliability.conftest import ROOT, child_env, real_ago, real_now
from tests.reliability.fleet import CRASHED

pytestmark = pytest.mark.slow

DURATION = 15.0  # seconds of soak, after the fleet has started
SCRAPERS = 20
STARTERS = 2
PORTALS = (
    "Assam Tenders",
    "MP Tenders",
    "CPPP Central",
    "Goa eProcurement",
    "Kerala eTenders",
    "Punjab eProc",
    "Odisha Tenders",
    "HP Tenders",
)
HEARTBEAT_INTERVAL_S = 0.2
HEARTBEAT_TIMEOUT_MIN = 0.05  # 3 s
THRESHOLD_H = 0.001  # 3.6 s
LEGACY_DEAD = 30  # legacy runs on their own portals, turning dead one after another
ONE_RUNNING_PER_PORTAL = text(
    "SELECT portal_name, count(*) FROM runs WHERE status = 'running' "
    "GROUP BY portal_name HAVING count(*) > 1"
)


class RunningSampler(threading.Thread):
    """Checks 'at most one running run per portal' every 20 ms while the fleet runs."""

    def __init__(self, db_url: str):
        super().__init__(name="sampler", daemon=True)
        self.engine = create_engine(db_url)
        self.stop = threading.Event()
        self.samples = 0
        self.violations: list[tuple[float, list[tuple[Any, ...]]]] = []
        self.errors: list[BaseException] = []

    def run(self) -> None:
        while not self.stop.wait(0.02):
            try:
                with self.engine.connect() as conn:
                    found = [tuple(row) for row in conn.execute(ONE_RUNNING_PER_PORTAL)]
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(exc)
                continue
            self.samples += 1
            if found:
                self.violations.append((time.time(), found))

    def finish(self) -> None:
        self.stop.set()
        self.join(10)
        self.engine.dispose()


def seed_legacy_runs(runs: Any) -> dict[str, list[int]]:
    """Runs other code left behind: some turn dead during the soak (one on each scraped portal,
    where they block the portal until then), some are resumable or need a person."""
    soon = real_now() - timedelta(hours=THRESHOLD_H)  # turns dead right now
    seeded: dict[str, list[int]] = {"dead": [], "resumable": [], "attention": []}
    for i, portal in enumerate(PORTALS):
        seeded["dead"].append(runs.add(portal, started_at=soon + timedelta(seconds=1 + i)))
    for i in range(LEGACY_DEAD):
        offset = timedelta(seconds=(DURATION - 4) * i / LEGACY_DEAD)
        seeded["dead"].append(runs.add(f"Legacy {i:02d}", started_at=soon + offset))
    for i in range(8):
        seeded["resumable"].append(
            runs.add(f"Kept {i}", started_at=real_ago(hours=30), extracted_total_tenders=5)
        )
    for i in range(4):
        seeded["attention"].append(
            runs.add(f"Unknown start {i}", started_at=None, extracted_total_tenders=None)
        )
    return seeded


def run_fleet(db_url: str, checkpoint_dir: Path, log_dir: Path) -> None:
    config = {
        "env": {
            "CLEANUP_DATABASE_URL": db_url,
            "CLEANUP_CHECKPOINT_DIR": str(checkpoint_dir),
            "CLEANUP_TIMEZONE": TZ,
            "CLEANUP_HEARTBEAT_INTERVAL_SECONDS": str(HEARTBEAT_INTERVAL_S),
            "CLEANUP_HEARTBEAT_TIMEOUT_MINUTES": str(HEARTBEAT_TIMEOUT_MIN),
            "CLEANUP_AGE_THRESHOLD_HOURS": str(THRESHOLD_H),
            "CLEANUP_BUSY_TIMEOUT_SECONDS": "10",
        },
        "duration": DURATION,
        "portals": list(PORTALS),
        "scrapers": SCRAPERS,
        "starters": STARTERS,
        "seed": 7,
        "log_dir": str(log_dir),
    }
    config_file = log_dir / "config.json"
    config_file.write_text(json.dumps(config))
    with (log_dir / "output.txt").open("w") as output:
        fleet = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.fleet", str(config_file)],
            cwd=ROOT,
            env=child_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = fleet.wait(timeout=DURATION + 60)
        except subprocess.TimeoutExpired:
            os.killpg(fleet.pid, signal.SIGKILL)
            fleet.wait()
            pytest.fail("the fleet did not stop within a minute of its deadline")
    assert code == 0, (log_dir / "output.txt").read_text()


def read_journals(log_dir: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted(log_dir.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            records.append({"journal": path.name, **json.loads(line)})
    return records


def moment(value: Any) -> Any:
    """A stored time (text on SQLite, a datetime on PostgreSQL) as an aware datetime."""
    return parse_timestamp(value, ZoneInfo(TZ))


def test_soak_keeps_every_safety_invariant(db_url, service, runs, checkpoint_dir, tmp_path):
    service.scan()  # the schema exists before the fleet opens the database
    seeded = seed_legacy_runs(runs)
    log_dir = tmp_path / "journals"
    log_dir.mkdir()
    sampler = RunningSampler(db_url)
    sampler.start()
    try:
        run_fleet(db_url, checkpoint_dir, log_dir)
    finally:
        sampler.finish()
    records = read_journals(log_dir)
    kinds = Counter(r["kind"] for r in records)

    # No errors other than the expected "portal busy": no exception in any process or thread,
    # no warning logged (a fenced worker or a failed heartbeat would log one), no odd exit.
    errors = [r for r in records if r["kind"] == "error"]
    assert errors == [], "\n\n".join(f"{e['journal']}: {e['traceback']}" for e in errors)
    warnings = [r for r in records if r["kind"] == "log"]
    assert warnings == []
    exits = [r for r in records if r["kind"] == "exited"]
    odd = [r for r in exits if r["code"] not in ((0, CRASHED) if r["role"] == "scraper" else (0,))]
    assert odd == []
    assert sampler.errors == []

    # The soak did what it is for: claims collided, scrapers crashed, crashed runs were resumed,
    # runs completed, crashed slots got new processes, and both cleaners worked throughout.
    assert kinds["busy"] > 0 and kinds["crash"] > 0, kinds
    claims = [r for r in records if r["kind"] == "claimed"]
    assert any(r["action"] == "resume" for r in claims), "a crashed run was resumed"
    assert kinds["finished"] > 0, kinds
    assert len([r for r in exits if r["role"] == "scraper"]) > SCRAPERS, "crashed slots restarted"
    passes = [r["count"] for r in records if r["kind"] == "passes"]
    # Both cleaners kept working throughout (a count, not a rate: on a loaded two-core machine a
    # cleaner may manage only a handful of passes in the soak's time).
    assert len(passes) == 2 and min(passes) >= 5, passes

    with service.db.read() as conn:
        rows = {row.id: row for row in conn.execute(select(Run.__table__))}
        events = conn.execute(select(RunEvent.__table__).order_by(RunEvent.__table__.c.id)).all()
        tenders_of = dict(
            conn.execute(
                select(Tender.__table__.c.run_id, func.count()).group_by(Tender.__table__.c.run_id)
            ).all()
        )
        crowded = conn.execute(ONE_RUNNING_PER_PORTAL).all()

    # At most one running run per portal, at every sample and at the end.
    assert sampler.samples > 100
    assert sampler.violations == []
    assert crowded == []

    # Each cleaned run has exactly one clean-up event, and every clean-up event's run is cleaned.
    cleanups = [e for e in events if e.action == "cleanup"]
    per_run = Counter(e.run_id for e in cleanups)
    assert [run_id for run_id, n in per_run.items() if n > 1] == [], "cleaned twice"
    cleaned = {run_id for run_id, row in rows.items() if row.status == CLEANED}
    assert set(per_run) == cleaned
    assert set(seeded["dead"]) <= cleaned, "every legacy run that turned dead was cleaned"
    assert len(cleaned) > len(seeded["dead"]), "runs of crashed scrapers were cleaned too"
    for run_id in seeded["resumable"] + seeded["attention"]:
        assert rows[run_id].status == RUNNING

    # No run that made progress or had a fresh heartbeat at clean-up time was cleaned: by the
    # verdict the clean-up recorded, by the rows, and by what the scrapers say they committed.
    timeout = timedelta(minutes=HEARTBEAT_TIMEOUT_MIN)
    threshold = timedelta(hours=THRESHOLD_H)
    for event in cleanups:
        details = json.loads(event.details)
        rules = {reason["rule"]: reason for reason in details["reasons"]}
        assert details["state"] == "dead" and details["forced"] is False, details
        assert "no_progress" in rules and "old" in rules, details
        assert not {"heartbeat_fresh", "progress", "checkpoint_data"} & set(rules), details
        assert rules["old"]["age_threshold_hours"] == THRESHOLD_H, details
        if "heartbeat_lost" in rules:
            assert rules["heartbeat_lost"]["heartbeat_age_minutes"] >= HEARTBEAT_TIMEOUT_MIN

        row = rows[event.run_id]
        cleaned_at = moment(event.created_at)
        assert (row.extracted_total_tenders or 0, row.skipped_existing_total or 0) == (0, 0)
        assert tenders_of.get(event.run_id, 0) == 0
        assert cleaned_at - moment(row.started_at) >= threshold
        heartbeat = moment(row.last_heartbeat_at)
        if heartbeat is not None:
            assert "heartbeat_lost" in rules, details
            assert cleaned_at - heartbeat >= timeout, (event.run_id, cleaned_at, heartbeat)
    committed = {
        r["run_id"] for r in records if r["kind"] == "progress" and r["added"] + r["skipped"]
    }
    assert committed, "the scrapers made progress"
    assert committed & cleaned == set()

    # Crashes left no half-applied progress: every run's counter matches its stored tenders.
    legacy = {run_id for ids in seeded.values() for run_id in ids}
    mismatched = {
        run_id: (row.extracted_total_tenders, tenders_of.get(run_id, 0))
        for run_id, row in rows.items()
        if run_id not in legacy and (row.extracted_total_tenders or 0) != tenders_of.get(run_id, 0)
    }
    assert mismatched == {}

    # What the scrapers saw agrees with what was stored.
    for record in records:
        if record["kind"] == "finished":
            assert rows[record["run_id"]].status == COMPLETED, record
        elif record["kind"] == "failed":
            assert rows[record["run_id"]].status == FAILED, record
        elif record["kind"] == "claimed" and record["action"] == "resume":
            assert record["attempt"] >= 2, record
