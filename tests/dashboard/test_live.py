"""The dashboard never blocks and stays current: its handlers run off the event loop, a second
click on a running action is ignored on the server, and the live pages share one scan per
backend worker that a change made through the worker drops at once.

The handlers run here as the backend runs them (see ``support.run_handler``), several at once
on one event loop: what one of them waits for in its worker thread must not hold up the others."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import reflex as rx

from cleanup_core import CleanupService
from tender_dashboard_reflex import backend
from tender_dashboard_reflex.state.auth import event, guarded
from tender_dashboard_reflex.state.history import HistoryState
from tender_dashboard_reflex.state.overview import OverviewState
from tender_dashboard_reflex.state.portals import PortalsState
from tender_dashboard_reflex.state.runs import RunsState
from tender_dashboard_reflex.state.stuck import StuckState
from tests.dashboard.support import Dash, make_state, toast


def background(state: Any, name: str, *args: Any) -> Any:
    """The coroutine the backend awaits for the background handler ``name`` of ``state``."""
    handler = getattr(type(state.state), name)
    assert handler.is_background
    return handler.fn(state.state, *args)


@contextmanager
def write_lock_held(dash: Dash) -> Iterator[threading.Event]:
    """Another writer (a scraper, say) holding the SQLite write lock (``BEGIN IMMEDIATE``) until
    the caller sets the event it gets."""
    path = dash.service.settings.database_url.removeprefix("sqlite:///")
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, timeout=1, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            taken.set()
            release.wait(30)
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(10)
    try:
        yield release
    finally:
        release.set()
        holder.join(30)


def test_a_clean_up_waiting_for_the_write_lock_holds_up_no_other_tab(
    dash: Dash, fleet: dict[str, int]
) -> None:
    """Admin A's clean-up waits for a scraper's write lock; meanwhile admin B opens Runs,
    Stuck runs and History, and each shows its data before A's clean-up returns."""
    a = make_state(StuckState, dash.token(), "/stuck")
    a._preview_ids = [fleet["dead"], fleet["dead_old"]]
    pages = [
        make_state(RunsState, dash.token(), "/runs"),
        make_state(StuckState, dash.token(), "/stuck"),
        make_state(HistoryState, dash.token(), "/history"),
    ]

    async def scenario(write_lock: threading.Event) -> tuple[list[bool], Any]:
        cleaning = asyncio.ensure_future(background(a, "confirm_clean"))
        await asyncio.sleep(0)  # A's clean-up has started and is waiting for the lock
        a_done_while_b_browsed = []
        for page in pages:
            assert await background(page, "load") is None
            a_done_while_b_browsed.append(cleaning.done())
        write_lock.set()  # the scraper commits
        return a_done_while_b_browsed, await cleaning

    with write_lock_held(dash) as write_lock:
        done_meanwhile, result = asyncio.run(scenario(write_lock))

    assert done_meanwhile == [False, False, False]
    runs, stuck, history = pages
    assert runs.total == len(fleet) and stuck.loaded and stuck.dead_total == 2
    assert history.total == 0  # nothing had been cleaned yet when B looked
    assert toast(result) == ("success", "Cleaned 2/2 dead runs")
    assert dash.status(fleet["dead"]) == dash.status(fleet["dead_old"]) == "Timeout - Auto-cleaned"


