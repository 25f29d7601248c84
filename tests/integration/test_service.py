"""The service API on a real database (SQLite file and PostgreSQL), with an explicit clock."""

import json
import logging
import math

import pytest
from sqlalchemy import insert

from cleanup_core import (
    CLEANED,
    Action,
    RefusedError,
    RunNotFoundError,
    RunState,
)
from cleanup_core.checkpoints import write_checkpoint
from cleanup_core.models import Run, Tender
from cleanup_core.service import BATCH_SIZE, CleanupInterrupted
from cleanup_core.storage import runs as stored_runs
from cleanup_core.timestamps import parse_timestamp
from cleanup_core.vocabulary import NotReverted
from tests.conftest import NOW, TZ, ago


def events(service, run_id=None):
    return list(service.history(run_id=run_id, limit=1000).events)


def state_of(service, run_id):
    return {v.run_id: v.state for v in service.scan(now=NOW).verdicts}.get(run_id)


@pytest.fixture
def fleet(runs):
    """One run in each state, on two portals."""
    return {
        "dead": runs.add("Assam Tenders", started_at=ago(hours=30)),
        "dead_null": runs.add(
            "Assam Tenders", started_at=ago(hours=50), extracted_total_tenders=None
        ),
        "resumable": runs.add("MP Tenders", started_at=ago(hours=40), extracted_total_tenders=7),
        "young": runs.add("Kerala", started_at=ago(hours=2)),
        "alive": runs.add("Gujarat", started_at=ago(hours=90), last_heartbeat_at=ago(minutes=3)),
        "completed": runs.add("Assam Tenders", status="completed", started_at=ago(hours=80)),
    }


def test_summary_has_the_seed_shape_and_splits_the_runs(service, fleet):
    summary = service.scan(now=NOW).to_dict()
    assert summary["dead_count"] == 2
    assert summary["resumable_count"] == 1
    assert summary["total_stuck"] == 3
    assert summary["alive_count"] == 1
    assert summary["young_count"] == 1
    assert summary["running_count"] == 5
    assert {r["id"] for r in summary["dead_runs"]} == {fleet["dead"], fleet["dead_null"]}
    assert [r["id"] for r in summary["resumable_runs"]] == [fleet["resumable"]]
    dead = next(r for r in summary["dead_runs"] if r["id"] == fleet["dead"])
    assert dead["portal_name"] == "Assam Tenders"
    assert dead["age_hours"] == pytest.approx(30, abs=0.01)
    assert dead["extracted_total_tenders"] is None  # stored NULL: never recorded, JSON keeps null
    assert {r["rule"] for r in dead["reasons"]} >= {"no_progress", "old"}
    json.dumps(summary)


def test_threshold_changes_the_split(service, fleet):
    summary = service.scan(36, now=NOW)
    assert [v.run_id for v in summary.dead] == [fleet["dead_null"]]
    assert state_of(service, fleet["dead"]) is RunState.DEAD  # default 24 h again


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, -math.inf])
def test_bad_thresholds_are_refused_with_a_clear_message(service, fleet, bad):
    for call in (
        lambda: service.scan(bad),
        lambda: service.check_portal("Assam Tenders", bad),
        lambda: service.cleanup_runs([fleet["dead"]], age_threshold_hours=bad),
        lambda: service.cleanup_if_needed(bad),
    ):
        with pytest.raises(ValueError, match="age_threshold_hours must be a positive, finite"):
            call()
    assert state_of(service, fleet["dead"]) is RunState.DEAD


def test_cleanup_run_cleans_a_dead_run_with_an_audit_event(service, runs, fleet, caplog):
    caplog.set_level(logging.INFO, logger="cleanup_core")
    assert service.cleanup_run(fleet["dead"], actor="test", now=NOW) is True
    row = runs.get(fleet["dead"])
    assert row["status"] == "Timeout - Auto-cleaned" == CLEANED
    assert parse_timestamp(row["completed_at"], service.settings.timezone) == NOW
    [event] = events(service, fleet["dead"])
    assert (event.action, event.actor) == ("cleanup", "test")
    assert (event.from_status, event.to_status) == ("running", CLEANED)
    assert event.created_at == NOW
    assert event.details["previous_completed_at"] is None
    assert {r["rule"] for r in event.details["reasons"]} >= {"no_progress", "old"}
    assert f"cleaned run {fleet['dead']} (Assam Tenders) by test" in caplog.text


