"""The worker side on a real database (SQLite file and PostgreSQL): claiming a portal, progress,
checkpoints, finishing, release, resume, fencing, and races between real processes."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, text

from cleanup_core import (
    CLEANED,
    COMPLETED,
    FAILED,
    RUNNING,
    Action,
    CleanupService,
    ConfigError,
    PortalBusyError,
    RefusedError,
    RunFencedError,
    RunState,
    start_portal,
    track_run,
)
from cleanup_core.checkpoints import CheckpointStatus, read_checkpoint, write_checkpoint
from cleanup_core.db import Database
from cleanup_core.demo import synthetic_portal
from cleanup_core.models import Tender
from cleanup_core.tracker import default_worker_id
from tests.conftest import TZ
from tests.helpers.race import claim_and_hold

ROOT = Path(__file__).resolve().parents[2]
DEMO_SCRAPER = ROOT / "examples" / "demo_scraper.py"
AS_OF = date(2026, 11, 27)
TENDER_FIELDS = (
    "tender_id",
    "title",
    "organisation",
    "closing_date",
    "reference_number",
    "category",
    "value_inr",
    "published_date",
)


def real_now() -> datetime:
    return datetime.now(UTC)


def tenders(*ids: str, **fields: object) -> list[dict[str, object]]:
    return [{"tender_id": i, "title": f"Tender {i}", **fields} for i in ids]


def events(service, run_id):
    """The run's audit events, oldest first."""
    return list(reversed(service.history(run_id=run_id, limit=100).events))


def stored(service, portal):
    """The portal's tenders as (run_id, tender_id), in insertion order."""
    with service.db.read() as conn:
        rows = conn.execute(
            text("SELECT run_id, tender_id FROM tenders WHERE portal_name = :p ORDER BY id"),
            {"p": portal},
        )
        return [tuple(row) for row in rows]


def tender_rows(service, portal):
    """The portal's tenders as comparable tuples of every stored field, sorted."""
    columns = ", ".join(TENDER_FIELDS)
    with service.db.read() as conn:
        rows = conn.execute(
            text(f"SELECT {columns} FROM tenders WHERE portal_name = :p"), {"p": portal}
        )
        return sorted(tuple(row) for row in rows)


def expected_rows(portal, as_of=AS_OF):
    return sorted(
        tuple(t[f] for f in TENDER_FIELDS) for t in synthetic_portal(portal, as_of=as_of).tenders()
    )


def wait_for(condition, *, timeout=20.0, interval=0.02, what="condition"):
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture
def fast(settings):
    """Heartbeats every 0.1 s; a heartbeat older than 1.2 s is lost."""
    return settings.with_overrides(heartbeat_interval_seconds=0.1, heartbeat_timeout_minutes=0.02)


def service_for(settings) -> CleanupService:
    return CleanupService(settings, database=Database(settings, create_missing=True))


# -- start, progress, finish -------------------------------------------------------------


def test_a_run_is_claimed_tracked_and_completed(service, runs):
    with track_run("Assam Tenders", service=service) as run:
        assert (run.action, run.resumed, run.attempt) == (Action.START, False, 1)
        row = runs.get(run.run_id)
        assert row["status"] == RUNNING
        assert row["worker_id"] == default_worker_id() == run.worker_id
        assert row["attempt"] == 1
        assert row["last_heartbeat_at"] is not None
        assert (row["extracted_total_tenders"], row["skipped_existing_total"]) == (0, 0)

        first = run.add_tenders(tenders("T1", "T2", "T1", value_inr="125000.50"))
        assert (first.added, first.skipped) == (2, 1), "a repeat within the batch is skipped"
        second = run.add_tenders(tenders("T2", "T3"))
        assert (second.added, second.skipped) == (1, 1), "a tender this run saw is skipped"
        row = runs.get(run.run_id)
        assert (row["extracted_total_tenders"], row["skipped_existing_total"]) == (3, 2)
        assert row["last_progress_at"] is not None
    assert run.status == COMPLETED
    row = runs.get(run.run_id)
    assert row["status"] == COMPLETED
    assert row["completed_at"] is not None
    assert stored(service, "Assam Tenders") == [(run.run_id, t) for t in ("T1", "T2", "T3")]
    with service.db.read() as conn:
        value = conn.execute(text("SELECT value_inr FROM tenders WHERE tender_id = 'T1'"))
        assert value.scalar_one() == pytest.approx(125000.50)
    history = events(service, run.run_id)
    assert [e.action for e in history] == ["start", "complete"]
    assert {e.actor for e in history} == {f"worker:{run.worker_id}"}
    assert history[1].details["extracted_total_tenders"] == 3


