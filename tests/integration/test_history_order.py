"""History as a person reads it: ordered by when each event happened (newest first, the id
breaking ties), with actions and detail fields in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cleanup_core.records import NewEvent
from cleanup_core.reports import event_rows
from cleanup_core.storage import events as stored_events
from cleanup_core.vocabulary import AUDIT_ACTION_LABELS, AuditAction

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def _event(run_id: int, action: AuditAction, at: datetime, **details: object) -> NewEvent:
    return NewEvent(run_id, "Assam Tenders", action, "test", "running", "running", at, details)


def test_history_is_ordered_by_time_not_by_id(service, runs):
    """Events written out of time order (a late worker's, a clock set right): the trail reads
    by time, newest first; events of the same moment by id."""
    run = runs.add()
    with service.db.write() as conn:
        stored_events.insert_events(
            conn,
            [
                _event(run, AuditAction.START, T0 + timedelta(hours=2)),  # id 1: newest
                _event(run, AuditAction.RESUME, T0),  # id 2: oldest
                _event(run, AuditAction.COMPLETE, T0 + timedelta(hours=1)),  # id 3
                _event(run, AuditAction.RELEASE, T0 + timedelta(hours=1)),  # id 4: tie with 3
            ],
        )
    for page in (service.history(), service.history(portal_name="Assam Tenders")):
        actions = [event.action for event in page.events]
        assert actions == ["start", "release", "complete", "resume"]
    one_run = service.history(run_id=run).events
    assert [e.action for e in one_run] == ["start", "release", "complete", "resume"]
    # Paging keeps that order across pages.
    first = service.history(limit=2).events
    second = service.history(limit=2, offset=2).events
    assert [e.action for e in (*first, *second)] == ["start", "release", "complete", "resume"]


def test_history_rows_name_actions_and_fields_in_words(service, runs):
    run = runs.add()
    with service.db.write() as conn:
        stored_events.insert_events(
            conn,
            [
                _event(
                    run,
                    AuditAction.COMPLETE,
                    T0,
                    worker_id="scraper-01:42",
                    extracted_total_tenders=120,
                    skipped_existing_total=3,
                ),
                _event(run, AuditAction.RESUME_LAUNCHED, T0 + timedelta(minutes=1), pid=4242),
                _event(run, AuditAction("resume_launched"), T0 + timedelta(minutes=2)),
            ],
        )
    rows = event_rows(service, list(service.history().events))
    complete = next(row for row in rows if row.action == "complete")
    assert complete.action_label == "Complete"
    assert complete.summary == "worker: scraper-01:42, extracted: 120, skipped: 3"
    assert "extracted_total_tenders" not in complete.summary
    launched = next(row for row in rows if "process id" in row.summary)
    assert (launched.action, launched.action_label) == ("resume_launched", "Resume launched")
    assert launched.summary == "process id: 4242"


def test_every_audit_action_has_a_label():
    assert set(AUDIT_ACTION_LABELS) == set(AuditAction)
    assert all(label and "_" not in label for label in AUDIT_ACTION_LABELS.values())
