"""What a browser tab's server-side state still holds once its session is gone.

Reflex keeps each tab's state on the server (in memory or Redis) under the tab's token and sends
all of it to any socket that hydrates with that token. So logging out must empty every page's
data, and a handler that finds no valid session must leave none behind."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import reflex as rx
from reflex.event import Event, get_hydrate_event
from reflex.istate.data import ReflexURL, SessionData, URLData
from reflex_base.constants.state import FIELD_MARKER
from sqlalchemy import update

from cleanup_core.models import DashboardSession
from tender_dashboard_reflex.state.auth import AuthState
from tender_dashboard_reflex.state.history import HistoryState
from tender_dashboard_reflex.state.login import LoginState
from tender_dashboard_reflex.state.overview import OverviewState
from tender_dashboard_reflex.state.portals import PortalsState
from tender_dashboard_reflex.state.runs import RunDetailState, RunsState
from tender_dashboard_reflex.state.stuck import StuckState
from tender_dashboard_reflex.tender_dashboard_reflex import app
from tests.dashboard.support import Dash, Handlers, redirect_target

PORTALS = ("Assam Tenders", "CPPP Central", "MP Tenders", "Gujarat Tenders", "ops:cron")


class Tab:
    """One browser tab's whole state tree, as the server keeps it between events."""

    def __init__(self, token: str):
        self.root = rx.State(_reflex_internal_init=True)
        self.root.rx_router_session = SessionData(client_token=secrets.token_hex(8))
        self.go("/")
        self.auth = self.state(AuthState)
        self.auth.session_token = token

    def go(self, path: str) -> None:
        self.root.rx_router_url = URLData.from_url(ReflexURL(f"http://localhost:3000{path}"))

    def state(self, cls: type[rx.State]) -> Any:
        return Handlers(self.root.get_substate(cls.get_full_name().split(".")))

    def sent_on_hydrate(self) -> str:
        """Everything a socket hydrating with this tab's token would receive."""
        return json.dumps(self.root.dict(), default=str)


def open_every_page(dash: Dash, fleet: dict[str, int], tab: Tab) -> None:
    """As an admin who went through every page, with dialogs open."""
    dash.service.cleanup_runs([fleet["dead_old"]], actor="ops:cron")
    for path, cls in (
        ("/", OverviewState),
        ("/runs", RunsState),
        (f"/run?id={fleet['dead']}", RunDetailState),
        ("/stuck", StuckState),
        ("/portals", PortalsState),
        ("/history", HistoryState),
    ):
        tab.go(path)
        assert tab.state(cls).load() is None
    tab.go("/stuck")
    stuck = tab.state(StuckState)
    stuck.set_threshold("36")
    stuck.open_clean_dialog()
    stuck.open_force_dialog(fleet["resumable"])
    tab.go("/history")
    tab.state(HistoryState).ask_revert(fleet["dead_old"])
    shown = tab.sent_on_hydrate()
    assert all(name in shown for name in PORTALS)  # the tab really holds the data


def assert_holds_nothing(tab: Tab) -> None:
    shown = tab.sent_on_hydrate()
    assert not [name for name in PORTALS if name in shown]
    stuck, runs = tab.state(StuckState), tab.state(RunsState)
    assert stuck.dead == stuck.resumable == stuck.attention == stuck.preview == []
    assert stuck._preview_ids == [] and not stuck.clean_dialog_open
    assert (stuck.force_run_id, stuck.threshold_text, stuck.loaded) == (0, "", False)
    assert runs.rows == [] and runs.portals == [] and runs.total == 0
    detail = tab.state(RunDetailState)
    assert detail.run.id == 0 and detail.events == [] and not detail.found
    history = tab.state(HistoryState)
    assert history.events == [] and history.revert_run_id == 0
    assert tab.state(PortalsState).rows == []
    overview = tab.state(OverviewState)
    assert overview.by_portal == [] and overview.running == 0 and not overview.loaded
    assert (tab.auth.session_token, tab.auth.username, tab.auth.role) == ("", "", "")


def test_logout_empties_every_page_of_the_tab(dash: Dash, fleet: dict[str, int]) -> None:
    tab = Tab(dash.token())
    open_every_page(dash, fleet, tab)

    assert redirect_target(tab.auth.log_out()) == "/login"

    assert_holds_nothing(tab)


def test_logout_from_any_page_empties_the_whole_tab(dash: Dash, fleet: dict[str, int]) -> None:
    """Logging out is an AuthState event, but a page state inherits the handler too."""
    tab = Tab(dash.token())
    open_every_page(dash, fleet, tab)
    assert redirect_target(tab.state(StuckState).log_out()) == "/login"
    assert_holds_nothing(tab)


def _ended_elsewhere(dash: Dash, token: str) -> None:
    """Logged out in another tab (or `admin set-password`): the session row is gone."""
    from tender_dashboard_reflex import backend

    backend.accounts().log_out(token)


