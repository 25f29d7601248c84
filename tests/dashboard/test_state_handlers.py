"""The dashboard's event handlers, called directly as the Reflex backend calls them.

Every public state method can be called from a browser with any arguments, so besides what each
action does for a signed-in admin, these tests check that a call without a valid session (none,
forged, expired, logged out) or from a viewer changes nothing in the database and is logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cleanup_core.models import CLEANED, COMPLETED, RUNNING
from cleanup_core.records import NewEvent
from cleanup_core.reports import run_detail
from cleanup_core.storage import events as stored_events
from cleanup_core.vocabulary import AuditAction
from tender_dashboard_reflex import backend
from tender_dashboard_reflex.state.auth import AuthState
from tender_dashboard_reflex.state.history import HistoryState
from tender_dashboard_reflex.state.login import LoginState
from tender_dashboard_reflex.state.overview import OverviewState
from tender_dashboard_reflex.state.portals import PortalsState
from tender_dashboard_reflex.state.runs import RunDetailState, RunsState
from tender_dashboard_reflex.state.stuck import StuckState
from tests.dashboard.support import (
    ADMIN_NAME,
    PASSWORD,
    VIEWER_NAME,
    Dash,
    forged_token,
    make_state,
    redirect_target,
    toast,
)
from tests.helpers.live_fleet import hours_ago

LOGGER = "tender_dashboard_reflex"
ACTOR = f"dashboard:{ADMIN_NAME}"


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING
    ]


def ids(rows: Any) -> list[int]:
    return [row.id for row in rows]


# -- refusal: every state-changing handler, without a valid session or as a viewer ------------


@dataclass(frozen=True)
class Action:
    """One state-changing handler call, with what the state must still look like if refused."""

    state: type
    path: str
    call: Callable[[Any, dict[str, int]], Any]
    prepare: Callable[[Any, dict[str, int], Dash], None] = lambda state, fleet, dash: None
    untouched: Callable[[Any], bool] = lambda state: True


def _previewed(state: Any, fleet: dict[str, int], dash: Dash) -> None:
    """As if an admin had opened the Clean Stuck Runs preview in this tab earlier."""
    state._preview_ids = [fleet["dead"], fleet["dead_old"]]
    state.clean_dialog_open = True


def _force_typed(state: Any, fleet: dict[str, int], dash: Dash) -> None:
    state.force_run_id = fleet["resumable"]
    state.force_typed = str(fleet["resumable"])
    state.force_dialog_open = True


def _cleaned(state: Any, fleet: dict[str, int], dash: Dash) -> None:
    dash.service.cleanup_runs([fleet["dead"]], actor="ops:cron")


def _revert_asked(state: Any, fleet: dict[str, int], dash: Dash) -> None:
    _cleaned(state, fleet, dash)
    state.revert_run_id = fleet["dead"]
    state.revert_dialog_open = True


def _showing(key: str) -> Callable[[Any, dict[str, int], Dash], None]:
    """As if an admin had opened the page of the fleet's run ``key`` in this tab earlier."""

    def prepare(state: Any, fleet: dict[str, int], dash: Dash) -> None:
        if key == "dead":
            _cleaned(state, fleet, dash)
        detail = run_detail(dash.service, fleet[key])
        assert detail is not None
        state.found, state.run = True, detail.run

    return prepare


def _run_force_typed(state: Any, fleet: dict[str, int], dash: Dash) -> None:
    _showing("resumable")(state, fleet, dash)
    _force_typed(state, fleet, dash)


def _run_revert_asked(state: Any, fleet: dict[str, int], dash: Dash) -> None:
    _showing("dead")(state, fleet, dash)
    state.revert_dialog_open = True


ACTIONS = {
    "run.resume": Action(
        RunDetailState, "/run", lambda s, f: s.resume(), prepare=_showing("resumable")
    ),
    "run.cleanup": Action(
        RunDetailState, "/run", lambda s, f: s.cleanup(), prepare=_showing("dead_old")
    ),
    "run.open_force_dialog": Action(
        RunDetailState,
        "/run",
        lambda s, f: s.open_force_dialog(),
        prepare=_showing("resumable"),
        untouched=lambda s: not s.force_dialog_open and s.force_run_id == 0,
    ),
    "run.confirm_force": Action(
        RunDetailState, "/run", lambda s, f: s.confirm_force(), prepare=_run_force_typed
    ),
    "run.ask_revert": Action(
        RunDetailState,
        "/run",
        lambda s, f: s.ask_revert(),
        prepare=_showing("dead"),
        untouched=lambda s: not s.revert_dialog_open,
    ),
    "run.confirm_revert": Action(
        RunDetailState, "/run", lambda s, f: s.confirm_revert(), prepare=_run_revert_asked
    ),
    "stuck.open_clean_dialog": Action(
        StuckState,
        "/stuck",
        lambda s, f: s.open_clean_dialog(),
        untouched=lambda s: not s.clean_dialog_open and s.preview == [] and s._preview_ids == [],
    ),
    "stuck.confirm_clean": Action(
        StuckState, "/stuck", lambda s, f: s.confirm_clean(), prepare=_previewed
    ),
    "stuck.cleanup_one": Action(StuckState, "/stuck", lambda s, f: s.cleanup_one(f["dead"])),
    "stuck.open_force_dialog": Action(
        StuckState,
        "/stuck",
        lambda s, f: s.open_force_dialog(f["resumable"]),
        untouched=lambda s: not s.force_dialog_open and s.force_run_id == 0,
    ),
    "stuck.confirm_force": Action(
        StuckState, "/stuck", lambda s, f: s.confirm_force(), prepare=_force_typed
    ),
    "stuck.resume": Action(StuckState, "/stuck", lambda s, f: s.resume(f["resumable"])),
    "portals.resume": Action(PortalsState, "/portals", lambda s, f: s.resume(f["resumable"])),
    "portals.start": Action(PortalsState, "/portals", lambda s, f: s.start("Tamil Nadu Tenders")),
    "portals.clean_up_and_start": Action(
        PortalsState, "/portals", lambda s, f: s.clean_up_and_start("Assam Tenders", [f["dead"]])
    ),
    "history.ask_revert": Action(
        HistoryState,
        "/history",
        lambda s, f: s.ask_revert(f["dead"]),
        prepare=_cleaned,
        untouched=lambda s: not s.revert_dialog_open and s.revert_run_id == 0,
    ),
    "history.confirm_revert": Action(
        HistoryState, "/history", lambda s, f: s.confirm_revert(), prepare=_revert_asked
    ),
}


def _no_session(dash: Dash) -> str:
    return ""


def _forged(dash: Dash) -> str:
    return forged_token()


def _expired(dash: Dash) -> str:
    return dash.token(expired=True)


def _logged_out(dash: Dash) -> str:
    """A real admin token whose session was ended by logging out (a replayed cookie)."""
    token = dash.token()
    make_state(AuthState, token).log_out()
    return token


