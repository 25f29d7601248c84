"""A shift with the dashboard (issue 13, "every defect in Why"), in a real browser: results that
say when and leave when stale, portals needing attention told apart, unknown counters and
heartbeats shown one way on every page, History by time in words, Runs filtered by judged state,
a run page with its actions and a way back, and launch buttons whose command is not set
disabled with a note and a link to the README's help. Ends with screenshots of those pages on
a laptop and a phone ($SCREENSHOT_DIR)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from cleanup_core.models import CLEANED, RUNNING
from cleanup_core.records import NewEvent
from cleanup_core.storage import events as stored_events
from cleanup_core.vocabulary import AUDIT_ACTION_LABELS, AuditAction
from tests.browser.conftest import NOT_LAUNCHABLE, App, LiveRuns
from tests.browser.test_layout import serious_violations

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def rows(page: Page, prefix: str):
    return page.locator(f"[id^='{prefix}-row-']")


def open_stuck(page: Page) -> None:
    page.goto("/stuck")
    expect(page.locator("#page-title")).to_have_text("Stuck runs")
    expect(page.locator("#dead-table-count")).not_to_have_text("0")


def toast(page: Page, text: str) -> None:
    expect(page.locator("[data-sonner-toast]").filter(has_text=text)).to_be_visible()


def choose(page: Page, select_id: str, option: str) -> None:
    page.click(f"#{select_id}")
    page.get_by_role("option", name=option, exact=True).click()


# -- 1. Stuck runs: the result of a clean-up ---------------------------------------------------


def test_a_clean_up_result_says_when_can_be_dismissed_and_goes_when_stale(
    admin_page: Page, app: App, fleet: dict[str, int]
) -> None:
    page = admin_page
    open_stuck(page)
    page.click("#clean-stuck-runs")
    page.click("#clean-confirm")
    result = page.locator("#last-result")
    expect(result).to_contain_text(re.compile(r"Cleaned 2/2 dead runs at \d\d:\d\d"))
    expect(result).to_have_attribute("role", "status")

    dismiss = page.get_by_role("button", name="Dismiss the result")
    dismiss.click()
    expect(result).to_have_count(0)
    assert app.status(fleet["dead"]) == CLEANED  # dismissing changes nothing

    # Leaving and coming back: the result of the earlier visit is gone.
    assert app.service.revert(fleet["dead"], actor="ops:test").reverted
    open_stuck(page)
    page.click(f"#cleanup-{fleet['dead']}")
    expect(result).to_contain_text(f"Cleaned 1/1 dead run (run {fleet['dead']}) at ")
    page.click("#nav-runs")
    expect(page.locator("#page-title")).to_have_text("Runs")
    page.click("#nav-stuck")
    expect(page.locator("#page-title")).to_have_text("Stuck runs")
    expect(rows(page, "resumable").first).to_be_visible()
    expect(result).to_have_count(0)

    # A revert elsewhere brings a cleaned run back: the result no longer describes the page.
    assert app.service.revert(fleet["dead"], actor="ops:test").reverted
    page.click("#refresh")
    page.click(f"#cleanup-{fleet['dead']}")
    expect(result).to_be_visible()
    assert app.service.revert(fleet["dead"], actor="ops:other").reverted
    page.click("#refresh")
    expect(page.locator(f"#dead-row-{fleet['dead']}")).to_be_visible()
    expect(result).to_have_count(0)


# -- 2. Portals: attention is not a healthy wait ----------------------------------------------


def test_a_portal_needing_attention_has_its_own_badge_and_reason(
    admin_page: Page, fleet: dict[str, int]
) -> None:
    page = admin_page
    page.goto("/portals")
    corrupt = page.locator(f"#portal-verdict-{fleet['attention']}")
    alive = page.locator(f"#portal-verdict-{fleet['alive']}")
    expect(corrupt).to_have_text("needs attention")  # words, not only a colour
    expect(alive).to_have_text("wait")
    reason = page.locator(f"#portal-reason-{fleet['attention']}")
    expect(reason).to_contain_text("needs a person's attention")
    expect(reason).to_contain_text("corrupt")
    colour = "e => getComputedStyle(e).backgroundColor"
    assert corrupt.evaluate(colour) != alive.evaluate(colour)


# -- 3. Unknown counters and missing heartbeats, the same on every page -----------------------


def test_unknown_counters_and_missing_heartbeats_read_the_same_everywhere(
    admin_page: Page, fleet: dict[str, int]
) -> None:
    """dead_old's extracted counter is NULL, and no run of those has a heartbeat."""
    page = admin_page
    run_id = fleet["dead_old"]
    page.goto("/runs")
    row = page.locator(f"#run-row-{run_id}")
    expect(row).to_be_visible()
    cells = row.locator("td")
    expect(cells.nth(6)).to_have_text("–unknown")  # a dash shown, "unknown" read out
    expect(cells.nth(6).locator(".sr-only")).to_have_text("unknown")
    expect(cells.nth(8)).to_have_text("never")

    open_stuck(page)
    row = page.locator(f"#dead-row-{run_id}")
    expect(row.locator("td").nth(4)).to_have_text("–unknown")
    expect(row.locator("td").nth(7)).to_have_text("never")
    expect(row).to_contain_text("no progress recorded")  # both counters are NULL

    page.goto(f"/run?id={run_id}")
    expect(page.locator("#detail-extracted")).to_have_text("–unknown")
    expect(page.locator("#detail-heartbeat")).to_have_text("never")
    # A stored number is shown as it is, next to an unknown one.
    page.goto(f"/run?id={fleet['resumable']}")
    expect(page.locator("#detail-extracted")).to_have_text("7")
    expect(page.locator("#detail-skipped")).to_have_text("–unknown")