def test_tenders_the_portal_already_has_are_skipped_and_counted(service, runs):
    with track_run("MP Tenders", service=service) as first:
        first.add_tenders(tenders("A", "B"))
    with track_run("MP Tenders", service=service) as second:
        result = second.add_tenders(tenders("A", "B", "C"))
    assert (result.added, result.skipped) == (1, 2)
    assert stored(service, "MP Tenders") == [
        (first.run_id, "A"),
        (first.run_id, "B"),
        (second.run_id, "C"),
    ]
    row = runs.get(second.run_id)
    assert (row["extracted_total_tenders"], row["skipped_existing_total"]) == (1, 2)


def test_progress_reported_by_the_scraper_itself(service, runs):
    with track_run("Kerala eTenders", service=service) as run:
        run.progress(extracted=5)
        run.progress(extracted=2, skipped=3)
        with pytest.raises(ValueError, match="extracted must be a whole number"):
            run.progress(extracted=-1)
    row = runs.get(run.run_id)
    assert (row["extracted_total_tenders"], row["skipped_existing_total"]) == (7, 3)


def test_bad_tenders_are_refused_before_anything_is_written(service, runs):
    with track_run("Kerala eTenders", service=service) as run:
        with pytest.raises(ValueError, match="needs a non-empty 'tender_id'"):
            run.add_tenders([{"tender_id": "ok"}, {"title": "no id"}])
        with pytest.raises(ValueError, match="value_inr must be a finite number"):
            run.add_tenders([{"tender_id": "X", "value_inr": "twelve lakh"}])
        assert runs.get(run.run_id)["extracted_total_tenders"] == 0
    assert stored(service, "Kerala eTenders") == []


def test_an_error_marks_the_run_failed_with_the_error_in_the_audit(service, runs):
    with (  # noqa: PT012 - the block is the scrape
        pytest.raises(ConnectionError, match="HTTP 503"),
        track_run("Assam Tenders", service=service) as run,
    ):
        run.add_tenders(tenders("T1"))
        raise ConnectionError("portal returned HTTP 503")
    row = runs.get(run.run_id)
    assert row["status"] == FAILED
    assert row["completed_at"] is not None
    failed = events(service, run.run_id)[-1]
    assert (failed.action, failed.from_status, failed.to_status) == ("fail", RUNNING, FAILED)
    assert failed.details["error_type"] == "ConnectionError"
    assert failed.details["error"] == "portal returned HTTP 503"


def test_heartbeats_come_from_a_background_thread(fast, runs):
    service = service_for(fast)
    try:
        with track_run("Assam Tenders", service=service) as run:
            first = runs.get(run.run_id)["last_heartbeat_at"]
            wait_for(
                lambda: runs.get(run.run_id)["last_heartbeat_at"] != first,
                timeout=5,
                what="a heartbeat without any call from the scraper",
            )
    finally:
        service.db.dispose()


def test_an_interval_too_close_to_the_timeout_is_refused(settings, runs):
    slow = settings.with_overrides(heartbeat_interval_seconds=60, heartbeat_timeout_minutes=1.5)
    with pytest.raises(ConfigError, match=r"heartbeat_interval_seconds \(60 s\) must be at most"):
        track_run("Assam Tenders", settings=slow).__enter__()
    assert runs.count() == 0


# -- the pre-scrape decision ---------------------------------------------------------------


def test_a_busy_portal_is_not_started(service, runs):
    alive = runs.add("Assam Tenders", last_heartbeat_at=real_now())
    with pytest.raises(PortalBusyError, match=rf"busy: run {alive} is alive") as busy:
        track_run("Assam Tenders", service=service).__enter__()
    assert busy.value.run_id == alive
    scraped = []
    outcome = start_portal("Assam Tenders", scraped.append, service=service)
    assert (outcome.action, outcome.run_id, outcome.scraped) == (Action.WAIT, alive, False)
    assert "is alive" in outcome.reason
    assert scraped == []
    assert runs.count() == 1