CREDENTIALS = {
    "no-session": _no_session,
    "forged-token": _forged,
    "expired-session": _expired,
    "logged-out-session": _logged_out,
}


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("name", ACTIONS)
def test_without_a_valid_session_a_state_changing_handler_changes_nothing_and_is_logged(
    dash: Dash,
    fleet: dict[str, int],
    caplog: pytest.LogCaptureFixture,
    name: str,
    credential: str,
) -> None:
    action = ACTIONS[name]
    token = CREDENTIALS[credential](dash)
    state = make_state(action.state, token, action.path)
    action.prepare(state, fleet, dash)
    before = dash.snapshot()
    caplog.clear()

    result = action.call(state, fleet)

    assert dash.snapshot() == before
    assert not dash.launch_record.exists()
    assert redirect_target(result) == f"/login?next={action.path}"
    assert state.username == "" and state.role == ""
    assert action.untouched(state)
    assert any("refused" in m and "no valid session" in m for m in warnings_logged(caplog))


@pytest.mark.parametrize("name", ACTIONS)
def test_a_viewer_cannot_change_anything_and_is_told_so(
    dash: Dash, fleet: dict[str, int], caplog: pytest.LogCaptureFixture, name: str
) -> None:
    action = ACTIONS[name]
    state = make_state(action.state, dash.token(VIEWER_NAME), action.path)
    action.prepare(state, fleet, dash)
    before = dash.snapshot()
    caplog.clear()

    result = action.call(state, fleet)

    assert dash.snapshot() == before
    assert not dash.launch_record.exists()
    level, message = toast(result)
    assert level == "error" and "can only view" in message
    assert action.untouched(state)
    assert any(
        "refused" in m and VIEWER_NAME in m and "viewer" in m for m in warnings_logged(caplog)
    )


READS = {
    "overview.load": (OverviewState, "/", lambda s: s.load(), lambda s: not s.loaded),
    "runs.load": (RunsState, "/runs", lambda s: s.load(), lambda s: s.rows == []),
    "runs.refresh": (RunsState, "/runs", lambda s: s.refresh(), lambda s: s.rows == []),
    "runs.sort_by": (RunsState, "/runs", lambda s: s.sort_by("started_at"), lambda s: s.rows == []),
    "runs.set_status_filter": (
        RunsState,
        "/runs",
        lambda s: s.set_status_filter("running"),
        lambda s: s.rows == [] and s.status_filter == "all",
    ),
    "runs.set_state_filter": (
        RunsState,
        "/runs",
        lambda s: s.set_state_filter("dead"),
        lambda s: s.rows == [] and s.state_filter == "all",
    ),
    "runs.set_portal_filter": (
        RunsState,
        "/runs",
        lambda s: s.set_portal_filter("MP Tenders"),
        lambda s: s.rows == [] and s.portal_filter == "all",
    ),
    "runs.set_search": (
        RunsState,
        "/runs",
        lambda s: s.set_search("MP"),
        lambda s: s.rows == [] and s.search == "",
    ),
    "runs.set_page_size": (
        RunsState,
        "/runs",
        lambda s: s.set_page_size("10"),
        lambda s: s.rows == [] and s.page_size == 25,
    ),
    "runs.go_to_page": (RunsState, "/runs", lambda s: s.go_to_page(1), lambda s: s.rows == []),
    "run.load": (RunDetailState, "/run", lambda s: s.load(), lambda s: not s.found),
    "run.follow": (RunDetailState, "/run", lambda s: s.follow(), lambda s: not s.found),
    "stuck.load": (StuckState, "/stuck", lambda s: s.load(), lambda s: not s.loaded),
    "stuck.refresh": (StuckState, "/stuck", lambda s: s.refresh(), lambda s: s.dead == []),
    "stuck.set_threshold": (
        StuckState,
        "/stuck",
        lambda s: s.set_threshold("36"),
        lambda s: s.dead == [] and s.threshold_text == "",
    ),
    "stuck.use_preset": (
        StuckState,
        "/stuck",
        lambda s: s.use_preset(48),
        lambda s: s.dead == [] and s.threshold_text == "",
    ),
    "portals.load": (PortalsState, "/portals", lambda s: s.load(), lambda s: s.rows == []),
    "portals.refresh": (PortalsState, "/portals", lambda s: s.refresh(), lambda s: s.rows == []),
    "history.load": (HistoryState, "/history", lambda s: s.load(), lambda s: s.events == []),
    "history.set_portal_filter": (
        HistoryState,
        "/history",
        lambda s: s.set_portal_filter("MP Tenders"),
        lambda s: s.events == [] and s.portal_filter == "all",
    ),
    "history.set_action_filter": (
        HistoryState,
        "/history",
        lambda s: s.set_action_filter("cleanup"),
        lambda s: s.events == [] and s.action_filter == "all",
    ),
    "history.set_run_filter": (
        HistoryState,
        "/history",
        lambda s: s.set_run_filter("1"),
        lambda s: s.events == [] and s.run_filter == "",
    ),
    "history.go_to_page": (
        HistoryState,
        "/history",
        lambda s: s.go_to_page(1),
        lambda s: s.events == [],
    ),
}


@pytest.mark.parametrize("credential", ["no-session", "forged-token", "expired-session"])
@pytest.mark.parametrize("name", READS)
def test_without_a_valid_session_pages_show_nothing_and_send_the_browser_to_login(
    dash: Dash,
    fleet: dict[str, int],
    caplog: pytest.LogCaptureFixture,
    name: str,
    credential: str,
) -> None:
    dash.service.cleanup_runs([fleet["dead"]], actor="ops:cron")  # so History has an event
    cls, path, call, shows_nothing = READS[name]
    state = make_state(cls, CREDENTIALS[credential](dash), path)
    caplog.clear()

    result = call(state)

    assert redirect_target(result) == f"/login?next={path}"
    assert shows_nothing(state)
    assert state.username == ""
    refusals = [m for m in warnings_logged(caplog) if "refused" in m]
    # A browser that never logged in is just sent to the login page; a token that is not
    # (or no longer) valid is worth a log line.
    assert bool(refusals) == (credential != "no-session")


# -- every handler is in the matrix above, or touches no data ------------------------------

# Handlers that neither read nor change data: a switch or a dialog of this tab, or the login
# flow itself (tested further down). Every other handler must be in ACTIONS or READS.
NO_DATA = {
    (AuthState, "log_out"): "ends the session; without one it only goes to the login page",
    (LoginState, "open_page"): "the login page: it works without a session by design",
    (LoginState, "log_in"): "logging in: it works without a session by design (throttled)",
    (OverviewState, "set_auto_refresh"): "a switch of this tab",
    (RunsState, "set_auto_refresh"): "a switch of this tab",
    (StuckState, "set_auto_refresh"): "a switch of this tab",
    (PortalsState, "set_auto_refresh"): "a switch of this tab",
    (StuckState, "close_clean_dialog"): "closes a dialog of this tab",
    (StuckState, "close_force_dialog"): "closes a dialog of this tab",
    (StuckState, "set_force_typed"): "what is typed into the confirmation box",
    (HistoryState, "close_revert_dialog"): "closes a dialog of this tab",
    (StuckState, "dismiss_result"): "hides this tab's last clean-up result",
    (RunDetailState, "close_force_dialog"): "closes a dialog of this tab",
    (RunDetailState, "set_force_typed"): "what is typed into the confirmation box",
    (RunDetailState, "close_revert_dialog"): "closes a dialog of this tab",
}
# Reflex's own handler on every state: it sets one of this tab's vars, never the database; a
# handler that then acts on the var checks the session itself.
BUILT_IN = {"setvar"}


