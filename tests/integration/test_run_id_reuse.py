"""A run id can be handed out again (SQLite reuses the highest id after a delete; legacy scrapers
insert runs with ids of their own). The tool never relies on ids being fresh: a deleted run's
tenders and audit events stay its own, on a real SQLite file and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text

from cleanup_core import CLEANED, CleanupService, RunState, load_demo, track_run
from cleanup_core.db import Database
from cleanup_core.models import Tender
from cleanup_core.reports import event_rows, run_detail
from cleanup_core.storage import runs as stored_runs
from tests.conftest import NOW, ago

PORTAL = "Assam Tenders"


def store_tenders(service, run_id: int, names: list[str], portal: str = PORTAL) -> None:
    with service.db.write() as conn:
        conn.execute(
            insert(Tender.__table__),
            [{"run_id": run_id, "portal_name": portal, "tender_id": name} for name in names],
        )


def rows(service, sql: str, **params) -> list[tuple]:
    with service.db.read() as conn:
        return [tuple(row) for row in conn.execute(text(sql), params)]


def event_ids(service, run_id: int) -> set[int]:
    return {e.id for e in service.history(run_id=run_id, limit=1000).events}


@pytest.fixture
def deleted(service, runs):
    """A real run, cleaned (forced: it stored tenders) and then deleted: its 50 tenders are kept,
    its id is free again. The newest run, so SQLite hands its id out to the next insert."""
    runs.add("Kerala", status="completed", started_at=ago(hours=90))
    run_id = runs.add(PORTAL, started_at=ago(hours=48))
    store_tenders(service, run_id, [f"REAL-{i}" for i in range(50)])
    assert service.cleanup_runs([run_id], force=True, actor="op", now=NOW).cleaned == (run_id,)
    assert service.delete_runs([run_id], confirm=True, actor="op") == 1
    return run_id


def reuse(runs, deleted: int, **values) -> int:
    """The next run a legacy scraper inserts: on SQLite it gets the freed id by itself; on
    PostgreSQL the scraper writes the id (legacy code that manages its own ids)."""
    row = {"started_at": ago(hours=30), **values}
    if runs.service.db.is_sqlite:
        new = runs.add(PORTAL, **row)
        assert new == deleted, "SQLite reused the id"
        return new
    return runs.add(PORTAL, id=deleted, **row)


def test_delete_records_what_belonged_to_the_deleted_run(service, runs, deleted):
    (watermark,) = rows(
        service,
        "SELECT portal_name, last_event_id, last_tender_id FROM deleted_runs WHERE run_id = :r",
        r=deleted,
    )
    (delete_event,) = rows(
        service, "SELECT id FROM run_events WHERE run_id = :r AND action = 'delete'", r=deleted
    )
    (highest_tender,) = rows(service, "SELECT max(id) FROM tenders WHERE run_id = :r", r=deleted)
    assert watermark == (PORTAL, delete_event[0], highest_tender[0])


def test_a_deleted_runs_tenders_are_no_evidence_for_a_new_run_with_its_id(service, runs, deleted):
    new = reuse(runs, deleted)
    verdict = next(v for v in service.scan(now=NOW).verdicts if v.run_id == new)
    assert verdict.state is RunState.DEAD
    assert verdict.stored_tenders == 0
    assert service.cleanup_run(new, now=NOW) is True
    assert runs.count("tenders", f"run_id = {deleted}") == 50, "tenders are never deleted"
    store_tenders(service, new, ["NEW-1"])
    runs.update(new, status="running", completed_at=None)
    verdict = next(v for v in service.scan(now=NOW).verdicts if v.run_id == new)
    assert (verdict.state, verdict.stored_tenders) == (RunState.RESUMABLE, 1)


def test_the_history_of_a_run_is_its_current_incarnations(service, runs, deleted):
    old_events = {
        row[0] for row in rows(service, "SELECT id FROM run_events WHERE run_id = :r", r=deleted)
    }
    assert len(old_events) == 2  # the forced clean-up and the deletion
    assert event_ids(service, deleted) == set(), "no run has this id now"
    new = reuse(runs, deleted)
    assert service.cleanup_run(new, now=NOW, actor="nightly")
    (cleanup,) = service.history(run_id=new).events
    assert cleanup.actor == "nightly" and cleanup.run_deleted is False
    assert cleanup.id not in old_events

    everything = {e.id: e for e in service.history(limit=1000).events}
    assert {i for i, e in everything.items() if e.run_deleted} == old_events
    assert everything[cleanup.id].run_deleted is False
    assert everything[min(old_events)].to_dict()["run_deleted"] is True

    detail = run_detail(service, new, now=NOW)
    assert [e.id for e in detail.events] == [cleanup.id]
    shown = {row.id: row for row in event_rows(service, list(everything.values()))}
    old_cleanup = next(i for i in old_events if everything[i].action == "cleanup")
    assert shown[old_cleanup].run_deleted and not shown[old_cleanup].revertible
    assert shown[cleanup.id].revertible and not shown[cleanup.id].run_deleted


def test_revert_never_picks_a_deleted_runs_clean_up(service, runs, deleted):
    """The seed's own clean-up wrote this status directly, without an audit event."""
    new = reuse(runs, deleted, status=CLEANED, completed_at=ago(hours=1))
    before = runs.get(new)
    assert service.revert_cleanup(new) is False
    assert runs.get(new) == before


