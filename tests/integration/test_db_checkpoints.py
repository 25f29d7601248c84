"""Checkpoints every host can see: the tracker saves each checkpoint into ``run_checkpoints``
with a fenced heartbeat in one transaction (and still writes the file); scan and resume read the
database copy first, then the file; an alive run whose cursor has not moved for
``stall_after_minutes`` is stalled in that department. Real SQLite files, real PostgreSQL, a real
PgBouncer, and real scraper processes killed with SIGKILL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url

from cleanup_core import COMPLETED, CleanupService, RunFencedError, RunState, Settings, track_run
from cleanup_core.alerts import current_problems
from cleanup_core.checkpoints import read_checkpoint, write_checkpoint
from cleanup_core.cli import cli
from cleanup_core.db import Database
from cleanup_core.demo import synthetic_portal
from cleanup_core.models import Run, RunCheckpoint, table
from cleanup_core.reports import run_detail
from cleanup_core.storage import checkpoints as stored_checkpoints
from cleanup_core.vocabulary import Action, ProblemKind
from tests.conftest import NOW, PG_ADMIN_URL, TZ, ago
from tests.helpers.pgbouncer import fresh_database, running_pgbouncer

ROOT = Path(__file__).resolve().parents[2]
DEMO_SCRAPER = ROOT / "examples" / "demo_scraper.py"
AS_OF = date(2026, 11, 27)
CHECKPOINTS = table(RunCheckpoint)
RUNS = table(Run)
PAGE_LINE = re.compile(r"organisation (\d+)/\d+ page (\d+)/\d+")


def real_now() -> datetime:
    return datetime.now(UTC)


def wait_for(condition, *, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


def checkpoint_row(service: CleanupService, run_id: int):
    with service.db.read() as conn:
        return conn.execute(
            CHECKPOINTS.select().where(CHECKPOINTS.c.run_id == run_id)
        ).one_or_none()


def heartbeat_of(service: CleanupService, run_id: int):
    with service.db.read() as conn:
        return conn.execute(
            text("SELECT last_heartbeat_at FROM runs WHERE id = :i"), {"i": run_id}
        ).scalar_one()


def save_raw_checkpoint(service, run_id, portal, *, cursor, count, changed_at, updated_at=None):
    """A checkpoint row as a tracked worker on some host left it."""
    with service.db.write() as conn:
        conn.execute(
            insert(CHECKPOINTS).values(
                run_id=run_id,
                portal_name=portal,
                attempt=1,
                cursor=json.dumps(cursor, sort_keys=True, separators=(",", ":")),
                tender_count=count,
                tender_ids=json.dumps([f"T{i}" for i in range(count)]),
                updated_at=updated_at or changed_at,
                cursor_changed_at=changed_at,
                run_started_at=select(RUNS.c.started_at)
                .where(RUNS.c.id == run_id)
                .scalar_subquery(),
            )
        )


# -- a scraper killed on host A, resumed on host B ------------------------------------------


def scraper_env(database_url: str, checkpoint_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEANUP_")}
    return env | {
        "PYTHONPATH": str(ROOT),
        "CLEANUP_DATABASE_URL": database_url,
        "CLEANUP_CHECKPOINT_DIR": str(checkpoint_dir),
        "CLEANUP_TIMEZONE": TZ,
        "CLEANUP_BUSY_TIMEOUT_SECONDS": "10",
        "CLEANUP_HEARTBEAT_INTERVAL_SECONDS": "0.1",
        "CLEANUP_HEARTBEAT_TIMEOUT_MINUTES": "0.02",
        **extra,
    }


def start_scraper(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(DEMO_SCRAPER), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def portal_tenders(service: CleanupService, portal: str) -> list[tuple[int, str]]:
    with service.db.read() as conn:
        rows = conn.execute(
            text("SELECT run_id, tender_id FROM tenders WHERE portal_name = :p ORDER BY id"),
            {"p": portal},
        )
        return [(run_id, tender_id) for run_id, tender_id in rows]


def kill_on_host_a_and_resume_on_host_b(
    service: CleanupService, database_url: str, host_a: Path, host_b: Path, **env: str
) -> None:
    """The whole story: host A scrapes and is SIGKILLed mid-run; host B, with an empty
    checkpoint folder, resumes the run from the cursor stored in the database and ends with
    exactly the tenders of an uninterrupted scrape, none twice, no page scraped again beyond
    the one the kill may have cut short."""
    portal = "Assam Tenders"
    pages = [
        len(page)
        for org in synthetic_portal(portal, as_of=AS_OF).organisations
        for page in org.pages
    ]
    first = start_scraper(
        scraper_env(database_url, host_a, **env),
        "--portal", portal, "--delay", "0.1", "--as-of", AS_OF.isoformat(),
    )  # fmt: skip
    try:
        wait_for(lambda: len(portal_tenders(service, portal)) >= 30, what="host A's progress")
    finally:
        first.kill()  # SIGKILL: nothing released, nothing flushed
        output = first.communicate(timeout=10)[0]
    assert first.returncode == -signal.SIGKILL, output
    (run_id,) = {run for run, _ in portal_tenders(service, portal)}
    stored_before = len(portal_tenders(service, portal))
    assert stored_before < sum(pages), "killed mid-run"

    row = checkpoint_row(service, run_id)
    assert row is not None, "host A saved its checkpoint into the database"
    cursor = json.loads(row.cursor)
    assert (cursor["organisation"], cursor["page"]) > (0, 0)
    assert list(host_b.iterdir()) == [], "host B has no checkpoint file at all"

    fast = CleanupService(
        service.settings.with_overrides(checkpoint_dir=str(host_b), heartbeat_timeout_minutes=0.02),
        database=service.db,
    )
    check = wait_for(
        lambda: (c := fast.check_portal(portal)).action is Action.RESUME and c,
        what="the heartbeat timeout",
    )
    assert check.run_id == run_id
    verdict = check.runs[0]
    assert verdict.checkpoint.shown_source == "database"  # judged on host B from the database

    second = start_scraper(
        scraper_env(database_url, host_b, **env),
        "--portal", portal, "--resume", str(run_id), "--delay", "0",
    )  # fmt: skip
    output = second.communicate(timeout=120)[0]
    assert second.returncode == 0, output
    assert f"resuming run {run_id} (attempt 2)" in output
    first_page = PAGE_LINE.search(output)
    assert first_page is not None, output
    assert (int(first_page[1]) - 1, int(first_page[2]) - 1) == (
        cursor["organisation"],
        cursor["page"],
    ), "host B continued from the stored cursor, not from the first organisation"

    expected = sorted(t["tender_id"] for t in synthetic_portal(portal, as_of=AS_OF).tenders())
    after = portal_tenders(service, portal)
    assert sorted(tender_id for _, tender_id in after) == expected, "none missing, none twice"
    assert {run for run, _ in after} == {run_id}
    with service.db.read() as conn:
        run = conn.execute(text("SELECT * FROM runs WHERE id = :i"), {"i": run_id}).one()
    assert (run.status, run.attempt, run.extracted_total_tenders) == (COMPLETED, 2, len(expected))
    # At most the one page the kill cut short (stored, checkpoint not yet saved) came again.
    assert run.skipped_existing_total <= max(pages)
    saved = read_checkpoint(host_b, portal, max_bytes=10**7)
    assert saved.info.run_id == run_id and saved.info.tender_count == len(expected)


def test_a_scraper_killed_on_one_host_resumes_on_another_from_the_stored_cursor(
    service, settings, tmp_path
):
    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
    host_a.mkdir()
    host_b.mkdir()
    service.scan()  # the schema exists before the scrapers open the database
    kill_on_host_a_and_resume_on_host_b(service, settings.database_url, host_a, host_b)


@pytest.fixture
def pooled_database() -> Iterator[str]:
    with fresh_database(PG_ADMIN_URL, "cleanup_ckpt") as name:
        yield name


@pytest.mark.postgres
def test_the_cross_host_resume_works_through_pgbouncer(pooled_database, tmp_path):
    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
    host_a.mkdir()
    host_b.mkdir()
    direct = make_url(PG_ADMIN_URL).set(database=pooled_database)
    settings = Settings.load(
        {},
        database_url=direct.render_as_string(hide_password=False),
        checkpoint_dir=str(host_a),
        timezone=TZ,
    )
    observer = CleanupService(settings, database=Database(settings, create_missing=True))
    try:
        observer.scan()
        with running_pgbouncer(PG_ADMIN_URL, default_pool_size=2) as bouncer:
            kill_on_host_a_and_resume_on_host_b(
                observer,
                bouncer.url(pooled_database),
                host_a,
                host_b,
                CLEANUP_DB_POOL="none",
                CLEANUP_DB_POOLER="transaction",
            )
    finally:
        observer.db.dispose()


# -- where the evidence came from -----------------------------------------------------------


def test_scan_json_says_where_each_runs_checkpoint_came_from(
    service, settings, runs, checkpoint_dir
):
    started = real_now() - timedelta(hours=48)
    beat = real_now() - timedelta(hours=47)
    tracked = runs.add("Tracked Portal", started_at=started, last_heartbeat_at=beat, attempt=1)
    save_raw_checkpoint(
        service, tracked, "Tracked Portal", cursor={"organisation": 3}, count=4, changed_at=beat
    )
    legacy = runs.add("Legacy Portal", started_at=started)
    write_checkpoint(checkpoint_dir, "Legacy Portal", tenders=[{"tender_id": "L1"}], run_id=legacy)
    bare = runs.add("Bare Portal", started_at=started)
    # A stale file of the tracked portal names another run: the database copy is read first.
    write_checkpoint(checkpoint_dir, "Tracked Portal", tenders=[], run_id=tracked + 1000)

    argv = [
        "scan",
        "--json",
        "--db",
        settings.database_url,
        "--checkpoint-dir",
        str(checkpoint_dir),
    ]
    result = CliRunner(env={"CLEANUP_TIMEZONE": TZ}).invoke(cli, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    by_id = {
        run["id"]: run
        for key in ("resumable_runs", "dead_runs", "attention_runs")
        for run in report[key]
    }
    assert by_id[tracked]["checkpoint_source"] == "database"
    assert by_id[tracked]["state"] == "resumable"
    assert by_id[tracked]["checkpoint_tenders"] == 4
    assert by_id[legacy]["checkpoint_source"] == "file"
    assert by_id[legacy]["state"] == "resumable"
    assert by_id[bare]["checkpoint_source"] is None
    assert by_id[bare]["state"] == "dead"


def test_a_legacy_file_checkpoint_still_resumes_when_the_database_has_none(service, settings):
    """A run with only a file (written by a scraper before version 5, or by a tool) resumes
    from the file's cursor and tenders, as before."""
    first = track_run("Kerala eTenders", service=service).claim()
    first.add_tenders([{"tender_id": "K1"}, {"tender_id": "K2"}])
    first.save_checkpoint(cursor={"organisation": 1})
    first.release("test")
    with service.db.write() as conn:
        conn.execute(CHECKPOINTS.delete())  # as if the run predates the table
    with service.db.write() as conn:  # and as if its tenders were not linked to it
        conn.execute(text("UPDATE tenders SET run_id = NULL"))
    assert service.scan().resumable[0].checkpoint.shown_source == "file"
    again = track_run("Kerala eTenders", service=service).claim()
    assert (again.run_id, again.resumed) == (first.run_id, True)
    assert again.cursor == {"organisation": 1}
    assert again.seen_tender_ids == {"K1", "K2"}
    again.release("test")