def _expired(dash: Dash, token: str) -> None:
    with dash.service.db.write() as conn:
        conn.execute(
            update(DashboardSession).values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )


READS: dict[str, tuple[type, str, Callable[[Any], Any]]] = {
    "overview.load": (OverviewState, "/", lambda s: s.load()),
    "runs.load": (RunsState, "/runs", lambda s: s.load()),
    "runs.refresh": (RunsState, "/runs", lambda s: s.refresh()),
    "runs.go_to_page": (RunsState, "/runs", lambda s: s.go_to_page(1)),
    "runs.set_search": (RunsState, "/runs", lambda s: s.set_search("MP")),
    "run.load": (RunDetailState, "/run?id=1", lambda s: s.load()),
    "stuck.load": (StuckState, "/stuck", lambda s: s.load()),
    "stuck.refresh": (StuckState, "/stuck", lambda s: s.refresh()),
    "stuck.set_threshold": (StuckState, "/stuck", lambda s: s.set_threshold("48")),
    "stuck.cleanup_one": (StuckState, "/stuck", lambda s: s.cleanup_one(1)),
    "portals.refresh": (PortalsState, "/portals", lambda s: s.refresh()),
    "history.load": (HistoryState, "/history", lambda s: s.load()),
    "history.go_to_page": (HistoryState, "/history", lambda s: s.go_to_page(1)),
}


@pytest.mark.parametrize("ended", [_ended_elsewhere, _expired], ids=["logged-out", "expired"])
@pytest.mark.parametrize("name", READS)
def test_a_handler_without_a_valid_session_leaves_no_data_in_the_tab(
    dash: Dash, fleet: dict[str, int], name: str, ended: Callable[[Dash, str], None]
) -> None:
    token = dash.token()
    tab = Tab(token)
    open_every_page(dash, fleet, tab)
    ended(dash, token)
    cls, path, call = READS[name]
    tab.go(path)

    result = call(tab.state(cls))

    assert redirect_target(result).startswith("/login?next=")
    assert_holds_nothing(tab)


def test_the_login_page_of_a_tab_whose_session_ended_holds_no_data(
    dash: Dash, fleet: dict[str, int]
) -> None:
    token = dash.token()
    tab = Tab(token)
    open_every_page(dash, fleet, tab)
    _ended_elsewhere(dash, token)
    tab.go("/login")

    assert tab.state(LoginState).open_page() is None

    assert_holds_nothing(tab)


def hydrate(tab: Tab, cookie: str | None = None) -> str:
    """What a socket (re)connecting with this tab's token receives: the app's middleware, then
    Reflex's ``hydrate_and_load`` (with the browser's session cookie, if it still has one), as
    the backend runs them; the snapshot is read where the handler takes it, ``State.dict``."""
    name = get_hydrate_event(tab.root).rpartition(".")[0] + ".hydrate_and_load"
    cookie_var = AuthState.get_full_name() + ".session_token" + FIELD_MARKER
    payload = {"vars": {cookie_var: cookie}} if cookie is not None else {}
    event = Event(name=name, payload=payload)
    for middleware in app._middlewares:
        assert asyncio.run(middleware.preprocess(app, tab.root, event)) is None
    if cookie is not None:
        tab.auth.session_token = cookie  # as hydrate_and_load applies the browser's storage
    return tab.sent_on_hydrate()


@pytest.mark.parametrize("ended", [_ended_elsewhere, _expired], ids=["logged-out", "expired"])
@pytest.mark.parametrize("cookie", [False, True], ids=["tab-token", "browser-cookie"])
def test_reloading_a_tab_whose_session_ended_sends_none_of_its_data(
    dash: Dash, fleet: dict[str, int], ended: Callable[[Dash, str], None], cookie: bool
) -> None:
    token = dash.token()
    tab = Tab(token)
    open_every_page(dash, fleet, tab)
    ended(dash, token)

    sent = hydrate(tab, token if cookie else None)

    assert not [name for name in PORTALS if name in sent]
    tab.auth.session_token = ""  # (a reset tab keeps the cookie the browser sent)
    assert_holds_nothing(tab)


def test_reloading_a_tab_with_a_valid_session_keeps_its_pages(
    dash: Dash, fleet: dict[str, int]
) -> None:
    token = dash.token()
    tab = Tab(token)
    open_every_page(dash, fleet, tab)

    sent = hydrate(tab, token)

    assert all(name in sent for name in PORTALS)
    assert tab.state(StuckState).loaded and tab.auth.username == "alice"


def test_a_tab_whose_old_session_ended_keeps_its_pages_once_the_browser_logged_in_again(
    dash: Dash, fleet: dict[str, int]
) -> None:
    """The browser's cookie is what the tab goes on with; a new valid one keeps the pages."""
    old = dash.token()
    tab = Tab(old)
    open_every_page(dash, fleet, tab)
    _ended_elsewhere(dash, old)

    assert all(name in hydrate(tab, dash.token()) for name in PORTALS)