def test_a_resumed_run_knows_only_its_own_stored_tenders(service, runs, deleted):
    new = reuse(
        runs, deleted, started_at=datetime.now(UTC) - timedelta(hours=48), extracted_total_tenders=0
    )
    store_tenders(service, new, ["NEW-1", "NEW-2"])
    with track_run(PORTAL, service=service) as run:
        assert (run.run_id, run.resumed) == (new, True)
        assert run.seen_tender_ids == {"NEW-1", "NEW-2"}
        assert "2 tenders stored" in run.reason


def test_the_update_ignores_a_deleted_runs_tenders(service, runs, deleted):
    new = reuse(runs, deleted)
    with service.db.write() as conn:
        cleaned = stored_runs.mark_cleaned(
            conn, [new], heartbeat_cutoff=ago(minutes=30), completed_at=NOW
        )
    assert cleaned == [new]


def test_reloading_the_demo_keeps_a_deleted_runs_tenders_and_events(service, runs, deleted):
    """The reproduction: `delete 2`, a demo run gets id 2 (SQLite), `demo --force` again."""
    kept_tenders = rows(service, "SELECT * FROM tenders WHERE run_id = :r", r=deleted)
    kept_events = rows(service, "SELECT * FROM run_events WHERE run_id = :r", r=deleted)
    first = load_demo(service, force=True, now=NOW)
    demo_ids = {i for ids in first.runs.values() for i in ids}
    if service.db.is_sqlite:
        assert deleted in demo_ids, "the demo got the deleted run's id"
    load_demo(service, force=True, now=NOW)
    load_demo(service, force=True, now=NOW)
    assert set(kept_tenders) <= set(rows(service, "SELECT * FROM tenders"))
    assert set(kept_events) <= set(rows(service, "SELECT * FROM run_events"))
    assert len(kept_tenders) == 50 and len(kept_events) == 2


def test_deleting_a_demo_run_makes_it_real_data_the_demo_keeps(service, runs):
    first = load_demo(service, now=NOW)
    (completed, *_) = first.runs["completed"]
    tenders = rows(service, "SELECT * FROM tenders WHERE run_id = :r", r=completed)
    assert tenders
    assert service.delete_runs([completed], confirm=True, actor="op") == 1
    assert rows(service, "SELECT count(*) FROM demo_runs WHERE run_id = :r", r=completed) == [(0,)]
    again = load_demo(service, now=NOW)  # only demo runs left: no --force needed
    assert again.replaced_runs == sum(len(ids) for ids in first.runs.values()) - 1
    assert set(tenders) <= set(rows(service, "SELECT * FROM tenders"))
    assert rows(
        service,
        "SELECT count(*) FROM run_events WHERE run_id = :r AND action = 'delete'",
        r=completed,
    ) == [(1,)]


def test_a_run_that_took_over_a_demo_runs_id_is_never_touched(service, runs):
    """Someone deleted a demo run with their own SQL (no watermark, the demo mark stays) and a
    legacy scraper's run got its id: reloading the demo leaves that run and its tenders."""
    first = load_demo(service, now=NOW)
    newest = max(i for ids in first.runs.values() for i in ids)
    with service.db.write() as conn:
        conn.execute(text("DELETE FROM runs WHERE id = :r"), {"r": newest})
    demo_tenders = rows(service, "SELECT id FROM tenders WHERE run_id = :r", r=newest)
    real = reuse(runs, newest, status="completed", started_at=ago(hours=5))
    store_tenders(service, real, ["REAL-A", "REAL-B"])
    before = runs.get(real)
    load_demo(service, force=True, now=NOW)
    assert runs.get(real) == before
    names = rows(service, "SELECT tender_id FROM tenders WHERE run_id = :r", r=real)
    assert {"REAL-A", "REAL-B"} <= {n for (n,) in names}
    assert len(names) == len(demo_tenders) + 2, "the orphaned demo tenders are kept too"