def test_dead_runs_are_cleaned_up_then_a_new_run_starts(service, runs):
    dead = [runs.add("CPPP Central", started_at=real_now() - timedelta(hours=h)) for h in (30, 50)]
    with track_run("CPPP Central", service=service) as run:
        assert run.action is Action.CLEANUP
        assert run.cleaned_run_ids == tuple(dead)
        assert run.run_id not in dead
    for run_id in dead:
        assert runs.get(run_id)["status"] == CLEANED
        cleanup = events(service, run_id)[-1]
        assert (cleanup.action, cleanup.actor) == ("cleanup", f"worker:{run.worker_id}")
    start = events(service, run.run_id)[0]
    assert start.details["cleaned_run_ids"] == dead


def test_start_portal_runs_the_scrape_and_says_what_it_did(service, runs):
    dead = runs.add("CPPP Central", started_at=real_now() - timedelta(hours=30))
    outcome = start_portal(
        "CPPP Central", lambda run: run.add_tenders(tenders("C1")).added, service=service
    )
    assert outcome.action is Action.CLEANUP
    assert outcome.cleaned_run_ids == (dead,)
    assert (outcome.status, outcome.result) == (COMPLETED, 1)
    assert runs.get(outcome.run_id)["status"] == COMPLETED
    again = start_portal("CPPP Central", lambda run: None, service=service)
    assert (again.action, again.cleaned_run_ids) == (Action.START, ())


def test_a_failing_scrape_through_start_portal_is_raised(service, runs):
    def scrape(run):
        raise RuntimeError("parser broke")

    with pytest.raises(RuntimeError, match="parser broke"):
        start_portal("Assam Tenders", scrape, service=service)
    assert runs.count("runs", f"status = '{FAILED}'") == 1


def test_resume_hands_over_the_cursor_and_every_tender_seen(service, runs, checkpoint_dir):
    """The worker died after storing T3 but before its checkpoint said so: T3 comes from the
    tenders table, T1 and T2 from the checkpoint; none is stored twice."""
    crashed = runs.add(
        "Assam Tenders",
        started_at=real_now() - timedelta(hours=3),
        last_heartbeat_at=real_now() - timedelta(hours=2),
        worker_id="scraper-7:4242",
        attempt=1,
        extracted_total_tenders=3,
        skipped_existing_total=0,
    )
    with service.db.write() as conn:
        conn.execute(
            insert(Tender.__table__),
            [
                {"run_id": crashed, "portal_name": "Assam Tenders", "tender_id": f"T{i}"}
                for i in (1, 2, 3)
            ],
        )
    write_checkpoint(
        checkpoint_dir,
        "Assam Tenders",
        tenders=tenders("T1", "T2"),
        run_id=crashed,
        cursor={"organisation": 2},
    )
    with track_run("Assam Tenders", service=service) as run:
        assert (run.run_id, run.action, run.resumed, run.attempt) == (
            crashed,
            Action.RESUME,
            True,
            2,
        )
        assert run.cursor == {"organisation": 2}
        assert run.seen_tender_ids == {"T1", "T2", "T3"}
        result = run.add_tenders(tenders("T3", "T4", "T5"))
        assert (result.added, result.skipped) == (2, 1)
        row = runs.get(crashed)
        assert row["worker_id"] == run.worker_id
        assert row["released_at"] is None
    assert stored(service, "Assam Tenders") == [(crashed, f"T{i}") for i in range(1, 6)]
    row = runs.get(crashed)
    assert (row["status"], row["attempt"]) == (COMPLETED, 2)
    assert (row["extracted_total_tenders"], row["skipped_existing_total"]) == (5, 1)
    resume = events(service, crashed)[0]
    assert resume.action == "resume"
    assert resume.details["previous_worker_id"] == "scraper-7:4242"
    assert (resume.details["previous_attempt"], resume.details["attempt"]) == (1, 2)
    saved = read_checkpoint(checkpoint_dir, "Assam Tenders", max_bytes=10**6)
    assert [t["tender_id"] for t in saved.tenders] == ["T1", "T2"], "no save was asked for"


