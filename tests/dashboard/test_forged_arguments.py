"""Numbers that reach the dashboard from the browser - the threshold box, presets, page numbers,
page sizes, run ids - can be anything a forged event carries. Each is range-checked where it
enters: a clear toast or an inline message, never Reflex's "An error occurred"."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cleanup_core.models import RUNNING
from cleanup_core.records import NewEvent
from cleanup_core.storage import events as stored_events
from cleanup_core.vocabulary import AuditAction
from tender_dashboard_reflex.state.history import HistoryState
from tender_dashboard_reflex.state.portals import PortalsState
from tender_dashboard_reflex.state.runs import RunsState
from tender_dashboard_reflex.state.stuck import StuckState
from tests.dashboard.support import Dash, make_state, toast

FORGED = [1e308, float("inf"), float("-inf"), float("nan"), 2**70, -(2**70)]
FORGED += ["abc", "", None, True, [1], {"id": 1}]
FORGED_WHOLE = [*FORGED, 2.5, "2.5", "-1"]  # where only a whole number makes sense


def ids(rows: Any) -> list[int]:
    return [row.id for row in rows]


# -- the threshold box --------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["1e11", "87601", "1e308", "-5", "0", "abc", "nan", "inf"])
def test_a_threshold_out_of_range_is_refused_inline_and_the_last_valid_one_stays(
    dash: Dash, fleet: dict[str, int], typed: str
) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    state.set_threshold("36")

    assert state.set_threshold(typed) is None  # no toast: the message is under the box

    assert state.threshold_error.startswith("The threshold must be a positive")
    assert "at most 87600" in state.threshold_error
    assert state.threshold_error.endswith(f"got {typed!r}; still using 36 h.")
    assert state.threshold_hours == 36.0  # what the tables show and a clean-up would use
    assert ids(state.dead) == [fleet["dead_old"]]
    assert state.refresh() is None
    assert ids(state.dead) == [fleet["dead_old"]]
    assert state.open_clean_dialog() is None
    assert state._preview_ids == [fleet["dead_old"]]


def test_a_reload_never_keeps_a_broken_threshold(dash: Dash, fleet: dict[str, int]) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    state.set_threshold("36")
    state.set_threshold("1e11")

    assert state.load() is None  # the page is loaded again (a reload keeps the tab's state)

    assert (state.threshold_text, state.threshold_error) == ("36", "")
    assert ids(state.dead) == [fleet["dead_old"]]


def test_the_largest_threshold_is_accepted(dash: Dash, fleet: dict[str, int]) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    state.set_threshold("87600")
    assert (state.threshold_error, state.threshold_hours) == ("", 87600.0)
    assert state.dead == [] and state.resumable == []
    state.set_threshold("")  # cleared: back to the default
    assert state.threshold_hours == 24.0 and len(state.dead) == 2


@pytest.mark.parametrize("hours", [1e11, *FORGED])
def test_a_forged_preset_is_an_error_toast(dash: Dash, fleet: dict[str, int], hours: Any) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    state.use_preset(36)

    level, message = toast(state.use_preset(hours))

    assert level == "error" and message.startswith("The threshold must be a positive")
    assert (state.threshold_text, state.threshold_hours) == ("36", 36.0)
    assert ids(state.dead) == [fleet["dead_old"]]


def test_a_forged_threshold_value_of_any_type_is_refused(dash: Dash, fleet: dict[str, int]) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    for forged in FORGED:
        assert state.set_threshold(forged) is None
        assert state.threshold_error != "" or state.threshold_text == ""
        assert state.threshold_hours == 24.0 and len(state.dead) == 2


# -- page numbers and page sizes ----------------------------------------------------------------


@pytest.fixture
def many_runs(dash: Dash, fleet: dict[str, int]) -> None:
    """Two pages of runs (at 10 a page) and of history (at 50 a page)."""
    for i in range(30):
        dash.runs.add("Bulk Portal", status="completed", age_hours=100 + i)
    with dash.service.db.write() as conn:
        stored_events.insert_events(
            conn,
            [
                NewEvent(
                    run_id=fleet["completed"],
                    portal_name="Assam Tenders",
                    action=AuditAction.COMPLETE,
                    actor=f"worker:{i}",
                    from_status=RUNNING,
                    to_status="completed",
                    created_at=datetime.now(UTC) - timedelta(minutes=i),
                )
                for i in range(60)
            ],
        )


@pytest.mark.parametrize("cls", [RunsState, HistoryState], ids=["runs", "history"])
@pytest.mark.parametrize("page", FORGED_WHOLE, ids=repr)
def test_a_forged_page_number_is_an_error_toast(
    dash: Dash, many_runs: None, cls: type, page: Any, caplog: pytest.LogCaptureFixture
) -> None:
    state = make_state(cls, dash.token(), "/runs" if cls is RunsState else "/history")
    state.load()
    if cls is RunsState:
        state.set_page_size("10")
    state.go_to_page(2)
    shown = [row.id for row in (state.rows if cls is RunsState else state.events)]

    level, message = toast(state.go_to_page(page))

    assert level == "error" and message.startswith("No page ")
    assert state.page == 2
    assert [row.id for row in (state.rows if cls is RunsState else state.events)] == shown
    assert any("page through" in r.getMessage() for r in caplog.records if r.levelno >= 30)


@pytest.mark.parametrize("size", FORGED_WHOLE, ids=repr)
def test_a_forged_page_size_falls_back_to_the_default(
    dash: Dash, many_runs: None, size: Any
) -> None:
    state = make_state(RunsState, dash.token(), "/runs")
    state.load()
    state.set_page_size("10")
    assert state.set_page_size(size) is None
    assert state.page_size == 25 and len(state.rows) == 25


# -- run ids ----------------------------------------------------------------------------------


RUN_ID_HANDLERS = {
    "stuck.cleanup_one": (StuckState, "/stuck", lambda s, run_id: s.cleanup_one(run_id)),
    "stuck.resume": (StuckState, "/stuck", lambda s, run_id: s.resume(run_id)),
    "stuck.open_force_dialog": (
        StuckState,
        "/stuck",
        lambda s, run_id: s.open_force_dialog(run_id),
    ),
    "portals.resume": (PortalsState, "/portals", lambda s, run_id: s.resume(run_id)),
    "history.ask_revert": (HistoryState, "/history", lambda s, run_id: s.ask_revert(run_id)),
}


@pytest.mark.parametrize("run_id", FORGED_WHOLE, ids=repr)
@pytest.mark.parametrize("name", RUN_ID_HANDLERS)
def test_a_forged_run_id_is_an_error_toast_and_changes_nothing(
    dash: Dash,
    fleet: dict[str, int],
    caplog: pytest.LogCaptureFixture,
    name: str,
    run_id: Any,
) -> None:
    cls, path, call = RUN_ID_HANDLERS[name]
    state = make_state(cls, dash.token(), path)
    before = dash.snapshot()
    caplog.set_level(logging.WARNING)

    level, message = toast(call(state, run_id))

    assert level == "error" and message.startswith("Not a run id: ")
    assert dash.snapshot() == before
    assert not dash.launch_record.exists()
    assert dash.status(fleet["dead"]) == RUNNING
    if cls is StuckState:
        assert not state.force_dialog_open and state.force_run_id == 0
    if cls is HistoryState:
        assert not state.revert_dialog_open and state.revert_run_id == 0
    assert any("failed: Not a run id" in r.getMessage() for r in caplog.records)