# -- one transaction, fenced ----------------------------------------------------------------


def test_a_fenced_checkpoint_save_writes_neither_the_checkpoint_nor_the_heartbeat(
    service, settings
):
    portal = "Punjab Tenders"
    zombie = track_run(portal, service=service, handle_sigterm=False).claim()
    zombie.add_tenders([{"tender_id": "P1"}])
    zombie.save_checkpoint(cursor={"organisation": 1})
    saved = checkpoint_row(service, zombie.run_id)
    file_before = read_checkpoint(settings.checkpoint_dir, portal, max_bytes=10**6)
    with service.db.write() as conn:  # another host took the run over (attempt 2)
        conn.execute(
            text("UPDATE runs SET attempt = 2, worker_id = 'host-b:1' WHERE id = :i"),
            {"i": zombie.run_id},
        )
    beat = heartbeat_of(service, zombie.run_id)
    with pytest.raises(RunFencedError):
        zombie.save_checkpoint(cursor={"organisation": 2})
    assert checkpoint_row(service, zombie.run_id) == saved, "the checkpoint row is untouched"
    assert heartbeat_of(service, zombie.run_id) == beat
    file_after = read_checkpoint(settings.checkpoint_dir, portal, max_bytes=10**6)
    assert file_after.cursor == file_before.cursor == {"organisation": 1}
    with pytest.raises(RunFencedError):
        zombie.release("test")