def test_cleanup_run_returns_false_for_anything_but_a_dead_run(service, runs, fleet):
    for name in ("resumable", "young", "alive", "completed"):
        assert service.cleanup_run(fleet[name], now=NOW) is False, name
    assert service.cleanup_run(999_999, now=NOW) is False
    assert service.cleanup_run("1", now=NOW) is False
    assert service.cleanup_run(fleet["dead"], now=NOW) is True
    assert service.cleanup_run(fleet["dead"], now=NOW) is False, "only the first call cleans"
    assert runs.get(fleet["resumable"])["status"] == "running"
    assert runs.get(fleet["completed"])["status"] == "completed"
    assert len(events(service)) == 1


def test_bulk_cleanup_in_one_call_cleans_exactly_the_dead(service, runs, fleet):
    ids = [*fleet.values(), 424242]
    result = service.cleanup_runs(ids, actor="bulk", now=NOW)
    assert set(result.cleaned) == {fleet["dead"], fleet["dead_null"]}
    assert result.message == f"Cleaned 2/{len(ids)} dead runs"
    assert result.left_alone[424242] == "no such run"
    assert result.left_alone[fleet["completed"]] == "not running (status 'completed')"
    assert result.left_alone[fleet["alive"]].startswith("alive: heartbeat 3.0 min ago")
    assert result.left_alone[fleet["resumable"]].startswith("resumable: made progress")
    assert runs.count("run_events") == 2
    assert runs.count("runs", f"status = '{CLEANED}'") == 2


def test_cleanup_if_needed_cleans_only_dead_runs(service, runs, fleet):
    result = service.cleanup_if_needed(now=NOW)
    assert set(result.cleaned) == {fleet["dead"], fleet["dead_null"]}
    for name in ("resumable", "young", "alive"):
        assert runs.get(fleet[name])["status"] == "running"
    assert service.cleanup_if_needed(now=NOW).cleaned == ()


@pytest.mark.parametrize(
    "change",
    [
        {"extracted_total_tenders": 1},
        {"skipped_existing_total": 3},
        {"last_heartbeat_at": NOW},
    ],
    ids=["extracted", "skipped", "heartbeat"],
)
def test_a_run_that_changed_since_the_scan_is_left_alone(service, runs, fleet, change):
    summary = service.scan(now=NOW)
    assert fleet["dead"] in [v.run_id for v in summary.dead]
    runs.update(fleet["dead"], **change)  # the worker was alive after all
    assert service.cleanup_run(fleet["dead"], now=NOW) is False
    assert runs.get(fleet["dead"])["status"] == "running"
    assert events(service, fleet["dead"]) == []


def test_a_checkpoint_written_since_the_scan_keeps_the_run(service, runs, fleet):
    assert fleet["dead"] in [v.run_id for v in service.scan(now=NOW).dead]
    write_checkpoint(
        service.settings.checkpoint_dir, "Assam Tenders", tenders=[{"tender_id": "t1"}]
    )
    result = service.cleanup_runs([fleet["dead"], fleet["dead_null"]], now=NOW)
    assert result.cleaned == ()
    assert "checkpoint has 1 tenders" in result.left_alone[fleet["dead"]]


def test_the_update_itself_rechecks_progress_and_heartbeat(service, runs, fleet):
    """Compare-and-set in SQL: even given stale facts, the UPDATE refuses a changed row."""
    runs.update(fleet["dead"], extracted_total_tenders=5)
    runs.update(fleet["dead_null"], last_heartbeat_at=ago(minutes=1))
    with service.db.write() as conn:
        cleaned = stored_runs.mark_cleaned(
            conn,
            [fleet["dead"], fleet["dead_null"], fleet["completed"]],
            heartbeat_cutoff=ago(minutes=30),
            completed_at=NOW,
        )
    assert cleaned == []
    assert runs.count("runs", f"status = '{CLEANED}'") == 0


def test_force_cleans_resumable_but_never_a_live_run(service, runs, fleet):
    result = service.cleanup_runs(
        [fleet["resumable"], fleet["alive"], fleet["young"]], force=True, actor="admin", now=NOW
    )
    assert result.cleaned == (fleet["resumable"],)
    [event] = events(service, fleet["resumable"])
    assert event.details["forced"] is True
    assert event.details["state"] == "resumable"
    assert runs.get(fleet["alive"])["status"] == "running"


