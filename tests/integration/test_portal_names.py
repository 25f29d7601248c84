"""Which stored portal a name means, on a real database (SQLite file and PostgreSQL).

A name that differs from a stored portal only by case, spacing or punctuation has the same
checkpoint file and the same config section: it is that portal, for the pre-scrape check, a
worker's claim and a launch alike, and what they report names the stored portal. Two stored
portals that share a checkpoint file are reported, never merged.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cleanup_core import Action, CleanupService, PortalBusyError, RefusedError, track_run
from cleanup_core.db import Database
from tests.conftest import NOW, ago

VARIANTS = ["assam tenders", "Assam Tenders ", "ASSAM-TENDERS", " assam_tenders"]
RECORD_ARGV = Path(__file__).resolve().parents[1] / "helpers" / "record_argv.py"


@pytest.mark.parametrize("asked", VARIANTS)
def test_a_variant_of_a_stored_name_is_checked_as_that_portal(service, runs, asked):
    alive = runs.add("Assam Tenders", started_at=ago(hours=2), last_heartbeat_at=ago(minutes=1))
    check = service.check_portal(asked, now=NOW)
    assert (check.action, check.run_id, check.portal_name) == (
        Action.WAIT,
        alive,
        "Assam Tenders",
    )
    assert check.to_dict()["requested_name"] == asked


def test_the_exact_name_is_checked_as_itself(service, runs):
    dead = runs.add("Assam Tenders", started_at=ago(hours=30))
    check = service.check_portal("Assam Tenders", now=NOW)
    assert (check.action, check.run_ids, check.portal_name) == (
        Action.CLEANUP,
        (dead,),
        "Assam Tenders",
    )
    assert check.to_dict()["requested_name"] is None


def test_a_new_portal_is_itself(service, runs):
    runs.add("Assam Tenders", started_at=ago(hours=2), last_heartbeat_at=ago(minutes=1))
    check = service.check_portal("Kerala eTenders", now=NOW)
    assert (check.action, check.portal_name) == (Action.START, "Kerala eTenders")


def test_a_variant_of_a_finished_portal_starts_under_the_stored_name(service, runs):
    runs.add("Assam Tenders", status="completed", started_at=ago(hours=30))
    check = service.check_portal("assam tenders", now=NOW)
    assert (check.action, check.portal_name) == (Action.START, "Assam Tenders")
    assert check.reason == "no running run for 'Assam Tenders'"


def test_a_name_two_stored_portals_share_is_not_guessed(service, runs):
    """``Assam Tenders`` and ``assam  tenders`` both have runs: a third spelling could mean
    either, so the check says wait and names both; each exact name still means itself."""
    first = runs.add("Assam Tenders", started_at=ago(hours=30))
    second = runs.add("assam  tenders", started_at=ago(hours=30))
    check = service.check_portal("ASSAM TENDERS", now=NOW)
    assert check.action is Action.WAIT and check.run_id is None
    assert "'Assam Tenders'" in check.reason and "'assam  tenders'" in check.reason
    assert "assam_tenders.json" in check.reason
    assert service.check_portal("assam  tenders", now=NOW).run_ids == (second,)
    assert service.check_portal("Assam Tenders", now=NOW).run_ids == (first,)


def test_scan_reports_stored_portals_that_share_a_checkpoint_file(service, runs):
    runs.add("Assam Tenders", started_at=ago(hours=30))
    runs.add("assam  tenders", status="completed", started_at=ago(hours=50))
    runs.add("MP Tenders", started_at=ago(hours=30))
    summary = service.scan(now=NOW)
    assert summary.to_dict()["shared_checkpoints"] == [
        {"checkpoint": "assam_tenders.json", "portals": ["Assam Tenders", "assam  tenders"]}
    ]
    (note,) = summary.notes
    assert "'Assam Tenders'" in note and "'assam  tenders'" in note
    assert "assam_tenders.json" in note
    assert len(summary.dead) == 2  # reported, not merged: each run is judged as before


def test_a_scan_without_shared_checkpoint_files_says_nothing_about_them(service, runs):
    runs.add("Assam Tenders", started_at=ago(hours=30))
    runs.add("MP Tenders", started_at=ago(hours=30))
    summary = service.scan(now=NOW)
    assert summary.notes == () and summary.to_dict()["shared_checkpoints"] == []


# -- the worker's claim ---------------------------------------------------------------------


def tracker_service(settings) -> CleanupService:
    return CleanupService(settings, database=Database(settings, create_missing=True))


def test_a_worker_with_a_variant_name_waits_for_the_stored_portals_live_run(settings, runs):
    alive = runs.add("Assam Tenders", last_heartbeat_at=datetime.now(UTC) - timedelta(seconds=5))
    service = tracker_service(settings)
    try:
        with pytest.raises(PortalBusyError) as busy, track_run("assam tenders", service=service):
            pytest.fail("a second run of the portal was started")
    finally:
        service.close()
    assert busy.value.run_id == alive
    assert busy.value.check.portal_name == "Assam Tenders"
    assert runs.count("runs", "status = 'running'") == 1


def test_a_worker_with_a_variant_name_runs_under_the_stored_name(settings, runs):
    runs.add("Assam Tenders", status="completed", started_at=ago(hours=30))
    service = tracker_service(settings)
    try:
        with track_run("ASSAM-TENDERS ", service=service) as run:
            run.add_tenders([{"tender_id": "T-1", "title": "Road"}])
    finally:
        service.close()
    assert run.portal_name == "Assam Tenders"
    row = runs.get(run.run_id)
    assert (row["portal_name"], row["status"]) == ("Assam Tenders", "completed")
    assert runs.count("tenders", "portal_name = 'Assam Tenders'") == 1
    assert runs.count("runs", "portal_name <> 'Assam Tenders'") == 0


def test_a_worker_with_a_variant_name_resumes_the_stored_portals_run(settings, runs):
    resumable = runs.add("Assam Tenders", started_at=ago(hours=30), extracted_total_tenders=4)
    service = tracker_service(settings)
    try:
        with track_run("assam tenders", service=service) as run:
            assert (run.action, run.run_id) == (Action.RESUME, resumable)
    finally:
        service.close()
    assert runs.count("runs") == 1


def test_a_worker_refuses_a_name_two_stored_portals_share(settings, runs):
    runs.add("Assam Tenders", status="completed", started_at=ago(hours=30))
    runs.add("assam  tenders", status="completed", started_at=ago(hours=30))
    service = tracker_service(settings)
    try:
        with pytest.raises(PortalBusyError) as busy, track_run("ASSAM TENDERS", service=service):
            pytest.fail("the worker guessed which portal was meant")
    finally:
        service.close()
    assert "assam_tenders.json" in busy.value.reason
    assert runs.count("runs") == 2


# -- launching ------------------------------------------------------------------------------


def test_a_start_launched_for_a_variant_name_starts_the_stored_portal(settings, runs, tmp_path):
    record = tmp_path / "launched.json"
    launcher = CleanupService(
        settings.with_overrides(
            start_command=f"{{python}} {RECORD_ARGV} {record} start {{portal}} {{portal_slug}}",
            log_dir=str(tmp_path / "logs"),
        ),
        database=Database(settings, create_missing=True),
    )
    runs.add("Assam Tenders", status="completed", started_at=ago(hours=30))
    try:
        launched = launcher.launch_start("assam tenders", actor="ops", now=NOW)
    finally:
        launcher.close()
    assert launched.portal_name == "Assam Tenders"
    assert launched.argv[-2:] == ("Assam Tenders", "assam_tenders")


@pytest.mark.parametrize("launch", ["start", "resume"])
def test_nothing_is_launched_for_a_portal_that_shares_its_checkpoint_file(
    settings, runs, tmp_path, launch
):
    """The scraper would overwrite the other portal's checkpoint: a person renames one first."""
    record = tmp_path / "launched.json"
    recorder = f"{{python}} {RECORD_ARGV} {record}"
    launcher = CleanupService(
        settings.with_overrides(
            start_command=f"{recorder} start {{portal}}",
            resume_command=f"{recorder} resume {{portal}} {{run_id}}",
            log_dir=str(tmp_path / "logs"),
        ),
        database=Database(settings, create_missing=True),
    )
    resumable = runs.add("Assam Tenders", started_at=ago(hours=30), extracted_total_tenders=3)
    runs.add("assam  tenders", status="completed", started_at=ago(hours=50))
    calls = {
        "start": lambda: launcher.launch_start("Assam Tenders", actor="ops", now=NOW),
        "resume": lambda: launcher.launch_resume(resumable, actor="ops", now=NOW),
    }
    try:
        with pytest.raises(RefusedError) as refused:
            calls[launch]()
    finally:
        launcher.close()
    assert "assam_tenders.json" in str(refused.value) and "'assam  tenders'" in str(refused.value)
    assert not (tmp_path / "logs").exists() and not record.exists()