# -- 4. History: by time, in words ---------------------------------------------------------------


def test_history_is_ordered_by_time_with_actions_and_fields_in_words(
    admin_page: Page, app: App, fleet: dict[str, int]
) -> None:
    page = admin_page
    now = datetime.now(UTC)
    run_id = fleet["completed"]
    with app.service.db.write() as conn:  # written out of time order (a late worker's event)
        stored_events.insert_events(
            conn,
            [
                NewEvent(
                    run_id,
                    "Assam Tenders",
                    AuditAction.COMPLETE,
                    "worker",
                    "running",
                    "completed",
                    now - timedelta(hours=1),
                    {"extracted_total_tenders": 120, "worker_id": "scraper-01"},
                ),
                NewEvent(
                    run_id,
                    "Assam Tenders",
                    AuditAction.START,
                    "worker",
                    None,
                    "running",
                    now - timedelta(hours=5),
                    {"worker_id": "scraper-01"},
                ),
                NewEvent(
                    run_id,
                    "Assam Tenders",
                    AuditAction.RESUME_LAUNCHED,
                    "dashboard:x",
                    "running",
                    "running",
                    now - timedelta(hours=3),
                    {"pid": 4242},
                ),
            ],
        )
    page.goto("/history")
    expect(rows(page, "event")).to_have_count(3)
    whens = [row.locator("td").nth(1).inner_text() for row in rows(page, "event").all()]
    assert whens == sorted(whens, reverse=True), whens
    first = rows(page, "event").first
    expect(first).to_contain_text("Complete")
    expect(first).to_contain_text("extracted: 120")
    expect(first).not_to_contain_text("extracted_total_tenders")
    expect(rows(page, "event").nth(1)).to_contain_text("Resume launched")
    expect(rows(page, "event").nth(1)).to_contain_text("process id: 4242")

    page.click("#history-action")
    options = page.get_by_role("option")
    expect(options).to_have_count(len(AuditAction) + 1)
    assert options.all_inner_texts() == ["All actions", *AUDIT_ACTION_LABELS.values()]
    page.get_by_role("option", name="Resume launched", exact=True).click()
    expect(rows(page, "event")).to_have_count(1)


# -- 5. Runs: filter by judged state -----------------------------------------------------------


def test_runs_filter_by_judged_state(admin_page: Page, fleet: dict[str, int]) -> None:
    page = admin_page
    page.goto("/runs")
    expect(rows(page, "run")).to_have_count(len(fleet))
    expect(page.get_by_role("combobox", name="State")).to_have_id("filter-state")
    choose(page, "filter-state", "dead")
    expect(rows(page, "run")).to_have_count(2)
    for key in ("dead", "dead_old"):
        expect(page.locator(f"#run-row-{fleet[key]}")).to_be_visible()
    choose(page, "filter-state", "attention")
    expect(rows(page, "run")).to_have_count(1)
    expect(page.locator(f"#run-row-{fleet['attention']}")).to_be_visible()
    choose(page, "filter-state", "finished")
    expect(rows(page, "run")).to_have_count(2)
    expect(page.locator(f"#run-row-{fleet['completed']}")).to_be_visible()
    # The search box says what it searches (judged states are the State filter's).
    expect(page.locator("#search")).to_have_attribute(
        "placeholder", "Search portal, status, worker or id"
    )