def test_revert_restores_exactly_the_previous_values(service, runs, backend):
    # Legacy rows sometimes have a completed_at although they are running.
    previous = "2026-11-20 10:00:00" if backend == "sqlite" else ago(hours=170)
    run_id = runs.add(started_at=ago(hours=48), completed_at=previous)
    before = runs.get(run_id)
    assert service.cleanup_run(run_id, now=NOW)
    assert runs.get(run_id)["status"] == CLEANED

    assert service.revert_cleanup(run_id, actor="admin") is True
    assert runs.get(run_id) == before
    actions = [(e.action, e.actor) for e in events(service, run_id)]
    assert actions == [("revert", "admin"), ("cleanup", "api")]
    assert service.revert_cleanup(run_id) is False, "nothing left to revert"
    # and the run can be cleaned (and reverted) again
    assert service.cleanup_run(run_id, now=NOW)
    assert service.revert_cleanup(run_id)
    assert runs.get(run_id) == before


def test_revert_refuses_what_it_cannot_revert(service, runs, fleet):
    assert service.revert_cleanup(fleet["dead"]) is False, "never cleaned"
    assert service.revert_cleanup(987654) is False, "unknown run"
    assert service.cleanup_run(fleet["dead"], now=NOW)
    runs.update(fleet["dead"], status="completed")  # someone changed it since
    assert service.revert_cleanup(fleet["dead"]) is False
    assert runs.get(fleet["dead"])["status"] == "completed"


def test_revert_says_why_it_cannot_revert(service, runs, fleet):
    """One transaction decides, and the result says why: nothing for a caller to look up."""
    why = {
        "unknown": service.revert(987654).why_not,
        "never cleaned": service.revert(fleet["dead"]).why_not,
    }
    assert service.cleanup_run(fleet["dead"], now=NOW)
    assert service.revert(fleet["dead"]).reverted
    why["already reverted"] = service.revert(fleet["dead"]).why_not
    assert service.cleanup_run(fleet["dead_null"], now=NOW)
    runs.update(fleet["dead_null"], status="completed")
    changed = service.revert(fleet["dead_null"])
    assert why == {
        "unknown": NotReverted.NO_SUCH_RUN,
        "never cleaned": NotReverted.NEVER_CLEANED,
        "already reverted": NotReverted.ALREADY_REVERTED,
    }
    assert (changed.reverted, changed.why_not, changed.status) == (
        False,
        NotReverted.CHANGED_SINCE,
        "completed",
    )
    assert "'completed'" in changed.message
    assert [e.action for e in events(service, fleet["dead_null"])] == ["cleanup"]


def _dead_runs(service, count):
    """``count`` dead runs of one portal, written in one statement."""
    rows = [{"portal_name": "Bulk", "status": "running", "started_at": ago(hours=30)}] * count
    with service.db.write() as conn:
        conn.execute(insert(Run.__table__), rows)
    return [v.run_id for v in service.scan(now=NOW).dead]


def test_a_large_clean_up_goes_in_batches_and_reports_progress(service, runs):
    ids = _dead_runs(service, BATCH_SIZE * 2 + 17)
    seen = []
    result = service.cleanup_runs(
        ids, now=NOW, progress=lambda done, total: seen.append((done, total))
    )
    total = len(ids)
    assert seen == [(BATCH_SIZE, total), (2 * BATCH_SIZE, total), (total, total)]
    assert result.cleaned == tuple(ids)
    assert runs.count("run_events", "action = 'cleanup'") == total


def test_an_interrupted_clean_up_keeps_whole_batches_and_says_how_many(service, runs):
    ids = _dead_runs(service, BATCH_SIZE * 3)

    def interrupt_after_the_first(done, total):
        if done == BATCH_SIZE:
            raise KeyboardInterrupt

    with pytest.raises(CleanupInterrupted) as interrupted:
        service.cleanup_runs(ids, now=NOW, progress=interrupt_after_the_first)
    assert interrupted.value.result.cleaned == tuple(ids[:BATCH_SIZE])
    assert f"{BATCH_SIZE} runs were cleaned" in str(interrupted.value)
    assert runs.count("runs", f"status = '{CLEANED}'") == BATCH_SIZE
    assert runs.count("run_events", "action = 'cleanup'") == BATCH_SIZE
    assert runs.count("runs", "status = 'running'") == 2 * BATCH_SIZE