def test_a_second_click_while_the_action_runs_is_ignored_on_the_server(
    dash: Dash, fleet: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, calls = threading.Event(), []
    real = CleanupService.cleanup_runs

    def slow_cleanup(self: CleanupService, *args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        assert gate.wait(30)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(CleanupService, "cleanup_runs", slow_cleanup)
    state = make_state(StuckState, dash.token(), "/stuck")
    busy_seen = []

    async def scenario() -> tuple[Any, Any]:
        first = asyncio.ensure_future(background(state, "cleanup_one", fleet["dead"]))
        while not calls:
            await asyncio.sleep(0.01)
        busy_seen.append(list(state.busy))
        second = await background(state, "cleanup_one", fleet["dead"])  # the double click
        gate.set()
        return await first, second

    first, second = asyncio.run(scenario())

    assert busy_seen == [["StuckState.cleanup_one"]]
    assert second is None and len(calls) == 1
    assert toast(first) == ("success", f"Cleaned up run {fleet['dead']}.")
    assert state.busy == []
    assert len(dash.events(fleet["dead"], "cleanup")) == 1


def test_the_busy_flag_is_cleared_when_the_action_fails(dash: Dash, fleet: dict[str, int]) -> None:
    state = make_state(StuckState, dash.token(), "/stuck")
    level, message = toast(state.cleanup_one("seven"))  # a forged argument
    assert level == "error" and "Not a run id" in message
    assert state.busy == []
    level, _ = toast(state.cleanup_one(fleet["dead"]))  # the next click works
    assert level == "success"


# -- the shared scan -----------------------------------------------------------------------------


@pytest.fixture
def shared(monkeypatch: pytest.MonkeyPatch, dash: Dash) -> list[float]:
    """The shared scan kept for 3 s, on a clock the test moves (``now[0]``)."""
    now = [1000.0]
    monkeypatch.setenv("CLEANUP_DASHBOARD_SCAN_SECONDS", "3")  # read when the backend starts
    monkeypatch.setattr(backend, "_clock", lambda: now[0])
    backend.scan_changed()
    return now


def test_many_tabs_opening_the_live_pages_at_once_cause_one_scan(
    dash: Dash, fleet: dict[str, int], shared: list[float]
) -> None:
    tabs = [
        make_state(cls, dash.token(), path)
        for cls, path in [(StuckState, "/stuck"), (OverviewState, "/"), (PortalsState, "/portals")]
        * 5
    ]
    before = backend.scans_run()

    async def everyone() -> list[Any]:
        return await asyncio.gather(*(background(tab, "load") for tab in tabs))

    assert asyncio.run(everyone()) == [None] * len(tabs)

    assert backend.scans_run() - before == 1
    assert all(tab.dead_total == 2 for tab in tabs[::3])
    assert all(tab.dead == 2 for tab in tabs[1::3])
    assert all(tab.rows for tab in tabs[2::3])


def test_many_tabs_opening_pages_with_portal_filters_count_the_runs_once(
    dash: Dash, fleet: dict[str, int], shared: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting every run by portal and status (for Overview's chart and the portal filters of
    Runs and History) is shared too: the slowest read on a big database."""
    reads = []
    real = CleanupService.read_status_counts

    def counted(self: CleanupService) -> Any:
        reads.append(1)
        return real(self)

    monkeypatch.setattr(CleanupService, "read_status_counts", counted)
    tabs = [
        make_state(cls, dash.token(), path)
        for cls, path in [(RunsState, "/runs"), (HistoryState, "/history"), (OverviewState, "/")]
        * 4
    ]

    async def everyone() -> list[Any]:
        return await asyncio.gather(*(background(tab, "load") for tab in tabs))

    assert asyncio.run(everyone()) == [None] * len(tabs)
    assert len(reads) == 1
    assert all("Assam Tenders" in tab.portals for tab in tabs[:2])
    assert tabs[2].by_portal


def test_a_change_made_elsewhere_shows_once_the_shared_scan_is_old(
    dash: Dash, fleet: dict[str, int], shared: list[float]
) -> None:
    tab = make_state(StuckState, dash.token(), "/stuck")
    tab.load()
    dash.service.cleanup_runs([fleet["dead"]], actor="ops:cron")  # another worker, the CLI
    tab.tick()
    assert tab.dead_total == 2  # the shared scan, 0 s old
    shared[0] += 3.5
    tab.tick()  # an old scan: shown once more while a new one runs in the background
    assert tab.dead_total == 2
    backend.settle()
    tab.tick()
    assert tab.dead_total == 1


def test_refresh_always_shows_a_scan_begun_after_the_click(
    dash: Dash, fleet: dict[str, int], shared: list[float]
) -> None:
    tab = make_state(StuckState, dash.token(), "/stuck")
    tab.load()
    dash.service.cleanup_runs([fleet["dead"]], actor="ops:cron")
    tab.refresh()
    assert tab.dead_total == 1


def test_a_clean_up_in_this_worker_shows_in_every_tab_at_once(
    dash: Dash, fleet: dict[str, int], shared: list[float]
) -> None:
    admin = make_state(StuckState, dash.token(), "/stuck")
    other = make_state(OverviewState, dash.token(), "/")
    portals = make_state(PortalsState, dash.token(), "/portals")
    admin.load(), other.load(), portals.load()
    assert other.dead == 2

    assert toast(admin.cleanup_one(fleet["dead"])) == (
        "success",
        f"Cleaned up run {fleet['dead']}.",
    )

    other.load()
    portals.refresh()
    assert other.dead == 1 and admin.dead_total == 1
    cppp = {r.portal: r for r in portals.rows}["Assam Tenders"]
    assert fleet["dead"] not in cppp.run_ids


def test_a_handler_written_the_older_way_also_runs_off_the_loop(dash: Dash) -> None:
    """``@event @guarded(...)`` over a plain handler (as branches written before ``background``
    have them) is a background event too: checked, then run whole in a worker thread."""
    threads: list[str] = []

    def handler(self: Any, text: str) -> Any:
        threads.append(threading.current_thread().name)
        self.threshold_text = text
        return rx.toast.info("done")

    checked = event(guarded("try the old way", admin=True)(handler))
    assert inspect.iscoroutinefunction(checked) and checked._reflex_background_task

    admin = make_state(StuckState, dash.token(), "/stuck").state
    assert toast(asyncio.run(checked(admin, "7"))) == ("info", "done")
    assert admin.threshold_text == "7" and threads[0].startswith("dashboard")

    viewer = make_state(StuckState, dash.token("victor"), "/stuck").state
    level, _ = toast(asyncio.run(checked(viewer, "8")))
    assert level == "error" and viewer.threshold_text == "" and len(threads) == 1