def test_the_checkpoint_row_and_the_heartbeat_commit_together(service, monkeypatch):
    """If writing the checkpoint row fails, the heartbeat written before it in the same
    transaction is rolled back too."""
    run = track_run("Goa Tenders", service=service, handle_sigterm=False).claim()
    try:
        run.save_checkpoint(cursor={"organisation": 1})
        saved = checkpoint_row(service, run.run_id)
        with service.db.write() as conn:
            conn.execute(
                text("UPDATE runs SET last_heartbeat_at = :t WHERE id = :i"),
                {"t": ago(hours=1), "i": run.run_id},
            )
        old_beat = heartbeat_of(service, run.run_id)
        run._stop.set()  # no background heartbeat while we look
        run._heartbeat_thread.join()

        def broken(*args, **kwargs):
            raise RuntimeError("disk full")

        monkeypatch.setattr(stored_checkpoints, "upsert_checkpoint", broken)
        with pytest.raises(RuntimeError, match="disk full"):
            run.save_checkpoint(cursor={"organisation": 2})
        assert heartbeat_of(service, run.run_id) == old_beat, "the heartbeat was rolled back"
        assert checkpoint_row(service, run.run_id) == saved
    finally:
        monkeypatch.undo()
        run.release("test")


def test_a_save_with_the_same_cursor_keeps_when_the_cursor_last_moved(service):
    with track_run("Tripura Tenders", service=service) as run:
        run.save_checkpoint(cursor={"organisation": "PWD", "department": "Roads"})
        first = checkpoint_row(service, run.run_id)
        time.sleep(0.05)
        run.add_tenders([{"tender_id": "R1"}])
        run.save_checkpoint(cursor={"department": "Roads", "organisation": "PWD"})  # same JSON
        same = checkpoint_row(service, run.run_id)
        time.sleep(0.05)
        run.save_checkpoint(cursor={"organisation": "PWD", "department": "Bridges"})
        moved = checkpoint_row(service, run.run_id)
    assert same.cursor_changed_at == first.cursor_changed_at
    assert same.updated_at != first.updated_at
    assert (same.tender_count, json.loads(same.tender_ids)) == (1, ["R1"])
    assert moved.cursor_changed_at != first.cursor_changed_at
    assert json.loads(moved.cursor) == {"organisation": "PWD", "department": "Bridges"}