def test_delete_needs_confirmation_and_refuses_running_runs(service, runs, fleet):
    finished = [fleet["completed"]]
    with pytest.raises(RefusedError, match="confirm=True"):
        service.delete_runs(finished)
    with pytest.raises(RefusedError, match=f"Run {fleet['dead']} is still running"):
        service.delete_runs([fleet["completed"], fleet["dead"]], confirm=True)
    with pytest.raises(RunNotFoundError, match="No run with id 55555"):
        service.delete_runs([fleet["completed"], 55555], confirm=True)
    assert runs.get(fleet["completed"]) is not None, "nothing deleted by refused requests"
    assert runs.count("run_events") == 0


def test_delete_removes_run_records_but_keeps_tenders(service, runs, fleet):
    with service.db.write() as conn:
        conn.execute(
            insert(Tender.__table__).values(
                run_id=fleet["completed"], portal_name="Assam Tenders", tender_id="2026_PWD_1"
            )
        )
    assert service.cleanup_run(fleet["dead"], now=NOW)
    assert service.delete_runs([fleet["completed"], fleet["dead"]], confirm=True, actor="op") == 2
    assert runs.get(fleet["completed"]) is None
    assert runs.get(fleet["dead"]) is None
    assert runs.count("tenders") == 1
    deletions = service.history(actions=["delete"]).events
    assert {e.run_id for e in deletions} == {fleet["completed"], fleet["dead"]}
    snapshot = next(e for e in deletions if e.run_id == fleet["completed"]).details["deleted_row"]
    assert snapshot["portal_name"] == "Assam Tenders"
    assert snapshot["status"] == "completed"


def test_history_newest_first_with_filters_and_paging(service, runs, fleet):
    service.cleanup_runs([fleet["dead"], fleet["dead_null"]], actor="a", now=NOW)
    service.revert_cleanup(fleet["dead"], actor="b")
    page = service.history(limit=2)
    assert page.total == 3
    assert [e.action for e in page.events] == ["revert", "cleanup"]
    assert [e.action for e in service.history(limit=2, offset=2).events] == ["cleanup"]
    assert service.history(portal_name="MP Tenders").total == 0
    assert service.history(portal_name="Assam Tenders").total == 3
    assert service.history(run_id=fleet["dead"]).total == 2
    assert service.history(actions=["revert"]).total == 1
    with pytest.raises(ValueError, match="limit"):
        service.history(limit=0)
    with pytest.raises(ValueError, match="offset"):
        service.history(offset=-1)


# -- the pre-scrape check ----------------------------------------------------------------


def test_check_start_when_nothing_runs(service, fleet):
    check = service.check_portal("Bihar", now=NOW).to_dict()
    assert check["has_running"] is False
    assert check["action"] == "start"
    assert check["run_id"] is None


def test_check_resume_picks_the_most_advanced_run(service, runs):
    runs.add("Assam Tenders", started_at=ago(hours=60), extracted_total_tenders=3)
    best = runs.add("Assam Tenders", started_at=ago(hours=30), extracted_total_tenders=30)
    runs.add("Assam Tenders", started_at=ago(hours=50))  # dead
    check = service.check_portal("Assam Tenders", now=NOW)
    assert (check.action, check.run_id) == (Action.RESUME, best)
    assert check.to_dict()["has_running"] is True
    assert f"run {best} can be resumed" in check.reason


def test_check_cleanup_names_every_dead_run(service, runs):
    ids = [runs.add("Assam Tenders", started_at=ago(hours=h)) for h in (30, 40, 50)]
    check = service.check_portal("Assam Tenders", now=NOW)
    assert check.action is Action.CLEANUP
    assert check.run_id == ids[0]
    assert list(check.run_ids) == ids


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        ({"last_heartbeat_at": ago(minutes=1)}, "is alive"),
        ({"started_at": ago(hours=1)}, "may still be starting"),
        ({"started_at": None}, "needs a person's attention"),
    ],
)
def test_check_waits_while_any_run_may_be_working(service, runs, other, expected):
    runs.add("Assam Tenders", started_at=ago(hours=50), extracted_total_tenders=9)  # resumable
    runs.add("Assam Tenders", started_at=ago(hours=30))  # dead
    waiting = runs.add("Assam Tenders", **{"started_at": ago(hours=40), **other})
    check = service.check_portal("Assam Tenders", now=NOW)
    assert check.action is Action.WAIT
    assert check.run_id == waiting
    assert expected in check.reason


