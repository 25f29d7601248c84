"""The dashboard when the database is locked by someone else or goes away: an error toast (never
a stack trace), nothing half-done, and it works again once the database does - without a
restart of the dashboard."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from cleanup_core import CLEANED
from tender_dashboard_reflex import backend
from tender_dashboard_reflex.state.login import LoginState
from tender_dashboard_reflex.state.stuck import StuckState
from tests.dashboard.support import ADMIN_NAME, PASSWORD, Dash, LiveRuns, make_state, toast
from tests.helpers.db_proxy import Proxy


def test_a_locked_database_is_an_error_toast_and_changes_nothing(
    dash: Dash, fleet: dict[str, int], monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    monkeypatch.setenv("CLEANUP_BUSY_TIMEOUT_SECONDS", "0.5")
    backend.service.cache_clear()
    backend.accounts.cache_clear()
    state = make_state(StuckState, dash.token(), "/stuck")
    state.load()
    state.open_clean_dialog()
    before = dash.snapshot()

    other = sqlite3.connect(make_url(dash.service.settings.database_url).database)
    other.execute("BEGIN IMMEDIATE")  # another program writing, for longer than the timeout
    other.execute("UPDATE runs SET worker_id = worker_id WHERE id = -1")
    try:
        level, message = toast(state.confirm_clean())
    finally:
        other.rollback()
        other.close()

    assert level == "error"
    assert "is locked: another process held its write lock" in message
    assert dash.snapshot() == before
    assert "Clean Stuck Runs failed" in caplog.text
    state.open_clean_dialog()  # the lock is gone: the same dashboard simply works again
    assert toast(state.confirm_clean()) == ("success", "Cleaned 2/2 dead runs")
    assert dash.status(fleet["dead"]) == CLEANED


@pytest.fixture
def behind_a_proxy(
    db_url: str, dash: Dash, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Proxy, LiveRuns]]:
    """The dashboard's backend on PostgreSQL (a schema of its own), reached through a proxy the
    test can switch off."""
    upstream = make_url(db_url)
    proxy = Proxy((upstream.host, upstream.port or 5432))
    proxy.start()
    url = upstream.set(port=proxy.port).render_as_string(hide_password=False)
    monkeypatch.setenv("CLEANUP_DATABASE_URL", url)
    backend.service.cache_clear()
    backend.accounts.cache_clear()
    backend.service().init_database()  # a new database: set up as `python -m cleanup_core init`
    backend.accounts().create_user(ADMIN_NAME, PASSWORD)
    try:
        yield proxy, LiveRuns(backend.service())
    finally:
        proxy.stop()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_database_that_goes_away_is_an_error_toast_and_comes_back(behind_a_proxy) -> None:
    proxy, runs = behind_a_proxy
    dead = runs.add("Assam Tenders", age_hours=30)
    login = make_state(LoginState, path="/login")
    assert login.log_in({"username": ADMIN_NAME, "password": PASSWORD}) is not None
    state = make_state(StuckState, login.session_token, "/stuck")
    assert state.load() is None
    assert [row.id for row in state.dead] == [dead]

    proxy.stop()  # the server goes away
    level, message = toast(state.load())
    assert level == "error"
    assert message.startswith("Cannot reach the database server")
    assert toast(state.open_clean_dialog())[0] == "error"
    down = make_state(LoginState, path="/login")
    assert down.log_in({"username": ADMIN_NAME, "password": PASSWORD}) is None
    assert down.error.startswith("Cannot reach the database server")

    proxy.start()  # back on the same port: the same backend objects work again
    assert state.load() is None
    assert [row.id for row in state.dead] == [dead]
    state.open_clean_dialog()
    assert toast(state.confirm_clean()) == ("success", "Cleaned 1/1 dead runs")


def test_another_applications_database_is_a_message_and_stays_untouched(
    dash: Dash, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = tmp_path / "notes.db"
    other = sqlite3.connect(notes)
    other.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    other.commit()
    other.close()
    before = (
        notes.read_bytes(),
        notes.stat().st_mtime_ns,
        sorted(p.name for p in tmp_path.iterdir()),
    )
    signed_in = dash.token()
    monkeypatch.setenv("CLEANUP_DATABASE_URL", f"sqlite:///{notes}")  # a typo in the settings
    backend.service.cache_clear()
    backend.accounts.cache_clear()

    login = make_state(LoginState, path="/login")
    assert login.log_in({"username": ADMIN_NAME, "password": PASSWORD}) is None
    assert login.error.startswith(f"no runs table in {notes}; is this the scrapers' database?")
    assert "python -m cleanup_core init" in login.error
    state = make_state(StuckState, signed_in, "/stuck")
    level, message = toast(state.load())
    assert level == "error"
    assert message.startswith(f"no runs table in {notes}; is this the scrapers' database?")
    assert (
        notes.read_bytes(),
        notes.stat().st_mtime_ns,
        sorted(p.name for p in tmp_path.iterdir()),
    ) == before