def test_checkpoints_stay_within_max_checkpoint_mb(service, settings):
    """Over the limit the id list is left out (the count stays; the run's stored tenders tell a
    resume which it has); a cursor alone over it is refused before anything is written."""
    small = CleanupService(settings.with_overrides(max_checkpoint_mb=0.001), database=service.db)
    run = track_run("Mizoram Tenders", service=small, handle_sigterm=False).claim()
    many = [{"tender_id": f"MZ-{i:04d}"} for i in range(200)]  # ~2.4 KB of ids > 1 KB
    run.add_tenders(many)
    run.save_checkpoint(cursor={"organisation": 1})
    row = checkpoint_row(service, run.run_id)
    assert (row.tender_count, row.tender_ids) == (200, None)
    with pytest.raises(ValueError, match="over the 1,048-byte limit"):
        run.save_checkpoint(cursor={"organisation": "x" * 2000})
    assert checkpoint_row(service, run.run_id) == row, "nothing written"
    assert run.cursor == {"organisation": 1}
    run.release("test")
    again = track_run("Mizoram Tenders", service=small, handle_sigterm=False).claim()
    assert (again.run_id, again.cursor) == (run.run_id, {"organisation": 1})
    assert again.seen_tender_ids == {t["tender_id"] for t in many}
    again.release("test")