@pytest.mark.parametrize(
    "name",
    [
        "../../etc",
        "'; DROP TABLE runs; --",
        "Robert'); DELETE FROM run_events;--",
        "मध्य प्रदेश ई-टेंडर",
        "x" * 5000,
        "%_\\",
        "NUL\x00byte",
    ],
)
def test_hostile_portal_names_get_an_honest_verdict(service, runs, backend, name):
    if "\x00" in name and backend == "postgresql":
        name = name.replace("\x00", "")  # PostgreSQL text cannot hold NUL at all
    runs.add("Assam Tenders", started_at=ago(hours=30))
    assert service.check_portal(name, now=NOW).action is Action.START
    run_id = runs.add(name, started_at=ago(hours=30))
    check = service.check_portal(name, now=NOW)
    assert (check.action, check.run_id) == (Action.CLEANUP, run_id)
    assert runs.count("runs") == 2


@pytest.mark.parametrize("bad", ["", "   ", None, 42])
def test_check_refuses_a_missing_portal_name(service, bad):
    with pytest.raises(ValueError, match="portal_name"):
        service.check_portal(bad)


def test_checkpoint_of_the_portal_makes_its_old_run_resumable(service, runs):
    run_id = runs.add("Assam Tenders", started_at=ago(hours=30))
    write_checkpoint(
        service.settings.checkpoint_dir,
        "Assam Tenders",
        tenders=[{"tender_id": "t"}] * 4,
        run_id=run_id,
    )
    check = service.check_portal("Assam Tenders", now=NOW)
    assert (check.action, check.run_id) == (Action.RESUME, run_id)
    assert "checkpoint has 4 tenders" in check.reason


def test_corrupt_checkpoint_blocks_cleanup_and_says_why(service, runs):
    run_id = runs.add("Assam Tenders", started_at=ago(hours=30))
    (service.settings.checkpoint_dir / "assam_tenders.json").write_text("{not json")
    assert service.cleanup_run(run_id, now=NOW) is False
    check = service.check_portal("Assam Tenders", now=NOW)
    assert check.action is Action.WAIT
    assert "checkpoint corrupt" in check.reason


def test_naive_timestamps_are_read_in_the_configured_zone(service, runs):
    # SQLite keeps the text as written; PostgreSQL reads it in the session zone, which the
    # tool sets to the configured one. Either way it means IST wall-clock time.
    assert str(service.settings.timezone) == TZ
    # 23.5 h ago in IST wall-clock time, which would be 18 h "ago" if read as UTC
    run_id = runs.add(started_at="2026-11-27 18:00:00")
    verdict = next(v for v in service.scan(now=NOW).verdicts if v.run_id == run_id)
    assert verdict.state is RunState.YOUNG
    assert verdict.age_hours == pytest.approx(23.5)


def test_the_update_treats_a_released_run_as_having_no_live_worker(service, runs):
    run_id = runs.add(
        started_at=ago(hours=30), last_heartbeat_at=ago(minutes=2), released_at=ago(minutes=1)
    )
    assert state_of(service, run_id) is RunState.DEAD
    assert service.cleanup_run(run_id, now=NOW) is True
    runs.update(
        run_id, status="running", last_heartbeat_at=ago(minutes=1), released_at=ago(minutes=2)
    )  # re-claimed by a worker after the release
    with service.db.write() as conn:
        cleaned = stored_runs.mark_cleaned(
            conn, [run_id], heartbeat_cutoff=ago(minutes=30), completed_at=NOW
        )
    assert cleaned == []


@pytest.mark.parametrize("huge", [2**31 + 5, 3_000_000_000, 2**63 - 1, 2**63, 10**30])
def test_ids_no_run_can_have_are_simply_not_found(service, runs, huge):
    runs.add(started_at=ago(hours=30))
    assert service.cleanup_run(huge, now=NOW) is False
    assert service.revert_cleanup(huge) is False
    assert service.run_status(huge) is None
    assert service.history(run_id=huge).total == 0
    result = service.cleanup_runs([huge], now=NOW)
    assert result.left_alone == {huge: "no such run"}
    with pytest.raises(RunNotFoundError):
        service.delete_runs([huge], confirm=True)
