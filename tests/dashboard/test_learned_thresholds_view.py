"""What the dashboard shows of learned thresholds (issue 15): each portal's typical duration and
threshold in effect on the Portals page, the threshold per row on Stuck runs when rows differ,
and the overdue flag beside a running run's state on the Runs page (even when it is alive)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tender_dashboard_reflex import backend
from tender_dashboard_reflex.state.portals import PortalsState
from tender_dashboard_reflex.state.runs import RunsState
from tender_dashboard_reflex.state.stuck import StuckState
from tests.dashboard.support import Dash, make_state
from tests.helpers.live_fleet import hours_ago


def forty_minute_history(dash: Dash, portal: str, count: int = 30) -> None:
    for i in range(count):
        end = hours_ago(2 + i * 6)
        dash.runs.add(
            portal,
            status="completed",
            started_at=end - timedelta(minutes=40),
            completed_at=end,
            extracted_total_tenders=3,
        )


@pytest.fixture
def adaptive(dash: Dash, monkeypatch: pytest.MonkeyPatch) -> Dash:
    monkeypatch.setenv("CLEANUP_ADAPTIVE_THRESHOLDS", "true")
    backend.service.cache_clear()
    return dash


def test_portals_show_typical_duration_and_the_threshold_in_effect(adaptive: Dash) -> None:
    forty_minute_history(adaptive, "Quick Tenders")
    adaptive.runs.add("Slow Tenders", age_hours=3)  # no completed runs yet
    state = make_state(PortalsState, adaptive.token(), "/portals")
    state.load()
    rows = {row.portal: row for row in state.rows}
    quick, slow = rows["Quick Tenders"], rows["Slow Tenders"]
    assert quick.typical_duration == "p50 40 min / p99 40 min (30 runs)"
    assert (quick.threshold, quick.threshold_source) == ("2 h", "learned")
    assert slow.typical_duration == "no completed runs"
    assert (slow.threshold, slow.threshold_source) == ("24 h", "default")


def test_stuck_runs_show_each_rows_threshold_only_when_they_differ(adaptive: Dash) -> None:
    forty_minute_history(adaptive, "Quick Tenders")
    quick = adaptive.runs.add("Quick Tenders", age_hours=8)  # dead by its learned 2 h
    other = adaptive.runs.add("Other Tenders", age_hours=30)  # dead by the default 24 h
    state = make_state(StuckState, adaptive.token(), "/stuck")
    state.load()
    shown = {row.id: row.threshold for row in state.dead}
    assert shown == {quick: "threshold 2 h (learned)", other: "threshold 24 h (default)"}
    assert state.thresholds_differ is True
    state.set_threshold("36")  # one requested threshold for every row: nothing to tell apart
    assert {row.id for row in state.dead} == set()
    state.set_threshold("6")
    assert {row.id for row in state.dead} == {quick, other}
    assert state.thresholds_differ is False


def test_an_alive_run_past_three_times_its_portals_p99_is_flagged_overdue(adaptive: Dash) -> None:
    forty_minute_history(adaptive, "Quick Tenders")
    beating = {"last_heartbeat_at": hours_ago(0.02), "last_progress_at": hours_ago(0.02)}
    overdue = adaptive.runs.add("Quick Tenders", age_hours=3, **beating)
    on_time = adaptive.runs.add("Quick Tenders", age_hours=1, **beating)
    state = make_state(RunsState, adaptive.token(), "/runs")
    state.load()
    flags = {row.id: (row.state, row.overdue) for row in state.rows if row.status == "running"}
    assert flags == {overdue: ("alive", True), on_time: ("alive", False)}


def test_the_run_page_flags_an_overdue_run_and_says_why(adaptive: Dash) -> None:
    from tender_dashboard_reflex.state.runs import RunDetailState

    forty_minute_history(adaptive, "Quick Tenders")
    beating = {"last_heartbeat_at": hours_ago(0.02), "last_progress_at": hours_ago(0.02)}
    overdue = adaptive.runs.add("Quick Tenders", age_hours=3, **beating)
    state = make_state(RunDetailState, adaptive.token(), f"/run?id={overdue}")
    state.load()
    assert state.found
    assert (state.run.state, state.run.overdue) == ("alive", True)
    assert any("overdue: running 3.0 h" in reason for reason in state.reasons)
