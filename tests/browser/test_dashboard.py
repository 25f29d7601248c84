"""The dashboard in a real browser against the real app and a real SQLite file."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import insert, select, update

from cleanup_core.models import CLEANED, COMPLETED, RUNNING, Run, RunCheckpoint
from tests.browser.conftest import ADMIN, PASSWORD, App, LiveRuns
from tests.helpers.live_fleet import hours_ago

pytestmark = pytest.mark.browser

ACTOR = f"dashboard:{ADMIN}"
PAGES = {
    "overview": ("/", "Overview"),
    "runs": ("/runs", "Runs"),
    "run-detail": ("/run?id={dead}", "Run {dead} · Assam Tenders"),
    "stuck": ("/stuck", "Stuck runs"),
    "portals": ("/portals", "Portals"),
    "history": ("/history", "History"),
}


def toast(page: Page, text: str) -> None:
    expect(page.locator("[data-sonner-toast]").filter(has_text=text)).to_be_visible()


def rows(page: Page, prefix: str):
    return page.locator(f"[id^='{prefix}-row-']")


def open_stuck(page: Page) -> None:
    page.goto("/stuck")
    expect(page.locator("#page-title")).to_have_text("Stuck runs")
    expect(page.locator("#dead-table-count")).not_to_have_text("0")


# -- logging in and out ------------------------------------------------------------------------


def test_log_in_with_a_bad_then_a_good_password(page: Page, app: App, fleet: dict) -> None:
    page.goto("/login")
    page.fill("#username", ADMIN)
    page.fill("#password", "not the password")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_have_text("Wrong user name or password.")
    expect(page).to_have_url(re.compile(r"/login"))
    assert not {c["name"]: c["value"] for c in page.context.cookies()}.get("cleanup_session")

    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    expect(page.locator("#page-title")).to_have_text("Overview")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("#current-user")).to_have_text(ADMIN)
    expect(page.locator("#count-dead")).to_have_text("2")
    cookie = {c["name"]: c["value"] for c in page.context.cookies()}.get("cleanup_session")
    assert cookie and app.accounts.user_for(cookie).username == ADMIN


@pytest.mark.parametrize("name", PAGES)
def test_logged_out_access_redirects_to_login(page: Page, app: App, fleet: dict, name: str) -> None:
    path, _title = PAGES[name]
    page.goto(path.format(**fleet))
    expect(page).to_have_url(re.compile(r"/login/?\?next=/"))
    expect(page.locator("#username")).to_be_visible()
    expect(page.locator("#page-title")).to_have_count(0)


def test_log_in_returns_to_the_page_asked_for(page: Page, app: App, fleet: dict) -> None:
    page.goto(f"/run?id={fleet['resumable']}")
    expect(page.locator("#username")).to_be_visible()
    page.fill("#username", ADMIN)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    expect(page.locator("#detail-id")).to_have_text(str(fleet["resumable"]))
    expect(page.locator("#detail-portal")).to_have_text("MP Tenders")


@pytest.mark.parametrize("target", ["//example.com/", "/%5Cexample.com", "https://example.com/"])
def test_log_in_never_sends_the_browser_to_another_site(
    page: Page, app: App, fleet: dict, target: str
) -> None:
    page.goto(f"/login?next={target}")
    page.fill("#username", ADMIN)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    expect(page.locator("#page-title")).to_have_text("Overview")
    assert page.url.startswith(app.url)


def test_log_out_ends_the_session(admin_page: Page, app: App) -> None:
    page = admin_page
    page.goto("/")
    expect(page.locator("#current-user")).to_have_text(ADMIN)
    token = {c["name"]: c["value"] for c in page.context.cookies()}["cleanup_session"]
    assert app.accounts.user_for(token) is not None
    page.click("#logout")
    expect(page).to_have_url(re.compile(r"/login"))
    assert app.accounts.user_for(token) is None
    page.goto("/stuck")
    expect(page).to_have_url(re.compile(r"/login/?\?next=/stuck"))


# -- the stuck-runs panel ----------------------------------------------------------------------


def test_the_panel_shows_each_run_in_the_right_table(admin_page: Page, fleet: dict) -> None:
    page = admin_page
    open_stuck(page)
    expect(rows(page, "dead")).to_have_count(2)
    expect(page.locator(f"#dead-row-{fleet['dead']}")).to_contain_text("Assam Tenders")
    expect(page.locator(f"#dead-row-{fleet['dead_old']}")).to_contain_text("CPPP Central")
    expect(rows(page, "resumable")).to_have_count(1)
    expect(page.locator(f"#resumable-row-{fleet['resumable']}")).to_contain_text("MP Tenders")
    expect(rows(page, "attention")).to_have_count(1)
    expect(page.locator(f"#attention-row-{fleet['attention']}")).to_contain_text("corrupt")
    for other in ("young", "alive", "completed", "finished"):
        expect(page.locator(f"[id$='-row-{fleet[other]}']")).to_have_count(0)


def test_clean_stuck_runs_previews_then_cleans_the_dead_runs(
    admin_page: Page, app: App, fleet: dict, screenshot_dir: Path
) -> None:
    page = admin_page
    open_stuck(page)
    page.click("#clean-stuck-runs")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(rows(page, "preview")).to_have_count(2)
    expect(page.locator(f"#preview-row-{fleet['dead']}")).to_be_visible()
    expect(page.locator(f"#preview-row-{fleet['dead_old']}")).to_be_visible()
    assert app.status(fleet["dead"]) == RUNNING  # the preview changes nothing
    page.screenshot(path=screenshot_dir / "stuck-clean-dialog-1400.png")

    page.click("#clean-confirm")

    toast(page, "Cleaned 2/2 dead runs")
    expect(dialog).to_have_count(0)
    expect(rows(page, "dead")).to_have_count(0)
    expect(page.locator("#dead-table-empty")).to_be_visible()
    expect(page.locator("#last-result")).to_contain_text("Cleaned 2/2 dead runs")
    for run_id in (fleet["dead"], fleet["dead_old"]):
        assert app.status(run_id) == CLEANED
        (event,) = app.events(run_id)
        assert (event.action, event.actor) == ("cleanup", ACTOR)
    assert app.status(fleet["resumable"]) == RUNNING
    expect(rows(page, "resumable")).to_have_count(1)


def test_cancel_leaves_the_dead_runs_alone(admin_page: Page, app: App, fleet: dict) -> None:
    page = admin_page
    open_stuck(page)
    page.click("#clean-stuck-runs")
    expect(rows(page, "preview")).to_have_count(2)
    page.click("#clean-cancel")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(rows(page, "dead")).to_have_count(2)
    assert app.events() == []


def test_clean_up_one_dead_run(admin_page: Page, app: App, fleet: dict) -> None:
    page = admin_page
    open_stuck(page)
    page.click(f"#cleanup-{fleet['dead']}")
    toast(page, f"Cleaned up run {fleet['dead']}.")
    expect(page.locator(f"#dead-row-{fleet['dead']}")).to_have_count(0)
    expect(page.locator(f"#dead-row-{fleet['dead_old']}")).to_be_visible()
    assert app.status(fleet["dead"]) == CLEANED
    assert [e.action for e in app.events(fleet["dead"])] == ["cleanup"]
    assert app.status(fleet["dead_old"]) == RUNNING


def test_force_clean_up_needs_the_typed_run_id(
    admin_page: Page, app: App, fleet: dict, screenshot_dir: Path
) -> None:
    page = admin_page
    run_id = fleet["resumable"]
    open_stuck(page)
    page.click(f"#force-{run_id}")
    confirm = page.locator("#force-confirm")
    expect(confirm).to_be_disabled()
    page.fill("#force-typed", str(fleet["dead"]))
    expect(confirm).to_be_disabled()
    assert app.status(run_id) == RUNNING
    page.fill("#force-typed", str(run_id))
    expect(confirm).to_be_enabled()
    page.screenshot(path=screenshot_dir / "stuck-force-dialog-1400.png")
    confirm.click()
    toast(page, f"Run {run_id} was cleaned up (forced)")
    expect(page.locator(f"#resumable-row-{run_id}")).to_have_count(0)
    assert app.status(run_id) == CLEANED
    (event,) = app.events(run_id)
    assert event.details["forced"] is True and event.actor == ACTOR


def test_resume_launches_the_configured_command(admin_page: Page, app: App, fleet: dict) -> None:
    page = admin_page
    run_id = fleet["resumable"]
    open_stuck(page)
    page.click(f"#resume-{run_id}")
    toast(page, f"to resume run {run_id} of 'MP Tenders'")
    assert app.launched() == ["resume", "MP Tenders", str(run_id)]
    assert [e.actor for e in app.events(run_id, "resume_launched")] == [ACTOR]


def test_refresh_and_auto_refresh_drop_runs_that_finished_elsewhere(
    admin_page: Page, app: App, runs: LiveRuns, fleet: dict
) -> None:
    page = admin_page
    open_stuck(page)
    expect(rows(page, "dead")).to_have_count(2)
    app.service.cleanup_runs([fleet["dead"]], actor="ops:cron")
    page.click("#refresh")
    expect(page.locator(f"#dead-row-{fleet['dead']}")).to_have_count(0)

    expect(page.locator("#auto-refresh")).to_be_checked()  # on by default
    runs.update(fleet["resumable"], status=COMPLETED, completed_at=datetime.now(UTC))
    expect(rows(page, "resumable")).to_have_count(0, timeout=25_000)
    # That refresh has happened, so only a later 5-second tick can show this one.
    app.service.cleanup_runs([fleet["dead_old"]], actor="ops:cron")
    expect(rows(page, "dead")).to_have_count(0, timeout=25_000)
    expect(page.locator("#dead-table-empty")).to_be_visible()


def test_the_threshold_control_changes_the_split(
    admin_page: Page, runs: LiveRuns, fleet: dict
) -> None:
    page = admin_page
    eight_hours = runs.add("Odisha Tenders", age_hours=8)
    open_stuck(page)
    dead, dead_old = f"#dead-row-{fleet['dead']}", f"#dead-row-{fleet['dead_old']}"
    expect(rows(page, "dead")).to_have_count(2)
    expect(page.locator("#low-threshold-warning")).to_have_count(0)

    page.click("#preset-36")
    expect(page.locator(dead)).to_have_count(0)  # 30 h old: may still be running
    expect(page.locator(dead_old)).to_be_visible()
    expect(page.locator(f"#resumable-row-{fleet['resumable']}")).to_be_visible()  # 40 h

    page.click("#preset-48")
    expect(page.locator(f"#resumable-row-{fleet['resumable']}")).to_have_count(0)
    expect(page.locator(dead_old)).to_be_visible()  # 50 h

    page.fill("#threshold-input", "6")
    expect(page.locator("#low-threshold-warning")).to_be_visible()
    expect(page.locator(f"#dead-row-{eight_hours}")).to_be_visible()
    expect(rows(page, "dead")).to_have_count(3)

    page.click("#preset-24")
    expect(page.locator("#low-threshold-warning")).to_have_count(0)
    expect(page.locator(f"#dead-row-{eight_hours}")).to_have_count(0)
    expect(rows(page, "dead")).to_have_count(2)


def test_a_viewer_sees_the_runs_but_no_action_buttons(
    viewer_page: Page, app: App, fleet: dict
) -> None:
    page = viewer_page
    open_stuck(page)
    expect(page.locator("#current-role")).to_have_text("viewer")
    expect(rows(page, "dead")).to_have_count(2)
    expect(rows(page, "resumable")).to_have_count(1)
    expect(rows(page, "attention")).to_have_count(1)
    expect(page.locator("#clean-stuck-runs")).to_have_count(0)
    expect(page.locator("[id^='cleanup-'], [id^='resume-'], [id^='force-']")).to_have_count(0)
    page.goto("/portals")
    expect(rows(page, "portal")).to_have_count(7)
    expect(page.locator("[id^='portal-resume-'], [id^='portal-cleanup-']")).to_have_count(0)
    expect(page.locator("[id^='portal-start-']")).to_have_count(0)
    app.service.cleanup_runs([fleet["dead"]], actor="ops:cron")
    page.goto("/history")
    expect(rows(page, "event")).to_have_count(1)
    expect(page.locator("[id^='revert-']")).to_have_count(0)


# -- history -----------------------------------------------------------------------------------


def test_revert_from_history_restores_running(admin_page: Page, app: App, fleet: dict) -> None:
    page = admin_page
    run_id = fleet["dead"]
    app.service.cleanup_runs([run_id], actor="ops:cron")
    (cleanup,) = app.events(run_id)
    page.goto("/history")
    row = page.locator(f"#event-row-{cleanup.id}")
    expect(row).to_contain_text("ops:cron")
    page.click(f"#revert-{cleanup.id}")
    expect(page.get_by_role("dialog")).to_contain_text(f"run {run_id}")
    assert app.status(run_id) == CLEANED
    page.click("#revert-confirm")
    toast(page, f"Reverted the clean-up of run {run_id}")
    expect(page.locator(f"#revert-{cleanup.id}")).to_have_count(0)
    expect(rows(page, "event")).to_have_count(2)
    assert app.status(run_id) == RUNNING
    assert [e.action for e in app.events(run_id)] == ["revert", "cleanup"]


def test_history_filters(admin_page: Page, app: App, fleet: dict) -> None:
    page = admin_page
    app.service.cleanup_runs([fleet["dead"], fleet["dead_old"]], actor="ops:cron")
    page.goto("/history")
    expect(rows(page, "event")).to_have_count(2)
    page.fill("#history-run", str(fleet["dead_old"]))
    expect(rows(page, "event")).to_have_count(1)
    expect(rows(page, "event")).to_contain_text("CPPP Central")
    page.fill("#history-run", "")
    expect(rows(page, "event")).to_have_count(2)
    page.click("#history-action")
    page.get_by_role("option", name="Revert", exact=True).click()
    expect(page.locator("#history-empty")).to_be_visible()


def test_a_deleted_runs_events_stay_as_the_deleted_runs(
    admin_page: Page, app: App, fleet: dict
) -> None:
    page = admin_page
    run_id = fleet["dead"]
    app.service.cleanup_runs([run_id], actor="ops:cron")
    app.service.delete_runs([run_id], confirm=True, actor="ops:alice")
    events = app.service.history(limit=10).events
    assert [(e.action, e.run_deleted) for e in events] == [("delete", True), ("cleanup", True)]
    page.goto("/history")
    expect(rows(page, "event")).to_have_count(2)
    for event in events:
        row = page.locator(f"#event-row-{event.id}")
        expect(row).to_contain_text(f"{run_id} (deleted)")
        expect(row.get_by_role("link", name=str(run_id))).to_have_count(0)
    expect(page.locator("[id^='revert-']")).to_have_count(0)


# -- runs --------------------------------------------------------------------------------------


def test_the_runs_page_sorts_filters_searches_and_pages(
    admin_page: Page, runs: LiveRuns, fleet: dict
) -> None:
    page = admin_page
    bulk = [runs.add("Bulk Portal", status=COMPLETED, age_hours=100 + i) for i in range(20)]
    total = len(fleet) + len(bulk)
    page.goto("/runs")
    expect(page.locator("#runs-total")).to_have_text(f"{total} runs · page 1 of 2")
    expect(rows(page, "run")).to_have_count(25)
    expect(rows(page, "run").first).to_have_id(f"run-row-{max(bulk)}")

    page.click("#page-next")
    expect(page.locator("#runs-total")).to_have_text(f"{total} runs · page 2 of 2")
    expect(rows(page, "run")).to_have_count(total - 25)

    page.click("#sort-portal_name")
    expect(page.locator("#runs-total")).to_have_text(f"{total} runs · page 1 of 2")
    expect(rows(page, "run").first).to_contain_text("Assam Tenders")
    page.click("#sort-portal_name")
    expect(rows(page, "run").first).to_contain_text("West Bengal eTender")

    page.fill("#search", "gujarat")
    expect(rows(page, "run")).to_have_count(1)
    expect(page.locator(f"#run-row-{fleet['alive']}")).to_be_visible()
    page.fill("#search", "")
    expect(rows(page, "run")).to_have_count(25)

    page.click("#filter-status")
    page.get_by_role("option", name="running", exact=True).click()
    expect(page.locator("#runs-total")).to_have_text("6 runs · page 1 of 1")
    page.click("#filter-portal")
    page.get_by_role("option", name="Assam Tenders", exact=True).click()
    expect(rows(page, "run")).to_have_count(1)
    expect(page.locator(f"#run-row-{fleet['dead']}")).to_contain_text("dead")


def test_the_run_detail_page(admin_page: Page, app: App, fleet: dict) -> None:
    page = admin_page
    run_id = fleet["dead"]
    app.service.cleanup_runs([run_id], actor="ops:cron")
    page.goto("/runs")
    page.locator(f"#run-row-{run_id}").get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/run/?\?id={run_id}$"))
    expect(page.locator("#detail-id")).to_have_text(str(run_id))
    expect(page.locator("#detail-portal")).to_have_text("Assam Tenders")
    expect(page.locator("#detail-status")).to_contain_text(CLEANED)
    expect(page.locator("#detail-checkpoint")).to_have_text("no checkpoint file")
    expect(page.locator("#detail-events")).to_contain_text("ops:cron")

    page.goto(f"/run?id={fleet['resumable']}")
    expect(page.locator("#detail-status")).to_contain_text("resumable")
    expect(page.locator("#detail-reasons")).to_contain_text("made progress")
    expect(page.locator("#detail-no-events")).to_be_visible()

    page.goto("/run?id=987654")
    expect(page.locator("#detail-missing")).to_be_visible()
    toast(page, "No run with id '987654'")


def test_the_run_detail_page_says_where_an_alive_run_is_stalled(
    admin_page: Page, app: App, fleet: dict
) -> None:
    """An alive run whose checkpoint cursor in the database has not moved for longer than
    stall_after_minutes (120) is stalled in that department, on its page."""
    page = admin_page
    run_id = fleet["alive"]
    table = RunCheckpoint.__table__
    runs_table = Run.__table__
    long_ago = datetime.now(UTC) - timedelta(minutes=200)
    with app.service.db.write() as conn:
        conn.execute(update(runs_table).where(runs_table.c.id == run_id).values(attempt=1))
        conn.execute(
            insert(table).values(
                run_id=run_id,
                portal_name="Gujarat Tenders",
                attempt=1,
                cursor='{"department":"Roads","organisation":"PWD"}',
                tender_count=3,
                tender_ids='["G1","G2","G3"]',
                updated_at=datetime.now(UTC),
                cursor_changed_at=long_ago,
                run_started_at=select(runs_table.c.started_at)
                .where(runs_table.c.id == run_id)
                .scalar_subquery(),
            )
        )
    page.goto(f"/run?id={run_id}")
    expect(page.locator("#detail-status")).to_contain_text("alive")
    expect(page.locator("#detail-stalled")).to_contain_text(
        "stalled in organisation PWD, department Roads"
    )
    expect(page.locator("#detail-checkpoint")).to_contain_text("3 tenders")
    expect(page.locator("#detail-checkpoint")).to_contain_text("(in the database)")

    page.goto(f"/run?id={fleet['resumable']}")
    expect(page.locator("#detail-status")).to_contain_text("resumable")
    expect(page.locator("#detail-stalled")).to_have_count(0)


# -- portals -----------------------------------------------------------------------------------


def test_portal_actions(admin_page: Page, app: App, fleet: dict) -> None:
    page = admin_page
    page.goto("/portals")
    expect(rows(page, "portal")).to_have_count(7)
    for waiting, verdict in (
        ("young", "wait"),
        ("alive", "wait"),
        ("attention", "needs attention"),
    ):
        row = page.locator(f"#portal-row-{fleet[waiting]}")
        expect(page.locator(f"#portal-verdict-{fleet[waiting]}")).to_have_text(verdict)
        expect(row.get_by_role("button")).to_have_count(0)

    page.click(f"#portal-resume-{fleet['resumable']}")
    toast(page, f"to resume run {fleet['resumable']} of 'MP Tenders'")
    assert app.launched() == ["resume", "MP Tenders", str(fleet["resumable"])]

    page.click(f"#portal-start-{fleet['finished']}")
    toast(page, "to start a scrape of 'Tamil Nadu Tenders'")
    assert app.launched() == ["start", "Tamil Nadu Tenders"]

    page.click(f"#portal-cleanup-{fleet['completed']}")  # Assam: its newest run is completed
    toast(page, "Cleaned 1/1 dead runs")
    assert app.launched() == ["start", "Assam Tenders"]
    assert app.status(fleet["dead"]) == CLEANED
    assert [e.actor for e in app.events(fleet["dead"], "cleanup")] == [ACTOR]
    expect(page.locator(f"#portal-start-{fleet['completed']}")).to_be_visible()


def test_portals_show_each_portals_typical_run_and_threshold(
    admin_page: Page, runs: LiveRuns, fleet: dict
) -> None:
    """Issue 15: p50 / p99 of the portal's completed runs and the threshold in effect, with its
    source (adaptive_thresholds is off here: the default applies, the figures still show)."""
    newest = 0
    for i in range(25):
        end = hours_ago(2 + i * 6)
        newest = runs.add(
            "Goa Tenders",
            status=COMPLETED,
            started_at=end - timedelta(minutes=40),
            completed_at=end,
            extracted_total_tenders=4,
        )
    page = admin_page
    page.goto("/portals")  # a portal's row is its newest run's (the highest id)
    expect(page.locator(f"#portal-typical-{newest}")).to_have_text(
        "p50 40 min / p99 40 min (25 runs)"
    )
    expect(page.locator(f"#portal-threshold-{newest}")).to_contain_text("24 h")
    expect(page.locator(f"#portal-threshold-{newest}")).to_contain_text("default")
    expect(page.locator(f"#portal-typical-{fleet['young']}")).to_have_text("no completed runs")


# -- how every page looks ----------------------------------------------------------------------


@pytest.mark.parametrize("width", [1440, 700, 390])
def test_every_page_fits_the_window(
    admin_page: Page, app: App, fleet: dict, screenshot_dir: Path, width: int
) -> None:
    """Screenshots of each page at a laptop and a narrow width, for a person to look at; the
    page itself must never scroll sideways (wide tables scroll inside their own box)."""
    page = admin_page
    page.set_viewport_size({"width": width, "height": 900})
    app.service.cleanup_runs([fleet["dead_old"]], actor="ops:cron")
    for name, (path, title) in PAGES.items():
        page.goto(path.format(**fleet))
        expect(page.locator("#page-title")).to_have_text(title.format(**fleet))
        expect(page.locator("#current-user")).to_have_text(ADMIN)
        page.screenshot(path=screenshot_dir / f"{name}-{width}.png", full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} at {width} px scrolls sideways by {overflow} px"
    page.context.clear_cookies()
    page.goto("/login")
    expect(page.locator("#login-submit")).to_be_visible()
    page.screenshot(path=screenshot_dir / f"login-{width}.png", full_page=True)


def test_starting_the_dashboard_leaves_the_checkout_as_it_was(app: App) -> None:
    """``reflex run`` (in a fresh clone it initialises the project first) changes no tracked
    file and leaves no new file behind that git would show."""
    assert app.checkout_started == app.checkout_before