# -- 6. A run's page: its actions and a way back -------------------------------------------------


def test_a_run_page_offers_what_applies_and_a_way_back(
    admin_page: Page, app: App, fleet: dict[str, int]
) -> None:
    page = admin_page
    page.goto("/runs")
    choose(page, "filter-state", "dead")
    expect(rows(page, "run")).to_have_count(2)
    run_id = fleet["dead"]
    page.locator(f"#run-row-{run_id}").get_by_role("link", name=str(run_id)).click()
    expect(page.locator("#page-title")).to_have_text(f"Run {run_id} · Assam Tenders")
    actions = page.locator("#detail-actions")
    expect(actions.get_by_role("button")).to_have_count(1)
    page.click("#detail-cleanup")
    toast(page, f"Cleaned up run {run_id}")
    expect(page.locator("#detail-status")).to_contain_text("Timeout - Auto-cleaned")
    assert app.status(run_id) == CLEANED
    page.click("#detail-revert")
    expect(page.get_by_role("dialog")).to_contain_text(f"Revert the clean-up of run {run_id}")
    page.click("#revert-confirm")
    toast(page, f"Reverted the clean-up of run {run_id}")
    expect(page.locator("#detail-revert")).to_have_count(0)
    assert app.status(run_id) == RUNNING

    page.click("#back-to-runs")  # back to the list as it was filtered
    expect(page.locator("#page-title")).to_have_text("Runs")
    expect(page).to_have_url(re.compile(r"/runs\?state=dead$"))
    expect(rows(page, "run")).to_have_count(2)
    expect(page.locator("#filter-state")).to_have_text("dead")


def test_a_run_page_forces_with_the_typed_confirmation(
    admin_page: Page, app: App, fleet: dict[str, int]
) -> None:
    page = admin_page
    run_id = fleet["resumable"]
    page.goto(f"/run?id={run_id}")
    expect(page.locator("#detail-actions").get_by_role("button")).to_have_count(2)
    expect(page.locator(f"#resume-{run_id}")).to_be_enabled()
    page.click("#detail-force")
    dialog = page.get_by_role("dialog", name=f"Force clean-up of run {run_id}")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.locator("#detail-force")).to_be_focused()
    assert app.status(run_id) == RUNNING
    page.click("#detail-force")
    expect(page.locator("#force-confirm")).to_be_disabled()
    page.fill("#force-typed", str(run_id))
    page.click("#force-confirm")
    toast(page, f"Run {run_id} was cleaned up (forced)")
    assert app.status(run_id) == CLEANED
    expect(page.locator("#detail-revert")).to_be_visible()


def test_a_live_run_page_offers_nothing_and_a_viewer_sees_no_actions(
    admin_page: Page, viewer_page: Page, fleet: dict[str, int]
) -> None:
    admin_page.goto(f"/run?id={fleet['alive']}")
    expect(admin_page.locator("#detail-id")).to_have_text(str(fleet["alive"]))
    expect(admin_page.locator("#detail-actions")).to_have_count(0)
    viewer_page.goto(f"/run?id={fleet['dead']}")
    expect(viewer_page.locator("#detail-id")).to_have_text(str(fleet["dead"]))
    expect(viewer_page.locator("#detail-actions")).to_have_count(0)
    expect(viewer_page.get_by_role("button", name="Clean up")).to_have_count(0)


# -- 7. A launch whose command is not set ------------------------------------------------------


