"""Stored text on every dashboard page: what the state sends to the browser has its control and
bidi characters escaped (a U+202E must not show a name reversed), filters still find the exact
stored names, and a portal's actions still get its exact name."""

from __future__ import annotations

import dataclasses
import unicodedata
from typing import Any

import pytest

from tender_dashboard_reflex.state.history import HistoryState
from tender_dashboard_reflex.state.overview import OverviewState
from tender_dashboard_reflex.state.portals import PortalsState
from tender_dashboard_reflex.state.runs import RunDetailState, RunsState
from tender_dashboard_reflex.state.stuck import StuckState
from tests.dashboard.support import Dash, make_state, toast

REVERSED = "Assam\u202egpj.exe"
CLEAR = "Clear\x1b[2J Tenders"
LONG = "Long portal " + "x" * 5000
WORKER = "scraper\u202e-01\x07"
ACTOR = "ops:\u2066eve\u2069\x1b]0;x\x07"
BIDI_CONTROLS = {"LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI", "PDI", "LRM", "RLM", "ALM"}


def unsafe_text(value: Any, where: str = "state") -> list[str]:
    """Every string inside ``value`` (records, lists, dicts) that holds a control or bidi
    character, with where it was found."""
    if isinstance(value, str):
        bad = [
            c
            for c in value
            if unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs")
            or unicodedata.bidirectional(c) in BIDI_CONTROLS
        ]
        return [f"{where}: {value[:60]!r}"] if bad else []
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)  # type: ignore[arg-type]
    if isinstance(value, dict):
        return [f for k, v in value.items() for f in unsafe_text(v, f"{where}.{k}")]
    if isinstance(value, list | tuple):
        return [f for i, v in enumerate(value) for f in unsafe_text(v, f"{where}[{i}]")]
    return []


@pytest.fixture
def hostile(dash: Dash) -> dict[str, int]:
    """Runs of hostile portals in each table, a worker and a status with bidi controls, and a
    clean-up by an actor whose name is hostile too."""
    ids = {
        "reversed_dead": dash.runs.add(REVERSED, age_hours=30),
        "reversed_cleaned": dash.runs.add(REVERSED, age_hours=60),
        "clear_resumable": dash.runs.add(
            CLEAR, age_hours=40, extracted_total_tenders=3, worker_id=WORKER
        ),
        "long_dead": dash.runs.add(LONG, age_hours=35),
        "odd_status": dash.runs.add(CLEAR, status="paused\u202e", age_hours=90),
    }
    dash.service.cleanup_runs([ids["reversed_cleaned"]], actor=ACTOR)
    return ids


def test_the_stuck_panel_and_its_preview_show_names_escaped(dash: Dash, hostile) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    dead = {row.id: row for row in state.dead}
    assert dead[hostile["reversed_dead"]].portal == "Assam\\u202egpj.exe"
    assert dead[hostile["long_dead"]].portal == LONG  # whole: the page cuts it, with a title
    assert state.resumable[0].portal == "Clear\\x1b[2J Tenders"
    state.open_clean_dialog()
    badges = {entry["portal"] for entry in state.preview_by_portal}
    assert "Assam\\u202egpj.exe" in badges
    assert "Long portal " + "x" * 28 + "…" in badges  # a badge is not a table cell: shortened
    assert unsafe_text([state.dead, state.resumable, state.preview, state.preview_by_portal]) == []


def test_the_runs_page_shows_names_escaped_and_its_filter_finds_the_stored_name(
    dash: Dash, hostile
) -> None:
    state = make_state(RunsState, dash.token(), "/runs")
    state.load()
    assert unsafe_text([state.rows, state.portals]) == []
    rows = {row.id: row for row in state.rows}
    assert rows[hostile["clear_resumable"]].worker_id == "scraper\\u202e-01\\x07"
    assert rows[hostile["odd_status"]].status == "paused\\u202e"
    assert "Assam\\u202egpj.exe" in state.portals
    state.set_portal_filter("Assam\\u202egpj.exe")
    assert sorted(row.id for row in state.rows) == sorted(
        [hostile["reversed_dead"], hostile["reversed_cleaned"]]
    )
    assert {row.portal_name for row in state.rows} == {"Assam\\u202egpj.exe"}


def test_the_run_detail_shows_names_escaped(dash: Dash, hostile) -> None:
    run_id = hostile["reversed_cleaned"]
    state = make_state(RunDetailState, dash.token(), f"/run?id={run_id}")
    assert state.load() is None
    assert state.run.portal_name == "Assam\\u202egpj.exe"
    assert [e.actor for e in state.events] == ["ops:\\u2066eve\\u2069\\x1b]0;x\\x07"]
    assert unsafe_text([state.run, state.events, state.reasons, state.checkpoint]) == []


def test_the_portals_page_shows_names_escaped_and_acts_on_the_stored_name(
    dash: Dash, hostile
) -> None:
    state = make_state(PortalsState, dash.token(), "/portals")
    state.load()
    shown = {row.portal_shown: row for row in state.rows}
    assert set(shown) == {"Assam\\u202egpj.exe", "Clear\\x1b[2J Tenders", LONG}
    assert shown["Assam\\u202egpj.exe"].portal == REVERSED  # the action's argument, exact
    assert unsafe_text([[dataclasses.replace(r, portal="") for r in state.rows]]) == []
    level, message = toast(state.clean_up_and_start(REVERSED, [hostile["reversed_dead"]]))
    assert level == "success", message
    assert dash.status(hostile["reversed_dead"]) == "Timeout - Auto-cleaned"
    assert unsafe_text(message) == []


def test_history_shows_names_and_actors_escaped_and_its_filter_finds_the_stored_name(
    dash: Dash, hostile
) -> None:
    state = make_state(HistoryState, dash.token(), "/history")
    state.load()
    assert unsafe_text([state.events, state.portals]) == []
    (event,) = state.events
    assert (event.portal_name, event.actor) == (
        "Assam\\u202egpj.exe",
        "ops:\\u2066eve\\u2069\\x1b]0;x\\x07",
    )
    state.set_portal_filter("Clear\\x1b[2J Tenders")
    assert state.total == 0
    state.set_portal_filter("Assam\\u202egpj.exe")
    assert [e.run_id for e in state.events] == [hostile["reversed_cleaned"]]


def test_the_overview_chart_labels_are_escaped_and_short(dash: Dash, hostile) -> None:
    state = make_state(OverviewState, dash.token(), "/")
    state.load()
    labels = {entry["portal"] for entry in state.by_portal}
    assert labels == {
        "Assam\\u202egpj.exe",
        "Clear\\x1b[2J Tenders",
        "Long portal " + "x" * 12 + "…",
    }
    assert unsafe_text(state.by_portal) == []