def test_resume_of_a_named_run_is_refused_unless_it_is_resumable(service, runs):
    young = runs.add("MP Tenders", started_at=real_now() - timedelta(hours=1))
    with pytest.raises(RefusedError, match=rf"Run {young} is young, not resumable"):
        track_run("MP Tenders", service=service, resume_run_id=young).__enter__()
    with pytest.raises(RefusedError, match="Run 999 is not a running run of portal 'MP Tenders'"):
        track_run("MP Tenders", service=service, resume_run_id=999).__enter__()
    assert runs.get(young)["attempt"] is None, "nothing was claimed"


def test_resume_of_a_named_run_picks_it_over_a_more_advanced_one(service, runs):
    old = real_now() - timedelta(hours=30)
    small = runs.add("MP Tenders", started_at=old, extracted_total_tenders=2)
    runs.add("MP Tenders", started_at=old, extracted_total_tenders=50)
    with track_run("MP Tenders", service=service, resume_run_id=small) as run:
        assert (run.run_id, run.attempt) == (small, 1), "a legacy run's first tracked attempt"


# -- interruption --------------------------------------------------------------------------


def test_ctrl_c_flushes_the_checkpoint_and_releases_the_run(service, runs, checkpoint_dir):
    with (  # noqa: PT012 - the block is the scrape
        pytest.raises(KeyboardInterrupt),
        track_run("Assam Tenders", service=service) as run,
    ):
        run.add_tenders(tenders("T1", "T2"))
        run.save_checkpoint(cursor={"page": 1})
        run.add_tenders(tenders("T3"))  # stored, not yet in the checkpoint
        raise KeyboardInterrupt
    row = runs.get(run.run_id)
    assert row["status"] == RUNNING
    assert row["released_at"] is not None
    saved = read_checkpoint(checkpoint_dir, "Assam Tenders", max_bytes=10**6)
    assert saved.info.run_id == run.run_id
    assert [t["tender_id"] for t in saved.tenders] == ["T1", "T2", "T3"]
    assert saved.cursor == {"page": 1}
    release = events(service, run.run_id)[-1]
    assert (release.action, release.details["reason"]) == ("release", "KeyboardInterrupt")
    check = service.check_portal("Assam Tenders")  # at once: no heartbeat timeout to wait for
    assert (check.action, check.run_id) == (Action.RESUME, run.run_id)
    with track_run("Assam Tenders", service=service) as again:
        assert (again.run_id, again.attempt, again.cursor) == (run.run_id, 2, {"page": 1})
        assert runs.get(run.run_id)["released_at"] is None


# -- explicit endings (for frameworks that cannot wrap the scrape in one block) -------------


def test_claim_and_complete_without_a_block_leave_sigterm_alone(service, runs):
    def framework_handler(signum, frame):
        raise AssertionError("not called")

    previous = signal.signal(signal.SIGTERM, framework_handler)
    try:
        run = track_run("Assam Tenders", service=service, handle_sigterm=False)
        assert run.claim() is run
        assert signal.getsignal(signal.SIGTERM) is framework_handler, "the framework's own"
        assert (runs.get(run.run_id)["status"], run.fenced) == (RUNNING, None)
        run.add_tenders(tenders("T1", "T2"))
        run.complete()
        assert signal.getsignal(signal.SIGTERM) is framework_handler
    finally:
        signal.signal(signal.SIGTERM, previous)
    row = runs.get(run.run_id)
    assert (row["status"], row["extracted_total_tenders"]) == (COMPLETED, 2)
    assert [e.action for e in events(service, run.run_id)] == ["start", "complete"]
    with pytest.raises(RefusedError, match="already ended"):
        run.fail("again")
    with pytest.raises(RefusedError, match="between its claim and its end"):
        run.add_tenders(tenders("T3"))
    with pytest.raises(RefusedError, match="already claimed"):
        run.claim()
    assert [e.action for e in events(service, run.run_id)] == ["start", "complete"]


def test_the_block_installs_its_sigterm_handler_and_restores_the_previous_one(service):
    before = signal.getsignal(signal.SIGTERM)
    with track_run("Assam Tenders", service=service):
        assert signal.getsignal(signal.SIGTERM) != before
    assert signal.getsignal(signal.SIGTERM) == before