def event_handlers() -> list[tuple[type, str]]:
    """Every event handler of every state of the dashboard, through Reflex's public API."""
    found = []
    pending: list[type] = [AuthState]
    while pending:
        cls = pending.pop()
        found += [(cls, name) for name in cls.event_handlers if name not in BUILT_IN]
        pending += cls.get_substates()
    return found


def test_every_handler_is_checked_for_a_session_or_touches_no_data() -> None:
    """A new handler that reads or changes data fails here until it is added to ACTIONS or
    READS, whose tests then show it refuses a browser without a valid session (and a viewer)."""
    covered = {(action.state, key.split(".")[1]) for key, action in ACTIONS.items()}
    covered |= {(cls, key.split(".")[1]) for key, (cls, *_) in READS.items()}
    handlers = event_handlers()
    unchecked = [
        f"{cls.__name__}.{name}"
        for cls, name in handlers
        if (cls, name) not in covered and (cls, name) not in NO_DATA
    ]
    assert unchecked == []
    assert set(NO_DATA) <= set(handlers), "NO_DATA names a handler that does not exist"
    assert not set(NO_DATA) & covered


def test_handlers_take_their_arguments_by_name_as_the_browser_sends_them(
    dash: Dash, fleet: dict[str, int]
) -> None:
    """Reflex calls a handler with the event's payload as keyword arguments."""
    state = make_state(StuckState, dash.token(), "/stuck")
    assert state.use_preset(hours=48) is None and state.threshold_text == "48"
    assert toast(state.cleanup_one(run_id=fleet["dead_old"]))[0] == "success"
    portals = make_state(PortalsState, dash.token(), "/portals")
    level, _ = toast(portals.clean_up_and_start(portal="Assam Tenders", run_ids=[fleet["dead"]]))
    assert level == "success" and dash.status(fleet["dead"]) == CLEANED


UI_CALLS = {
    "set_auto_refresh": lambda state: state.set_auto_refresh(True),
    "set_force_typed": lambda state: state.set_force_typed("123"),
}


