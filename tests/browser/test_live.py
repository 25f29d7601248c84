"""Several people on one dashboard, in real browsers against the real app: one admin's slow
clean-up holds up nobody else's pages, and each page follows changes made elsewhere without a
reload (the shared scan, auto-refresh on by default)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, Page, expect

from cleanup_core.models import CLEANED, RUNNING
from tests.browser.conftest import ADMIN, App, _signed_in

pytestmark = pytest.mark.browser

signed_in = contextmanager(_signed_in)

HOLD_WRITE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=5, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()  # until the test closes it
conn.execute("ROLLBACK")
"""


@contextmanager
def write_lock_held(app: App) -> Iterator[Callable[[], None]]:
    """Another process (a scraper, say) holding the database's write lock (``BEGIN IMMEDIATE``)
    until the test calls the function it gets (or the block ends)."""
    path = app.service.settings.database_url.removeprefix("sqlite:///")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_LOCK, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "locked"

    def release() -> None:
        if not holder.stdin.closed:
            holder.stdin.close()
            assert holder.wait(30) == 0
            holder.stdout.close()

    try:
        yield release
    finally:
        release()


def result_toasts(page: Page, text: str):
    return page.locator("[data-sonner-toast]").filter(has_text=text)


def test_a_clean_up_waiting_for_a_held_write_lock_delays_no_other_admins_pages(
    browser: Browser, app: App, fleet: dict[str, int]
) -> None:
    with signed_in(browser, app, ADMIN) as a, signed_in(browser, app, ADMIN) as b:
        a.goto("/stuck")
        expect(a.locator("[id^='dead-row-']")).to_have_count(2)
        b.goto("/")
        expect(b.locator("#count-dead")).to_have_text("2")
        a.click("#clean-stuck-runs")
        expect(a.locator("#clean-confirm")).to_be_enabled()

        with write_lock_held(app) as release:
            a.click("#clean-confirm")
            busy = a.locator("#clean-stuck-runs .rt-Spinner")
            expect(busy).to_be_visible()  # A's clean-up is waiting for the lock
            for link, loaded in (
                ("#nav-runs", f"#run-row-{fleet['dead']}"),
                ("#nav-stuck", f"#dead-row-{fleet['dead']}"),  # not cleaned yet
                ("#nav-history", "#history-empty"),  # no clean-up recorded yet
            ):
                b.click(link)
                expect(b.locator(loaded)).to_be_visible()
                # B's page has its data, and A's clean-up has not returned.
                assert busy.is_visible()
                assert result_toasts(a, "Cleaned").count() == 0
            assert app.status(fleet["dead"]) == RUNNING
            release()  # the scraper commits

        expect(result_toasts(a, "Cleaned 2/2 dead runs")).to_be_visible()
        expect(busy).to_have_count(0)
        assert app.status(fleet["dead"]) == app.status(fleet["dead_old"]) == CLEANED
        b.reload()  # (History has no auto-refresh; the live pages follow by themselves)
        expect(b.locator("[id^='event-row-']")).to_have_count(2)


def test_pages_follow_a_clean_up_by_another_admin_without_a_reload(
    browser: Browser, app: App, fleet: dict[str, int]
) -> None:
    with signed_in(browser, app, ADMIN) as a, signed_in(browser, app, ADMIN) as b:
        b.goto("/")
        expect(b.locator("#count-dead")).to_have_text("2")
        expect(b.locator("#auto-refresh")).to_be_checked()  # on by default
        a.goto("/stuck")
        a.click(f"#cleanup-{fleet['dead']}")
        expect(result_toasts(a, f"Cleaned up run {fleet['dead']}")).to_be_visible()

        expect(b.locator("#count-dead")).to_have_text("1", timeout=20_000)

        b.goto("/stuck")
        expect(b.locator("[id^='dead-row-']")).to_have_count(1)
        app.service.cleanup_runs([fleet["dead_old"]], actor="ops:cron")  # the CLI, elsewhere
        expect(b.locator("#dead-table-empty")).to_be_visible(timeout=20_000)