def test_launch_buttons_without_a_command_are_disabled_with_a_note_and_help(
    admin_page: Page, app: App, runs: LiveRuns, fleet: dict[str, int]
) -> None:
    page = admin_page
    resumable = runs.add(NOT_LAUNCHABLE, age_hours=40, extracted_total_tenders=3)
    open_stuck(page)
    button = page.locator(f"#resume-{resumable}")
    expect(button).to_be_disabled()
    note = page.locator(f"#no-resume-command-{resumable}")
    expect(note).to_contain_text("No resume command is set for this portal.")
    expect(page.locator(f"#resume-{fleet['resumable']}")).to_be_enabled()

    page.goto("/portals")
    expect(page.locator(f"#portal-resume-{resumable}")).to_be_disabled()
    expect(page.locator(f"#no-command-{resumable}")).to_contain_text("No resume command")
    page.goto(f"/run?id={resumable}")
    expect(page.locator(f"#resume-{resumable}")).to_be_disabled()

    page.locator(f"#no-resume-command-{resumable}").get_by_role("link").click()
    expect(page.locator("#page-title")).to_have_text("Settings help")
    expect(page).to_have_url(re.compile(r"/help/settings#launching$"))
    expect(page.locator("#launching")).to_contain_text("Launching scrapers")
    expect(page.locator("#launching")).to_contain_text("resume_command")
    expect(page.locator("#settings")).to_contain_text("CLEANUP_RESUME_COMMAND")
    with pytest.raises(AssertionError):
        app.launched(timeout=1)  # nothing was launched


# -- accessibility of what this adds ------------------------------------------------------------


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_no_serious_accessibility_violation_in_the_new_parts(
    admin_page: Page, app: App, runs: LiveRuns, fleet: dict[str, int], viewport: dict[str, int]
) -> None:
    """The run page's actions and its force dialog, a result on Stuck runs, a disabled launch
    with its note, the State filter, and the settings help."""
    page = admin_page
    page.set_viewport_size(viewport)
    not_launchable = runs.add(NOT_LAUNCHABLE, age_hours=40, extracted_total_tenders=3)
    problems: list[str] = []
    page.goto(f"/run?id={fleet['resumable']}")
    expect(page.locator("#detail-actions")).to_be_visible()
    problems += serious_violations(page, "run page")
    page.click("#detail-force")
    expect(page.get_by_role("dialog")).to_be_visible()
    problems += serious_violations(page, "run page force dialog")
    page.keyboard.press("Escape")
    page.goto(f"/run?id={not_launchable}")
    expect(page.locator(f"#no-resume-command-{not_launchable}")).to_be_visible()
    problems += serious_violations(page, "run page without a resume command")
    open_stuck(page)
    page.click(f"#cleanup-{fleet['dead']}")
    expect(page.locator("#last-result")).to_be_visible()
    # The success toast is checked too: readable colours are ours to choose, not the toaster's.
    expect(page.locator("[data-sonner-toast][data-type='success']")).to_be_visible()
    problems += serious_violations(page, "stuck runs with a result and its toast")
    page.goto("/runs?state=dead")
    expect(rows(page, "run")).to_have_count(1)
    problems += serious_violations(page, "runs filtered")
    page.goto("/help/settings")
    expect(page.locator("#settings")).to_be_visible()
    problems += serious_violations(page, "settings help")
    assert problems == []


# -- screenshots ---------------------------------------------------------------------------------


SHOTS = {
    "runs-filtered": "/runs?state=dead",
    "run-page": "/run?id={resumable}",
    "stuck-result": "/stuck",
    "portals": "/portals",
    "history": "/history",
    "help": "/help/settings",
}


def test_screenshots_of_the_shift_pages(
    admin_page: Page, app: App, runs: LiveRuns, fleet: dict[str, int], screenshot_dir: Path
) -> None:
    page = admin_page
    runs.add(NOT_LAUNCHABLE, age_hours=40, extracted_total_tenders=3)
    app.service.cleanup_runs([fleet["dead_old"]], actor="dashboard:alice")
    for width_name, viewport in (("1440", LAPTOP), ("390", PHONE)):
        page.set_viewport_size(viewport)
        for name, path in SHOTS.items():
            page.goto(path.format(**fleet))
            expect(page.locator("#page-title")).to_be_visible()
            if name == "stuck-result":
                expect(page.locator("[id^='dead-row-']").first).to_be_visible()
                page.click(f"#cleanup-{fleet['dead']}")
                expect(page.locator("#last-result")).to_be_visible()
            elif name == "runs-filtered":
                expect(rows(page, "run")).to_have_count(1)
            page.wait_for_timeout(300)
            page.screenshot(path=screenshot_dir / f"shift-{name}-{width_name}.png", full_page=True)
            if name == "stuck-result":
                assert app.service.revert(fleet["dead"], actor="ops:test").reverted
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} at {width_name} px scrolls sideways by {overflow} px"