def test_an_external_delete_of_a_real_run_never_lets_the_demo_take_its_data(service, runs):
    """A run deleted with the operator's own SQL leaves no watermark; a demo run that gets its
    id still deletes only what the demo wrote."""
    runs.add("Kerala", status="completed", started_at=ago(hours=90))
    gone = runs.add(PORTAL, status="completed", started_at=ago(hours=60))
    store_tenders(service, gone, ["REAL-1", "REAL-2", "REAL-3"])
    with service.db.write() as conn:
        conn.execute(text("DELETE FROM runs WHERE id = :r"), {"r": gone})
    first = load_demo(service, force=True, now=NOW)
    if service.db.is_sqlite:
        assert gone in {i for ids in first.runs.values() for i in ids}
    load_demo(service, force=True, now=NOW)
    names = {n for (n,) in rows(service, "SELECT tender_id FROM tenders WHERE run_id = :r", r=gone)}
    assert {"REAL-1", "REAL-2", "REAL-3"} <= names


# -- databases from before the watermarks and demo marks ------------------------------------


def as_before_version_4(service) -> None:
    """The database as the tool left it before it kept watermarks and demo marks."""
    with service.db.write() as conn:
        conn.execute(text("DROP TABLE deleted_runs"))
        conn.execute(text("DROP TABLE demo_runs"))
        conn.execute(text("UPDATE cleanup_schema SET version = 3"))
    service.db.dispose()


def test_upgrading_records_the_runs_deleted_before_from_their_delete_events(
    service, runs, settings
):
    free = runs.add(PORTAL, status="completed", started_at=ago(hours=80))
    store_tenders(service, free, ["F-1", "F-2"])
    taken = runs.add(PORTAL, status="completed", started_at=ago(hours=70))
    store_tenders(service, taken, ["T-1"])
    runs.add("Kerala", status="completed", started_at=ago(hours=60))
    service.delete_runs([free, taken], confirm=True, actor="op")
    as_before_version_4(service)
    runs.add(PORTAL, id=taken, status="completed", started_at=ago(hours=2))  # id reused since

    upgraded = CleanupService(settings, database=Database(settings))
    try:
        marks = dict(
            (row[0], row[1:])
            for row in rows(
                upgraded, "SELECT run_id, last_event_id, last_tender_id FROM deleted_runs"
            )
        )
        deletes = dict(rows(upgraded, "SELECT run_id, id FROM run_events WHERE action = 'delete'"))
        (highest_free,) = rows(upgraded, "SELECT max(id) FROM tenders WHERE run_id = :r", r=free)
        assert marks == {
            free: (deletes[free], highest_free[0]),  # no run has the id: its tenders are known
            taken: (deletes[taken], None),  # a run has the id again: its tenders stay its own
        }
        assert upgraded.history(run_id=taken).total == 0
        assert {e.run_id for e in upgraded.history().events if e.run_deleted} == {free, taken}
    finally:
        upgraded.db.dispose()


def test_upgrading_keeps_an_earlier_demo_reloadable(service, runs, settings):
    first = load_demo(service, now=NOW)
    total = sum(len(ids) for ids in first.runs.values())
    as_before_version_4(service)
    upgraded = CleanupService(settings, database=Database(settings))
    try:
        again = load_demo(upgraded, now=NOW)  # no --force: its earlier runs are recognised
        assert again.replaced_runs == total
        assert runs.count() == total
        assert runs.count("tenders") == again.tenders
    finally:
        upgraded.db.dispose()


def test_the_updates_check_of_stored_tenders_is_per_run(service, runs):
    """The watermark of another run id (deleted, and its id taken again) never hides this
    run's own tenders from the compare-and-set."""
    crashed = runs.add("MP Tenders", started_at=ago(hours=30))
    store_tenders(service, crashed, ["OWN-1"], portal="MP Tenders")
    other = runs.add(PORTAL, status="completed", started_at=ago(hours=80))
    store_tenders(service, other, ["OTHER-1", "OTHER-2"])
    assert service.delete_runs([other], confirm=True) == 1
    reuse(runs, other)
    with service.db.write() as conn:
        cleaned = stored_runs.mark_cleaned(
            conn, [crashed], heartbeat_cutoff=ago(minutes=30), completed_at=NOW
        )
    assert cleaned == []
    assert runs.get(crashed)["status"] == "running"
