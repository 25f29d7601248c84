"""What a person on shift needs from the pages, at the handlers (issue 13's defects): results
that say when and go stale, the judged-state filter, a run page's actions, portals needing
attention, and launch buttons whose command is not set."""

from __future__ import annotations

import re

import pytest

from cleanup_core.models import CLEANED, RUNNING
from tender_dashboard_reflex import backend
from tender_dashboard_reflex.state.portals import PortalsState
from tender_dashboard_reflex.state.runs import RunDetailState, RunsState
from tender_dashboard_reflex.state.stuck import StuckState
from tests.dashboard.support import Dash, make_state, toast

# -- Stuck runs: the result of a clean-up -----------------------------------------------------


def _cleaned_all(dash: Dash) -> StuckState:
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    state.open_clean_dialog()
    state.confirm_clean()
    return state


def test_a_clean_up_result_says_when_and_can_be_dismissed(dash: Dash, fleet: dict[str, int]):
    state = _cleaned_all(dash)
    assert state.last_result == "Cleaned 2/2 dead runs"
    assert re.fullmatch(r"\d\d:\d\d", state.last_result_at)
    assert state.dismiss_result() is None
    assert (state.last_result, state.last_result_at, state.left_alone) == ("", "", [])


def test_a_clean_up_result_is_gone_when_the_page_is_opened_again(dash: Dash, fleet: dict[str, int]):
    state = _cleaned_all(dash)
    state.refresh()  # still true: kept
    assert state.last_result == "Cleaned 2/2 dead runs"
    state.load()  # leaving and coming back
    assert state.last_result == ""


def test_a_clean_up_result_is_gone_once_a_run_it_cleaned_was_reverted(
    dash: Dash, fleet: dict[str, int]
):
    state = _cleaned_all(dash)
    assert dash.service.revert(fleet["dead"], actor="ops:other").reverted
    state.refresh()
    assert state.last_result == "" and state.last_result_at == ""


def test_a_later_clean_up_replaces_the_result(dash: Dash, fleet: dict[str, int]):
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    state.cleanup_one(fleet["dead"])
    assert state.last_result == f"Cleaned 1/1 dead run (run {fleet['dead']})"


# -- Runs: filter by judged state -------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("dead", ["dead", "dead_old"]),
        ("resumable", ["resumable"]),
        ("young", ["young"]),
        ("alive", ["alive"]),
        ("attention", ["attention"]),
        ("finished", ["completed", "finished"]),
        (
            "all",
            [
                "dead",
                "dead_old",
                "resumable",
                "young",
                "alive",
                "attention",
                "completed",
                "finished",
            ],
        ),
    ],
)
def test_runs_filter_by_judged_state(dash: Dash, fleet: dict[str, int], choice, expected):
    state = make_state(RunsState, dash.token(), "/runs")
    state.load()
    assert state.set_state_filter(choice) is None
    assert sorted(row.id for row in state.rows) == sorted(fleet[k] for k in expected)
    assert state.total == len(expected)
    if choice != "all":
        assert state.back_query == f"state={choice}"


def test_runs_state_filter_combines_with_the_portal_and_refuses_unknown_words(
    dash: Dash, fleet: dict[str, int]
):
    state = make_state(RunsState, dash.token(), "/runs")
    state.load()
    state.set_state_filter("dead")
    state.set_portal_filter("CPPP Central")
    assert [row.id for row in state.rows] == [fleet["dead_old"]]
    state.set_state_filter("zombie")
    assert state.state_filter == "all"


def test_the_runs_page_takes_its_filters_from_the_address(dash: Dash, fleet: dict[str, int]):
    state = make_state(RunsState, dash.token(), "/runs?state=dead&portal=Assam+Tenders")
    state.load()
    assert (state.state_filter, state.portal_filter) == ("dead", "Assam Tenders")
    assert [row.id for row in state.rows] == [fleet["dead"]]


# -- A run's page: its actions -----------------------------------------------------------------


def _run_page(dash: Dash, run_id: int) -> RunDetailState:
    state = make_state(RunDetailState, dash.token(), f"/run?id={run_id}")
    assert state.load() is None
    return state