def test_deleting_a_run_drops_its_checkpoint_so_a_reused_id_inherits_nothing(service):
    with track_run("Sikkim Tenders", service=service) as run:
        run.add_tenders([{"tender_id": "S1"}])
        run.save_checkpoint(cursor={"organisation": 9})
    assert checkpoint_row(service, run.run_id) is not None
    service.delete_runs([run.run_id], confirm=True, actor="test")
    assert checkpoint_row(service, run.run_id) is None


def test_a_run_inserted_under_a_reused_id_does_not_inherit_the_checkpoint(
    service, runs, checkpoint_dir
):
    """A legacy scraper (or SQLite) may hand a run id out again after the row was removed
    without the tool: the old checkpoint row is not the new run's evidence."""
    with track_run("Nagaland Tenders", service=service) as run:
        run.add_tenders([{"tender_id": "N1"}])
        run.save_checkpoint(cursor={"organisation": 2})
    with service.db.write() as conn:
        conn.execute(text("DELETE FROM runs WHERE id = :i"), {"i": run.run_id})
        conn.execute(text("UPDATE tenders SET run_id = NULL"))
    for leftover in checkpoint_dir.iterdir():
        leftover.unlink()  # only the database row is left
    assert checkpoint_row(service, run.run_id) is not None
    reused = runs.add(
        "Nagaland Tenders", id=run.run_id, started_at=real_now() - timedelta(hours=30)
    )
    (verdict,) = service.scan().verdicts
    assert verdict.run_id == reused
    assert verdict.checkpoint.shown_source is None, verdict.summary
    assert verdict.state is RunState.DEAD


# -- stalled in a department ----------------------------------------------------------------


def alive_run(runs, portal: str, **values) -> int:
    row = {
        "started_at": ago(hours=6),
        "last_heartbeat_at": ago(minutes=1),
        "last_progress_at": ago(minutes=2),
        "worker_id": "host-a:1",
        "attempt": 1,
    }
    return runs.add(portal, **(row | values))


