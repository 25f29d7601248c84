"""Tenders stored under a run's id are progress evidence (a legacy scraper stores tenders as it
goes and updates its counters only at the end), on a real SQLite file and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text

from cleanup_core import CLEANED, Action, RunState, track_run
from cleanup_core.models import Tender
from cleanup_core.reports import run_detail, runs_page
from cleanup_core.storage import runs as stored_runs
from tests.conftest import NOW, ago

PORTAL = "Assam Tenders"


def store_tenders(service, run_id: int, count: int, *, portal: str = PORTAL, prefix: str = "t"):
    """Rows in ``tenders`` under ``run_id``, as the scraper's own code writes them."""
    with service.db.write() as conn:
        conn.execute(
            insert(Tender.__table__),
            [
                {"run_id": run_id, "portal_name": portal, "tender_id": f"{prefix}-{run_id}-{i}"}
                for i in range(count)
            ],
        )


def verdict_of(service, run_id, now=NOW):
    return next(v for v in service.scan(now=now).verdicts if v.run_id == run_id)


@pytest.fixture
def crashed(service, runs):
    """500 tenders stored, counters 0, no checkpoint, two days old: the legacy scraper died."""
    run_id = runs.add(
        PORTAL, started_at=ago(hours=48), extracted_total_tenders=0, skipped_existing_total=0
    )
    store_tenders(service, run_id, 500)
    return run_id


def test_a_crashed_run_with_stored_tenders_is_resumable_and_never_cleaned(service, runs, crashed):
    dead = runs.add("MP Tenders", started_at=ago(hours=30))
    verdict = verdict_of(service, crashed)
    assert verdict.state is RunState.RESUMABLE
    assert verdict.stored_tenders == 500
    assert "500 tenders stored" in verdict.summary
    reason = next(r for r in verdict.reasons if r.rule == "tenders_stored")
    assert reason.evidence == {"stored_tenders": 500}
    summary = service.scan(now=NOW).to_dict()
    assert [r["id"] for r in summary["resumable_runs"]] == [crashed]
    assert [r["id"] for r in summary["dead_runs"]] == [dead]
    assert summary["notes"] == []

    check = service.check_portal(PORTAL, now=NOW)
    assert (check.action, check.run_id) == (Action.RESUME, crashed)
    assert "500 tenders stored" in check.reason

    result = service.cleanup_if_needed(now=NOW)
    assert result.cleaned == (dead,)
    assert runs.get(crashed)["status"] == "running"
    assert service.cleanup_run(crashed, now=NOW) is False
    assert runs.get(crashed)["status"] == "running"
    assert service.history(run_id=crashed).total == 0


def test_a_dead_run_says_that_no_tenders_are_stored(service, runs):
    dead = runs.add(PORTAL, started_at=ago(hours=30))
    verdict = verdict_of(service, dead)
    assert verdict.state is RunState.DEAD
    assert verdict.stored_tenders == 0
    assert "no tenders stored" in verdict.summary


def test_a_tender_stored_between_the_scan_and_the_clean_up_keeps_the_run(service, runs):
    run_id = runs.add(PORTAL, started_at=ago(hours=30))
    assert [v.run_id for v in service.scan(now=NOW).dead] == [run_id]
    store_tenders(service, run_id, 1)  # the scraper was alive after all
    result = service.cleanup_runs([run_id], actor="op", now=NOW)
    assert result.cleaned == ()
    why = result.left_alone[run_id]
    assert why.startswith("resumable:") and "1 tender stored" in why
    assert runs.get(run_id)["status"] == "running"
    assert service.history(run_id=run_id).total == 0


def test_the_update_itself_refuses_a_run_with_stored_tenders(service, runs):
    """Compare-and-set in SQL: even given stale verdicts, the UPDATE leaves such a run alone,
    unless a person forces the clean-up."""
    with_tenders = runs.add(PORTAL, started_at=ago(hours=30))
    without = runs.add(PORTAL, started_at=ago(hours=30))
    store_tenders(service, with_tenders, 2)
    with service.db.write() as conn:
        cleaned = stored_runs.mark_cleaned(
            conn, [with_tenders, without], heartbeat_cutoff=ago(minutes=30), completed_at=NOW
        )
    assert cleaned == [without]
    assert runs.get(with_tenders)["status"] == "running"
    with service.db.write() as conn:
        forced = stored_runs.mark_cleaned(
            conn,
            [with_tenders],
            heartbeat_cutoff=ago(minutes=30),
            completed_at=NOW,
            require_no_progress=False,
        )
    assert forced == [with_tenders]
    assert runs.get(with_tenders)["status"] == CLEANED


def test_the_workers_claim_resumes_a_run_with_stored_tenders(service, runs):
    """The tracker's claim judges with the same evidence: it resumes the crashed run (knowing
    the tenders it already stored) instead of cleaning it and starting afresh."""
    started = datetime.now(UTC) - timedelta(hours=48)
    crashed = runs.add(PORTAL, started_at=started, extracted_total_tenders=0)
    store_tenders(service, crashed, 3)
    with track_run(PORTAL, service=service) as run:
        assert (run.run_id, run.resumed) == (crashed, True)
        assert "3 tenders stored" in run.reason
        assert run.seen_tender_ids == {f"t-{crashed}-{i}" for i in range(3)}
    assert runs.get(crashed)["status"] == "completed"


def test_the_runs_page_and_run_detail_judge_stored_tenders_too(service, runs, crashed):
    page = runs_page(service, now=NOW)
    assert next(r for r in page.rows if r.id == crashed).state == "resumable"
    detail = run_detail(service, crashed, now=NOW)
    assert detail.run.state == "resumable"
    assert "500 tenders stored" in detail.reasons


def replace_tenders_table(service, backend: str, *, with_table: bool) -> None:
    """The operator replaced the adopted ``tenders`` table with one that has no ``run_id``."""
    with service.db.write() as conn:
        conn.execute(text("DROP TABLE tenders"))
        if with_table:
            conn.execute(
                text("CREATE TABLE tenders (id INTEGER PRIMARY KEY, tender_id TEXT, title TEXT)")
            )
            conn.execute(text("INSERT INTO tenders (id, tender_id) VALUES (1, '2026_PWD_1_1')"))


@pytest.mark.parametrize("with_table", [True, False], ids=["no-run_id-column", "no-table"])
def test_without_a_run_id_column_stored_tenders_are_no_evidence_and_scan_says_so(
    service, runs, backend, with_table
):
    dead = runs.add(PORTAL, started_at=ago(hours=30))
    resumable = runs.add("MP Tenders", started_at=ago(hours=30), extracted_total_tenders=4)
    replace_tenders_table(service, backend, with_table=with_table)

    summary = service.scan(now=NOW)
    assert [v.run_id for v in summary.dead] == [dead]
    assert [v.run_id for v in summary.resumable] == [resumable]
    assert verdict_of(service, dead).stored_tenders is None
    (note,) = summary.notes
    assert "stored tenders" in note and "run_id" in note
    assert summary.to_dict()["notes"] == [note]
    assert service.check_portal(PORTAL, now=NOW).action is Action.CLEANUP
    assert runs_page(service, now=NOW).total == 2

    assert service.cleanup_if_needed(now=NOW).cleaned == (dead,)
    assert runs.get(dead)["status"] == CLEANED
    assert service.delete_runs([dead], confirm=True) == 1
    assert runs.get(resumable)["status"] == "running"