def test_fail_with_a_reason_puts_it_in_the_audit_event(service, runs):
    run = track_run("Assam Tenders", service=service, handle_sigterm=False).claim()
    run.add_tenders(tenders("T1"))
    run.fail("closespider_errorcount")
    row = runs.get(run.run_id)
    assert (row["status"], row["completed_at"] is not None) == (FAILED, True)
    failed = events(service, run.run_id)[-1]
    assert (failed.action, failed.to_status) == ("fail", FAILED)
    assert failed.details["reason"] == "closespider_errorcount"
    assert "error_type" not in failed.details
    assert failed.details["extracted_total_tenders"] == 1


def test_release_flushes_a_cursor_moved_without_new_tenders(service, runs, checkpoint_dir):
    run = track_run("Assam Tenders", service=service, handle_sigterm=False).claim()
    run.add_tenders(tenders("T1"))
    run.save_checkpoint(cursor={"organisation": "PWD", "page": 0})
    run.cursor["page"] = 1  # changed in place: the saved copy must not follow
    run.release("shutdown")
    row = runs.get(run.run_id)
    assert (row["status"], row["released_at"] is not None) == (RUNNING, True)
    saved = read_checkpoint(checkpoint_dir, "Assam Tenders", max_bytes=10**6)
    assert saved.cursor == {"organisation": "PWD", "page": 1}
    release = events(service, run.run_id)[-1]
    assert (release.action, release.details["reason"]) == ("release", "shutdown")
    assert [e.action for e in events(service, run.run_id)] == ["start", "release"]
    assert service.check_portal("Assam Tenders").action is Action.RESUME


@pytest.mark.parametrize("ending", ["complete", "fail", "release"])
def test_an_ending_of_a_fenced_run_writes_nothing(ending, settings, service, runs, checkpoint_dir):
    patient = settings.with_overrides(heartbeat_interval_seconds=20, heartbeat_timeout_minutes=1)
    service_a, service_b = service_for(patient), service_for(patient)
    try:
        a = track_run("Assam Tenders", service=service_a, handle_sigterm=False).claim()
        a.add_tenders(tenders("A1"))
        runs.update(a.run_id, last_heartbeat_at=real_now() - timedelta(minutes=5))
        b = track_run("Assam Tenders", service=service_b, handle_sigterm=False).claim()
        b.save_checkpoint(cursor={"page": 2})
        a.cursor = {"page": 99}
        end = {
            "complete": a.complete,
            "fail": lambda: a.fail("boom"),
            "release": lambda: a.release("shutdown"),
        }[ending]
        with pytest.raises(RunFencedError, match="taken over by attempt 2"):
            end()
        assert a.fenced is not None
        row = runs.get(a.run_id)
        assert (row["status"], row["attempt"], row["released_at"]) == (RUNNING, 2, None)
        assert [e.action for e in events(service, a.run_id)] == ["start", "resume"]
        saved = read_checkpoint(checkpoint_dir, "Assam Tenders", max_bytes=10**6)
        assert saved.cursor == {"page": 2}, "the zombie did not overwrite its successor's file"
        b.complete()
    finally:
        service_a.db.dispose()
        service_b.db.dispose()
    assert runs.get(a.run_id)["status"] == COMPLETED


# -- fencing -------------------------------------------------------------------------------


def test_a_zombie_cannot_write_after_its_run_was_taken_over(settings, service, runs, caplog):
    """Worker A froze long enough to lose its heartbeat; B resumed the run. When A wakes up its
    writes match no row: nothing of A's reaches the tenders, counters or checkpoint."""
    patient = settings.with_overrides(heartbeat_interval_seconds=20, heartbeat_timeout_minutes=1)
    service_a, service_b = service_for(patient), service_for(patient)
    try:
        with (  # noqa: PT012 - A's whole life is the subject
            pytest.raises(RunFencedError),
            track_run("Assam Tenders", service=service_a, worker_id="host-a:1") as a,
        ):
            a.add_tenders(tenders("A1"))
            a.save_checkpoint(cursor={"page": 1})
            runs.update(a.run_id, last_heartbeat_at=real_now() - timedelta(minutes=5))
            with track_run("Assam Tenders", service=service_b, worker_id="host-b:2") as b:
                assert (b.run_id, b.attempt) == (a.run_id, 2)
                with caplog.at_level(logging.WARNING, logger="cleanup_core.tracker"):
                    with pytest.raises(RunFencedError) as fenced:
                        a.add_tenders(tenders("A2"))
                    with pytest.raises(RunFencedError):
                        a.save_checkpoint(cursor={"page": 99})
                    with pytest.raises(RunFencedError):
                        a.progress(extracted=1)
                b.add_tenders(tenders("B1"))
                b.save_checkpoint(cursor={"page": 2})
            a.add_tenders(tenders("A3"))
    finally:
        service_a.db.dispose()
        service_b.db.dispose()
    message = str(fenced.value)
    assert f"run {a.run_id} was taken over by attempt 2 (worker host-b:2); stopping" in message
    assert message in caplog.text
    assert caplog.text.count("was taken over") == 1, "said once"
    assert stored(service, "Assam Tenders") == [(a.run_id, "A1"), (a.run_id, "B1")]
    row = runs.get(a.run_id)
    assert (row["status"], row["attempt"], row["worker_id"]) == (COMPLETED, 2, "host-b:2")
    assert (row["extracted_total_tenders"], row["skipped_existing_total"]) == (2, 0)
    saved = read_checkpoint(settings.checkpoint_dir, "Assam Tenders", max_bytes=10**6)
    assert saved.cursor == {"page": 2}
    assert [e.action for e in events(service, a.run_id)] == ["start", "resume", "complete"]