def test_an_alive_run_whose_cursor_has_not_moved_is_stalled_in_that_department(service, runs):
    cursor = {"organisation": "PWD", "department": "Roads", "page": 4}
    stuck = alive_run(runs, "Assam Tenders")
    save_raw_checkpoint(
        service, stuck, "Assam Tenders", cursor=cursor, count=12, changed_at=ago(minutes=150),
        updated_at=ago(minutes=1),
    )  # fmt: skip
    moving = alive_run(runs, "Bihar Tenders", last_progress_at=ago(minutes=300))
    save_raw_checkpoint(
        service, moving, "Bihar Tenders", cursor={"organisation": "PHED"}, count=3,
        changed_at=ago(minutes=10),
    )  # fmt: skip

    summary = service.scan(now=NOW)
    assert {v.run_id: v.state for v in summary.verdicts} == {
        stuck: RunState.ALIVE,
        moving: RunState.ALIVE,
    }
    report = summary.to_dict()
    assert report["stalled_count"] == 1
    (shown,) = report["stalled_runs"]
    assert shown["id"] == stuck
    stalled = shown["stalled"]
    assert stalled["kind"] == "cursor"
    assert stalled["cursor"] == cursor
    assert stalled["where"] == "organisation PWD, department Roads, page 4"
    assert stalled["minutes"] == 150.0
    assert datetime.fromisoformat(stalled["since"]) == ago(minutes=150)
    assert "stalled in organisation PWD, department Roads" in stalled["message"]
    # The cursor moved 10 min ago: not stalled, although no tenders came for 5 hours.
    assert all(v.stall is None for v in summary.verdicts if v.run_id == moving)

    # The monitor's alert is the same judgement.
    problems = current_problems(service, summary.verdicts, NOW)
    assert [(p.run_id, p.kind) for p in problems] == [(stuck, ProblemKind.STALLED)]
    assert "stalled in organisation PWD, department Roads" in problems[0].summary

    # The run page says it too.
    detail = run_detail(service, stuck, now=NOW)
    assert "stalled in organisation PWD, department Roads" in detail.stalled
    assert "(in the database)" in detail.checkpoint
    assert run_detail(service, moving, now=NOW).stalled == ""


def test_stall_after_minutes_decides_per_portal(service, settings, runs):
    stuck = alive_run(runs, "Assam Tenders")
    save_raw_checkpoint(
        service, stuck, "Assam Tenders", cursor={"department": "Roads"}, count=1,
        changed_at=ago(minutes=150),
    )  # fmt: skip
    patient = CleanupService(settings.with_overrides(stall_after_minutes=180), database=service.db)
    assert patient.scan(now=NOW).stalled == []
    assert [v.run_id for v in service.scan(now=NOW).stalled] == [stuck]  # default 120 min


def test_scan_text_lists_the_stalled_runs_with_their_department(service, settings, runs):
    now = real_now()
    stuck = runs.add(
        "Assam Tenders",
        started_at=now - timedelta(hours=6),
        last_heartbeat_at=now - timedelta(seconds=20),
        last_progress_at=now - timedelta(minutes=1),
        attempt=1,
    )
    save_raw_checkpoint(
        service, stuck, "Assam Tenders", cursor={"organisation": "PWD", "department": "Roads"},
        count=5, changed_at=now - timedelta(minutes=200),
    )  # fmt: skip
    argv = ["scan", "--db", settings.database_url, "--checkpoint-dir", str(settings.checkpoint_dir)]
    result = CliRunner(env={"CLEANUP_TIMEZONE": TZ}).invoke(cli, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "Stalled - alive but not getting anywhere (1)" in flat
    assert f"run {stuck} (Assam Tenders): stalled in organisation PWD, department Roads" in flat


def test_a_resume_restarts_the_cursor_clock(service, settings, runs):
    """The hours a run lay dead before a resume are not a stall in its department."""
    run = track_run("Manipur Tenders", service=service).claim()
    run.add_tenders([{"tender_id": "M1"}])
    run.save_checkpoint(cursor={"department": "Roads"})
    run.release("test")
    with service.db.write() as conn:
        conn.execute(
            CHECKPOINTS.update()
            .where(CHECKPOINTS.c.run_id == run.run_id)
            .values(cursor_changed_at=real_now() - timedelta(hours=5))
        )
    again = track_run("Manipur Tenders", service=service).claim()
    assert again.resumed and again.cursor == {"department": "Roads"}
    assert [v.state for v in service.scan().verdicts] == [RunState.ALIVE]
    assert service.scan().stalled == []
    again.release("test")
