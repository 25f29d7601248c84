"""The demo fleet: every state present and judged as intended, realistic tenders, refusals, and
partly scraped runs that the demo scraper resumes to exactly the full portal."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text

from cleanup_core import (
    CLEANED,
    COMPLETED,
    FAILED,
    RUNNING,
    Action,
    RefusedError,
    RunState,
    load_demo,
    track_run,
)
from cleanup_core.checkpoints import CheckpointStatus, inspect_checkpoint, write_checkpoint
from cleanup_core.demo import PORTALS, scrape_synthetic_portal, synthetic_portal
from cleanup_core.timestamps import parse_timestamp
from tests.conftest import NOW

STATE_OF_LABEL = {
    "alive": RunState.ALIVE,
    "young": RunState.YOUNG,
    "resumable_progress": RunState.RESUMABLE,
    "resumable_checkpoint": RunState.RESUMABLE,
    "dead": RunState.DEAD,
    "attention": RunState.ATTENTION,
}
STATUS_OF_LABEL = {"completed": COMPLETED, "failed": FAILED, "cleaned": CLEANED}


def column(service, sql, **params):
    with service.db.read() as conn:
        return [row[0] for row in conn.execute(text(sql), params)]


def test_every_state_is_there_and_judged_as_intended(service, runs):
    report = load_demo(service, now=NOW)
    assert set(report.runs) == set(STATE_OF_LABEL) | set(STATUS_OF_LABEL)
    verdicts = {v.run_id: v for v in service.scan(now=NOW).verdicts}
    for label, state in STATE_OF_LABEL.items():
        for run_id in report.runs[label]:
            assert verdicts[run_id].state is state, (label, verdicts[run_id].summary)
    assert set(verdicts) == {i for label in STATE_OF_LABEL for i in report.runs[label]}
    for label, status in STATUS_OF_LABEL.items():
        for run_id in report.runs[label]:
            assert runs.get(run_id)["status"] == status, label

    by_progress = verdicts[report.runs["resumable_progress"][0]]
    assert by_progress.extracted == by_progress.checkpoint_tenders == 50, "as the scraper left it"
    by_checkpoint = verdicts[report.runs["resumable_checkpoint"][0]]
    assert by_checkpoint.extracted == 0 and by_checkpoint.checkpoint_tenders > 0
    attention = verdicts[report.runs["attention"][0]]
    assert attention.checkpoint.status is CheckpointStatus.CORRUPT
    assert all(run.startswith("demo:") for run in column(service, "SELECT worker_id FROM runs"))

    actions = {p.name: service.check_portal(p.name, now=NOW).action for p in PORTALS}
    assert actions["Assam Tenders"] is Action.WAIT
    assert actions["Kerala eTenders"] is Action.WAIT
    assert actions["MP Tenders"] is Action.RESUME
    assert actions["Uttar Pradesh eTender"] is Action.RESUME
    assert actions["CPPP Central"] is Action.CLEANUP
    assert actions["West Bengal eTender"] is Action.WAIT
    assert actions["Haryana eProcurement"] is Action.START

    (cleaned,) = report.runs["cleaned"]
    (cleanup,) = service.history(run_id=cleaned).events
    assert (cleanup.action, cleanup.actor, cleanup.to_status) == (
        "cleanup",
        "demo:nightly-cleanup",
        CLEANED,
    )
    assert cleanup.details["state"] == "dead"
    (failed_event,) = service.history(run_id=report.runs["failed"][0], actions=["fail"]).events
    assert failed_event.details["error_type"] == "ConnectionError"


def test_tenders_look_like_a_gepnic_portal(service):
    report = load_demo(service, now=NOW)
    with service.db.read() as conn:
        rows = conn.execute(text("SELECT * FROM tenders")).mappings().all()
    assert len(rows) == report.tenders > 500
    assert len({(r["portal_name"], r["tender_id"]) for r in rows}) == len(rows), "no duplicates"
    for row in rows:
        assert re.fullmatch(r"2026_[A-Z]{2,4}_\d{5}_1", row["tender_id"]), row["tender_id"]
        assert re.fullmatch(r"[A-Z]{2,4}/[A-Z]{3}/20\d\d-\d\d/\d+", row["reference_number"])
        assert row["organisation"].count("||") == 2
        assert row["category"] in ("Works", "Goods", "Services")
        assert row["value_inr"] > 0
        closing = datetime.fromisoformat(row["closing_date"])
        assert closing.date() > date.fromisoformat(row["published_date"])
        assert row["title"]


def test_the_fleet_is_deterministic_and_loading_it_again_replaces_it(service, runs):
    first = load_demo(service, now=NOW)
    ids = sorted(column(service, "SELECT portal_name || tender_id FROM tenders"))
    again = load_demo(service, now=NOW)
    assert again.replaced_runs == sum(len(v) for v in first.runs.values())
    assert sorted(column(service, "SELECT portal_name || tender_id FROM tenders")) == ids
    assert runs.count() == again.replaced_runs, "replaced, not added"
    assert {label: len(v) for label, v in again.runs.items()} == {
        label: len(v) for label, v in first.runs.items()
    }


def test_a_database_with_other_runs_is_refused_unless_forced(service, runs):
    own = runs.add("Assam Tenders", status=COMPLETED)
    with pytest.raises(RefusedError, match="already holds 1 runs that are not the demo's"):
        load_demo(service, now=NOW)
    assert runs.count() == 1
    before = runs.get(own)
    report = load_demo(service, now=NOW, force=True)
    assert runs.get(own) == before, "the operator's own run is kept as it was"
    assert runs.count() == 1 + sum(len(v) for v in report.runs.values())


def test_a_checkpoint_that_is_not_the_demos_is_never_replaced(service, checkpoint_dir):
    path = write_checkpoint(
        checkpoint_dir, "Uttar Pradesh eTender", tenders=[{"tender_id": "real"}], run_id=999
    )
    content = path.read_bytes()
    with pytest.raises(RefusedError, match="exists and is not the demo's"):
        load_demo(service, now=NOW, force=True)
    assert path.read_bytes() == content
    assert column(service, "SELECT count(*) FROM runs") == [0]


def test_the_demo_scraper_resumes_the_demo_runs_to_the_full_portal(service, runs):
    """Loaded as of now (the database's clock), the two resumable runs are resumed through the
    tracker and end with exactly the portal's tenders: none missing, none twice."""
    report = load_demo(service)
    as_of = report.loaded_at.astimezone(service.settings.timezone).date()
    for label in ("resumable_progress", "resumable_checkpoint"):
        (run_id,) = report.runs[label]
        portal = runs.get(run_id)["portal_name"]
        with track_run(portal, service=service) as run:
            assert (run.run_id, run.resumed) == (run_id, True)
            already = len(run.seen_tender_ids)
            assert already > 0
            added = scrape_synthetic_portal(run, as_of=as_of)
        expected = sorted(t["tender_id"] for t in synthetic_portal(portal, as_of=as_of).tenders())
        stored = column(service, "SELECT tender_id FROM tenders WHERE run_id = :r", r=run_id)
        assert sorted(stored) == expected
        assert added == len(expected) - already
        assert runs.get(run_id)["status"] == COMPLETED


def test_times_follow_the_clock_and_the_configured_zone(service, runs):
    report = load_demo(service, now=NOW)
    (alive,) = report.runs["alive"]
    row = runs.get(alive)
    started = parse_timestamp(row["started_at"], service.settings.timezone)
    assert started == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    checkpoint = inspect_checkpoint(
        service.settings.checkpoint_dir, "Uttar Pradesh eTender", max_bytes=10**7
    )
    assert (
        checkpoint.cursor["as_of"] == NOW.astimezone(service.settings.timezone).date().isoformat()
    )
    assert row["status"] == RUNNING