def test_a_zombie_heartbeat_matches_no_row_and_stops(fast, service, runs, caplog, monkeypatch):
    """A's process is suspended (its heartbeat thread freezes before its next beat); B takes the
    run over; when A's heartbeat thread runs again it finds the run gone, says so and stops."""
    service_a, service_b = service_for(fast), service_for(fast)
    frozen, thaw = threading.Event(), threading.Event()
    write = service_a.db.write

    @contextmanager
    def freezable_write():
        if threading.current_thread().name.startswith("heartbeat-") and not thaw.is_set():
            frozen.set()
            thaw.wait(10)
        with write() as conn:
            yield conn

    try:
        with caplog.at_level(logging.WARNING, logger="cleanup_core.tracker"):
            a = track_run("Assam Tenders", service=service_a, worker_id="host-a:1").__enter__()
            a.add_tenders(tenders("A1"))
            monkeypatch.setattr(service_a.db, "write", freezable_write)
            assert frozen.wait(5), "A's heartbeat thread reached its next beat"
            runs.update(a.run_id, last_heartbeat_at=real_now() - timedelta(minutes=5))
            with track_run("Assam Tenders", service=service_b, worker_id="host-b:2") as b:
                assert b.attempt == 2
                thaw.set()
                wait_for(lambda: "was taken over by attempt 2" in caplog.text, timeout=5)
                with pytest.raises(RunFencedError, match="taken over by attempt 2"):
                    a.add_tenders(tenders("A2"))
                b.add_tenders(tenders("B1"))
            with pytest.raises(RunFencedError):  # A ends its block: it cannot complete the run
                a.__exit__(None, None, None)
    finally:
        service_a.db.dispose()
        service_b.db.dispose()
    assert stored(service, "Assam Tenders") == [(a.run_id, "A1"), (a.run_id, "B1")]
    assert runs.get(a.run_id)["status"] == COMPLETED
    assert runs.get(a.run_id)["worker_id"] == "host-b:2"


# -- races between processes -----------------------------------------------------------------


RACERS = 8


def test_racing_starters_leave_exactly_one_running_run(service, db_url, checkpoint_dir, runs):
    service.scan()  # the schema exists before the racers open the database
    spawn = multiprocessing.get_context("spawn")
    barrier, release, results = spawn.Barrier(RACERS), spawn.Event(), spawn.Queue()
    racers = [
        spawn.Process(
            target=claim_and_hold,
            args=(db_url, str(checkpoint_dir), "Race Portal", barrier, results, release),
        )
        for _ in range(RACERS)
    ]
    for racer in racers:
        racer.start()
    try:
        outcomes = [results.get(timeout=60) for _ in racers]
        running = runs.count("runs", "status = 'running'")
        total = runs.count("runs")
    finally:
        release.set()
        for racer in racers:
            racer.join(30)
    assert [o for o in outcomes if o[0] == "error"] == []
    claimed = [o for o in outcomes if o[0] == "claimed"]
    busy = [o for o in outcomes if o[0] == "busy"]
    assert len(claimed) == 1, outcomes
    assert len(busy) == RACERS - 1
    winner = claimed[0][1]
    assert {o[1] for o in busy} == {winner}, "every loser was told which run holds the portal"
    assert all("is busy" in o[2] for o in busy)
    assert (running, total) == (1, 1)
    assert all(racer.exitcode == 0 for racer in racers)
    assert runs.get(winner)["status"] == COMPLETED