@pytest.mark.parametrize(
    ("cls", "name"),
    [key for key in NO_DATA if key[0] not in (AuthState, LoginState)],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_a_handler_that_touches_no_data_works_without_a_session(
    dash: Dash, fleet: dict[str, int], cls: type, name: str
) -> None:
    state = make_state(cls, "")
    before = dash.snapshot()
    call = UI_CALLS.get(name, lambda state: getattr(state, name)())
    assert call(state) is None
    assert dash.snapshot() == before


# -- the stuck-runs panel -------------------------------------------------------------------


def test_the_panel_splits_running_runs_into_dead_resumable_and_attention(
    dash: Dash, fleet: dict[str, int]
) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    assert state.load() is None
    assert state.loaded
    assert sorted(ids(state.dead)) == sorted([fleet["dead"], fleet["dead_old"]])
    assert ids(state.resumable) == [fleet["resumable"]]
    assert ids(state.attention) == [fleet["attention"]]
    assert state.default_threshold == 24.0
    assert state.threshold_hours == 24.0 and not state.low_threshold
    dead = {row.id: row for row in state.dead}[fleet["dead_old"]]
    assert (dead.portal, dead.state, dead.age) == ("CPPP Central", "dead", "50.0 h")
    assert dead.extracted == "–" and dead.checkpoint == "-" and dead.heartbeat == "never"  # NULL
    assert "no progress" in dead.reasons
    resumable = state.resumable[0]
    assert (resumable.extracted, resumable.state) == ("7", "resumable")
    assert state.attention[0].checkpoint == "corrupt"
    assert (state.username, state.role) == (ADMIN_NAME, "admin")


def test_a_viewer_sees_the_panel(dash: Dash, fleet: dict[str, int]) -> None:
    state = make_state(StuckState, dash.token(VIEWER_NAME), "/stuck")
    assert state.load() is None
    assert len(state.dead) == 2
    assert state.role == "viewer" and not state.is_admin


def test_refresh_drops_a_run_cleaned_elsewhere(dash: Dash, fleet: dict[str, int]) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    dash.service.cleanup_runs([fleet["dead"]], actor="ops:cron")
    state.refresh()
    assert ids(state.dead) == [fleet["dead_old"]]


def test_a_higher_threshold_moves_younger_runs_out_of_dead(
    dash: Dash, fleet: dict[str, int]
) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    state.set_threshold("36")
    assert state.threshold_hours == 36.0
    assert ids(state.dead) == [fleet["dead_old"]]  # 50 h; the 30 h one is young again
    assert ids(state.resumable) == [fleet["resumable"]]  # 40 h
    assert not state.low_threshold
    state.use_preset(48)
    assert (state.threshold_text, state.threshold_hours) == ("48", 48.0)
    assert ids(state.dead) == [fleet["dead_old"]]
    assert ids(state.resumable) == []  # 40 h < 48 h: may still be running
    state.use_preset(24)
    assert sorted(ids(state.dead)) == sorted([fleet["dead"], fleet["dead_old"]])


def test_a_threshold_below_12_hours_warns_and_widens_dead(
    dash: Dash, fleet: dict[str, int]
) -> None:
    eight_hours = dash.runs.add("Odisha Tenders", age_hours=8)
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    assert eight_hours not in ids(state.dead)
    state.set_threshold("6")
    assert state.low_threshold
    assert eight_hours in ids(state.dead)
    assert fleet["young"] not in ids(state.dead)  # 2 h old


@pytest.mark.parametrize("typed", ["abc", "-5", "0", "nan", "inf", "1e999"])
def test_an_unusable_threshold_is_explained_and_keeps_the_last_scan(
    dash: Dash, fleet: dict[str, int], typed: str
) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    state.set_threshold("36")
    state.set_threshold(typed)
    assert state.threshold_error != ""
    assert state.threshold_hours == 36.0  # the last valid one: what a clean-up would use
    assert ids(state.dead) == [fleet["dead_old"]]  # not rescanned with a bad value


def test_clean_stuck_runs_previews_exactly_the_dead_runs_and_changes_nothing(
    dash: Dash, fleet: dict[str, int]
) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    before = dash.snapshot()
    assert state.open_clean_dialog() is None
    assert state.clean_dialog_open
    assert sorted(ids(state.preview)) == sorted([fleet["dead"], fleet["dead_old"]])
    assert sorted(state._preview_ids) == sorted([fleet["dead"], fleet["dead_old"]])
    assert dash.snapshot() == before
    state.close_clean_dialog()
    assert not state.clean_dialog_open and state.preview == [] and state._preview_ids == []
    assert dash.snapshot() == before


def test_confirm_cleans_the_previewed_runs_with_one_audit_event_each(
    dash: Dash, fleet: dict[str, int]
) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    state.open_clean_dialog()

    level, message = toast(state.confirm_clean())

    assert (level, message) == ("success", "Cleaned 2/2 dead runs")
    assert state.last_result == "Cleaned 2/2 dead runs" and state.left_alone == []
    assert not state.clean_dialog_open and state.preview == [] and state._preview_ids == []
    assert state.dead == []
    for run_id in (fleet["dead"], fleet["dead_old"]):
        row = dash.runs.get(run_id)
        assert row["status"] == CLEANED and row["completed_at"] is not None
        (event,) = dash.events(run_id)
        assert (event.action, event.actor) == ("cleanup", ACTOR)
        assert (event.from_status, event.to_status) == (RUNNING, CLEANED)
        assert event.details["forced"] is False
    for other in ("resumable", "young", "alive", "attention"):
        assert dash.status(fleet[other]) == RUNNING
        assert dash.events(fleet[other]) == []
    assert dash.status(fleet["completed"]) == COMPLETED


def test_thousands_of_stuck_runs_are_counted_in_full_but_listed_in_part(
    dash: Dash, fleet: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an outage the panel must not ship every row to the browser: it lists the oldest
    few, counts all, and Clean Stuck Runs previews and cleans all of them."""
    import tender_dashboard_reflex.state.stuck as stuck

    monkeypatch.setattr(stuck, "SHOW_LIMIT", 3)
    more = [dash.runs.add("Bulk Portal", age_hours=30 + i) for i in range(4)]
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    assert (len(state.dead), state.dead_total) == (3, 6)
    state.open_clean_dialog()
    assert (len(state.preview), state.preview_total, len(state._preview_ids)) == (3, 6, 6)
    by_portal = {p["portal"]: p["runs"] for p in state.preview_by_portal}
    assert by_portal["Bulk Portal"] == 4
    assert sum(by_portal.values()) == 6

    level, message = toast(state.confirm_clean())

    assert (level, message) == ("success", "Cleaned 6/6 dead runs")
    for run_id in [fleet["dead"], fleet["dead_old"], *more]:
        assert dash.status(run_id) == CLEANED
    assert state.dead_total == 0


def test_confirm_cleans_only_the_previewed_ids(dash: Dash, fleet: dict[str, int]) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    state.open_clean_dialog()
    died_after_the_preview = dash.runs.add("Odisha Tenders", age_hours=60)

    level, message = toast(state.confirm_clean())

    assert (level, message) == ("success", "Cleaned 2/2 dead runs")
    assert dash.status(died_after_the_preview) == RUNNING
    assert dash.events(died_after_the_preview) == []
    assert ids(state.dead) == [died_after_the_preview]  # shown after the rescan, not cleaned


@pytest.mark.parametrize(
    "change",
    [
        {"extracted_total_tenders": 3},
        {"skipped_existing_total": 1},
        {"last_heartbeat_at": "now"},
    ],
    ids=["extracted", "skipped", "heartbeat"],
)
def test_a_run_that_came_alive_after_the_preview_is_left_alone_and_named(
    dash: Dash, fleet: dict[str, int], change: dict[str, Any]
) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    state.open_clean_dialog()
    if change.get("last_heartbeat_at") == "now":
        change = {"last_heartbeat_at": datetime.now(UTC)}
    dash.runs.update(fleet["dead"], **change)

    level, message = toast(state.confirm_clean())

    assert level == "warning"
    assert message.startswith("Cleaned 1/2 dead runs")
    assert f"Left alone (changed since the preview): {fleet['dead']}" in message
    assert dash.status(fleet["dead"]) == RUNNING
    assert dash.events(fleet["dead"]) == []
    assert dash.status(fleet["dead_old"]) == CLEANED
    assert len(state.left_alone) == 1 and state.left_alone[0].startswith(f"run {fleet['dead']}:")


def test_confirm_without_a_preview_cleans_nothing(dash: Dash, fleet: dict[str, int]) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    before = dash.snapshot()
    level, message = toast(state.confirm_clean())
    assert (level, message) == ("success", "Cleaned 0/0 dead runs")
    assert dash.snapshot() == before


def test_clean_up_one_dead_run(dash: Dash, fleet: dict[str, int]) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    assert toast(state.cleanup_one(fleet["dead"])) == (
        "success",
        f"Cleaned up run {fleet['dead']}.",
    )
    assert dash.status(fleet["dead"]) == CLEANED
    assert [e.action for e in dash.events(fleet["dead"])] == ["cleanup"]
    assert dash.status(fleet["dead_old"]) == RUNNING
    assert ids(state.dead) == [fleet["dead_old"]]


@pytest.mark.parametrize("which", ["resumable", "young", "alive", "attention", "completed"])
def test_clean_up_refuses_a_run_that_is_not_dead(
    dash: Dash, fleet: dict[str, int], which: str
) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    before = dash.snapshot()
    level, message = toast(state.cleanup_one(fleet[which]))
    assert level == "warning" and f"Run {fleet[which]} was left alone" in message
    assert dash.snapshot() == before


@pytest.mark.parametrize("bad", ["abc", "1; DROP TABLE runs", "1.5", ""])
def test_clean_up_with_a_bad_id_is_an_error_toast_not_a_crash(
    dash: Dash, fleet: dict[str, int], caplog: pytest.LogCaptureFixture, bad: str
) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    before = dash.snapshot()
    assert toast(state.cleanup_one(bad))[0] == "error"
    assert dash.snapshot() == before
    assert any("clean up a run failed" in m for m in warnings_logged(caplog))


def test_clean_up_of_an_unknown_run_says_so(dash: Dash, fleet: dict[str, int]) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    level, message = toast(state.cleanup_one(987654))
    assert level == "warning" and "no such run" in message


def test_force_clean_up_needs_the_typed_run_id(dash: Dash, fleet: dict[str, int]) -> None:
    run_id = fleet["resumable"]
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    state.open_force_dialog(run_id)
    assert state.force_dialog_open and state.force_run_id == run_id and state.force_typed == ""
    before = dash.snapshot()

    for typed in ("", "yes", str(fleet["dead"]), f"{run_id}0"):
        state.set_force_typed(typed)
        level, message = toast(state.confirm_force())
        assert level == "error" and f"Type the run id {run_id}" in message
        assert state.force_dialog_open
        assert dash.snapshot() == before

    state.set_force_typed(f" {run_id} ")
    level, message = toast(state.confirm_force())
    assert level == "success" and f"Run {run_id} was cleaned up (forced)" in message
    assert not state.force_dialog_open and state.force_typed == ""
    assert dash.status(run_id) == CLEANED
    (event,) = dash.events(run_id)
    assert event.action == "cleanup" and event.actor == ACTOR
    assert event.details["forced"] is True and event.details["state"] == "resumable"
    assert state.resumable == []


def test_closing_the_force_dialog_clears_what_was_typed(dash: Dash, fleet: dict[str, int]) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    state.open_force_dialog(fleet["resumable"])
    state.set_force_typed(str(fleet["resumable"]))
    state.close_force_dialog()
    assert not state.force_dialog_open and state.force_typed == ""


@pytest.mark.parametrize("which", ["alive", "young"])
def test_force_never_cuts_off_a_live_or_young_run(
    dash: Dash, fleet: dict[str, int], which: str
) -> None:
    run_id = fleet[which]
    state = make_state(StuckState, dash.token(), "/stuck")
    state.open_force_dialog(run_id)
    state.set_force_typed(str(run_id))
    before = dash.snapshot()
    level, message = toast(state.confirm_force())
    assert level == "warning" and f"Run {run_id} was left alone" in message
    assert dash.snapshot() == before


def test_force_cleans_a_run_that_needs_attention(dash: Dash, fleet: dict[str, int]) -> None:
    run_id = fleet["attention"]
    state = make_state(StuckState, dash.token(), "/stuck")
    state.open_force_dialog(run_id)
    state.set_force_typed(str(run_id))
    assert toast(state.confirm_force())[0] == "success"
    assert dash.status(run_id) == CLEANED
    assert dash.events(run_id)[0].details["state"] == "attention"


def test_force_judges_the_run_by_the_threshold_in_the_box(
    dash: Dash, fleet: dict[str, int]
) -> None:
    """Forcing is a clean-up like the others: the typed threshold counts. A 2-hour-old run is
    young under the default 24 h, but past a 1 h threshold the operator typed."""
    run_id = fleet["young"]
    state = make_state(StuckState, dash.token(), "/stuck")
    state.set_threshold("1")
    state.open_force_dialog(run_id)
    state.set_force_typed(str(run_id))
    assert toast(state.confirm_force())[0] == "success"
    assert dash.status(run_id) == CLEANED
    (event,) = dash.events(run_id, "cleanup")
    assert event.details["forced"] is True and event.details["age_threshold_hours"] == 1


def test_resume_launches_the_configured_command(dash: Dash, fleet: dict[str, int]) -> None:
    run_id = fleet["resumable"]
    state = make_state(StuckState, dash.token(), "/stuck")
    level, message = toast(state.resume(run_id))
    assert level == "success" and f"resume run {run_id} of 'MP Tenders'" in message
    assert dash.launched()["argv"] == ["resume", "MP Tenders", str(run_id)]
    (event,) = dash.events(run_id, "resume_launched")
    assert event.actor == ACTOR
    assert dash.status(run_id) == RUNNING


@pytest.mark.parametrize("which", ["dead", "alive", "young", "completed"])
def test_resume_refuses_a_run_that_is_not_resumable(
    dash: Dash, fleet: dict[str, int], which: str
) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    before = dash.snapshot()
    level, _message = toast(state.resume(fleet[which]))
    assert level == "error"
    assert dash.snapshot() == before
    assert not dash.launch_record.exists()


def test_auto_refresh_toggle(dash: Dash) -> None:
    for cls in (StuckState, RunsState, PortalsState, OverviewState):
        state = make_state(cls)
        state.set_auto_refresh(True)
        assert state.auto_refresh is True
        state.set_auto_refresh(False)
        assert state.auto_refresh is False


# -- portals ---------------------------------------------------------------------------------


def test_portals_show_each_portals_verdict_and_the_run_it_is_about(
    dash: Dash, fleet: dict[str, int]
) -> None:
    state = make_state(PortalsState, dash.token(), "/portals")
    assert state.load() is None
    verdicts = {row.portal: (row.action, row.run_id, row.last_run_id) for row in state.rows}
    assert verdicts == {
        "Assam Tenders": ("cleanup", fleet["dead"], fleet["completed"]),
        "CPPP Central": ("cleanup", fleet["dead_old"], fleet["dead_old"]),
        "Gujarat Tenders": ("wait", fleet["alive"], fleet["alive"]),
        "Kerala eTenders": ("wait", fleet["young"], fleet["young"]),
        "MP Tenders": ("resume", fleet["resumable"], fleet["resumable"]),
        "Tamil Nadu Tenders": ("start", 0, fleet["finished"]),
        "West Bengal eTender": ("wait", fleet["attention"], fleet["attention"]),
    }


def test_portal_resume_launches_the_resume_command(dash: Dash, fleet: dict[str, int]) -> None:
    state = make_state(PortalsState, dash.token(), "/portals")
    assert toast(state.resume(fleet["resumable"]))[0] == "success"
    assert dash.launched()["argv"] == ["resume", "MP Tenders", str(fleet["resumable"])]
    assert len(dash.events(fleet["resumable"], "resume_launched")) == 1


def test_portal_start_launches_the_start_command(dash: Dash, fleet: dict[str, int]) -> None:
    state = make_state(PortalsState, dash.token(), "/portals")
    level, message = toast(state.start("Tamil Nadu Tenders"))
    assert level == "success" and "start a scrape of 'Tamil Nadu Tenders'" in message
    assert dash.launched()["argv"] == ["start", "Tamil Nadu Tenders"]
    (event,) = [e for e in dash.events(action="start_launched")]
    assert (event.portal_name, event.actor) == ("Tamil Nadu Tenders", ACTOR)


@pytest.mark.parametrize("portal", ["Kerala eTenders", "Gujarat Tenders", "West Bengal eTender"])
def test_portal_start_refuses_a_busy_portal(dash: Dash, fleet: dict[str, int], portal: str) -> None:
    state = make_state(PortalsState, dash.token(), "/portals")
    before = dash.snapshot()
    level, message = toast(state.start(portal))
    assert level == "error" and "Nothing was started" in message
    assert dash.snapshot() == before
    assert not dash.launch_record.exists()


@pytest.mark.parametrize("portal", ["kerala etenders", "GUJARAT-TENDERS", "west bengal etender "])
def test_portal_start_of_a_variant_name_refuses_the_busy_stored_portal(
    dash: Dash, fleet: dict[str, int], portal: str
) -> None:
    state = make_state(PortalsState, dash.token(), "/portals")
    before = dash.snapshot()
    level, message = toast(state.start(portal))
    assert level == "error" and "Nothing was started" in message
    assert dash.snapshot() == before
    assert not dash.launch_record.exists()


def test_portals_sharing_a_checkpoint_file_are_flagged(dash: Dash, fleet: dict[str, int]) -> None:
    dash.runs.add("assam  tenders", status="completed", age_hours=60, completed_at=hours_ago(59))
    state = make_state(PortalsState, dash.token(), "/portals")
    state.load()
    flagged = {r.portal: r.shared_checkpoint for r in state.rows if r.shared_checkpoint}
    assert set(flagged) == {"Assam Tenders", "assam  tenders"}
    assert "assam_tenders.json" in flagged["Assam Tenders"]
    assert "'assam  tenders'" in flagged["Assam Tenders"]


def test_clean_up_and_start_cleans_the_portals_dead_runs_then_starts(
    dash: Dash, fleet: dict[str, int]
) -> None:
    state = make_state(PortalsState, dash.token(), "/portals")
    level, message = toast(state.clean_up_and_start("Assam Tenders", [fleet["dead"]]))
    assert level == "success" and message.startswith("Cleaned 1/1 dead runs")
    assert dash.status(fleet["dead"]) == CLEANED
    assert [e.actor for e in dash.events(fleet["dead"], "cleanup")] == [ACTOR]
    assert dash.launched()["argv"] == ["start", "Assam Tenders"]
    assert dash.status(fleet["completed"]) == COMPLETED
    assert dash.status(fleet["dead_old"]) == RUNNING  # another portal
    assert {r.portal: r.action for r in state.rows}["Assam Tenders"] == "start"


def test_clean_up_and_start_starts_nothing_when_a_dead_run_changed_meanwhile(
    dash: Dash, fleet: dict[str, int]
) -> None:
    """The page showed two dead runs; one of them starts making progress while the button is
    being handled (after the verdict was read, before the clean-up). It is left alone, so no
    scraper is started next to it; the other one is still cleaned."""
    second = dash.runs.add("Assam Tenders", age_hours=26)
    dashboard_service = backend.service()
    check_portal = dashboard_service.check_portal

    def check_then_progress(*args: Any, **kwargs: Any) -> Any:
        verdict = check_portal(*args, **kwargs)
        dash.runs.update(second, extracted_total_tenders=5)
        return verdict

    dashboard_service.check_portal = check_then_progress  # type: ignore[method-assign]
    state = make_state(PortalsState, dash.token(), "/portals")
    level, message = toast(state.clean_up_and_start("Assam Tenders", [fleet["dead"], second]))
    assert level == "warning"
    assert f"run {second}" in message and "Nothing was started" in message
    assert dash.status(fleet["dead"]) == CLEANED
    assert dash.status(second) == RUNNING
    assert not dash.launch_record.exists()
    assert dash.events(action="start_launched") == []


def test_clean_up_and_start_cleans_only_the_portals_own_dead_runs(
    dash: Dash, fleet: dict[str, int]
) -> None:
    """A forged call naming another portal's dead run cleans nothing of it and starts nothing."""
    state = make_state(PortalsState, dash.token(), "/portals")
    level, message = toast(
        state.clean_up_and_start("Assam Tenders", [fleet["dead"], fleet["dead_old"]])
    )
    assert level == "warning" and "Nothing was started" in message
    assert dash.status(fleet["dead_old"]) == RUNNING
    assert not dash.launch_record.exists()


@pytest.mark.parametrize("portal", ["MP Tenders", "Kerala eTenders", "Tamil Nadu Tenders"])
def test_clean_up_and_start_refuses_when_the_verdict_is_not_cleanup(
    dash: Dash, fleet: dict[str, int], portal: str
) -> None:
    state = make_state(PortalsState, dash.token(), "/portals")
    before = dash.snapshot()
    level, message = toast(state.clean_up_and_start(portal, []))
    assert level == "warning" and "the verdict changed to" in message
    assert dash.snapshot() == before
    assert not dash.launch_record.exists()


def test_portals_refresh_shows_a_change_made_elsewhere(dash: Dash, fleet: dict[str, int]) -> None:
    state = make_state(PortalsState, dash.token(), "/portals")
    state.load()
    dash.service.cleanup_runs([fleet["dead_old"]], actor="ops:cron")
    state.refresh()
    assert {r.portal: r.action for r in state.rows}["CPPP Central"] == "start"


# -- history ---------------------------------------------------------------------------------


@pytest.fixture
def cleaned(dash: Dash, fleet: dict[str, int]) -> dict[str, int]:
    """Both dead runs cleaned by a scheduled job, so History has something to show."""
    dash.service.cleanup_runs([fleet["dead"], fleet["dead_old"]], actor="ops:cron")
    return fleet


def test_history_lists_the_audit_trail_with_revert_on_clean_ups(
    dash: Dash, cleaned: dict[str, int]
) -> None:
    state = make_state(HistoryState, dash.token(), "/history")
    assert state.load() is None
    assert state.total == 2
    assert sorted(e.run_id for e in state.events) == sorted([cleaned["dead"], cleaned["dead_old"]])
    assert all(e.action == "cleanup" and e.revertible for e in state.events)
    assert state.portals[0] == "all" and "Assam Tenders" in state.portals


def test_history_filters(dash: Dash, cleaned: dict[str, int]) -> None:
    state = make_state(HistoryState, dash.token(), "/history")
    state.load()
    state.set_portal_filter("CPPP Central")
    assert [e.run_id for e in state.events] == [cleaned["dead_old"]]
    state.set_portal_filter("all")
    state.set_run_filter(str(cleaned["dead"]))
    assert [e.run_id for e in state.events] == [cleaned["dead"]]
    state.set_run_filter("not a number")
    assert state.total == 2  # ignored, not an error
    state.set_run_filter("")
    state.set_action_filter("revert")
    assert state.events == [] and state.total == 0
    state.set_action_filter("cleanup")
    assert state.total == 2
    state.set_action_filter("cleanup' OR 1=1 --")
    assert state.action_filter == "all" and state.total == 2


def test_history_pages_on_the_server(dash: Dash, cleaned: dict[str, int]) -> None:
    with dash.service.db.write() as conn:
        stored_events.insert_events(
            conn,
            [
                NewEvent(
                    run_id=cleaned["completed"],
                    portal_name="Assam Tenders",
                    action=AuditAction.COMPLETE,
                    actor=f"worker:{i}",
                    from_status=RUNNING,
                    to_status=COMPLETED,
                    created_at=datetime.now(UTC) - timedelta(days=3, minutes=i),
                )
                for i in range(60)
            ],
        )
    state = make_state(HistoryState, dash.token(), "/history")
    state.load()
    assert (state.total, state.page_count, len(state.events)) == (62, 2, 50)
    first_page = [e.id for e in state.events]
    state.go_to_page(2)
    assert state.page == 2 and len(state.events) == 12
    assert not set(first_page) & {e.id for e in state.events}
    state.go_to_page(99)
    assert state.page == 2
    state.go_to_page(-3)
    assert state.page == 1 and [e.id for e in state.events] == first_page


def test_revert_from_history_restores_running(dash: Dash, cleaned: dict[str, int]) -> None:
    run_id = cleaned["dead"]
    state = make_state(HistoryState, dash.token(), "/history")
    state.load()
    assert state.ask_revert(run_id) is None
    assert state.revert_dialog_open and state.revert_run_id == run_id
    assert dash.status(run_id) == CLEANED  # asking changes nothing

    level, message = toast(state.confirm_revert())

    assert level == "success" and f"Reverted the clean-up of run {run_id}" in message
    assert not state.revert_dialog_open
    row = dash.runs.get(run_id)
    assert row["status"] == RUNNING and row["completed_at"] is None
    revert, cleanup = dash.events(run_id)
    assert (revert.action, revert.actor) == ("revert", ACTOR)
    assert (revert.from_status, revert.to_status) == (CLEANED, RUNNING)
    assert revert.details["reverted_event_id"] == cleanup.id
    assert dash.status(cleaned["dead_old"]) == CLEANED
    shown = {e.id: e for e in state.events}
    assert not shown[cleanup.id].revertible  # the Revert button goes away

    level, message = toast(state.confirm_revert())
    assert level == "error" and "Nothing to revert" in message
    assert len(dash.events(run_id)) == 2


def test_revert_is_offered_exactly_on_clean_ups_their_run_is_still_in(
    dash: Dash, cleaned: dict[str, int]
) -> None:
    """Whether a clean-up can be reverted does not depend on what else is on the page: with
    the cleanup filter the revert events are not shown, and on page 2 the later clean-ups of
    page 1 are not either."""
    reverted, kept, changed = cleaned["dead"], cleaned["dead_old"], cleaned["young"]
    dash.runs.update(changed, started_at=datetime.now(UTC) - timedelta(hours=30))
    dash.service.cleanup_runs([changed], actor="ops:cron")
    assert dash.service.revert(reverted, actor="ops:alice").reverted
    dash.runs.update(reverted, extracted_total_tenders=3)  # resumed, so not cleaned again
    dash.runs.update(changed, status=COMPLETED)  # someone finished it by hand since
    for i in range(55):  # later clean-ups push the first three to page 2
        dash.runs.add("Bulk Portal", age_hours=30 + i / 60)
    dash.service.cleanup_if_needed(actor="ops:cron")
    state = make_state(HistoryState, dash.token(), "/history")
    state.load()
    state.set_action_filter("cleanup")
    state.go_to_page(2)
    offered = {e.run_id: e.revertible for e in state.events if e.portal_name != "Bulk Portal"}
    assert offered == {reverted: False, kept: True, changed: False}
    state.go_to_page(1)
    assert all(e.revertible for e in state.events)


def test_closing_the_revert_dialog_changes_nothing(dash: Dash, cleaned: dict[str, int]) -> None:
    state = make_state(HistoryState, dash.token(), "/history")
    state.ask_revert(cleaned["dead"])
    before = dash.snapshot()
    state.close_revert_dialog()
    assert not state.revert_dialog_open
    assert dash.snapshot() == before


# -- runs --------------------------------------------------------------------------------------


def test_runs_page_lists_every_run_newest_first(dash: Dash, fleet: dict[str, int]) -> None:
    state = make_state(RunsState, dash.token(), "/runs")
    assert state.load() is None
    assert state.total == len(fleet)
    assert ids(state.rows) == sorted(fleet.values(), reverse=True)
    states = {row.id: row.state for row in state.rows}
    assert states[fleet["dead"]] == "dead" and states[fleet["alive"]] == "alive"
    assert states[fleet["completed"]] == ""
    assert state.portals[0] == "all" and "Gujarat Tenders" in state.portals


def test_runs_sort_on_the_server(dash: Dash, fleet: dict[str, int]) -> None:
    state = make_state(RunsState, dash.token(), "/runs")
    state.load()
    by_age = ["young", "finished", "dead", "attention", "resumable", "dead_old", "completed"]
    state.sort_by("started_at")
    assert (state.sort, state.descending) == ("started_at", True)
    assert ids(state.rows) == [fleet[k] for k in [*by_age, "alive"]]  # newest start first
    state.sort_by("started_at")
    assert not state.descending
    assert ids(state.rows) == [fleet[k] for k in ["alive", *reversed(by_age)]]
    state.sort_by("portal_name")
    assert (state.sort, state.descending) == ("portal_name", False)
    portals = [row.portal_name for row in state.rows]
    assert portals == sorted(portals)


@pytest.mark.parametrize(
    "column", ["id; DROP TABLE runs", "worker_id", "state", "password_hash", "1", ""]
)
def test_sorting_by_a_column_not_in_the_whitelist_is_refused(
    dash: Dash, fleet: dict[str, int], caplog: pytest.LogCaptureFixture, column: str
) -> None:
    state = make_state(RunsState, dash.token(), "/runs")
    state.load()
    state.sort_by("portal_name")
    shown = ids(state.rows)
    before = dash.snapshot()

    level, message = toast(state.sort_by(column))

    assert level == "error" and "cannot sort runs by" in message
    assert dash.snapshot() == before
    # The page keeps its last good order, and later calls keep working.
    assert (state.sort, state.descending) == ("portal_name", False)
    assert ids(state.rows) == shown
    assert state.refresh() is None
    assert ids(state.rows) == shown
    assert any("sort runs failed" in m for m in warnings_logged(caplog))


def test_runs_filters_and_search(dash: Dash, fleet: dict[str, int]) -> None:
    state = make_state(RunsState, dash.token(), "/runs")
    state.load()
    state.set_status_filter(COMPLETED)
    assert sorted(ids(state.rows)) == sorted([fleet["completed"], fleet["finished"]])
    state.set_portal_filter("Assam Tenders")
    assert ids(state.rows) == [fleet["completed"]]
    state.set_status_filter("all")
    assert ids(state.rows) == [fleet["completed"], fleet["dead"]]
    state.set_portal_filter("all")
    state.set_status_filter("running' OR '1'='1")
    assert state.status_filter == "all" and state.total == len(fleet)
    state.set_search("gujarat")
    assert ids(state.rows) == [fleet["alive"]]
    state.set_search("scraper-01")  # the worker id
    assert ids(state.rows) == [fleet["alive"]]
    state.set_search(str(fleet["resumable"]))
    assert fleet["resumable"] in ids(state.rows)
    state.set_search("%")
    assert state.rows == [] and state.total == 0  # a literal %, not a wildcard
    state.set_search("")
    assert state.total == len(fleet)


def test_runs_page_on_the_server(dash: Dash, fleet: dict[str, int]) -> None:
    bulk = [dash.runs.add("Bulk Portal", status=COMPLETED, age_hours=100 + i) for i in range(25)]
    total = len(fleet) + len(bulk)
    state = make_state(RunsState, dash.token(), "/runs")
    state.load()
    state.set_page_size("10")
    assert (state.page_size, state.total, state.page_count) == (10, total, 4)
    everything = sorted([*fleet.values(), *bulk], reverse=True)
    assert ids(state.rows) == everything[:10]
    state.go_to_page(2)
    assert ids(state.rows) == everything[10:20]
    state.go_to_page(99)
    assert state.page == 4 and ids(state.rows) == everything[30:]
    state.set_page_size("7")  # not offered: back to the default
    assert state.page_size == 25 and state.page == 1 and len(state.rows) == 25
    state.set_page_size("100")
    assert len(state.rows) == total


def test_a_page_that_emptied_meanwhile_shows_the_last_page(
    dash: Dash, fleet: dict[str, int]
) -> None:
    bulk = [dash.runs.add("Bulk Portal", status=COMPLETED, age_hours=100 + i) for i in range(25)]
    state = make_state(RunsState, dash.token(), "/runs")
    state.load()
    state.set_page_size("10")
    state.go_to_page(4)
    dash.service.delete_runs(bulk, confirm=True)
    state.refresh()
    assert state.total == len(fleet) and state.page == 1 and len(state.rows) == len(fleet)


def test_run_detail_shows_the_run_its_reasons_and_its_events(
    dash: Dash, fleet: dict[str, int]
) -> None:
    run_id = fleet["dead"]
    dash.service.cleanup_runs([run_id], actor="ops:cron")
    dash.service.revert_cleanup(run_id, actor="ops:alice")
    state = make_state(RunDetailState, dash.token(), f"/run?id={run_id}")
    assert state.load() is None
    assert state.found
    assert (state.run.id, state.run.portal_name, state.run.status) == (
        run_id,
        "Assam Tenders",
        RUNNING,
    )
    assert state.run.state == "dead"
    assert any("no progress" in reason for reason in state.reasons)
    assert [e.action for e in state.events] == ["revert", "cleanup"]
    assert state.checkpoint == "no checkpoint file"


def test_run_detail_of_a_run_with_a_corrupt_checkpoint(dash: Dash, fleet: dict[str, int]) -> None:
    state = make_state(RunDetailState, dash.token(), f"/run?id={fleet['attention']}")
    state.load()
    assert state.run.state == "attention"
    assert state.checkpoint.startswith("corrupt")


def test_run_detail_follows_its_run_quietly_and_only_its_own(
    dash: Dash, fleet: dict[str, int]
) -> None:
    run_id = fleet["dead"]
    state = make_state(RunDetailState, dash.token(), f"/run?id={run_id}")
    state.load()
    assert state.events == []
    dash.service.cleanup_runs([run_id], actor="ops:cron")
    assert state.follow() is None, "no toast"
    assert (state.run.status, [e.action for e in state.events]) == (CLEANED, ["cleanup"])
    moved_on = make_state(RunDetailState, dash.token(), f"/run?id={fleet['attention']}")
    moved_on.found, moved_on.run = True, state.run  # what the tab still shows: the dead run
    moved_on.follow()
    assert moved_on.run.id == run_id, "another run's page leaves loading to its own load"
    missing = make_state(RunDetailState, dash.token(), "/run?id=987654")
    assert missing.follow() is None and not missing.found


@pytest.mark.parametrize("raw", ["987654", "abc", "", "1 OR 1=1", "9" * 40])
def test_run_detail_of_a_missing_run(dash: Dash, fleet: dict[str, int], raw: str) -> None:
    state = make_state(RunDetailState, dash.token(), f"/run?id={raw}")
    level, message = toast(state.load())
    assert level == "error" and message.startswith("No run with id")
    assert not state.found and state.events == []


# -- overview --------------------------------------------------------------------------------


def test_overview_counts_runs_by_state_and_clean_ups(dash: Dash, fleet: dict[str, int]) -> None:
    dash.service.cleanup_runs([fleet["dead_old"]], actor="ops:cron")
    state = make_state(OverviewState, dash.token(VIEWER_NAME), "/")
    assert state.load() is None
    assert state.loaded
    counts = (state.running, state.alive, state.young, state.resumable, state.dead)
    assert counts == (5, 1, 1, 1, 1)
    assert state.attention == 1 and state.cleaned_last_7_days == 1
    by_portal = {p["portal"]: p for p in state.by_portal}
    assert by_portal["Assam Tenders"]["running"] == 1
    assert by_portal["Assam Tenders"]["completed"] == 1
    assert by_portal["CPPP Central"]["cleaned"] == 1
    assert len(state.cleanups_by_day) == 14 and state.cleanups_by_day[-1]["cleanups"] == 1
    assert state.checked_at != ""


def test_overview_shows_the_watchdog(dash: Dash, fleet: dict[str, int]) -> None:
    from cleanup_core.alerts import Monitor

    state = make_state(OverviewState, dash.token(VIEWER_NAME), "/")
    state.load()
    assert state.monitor.startswith("The monitor has never run.")
    assert "python -m cleanup_core watch" in state.monitor
    assert "monitor_in_dashboard = true" in state.monitor
    Monitor(dash.service).run_cycle()
    state.load()
    assert state.monitor.startswith("Last monitor check ")
    assert "next due" in state.monitor
    assert not state.monitor_late


# -- login, sessions, logout -------------------------------------------------------------------


def test_login_sets_a_session_token_and_goes_to_the_overview(dash: Dash) -> None:
    state = make_state(LoginState, path="/login")
    assert state.open_page() is None  # not signed in: stay on the form

    result = state.log_in({"username": ADMIN_NAME, "password": PASSWORD})

    assert redirect_target(result) == "/"
    assert state.session_token != "" and state.error == ""
    assert (state.username, state.role) == (ADMIN_NAME, "admin")
    user = backend.accounts().user_for(state.session_token)
    assert user is not None and user.username == ADMIN_NAME
    assert dash.session_count() == 1


def test_a_viewer_logs_in_as_a_viewer(dash: Dash) -> None:
    state = make_state(LoginState, path="/login")
    state.log_in({"username": VIEWER_NAME, "password": PASSWORD})
    assert state.role == "viewer" and not state.is_admin


@pytest.mark.parametrize(
    ("username", "password"),
    [
        (ADMIN_NAME, "wrong password"),
        (ADMIN_NAME, ""),
        (ADMIN_NAME, PASSWORD.upper()),
        ("mallory", PASSWORD),
        ("", ""),
        ("alice' OR '1'='1", PASSWORD),
    ],
)
def test_a_bad_login_sets_no_token(dash: Dash, username: str, password: str) -> None:
    state = make_state(LoginState, path="/login")
    assert state.log_in({"username": username, "password": password}) is None
    assert state.error == "Wrong user name or password."
    assert state.session_token == "" and state.username == ""
    assert dash.session_count() == 0


def test_after_login_the_browser_goes_where_it_was_heading(dash: Dash) -> None:
    state = make_state(LoginState, path="/login?next=/history")
    result = state.log_in({"username": ADMIN_NAME, "password": PASSWORD})
    assert redirect_target(result) == "/history"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "/login",
        "",
    ],
)
def test_after_login_there_is_no_redirect_to_another_site(dash: Dash, target: str) -> None:
    from urllib.parse import quote

    state = make_state(LoginState, path=f"/login?next={quote(target, safe='')}")
    result = state.log_in({"username": ADMIN_NAME, "password": PASSWORD})
    assert redirect_target(result) == "/"