def test_run_page_cleans_up_a_dead_run_and_reverts_it(dash: Dash, fleet: dict[str, int]):
    run_id = fleet["dead"]
    state = _run_page(dash, run_id)
    assert state.run.state == "dead" and not state.revertible
    level, _ = toast(state.cleanup())
    assert level == "success" and dash.status(run_id) == CLEANED
    assert state.revertible and state.run.status == CLEANED  # the page shows the change
    state.ask_revert()
    assert state.revert_dialog_open
    level, _ = toast(state.confirm_revert())
    assert level == "success" and dash.status(run_id) == RUNNING
    assert not state.revertible and state.run.state == "dead"


def test_run_page_forces_only_with_the_typed_id(dash: Dash, fleet: dict[str, int]):
    run_id = fleet["resumable"]
    state = _run_page(dash, run_id)
    state.open_force_dialog()
    assert state.force_dialog_open and state.force_run_id == run_id
    state.set_force_typed("1")
    level, _ = toast(state.confirm_force())
    assert level == "error" and dash.status(run_id) == RUNNING
    state.set_force_typed(str(run_id))
    level, _ = toast(state.confirm_force())
    assert level == "success" and dash.status(run_id) == CLEANED


def test_run_page_force_never_cuts_off_a_live_run(dash: Dash, fleet: dict[str, int]):
    state = _run_page(dash, fleet["alive"])
    state.open_force_dialog()
    state.set_force_typed(str(fleet["alive"]))
    level, _ = toast(state.confirm_force())
    assert level == "warning" and dash.status(fleet["alive"]) == RUNNING


def test_run_page_resumes_a_resumable_run(dash: Dash, fleet: dict[str, int]):
    state = _run_page(dash, fleet["resumable"])
    assert state.resume_command_set
    level, _ = toast(state.resume())
    assert level == "success"
    assert dash.launched()["argv"][-2:] == ["MP Tenders", str(fleet["resumable"])]


def test_run_page_acts_on_the_run_it_shows_only(dash: Dash, fleet: dict[str, int]):
    """No run shown (an unknown id): every action is refused with a message, nothing changes."""
    state = make_state(RunDetailState, dash.token(), "/run?id=999999")
    state.load()
    before = dash.snapshot()
    for call in (state.cleanup, state.resume, state.open_force_dialog, state.ask_revert):
        level, message = toast(call())
        assert level == "error" and "Open a run first" in message
    assert dash.snapshot() == before


# -- Portals: attention, and launch commands that are not set ----------------------------------


def test_a_portal_waiting_for_attention_is_told_apart_from_a_live_one(
    dash: Dash, fleet: dict[str, int]
):
    state = make_state(PortalsState, dash.token(), "/portals")
    state.load()
    rows = {row.portal: row for row in state.rows}
    corrupt = rows["West Bengal eTender"]
    assert corrupt.action == "wait" and corrupt.attention
    assert "needs a person's attention" in corrupt.reason and "corrupt" in corrupt.reason
    assert not rows["Gujarat Tenders"].attention  # alive: a plain wait
    assert not rows["Kerala eTenders"].attention  # young: a plain wait


def test_launch_buttons_know_when_no_command_is_set(
    dash: Dash, fleet: dict[str, int], monkeypatch: pytest.MonkeyPatch
):
    state = make_state(PortalsState, dash.token(), "/portals")
    state.load()
    assert all(row.resume_command_set and row.start_command_set for row in state.rows)
    monkeypatch.delenv("CLEANUP_RESUME_COMMAND")
    monkeypatch.delenv("CLEANUP_START_COMMAND")
    backend.service.cache_clear()
    backend.accounts.cache_clear()
    state = make_state(PortalsState, dash.token(), "/portals")
    state.load()
    assert not any(row.resume_command_set or row.start_command_set for row in state.rows)
    stuck = make_state(StuckState, dash.token(), "/stuck")
    stuck.load()
    assert [row.resume_command_set for row in stuck.resumable] == [False]
    assert not _run_page(dash, fleet["resumable"]).resume_command_set