def test_a_cleanup_racing_a_live_worker_never_cleans_it(settings, runs):
    """Runs count as dead after 0.36 s without progress, so only the heartbeat protects the
    worker while it has made none; a cleaner loops over the whole time."""
    hasty = settings.with_overrides(
        age_threshold_hours=0.0001, heartbeat_timeout_minutes=0.02, heartbeat_interval_seconds=0.1
    )
    worker, cleaner = service_for(hasty), service_for(hasty)
    decoys = [runs.add(f"Decoy {i}", started_at=real_now() - timedelta(hours=1)) for i in range(5)]
    stop, cleaned = threading.Event(), []

    def clean_until_stopped():
        while not stop.is_set():
            cleaned.extend(cleaner.cleanup_if_needed(actor="cron").cleaned)
            time.sleep(0.01)

    thread = threading.Thread(target=clean_until_stopped)
    thread.start()
    try:
        with track_run("Race Portal", service=worker) as run:
            time.sleep(2.0)  # heartbeats only, no progress: well past both timeouts
            for batch in range(10):
                run.add_tenders(tenders(f"R{batch}"))
                time.sleep(0.1)
    finally:
        stop.set()
        thread.join()
        worker.db.dispose()
        cleaner.db.dispose()
    assert sorted(cleaned) == decoys, "the cleaner was at work the whole time"
    assert run.run_id not in cleaned
    assert runs.get(run.run_id)["status"] == COMPLETED
    assert [e.action for e in events(runs.service, run.run_id)] == ["start", "complete"]


# -- checkpoints ---------------------------------------------------------------------------


def test_a_reader_never_sees_a_torn_checkpoint(service, checkpoint_dir):
    statuses, stop = set(), threading.Event()

    def read_all_the_time():
        while not stop.is_set():
            info = read_checkpoint(checkpoint_dir, "Assam Tenders", max_bytes=10**8).info
            statuses.add(info.status)

    reader = threading.Thread(target=read_all_the_time)
    reader.start()
    try:
        with track_run("Assam Tenders", service=service) as run:
            for page in range(40):
                run.add_tenders(tenders(*(f"P{page}-{i}" for i in range(25)), title="x" * 400))
                run.save_checkpoint(cursor={"page": page})
    finally:
        stop.set()
        reader.join()
    assert statuses <= {CheckpointStatus.MISSING, CheckpointStatus.OK}, statuses
    assert CheckpointStatus.OK in statuses
    final = read_checkpoint(checkpoint_dir, "Assam Tenders", max_bytes=10**8)
    assert (final.info.tender_count, final.cursor) == (1000, {"page": 39})
    assert not [p for p in checkpoint_dir.iterdir() if p.name.startswith(".")], "no temp files"


# -- the demo scraper as a real process ------------------------------------------------------