def test_after_login_the_browser_comes_back_to_the_page_and_its_query(
    dash: Dash, fleet: dict[str, int]
) -> None:
    run_id = fleet["dead"]
    target = redirect_target(make_state(RunDetailState, "", f"/run?id={run_id}").load())
    assert target == f"/login?next=/run%3Fid%3D{run_id}"
    state = make_state(LoginState, path=target)
    result = state.log_in({"username": ADMIN_NAME, "password": PASSWORD})
    assert redirect_target(result) == f"/run?id={run_id}"


def test_the_login_page_sends_a_signed_in_browser_on(dash: Dash) -> None:
    state = make_state(LoginState, dash.token(), "/login?next=/stuck")
    state.error = "left over"
    assert redirect_target(state.open_page()) == "/stuck"
    assert state.error == ""


def test_the_password_never_reaches_the_state_or_the_logs(
    dash: Dash, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    state = make_state(LoginState, path="/login")
    state.log_in({"username": ADMIN_NAME, "password": "a wrong password 123"})
    state.log_in({"username": ADMIN_NAME, "password": PASSWORD})
    assert state.session_token
    root = state.parent_state.parent_state
    dumped = json.dumps(root.dict(), default=str)
    for secret in (PASSWORD, "a wrong password 123"):
        assert secret not in dumped
        assert secret not in caplog.text
    assert state.session_token not in caplog.text
    assert any("failed dashboard login" in r.getMessage() for r in caplog.records)


def test_logout_ends_the_session_in_the_database(
    dash: Dash, fleet: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    token = dash.token()
    other_browser = dash.token()
    state = make_state(StuckState, token, "/stuck")
    state.load()
    assert dash.session_count() == 2

    assert redirect_target(state.log_out()) == "/login"

    assert state.session_token == "" and state.username == "" and state.role == ""
    assert backend.accounts().user_for(token) is None
    assert backend.accounts().user_for(other_browser) is not None  # only this browser
    assert dash.session_count() == 1
    assert any(m.getMessage() == f"dashboard logout: {ADMIN_NAME}" for m in caplog.records)


def test_logout_without_a_session_just_goes_to_login(dash: Dash) -> None:
    state = make_state(OverviewState, forged_token(), "/")
    assert redirect_target(state.log_out()) == "/login"
    assert state.session_token == ""


def test_a_session_stops_working_when_it_expires(dash: Dash, fleet: dict[str, int]) -> None:
    accounts = backend.accounts()
    login = accounts.log_in(ADMIN_NAME, PASSWORD)
    assert login is not None
    assert accounts.user_for(login.token) is not None
    later = login.expires_at + timedelta(seconds=1)
    assert accounts.user_for(login.token, now=later) is None
    state = make_state(OverviewState, dash.token(expired=True), "/")
    assert redirect_target(state.load()) == "/login?next=/"
    assert not state.loaded