def scraper_env(settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEANUP_")}
    env |= {
        "CLEANUP_DATABASE_URL": settings.database_url,
        "CLEANUP_CHECKPOINT_DIR": str(settings.checkpoint_dir),
        "CLEANUP_TIMEZONE": TZ,
        "CLEANUP_BUSY_TIMEOUT_SECONDS": "10",
        "CLEANUP_HEARTBEAT_INTERVAL_SECONDS": "0.1",
        **extra,
    }
    return env


def start_scraper(settings, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(DEMO_SCRAPER), *args],
        env=scraper_env(settings, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def extracted(service, portal):
    with service.db.read() as conn:
        value = conn.execute(
            text("SELECT max(extracted_total_tenders) FROM runs WHERE portal_name = :p"),
            {"p": portal},
        ).scalar()
    return value or 0


@pytest.mark.parametrize("delay", ["1e20", "-1", "nan", "inf", "3601"])
def test_the_demo_scraper_refuses_a_delay_it_cannot_sleep(service, settings, runs, delay):
    scraper = start_scraper(settings, "--portal", "Assam Tenders", "--delay", delay)
    try:
        output, _ = scraper.communicate(timeout=60)
    finally:
        scraper.kill()
    assert scraper.returncode == 2, output
    assert "--delay: must be a number of seconds from 0 to 3600" in output
    assert "Traceback" not in output
    assert runs.count() == 0  # refused before claiming the portal


def test_a_killed_scraper_is_resumed_to_exactly_the_uninterrupted_tenders(service, settings):
    portal = "Assam Tenders"
    first = start_scraper(
        settings,
        "--portal", portal, "--delay", "0.1", "--as-of", AS_OF.isoformat(),
        CLEANUP_HEARTBEAT_TIMEOUT_MINUTES="0.02",
    )  # fmt: skip
    try:
        wait_for(lambda: extracted(service, portal) >= 30, what="the scraper's progress")
    finally:
        first.kill()  # SIGKILL: no chance to release or flush anything
        output = first.communicate(timeout=10)[0]
    killed_at = real_now()
    assert first.returncode == -signal.SIGKILL, output
    (run_id,) = {run for run, _ in stored(service, portal)}
    assert extracted(service, portal) < 120, "killed mid-run"

    policy = {"heartbeat_timeout_minutes": 0.02}
    fast = CleanupService(settings.with_overrides(**policy), database=service.db)
    assert fast.check_portal(portal, now=killed_at).action is Action.WAIT, "it looks alive"
    check = wait_for(
        lambda: (c := fast.check_portal(portal)).action is Action.RESUME and c,
        what="the heartbeat timeout",
    )
    assert check.run_id == run_id

    resumed = start_scraper(
        settings,
        "--portal", portal, "--resume", str(run_id), "--delay", "0",
        CLEANUP_HEARTBEAT_TIMEOUT_MINUTES="0.02",
    )  # fmt: skip
    output = resumed.communicate(timeout=60)[0]
    assert resumed.returncode == 0, output
    assert f"resuming run {run_id} (attempt 2)" in output

    assert tender_rows(service, portal) == expected_rows(portal), "none missing, none twice"
    assert {run for run, _ in stored(service, portal)} == {run_id}
    with service.db.read() as conn:
        row = conn.execute(text("SELECT * FROM runs WHERE id = :i"), {"i": run_id}).one()
    assert (row.status, row.attempt, row.extracted_total_tenders) == (COMPLETED, 2, 120)


def test_sigterm_releases_the_run_with_its_checkpoint_flushed(service, settings):
    portal = "MP Tenders"
    scraper = start_scraper(
        settings, "--portal", portal, "--delay", "0.1", "--as-of", AS_OF.isoformat()
    )
    try:
        wait_for(lambda: extracted(service, portal) >= 30, what="the scraper's progress")
    finally:
        scraper.send_signal(signal.SIGTERM)
        output = scraper.communicate(timeout=30)[0]
    assert scraper.returncode == 143, output
    (run_id,) = {run for run, _ in stored(service, portal)}
    with service.db.read() as conn:
        row = conn.execute(text("SELECT * FROM runs WHERE id = :i"), {"i": run_id}).one()
    assert (row.status, row.extracted_total_tenders) == (RUNNING, len(stored(service, portal)))
    assert row.released_at is not None
    saved = read_checkpoint(settings.checkpoint_dir, portal, max_bytes=10**7)
    assert saved.info.run_id == run_id
    assert sorted(t["tender_id"] for t in saved.tenders) == sorted(
        t for _, t in stored(service, portal)
    ), "every stored tender is in the checkpoint"
    assert events(service, run_id)[-1].details["reason"] == "SIGTERM"
    # The default heartbeat timeout is 30 min, yet the released run is resumable right now.
    verdict = service.check_portal(portal)
    assert (verdict.action, verdict.run_id) == (Action.RESUME, run_id)
    assert verdict.runs[0].state is RunState.RESUMABLE


def test_the_pre_scrape_example_runs(settings, service, runs):
    example = ROOT / "examples" / "pre_scrape_check.py"
    dead = runs.add("Kerala eTenders", started_at=real_now() - timedelta(hours=30))
    done = subprocess.run(
        [sys.executable, str(example), "Kerala eTenders"],
        env=scraper_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"after cleaning up runs [{dead}]" in done.stdout
    assert "completed, 120 tenders added" in done.stdout
    assert runs.get(dead)["status"] == CLEANED
