"""How the dashboard reads and works in a real browser, on a laptop (1440 px) and a phone
(390 px): dialogs that close on Escape and a click outside and keep focus, the current page in
the navigation, Overview cards that add up, toasts that hide no button, every table action in
reach on a phone, a header that stays short there, and no serious accessibility violation
(axe-core) on any page or dialog."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Locator, Page, expect

from cleanup_core.models import CLEANED, RUNNING
from tests.browser.conftest import ADMIN, PASSWORD, App

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
WIDTHS = {"laptop": LAPTOP, "phone": PHONE}
HEADER_MAX_PX_ON_A_PHONE = 60
# route, the page's title, and the navigation entry that marks it as the current page
PAGES = {
    "overview": ("/", "Overview", "overview"),
    "runs": ("/runs", "Runs", "runs"),
    "run": ("/run?id={dead}", "Run {dead} · Assam Tenders", "runs"),
    "stuck": ("/stuck", "Stuck runs", "stuck"),
    "portals": ("/portals", "Portals", "portals"),
    "history": ("/history", "History", "history"),
}
# What shows each page has loaded its rows (a page renders before its data arrives).
LOADED = {
    "overview": "#legend-running",
    "runs": "[id^='run-row-']",
    "run": "#detail-id",
    "stuck": "[id^='dead-row-']",
    "portals": "[id^='portal-row-']",
    "history": "[id^='event-row-'], #history-empty",
}


def open_page(page: Page, name: str, fleet: dict[str, int]) -> None:
    path, title, _nav = PAGES[name]
    page.goto(path.format(**fleet))
    expect(page.locator("#page-title")).to_have_text(title.format(**fleet))
    expect(page.locator(LOADED[name]).first).to_be_attached()


def focus(page: Page) -> dict[str, object]:
    """The focused element's id, and whether it is inside an open dialog."""
    return page.evaluate(
        """() => { const a = document.activeElement;
        return {id: a?.id ?? '', inDialog: !!a?.closest('[role=dialog]')}; }"""
    )


def settled(page: Page) -> None:
    """Wait until no finite animation runs (a dialog fading in or out, a toast sliding)."""
    page.wait_for_function(
        """() => document.getAnimations().every(a =>
            a.playState !== 'running' || a.effect?.getTiming().iterations === Infinity)"""
    )


def at_point(page: Page, x: float, y: float) -> str:
    """The id of the button under a point, else a description of what is there."""
    return page.evaluate(
        """([x, y]) => { const e = document.elementFromPoint(x, y);
        return e?.closest('button')?.id || `${e?.tagName}.${e?.className}`; }""",
        [x, y],
    )


def boxes_overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


# -- dialogs: Escape, a click outside and Cancel close them; focus stays inside, then returns --


def open_clean(page: Page, app: App, fleet: dict[str, int]) -> str:
    open_page(page, "stuck", fleet)
    return "clean-stuck-runs"


def open_force(page: Page, app: App, fleet: dict[str, int]) -> str:
    open_page(page, "stuck", fleet)
    return f"force-{fleet['resumable']}"


def open_revert(page: Page, app: App, fleet: dict[str, int]) -> str:
    app.service.cleanup_runs([fleet["dead"]], actor="ops:cron")
    open_page(page, "history", fleet)
    (cleanup,) = app.events(fleet["dead"])
    return f"revert-{cleanup.id}"


DIALOGS: dict[str, Callable[[Page, App, dict[str, int]], str]] = {
    "clean": open_clean,
    "force": open_force,
    "revert": open_revert,
}


def close_by(page: Page, how: str, dialog: str) -> None:
    if how == "escape":
        page.keyboard.press("Escape")
    elif how == "outside":
        page.mouse.click(5, 5)  # on the overlay, well away from the dialog
    else:
        page.click(f"#{dialog}-cancel")


@pytest.mark.parametrize("how", ["escape", "outside", "cancel"])
@pytest.mark.parametrize("dialog", DIALOGS)
def test_a_dialog_closes_without_changing_anything_and_keeps_focus(
    admin_page: Page, app: App, fleet: dict[str, int], dialog: str, how: str
) -> None:
    page = admin_page
    opener = DIALOGS[dialog](page, app, fleet)
    statuses = {run_id: app.status(run_id) for run_id in fleet.values()}
    events = [e.id for e in app.events()]

    page.click(f"#{opener}")
    shown = page.get_by_role("dialog")
    expect(shown).to_be_visible()
    expect(page.locator(f"#{dialog}-confirm")).to_be_visible()
    page.wait_for_function("document.activeElement?.closest('[role=dialog]') !== null")
    for _ in range(6):  # Tab cycles inside the open dialog, never to the page behind it
        page.keyboard.press("Tab")
        assert focus(page)["inDialog"], focus(page)
    if dialog == "force":
        page.fill("#force-typed", "1")

    close_by(page, how, dialog)

    expect(shown).to_have_count(0)
    expect(page.locator(f"#{opener}")).to_be_focused()
    assert {run_id: app.status(run_id) for run_id in fleet.values()} == statuses
    assert [e.id for e in app.events()] == events
    if dialog == "force":  # what was typed went with the dialog
        page.click(f"#{opener}")
        expect(page.locator("#force-typed")).to_have_value("")
        expect(page.locator("#force-typed")).to_be_focused()


def test_the_dialogs_are_named_by_their_titles(
    admin_page: Page, app: App, fleet: dict[str, int]
) -> None:
    page = admin_page
    open_page(page, "stuck", fleet)
    page.click("#clean-stuck-runs")
    expect(page.get_by_role("dialog", name="Clean stuck runs?")).to_be_visible()
    page.keyboard.press("Escape")
    page.click(f"#force-{fleet['attention']}")
    name = f"Force clean-up of run {fleet['attention']}"
    expect(page.get_by_role("dialog", name=name)).to_be_visible()
    expect(page.get_by_label(f"Type the run id, {fleet['attention']}, to confirm")).to_be_focused()


# -- the navigation marks the page shown -------------------------------------------------------


@pytest.mark.parametrize("name", PAGES)
def test_the_navigation_marks_the_current_page(
    admin_page: Page, fleet: dict[str, int], name: str
) -> None:
    page = admin_page
    nav = PAGES[name][2]
    open_page(page, name, fleet)
    current = page.locator("header nav [aria-current='page']")
    expect(current).to_have_count(1)
    expect(current).to_have_id(f"nav-{nav}")
    other = page.locator("header nav a:not([aria-current])").first

    def look(link: Locator) -> tuple[str, str]:
        return link.evaluate(
            "a => [getComputedStyle(a).backgroundColor,"
            " getComputedStyle(a.querySelector('span, p') ?? a).fontWeight]"
        )

    assert look(current) != look(other), "the current page looks like the others"

    page.set_viewport_size(PHONE)  # the same mark in the phone's menu
    page.click("#nav-menu")
    current = page.locator("#nav-menu-content [aria-current='page']")
    expect(current).to_have_count(1)
    expect(current).to_have_id(f"menu-nav-{nav}")


# -- Overview ----------------------------------------------------------------------------------


def test_the_overview_cards_add_up_to_running(
    admin_page: Page, app: App, fleet: dict[str, int]
) -> None:
    page = admin_page
    page.goto("/")
    expect(page.locator("#count-running")).to_have_text("6")
    states = ("alive", "young", "resumable", "dead", "attention")
    counts = {state: int(page.inner_text(f"#count-{state}")) for state in states}
    assert counts == {"alive": 1, "young": 1, "resumable": 1, "dead": 2, "attention": 1}
    assert sum(counts.values()) == 6
    expect(page.locator("#running-sum")).to_have_text(
        "Running 6 = alive 1 + young 1 + resumable 1 + dead 2 + attention 1"
    )
    monitor = page.locator("#monitor-status")
    expect(monitor).to_contain_text("python -m cleanup_core watch")
    expect(monitor).to_contain_text("monitor_in_dashboard = true")


def test_the_chart_legend_names_only_the_statuses_that_occur(
    admin_page: Page, app: App, fleet: dict[str, int]
) -> None:
    page = admin_page
    page.goto("/")
    legend = page.locator("#chart-legend")
    expect(legend.locator("[id^='legend-']")).to_have_count(2)
    expect(page.locator("#legend-running")).to_have_text("running")
    expect(page.locator("#legend-completed")).to_have_text("completed")

    app.service.cleanup_runs([fleet["dead"]], actor="ops:cron")
    page.reload()
    expect(page.locator("#legend-cleaned")).to_have_text("cleaned")
    expect(legend.locator("[id^='legend-']")).to_have_count(3)
    expect(page.locator("#legend-other")).to_have_count(0)


# -- toasts hide no button ---------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_a_toast_leaves_the_last_rows_buttons_clickable(
    admin_page: Page, app: App, fleet: dict[str, int], width: str
) -> None:
    page = admin_page
    page.set_viewport_size(WIDTHS[width])
    open_page(page, "stuck", fleet)
    page.click(f"#cleanup-{fleet['dead']}")
    toast = page.locator("[data-sonner-toast]").filter(has_text=f"Cleaned up run {fleet['dead']}")
    expect(toast).to_be_visible()
    expect(page.locator(f"#dead-row-{fleet['dead']}")).to_have_count(0)

    last = page.locator(f"#force-{fleet['attention']}")  # the last row on the page
    last.scroll_into_view_if_needed()
    box, toast_box = last.bounding_box(), toast.bounding_box()
    assert box and toast_box and not boxes_overlap(box, toast_box), (box, toast_box)
    centre = [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2]
    hit = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y)?.closest('button')?.id", centre
    )
    assert hit == f"force-{fleet['attention']}"
    expect(toast).to_be_visible()
    last.click()
    expect(page.get_by_role("dialog")).to_contain_text(f"run {fleet['attention']}")


# -- a phone: short header, menu, every table action in reach ---------------------------------


@pytest.mark.parametrize("name", PAGES)
def test_on_a_phone_the_header_is_one_short_row(
    admin_page: Page, fleet: dict[str, int], name: str
) -> None:
    page = admin_page
    page.set_viewport_size(PHONE)
    open_page(page, name, fleet)
    header = page.locator("header").bounding_box()
    assert header and header["height"] <= HEADER_MAX_PX_ON_A_PHONE, header
    expect(page.locator("header nav")).to_be_hidden()
    page.click("#nav-menu")
    expect(page.locator("#menu-current-user")).to_have_text(ADMIN)
    page.click("#menu-nav-history" if name != "history" else "#menu-nav-stuck")
    expect(page.locator("#page-title")).to_have_text(
        "History" if name != "history" else "Stuck runs"
    )
    expect(page.locator("#nav-menu-content")).to_have_count(0)


def click_in_reach(page: Page, button: Locator) -> None:
    """Click a table's button as a person on a phone would: it is on screen once the page is
    scrolled to its row, without scrolling its table sideways (the action column stays in
    view), and the table says that it scrolls."""
    settled(page)
    button.scroll_into_view_if_needed()
    table = button.locator("xpath=ancestor::div[contains(@class, 'table-box')]")
    expect(table).to_have_attribute("data-overflow", "true")
    expect(table.locator(".scroll-hint")).to_be_visible()
    button.evaluate("b => { b.closest('.rt-ScrollAreaViewport').scrollLeft = 0; }")
    box = button.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    hit = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y)?.closest('button')?.id", centre
    )
    assert hit == button.get_attribute("id"), f"{hit} covers {button}"
    page.mouse.click(*centre)


def test_on_a_phone_every_stuck_run_action_is_in_reach(
    admin_page: Page, app: App, fleet: dict[str, int]
) -> None:
    page = admin_page
    page.set_viewport_size(PHONE)
    open_page(page, "stuck", fleet)
    for dead in ("dead", "dead_old"):
        click_in_reach(page, page.locator(f"#cleanup-{fleet[dead]}"))
        expect(page.locator(f"#dead-row-{fleet[dead]}")).to_have_count(0)
        assert app.status(fleet[dead]) == CLEANED

    click_in_reach(page, page.locator(f"#resume-{fleet['resumable']}"))
    assert app.launched()[:2] == ["resume", "MP Tenders"]

    for run in ("resumable", "attention"):
        click_in_reach(page, page.locator(f"#force-{fleet[run]}"))
        page.fill("#force-typed", str(fleet[run]))
        page.click("#force-confirm")
        expect(page.locator(f"[id$='-row-{fleet[run]}']")).to_have_count(0)
        assert app.status(fleet[run]) == CLEANED


def test_on_a_phone_every_portal_action_is_in_reach(
    admin_page: Page, app: App, fleet: dict[str, int]
) -> None:
    page = admin_page
    page.set_viewport_size(PHONE)
    open_page(page, "portals", fleet)
    expected = {
        f"portal-resume-{fleet['resumable']}": ["resume", "MP Tenders", str(fleet["resumable"])],
        f"portal-start-{fleet['finished']}": ["start", "Tamil Nadu Tenders"],
        f"portal-cleanup-{fleet['completed']}": ["start", "Assam Tenders"],
        f"portal-cleanup-{fleet['dead_old']}": ["start", "CPPP Central"],
    }
    expect(page.locator("#portals-table button")).to_have_count(len(expected))
    for button_id, argv in expected.items():
        click_in_reach(page, page.locator(f"#{button_id}"))
        assert app.launched() == argv
    assert app.status(fleet["dead"]) == app.status(fleet["dead_old"]) == CLEANED


def test_on_a_phone_every_revert_is_in_reach(
    admin_page: Page, app: App, fleet: dict[str, int]
) -> None:
    page = admin_page
    page.set_viewport_size(PHONE)
    app.service.cleanup_runs([fleet["dead"], fleet["dead_old"]], actor="ops:cron")
    open_page(page, "history", fleet)
    expect(page.locator("#history-table button")).to_have_count(2)
    for event in app.events(action="cleanup"):
        click_in_reach(page, page.locator(f"#revert-{event.id}"))
        page.click("#revert-confirm")
        expect(page.locator(f"#revert-{event.id}")).to_have_count(0)
        assert app.status(event.run_id) == RUNNING


# -- accessibility -----------------------------------------------------------------------------


def test_the_sort_headers_are_buttons_that_say_how_the_list_is_sorted(
    admin_page: Page, fleet: dict[str, int]
) -> None:
    page = admin_page
    open_page(page, "runs", fleet)
    by_id, by_portal = page.locator("th:has(#sort-id)"), page.locator("th:has(#sort-portal_name)")
    expect(by_id).to_have_attribute("aria-sort", "descending")
    expect(by_portal).to_have_attribute("aria-sort", "none")
    page.focus("#sort-id")
    page.keyboard.press("Tab")
    expect(page.locator("#sort-portal_name")).to_be_focused()
    page.keyboard.press("Enter")
    expect(by_portal).to_have_attribute("aria-sort", "ascending")
    expect(by_id).to_have_attribute("aria-sort", "none")
    expect(page.locator("[id^='run-row-']").first).to_contain_text("Assam Tenders")
    expect(page.get_by_role("combobox", name="Status")).to_have_id("filter-status")


def test_the_login_fields_are_labelled(page: Page, app: App, fleet: dict[str, int]) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#page-title")).to_have_text("Overview")


SERIOUS = ("serious", "critical")


def serious_violations(page: Page, where: str) -> list[str]:
    settled(page)  # colours are checked as shown, not halfway through a fade
    found = Axe().run(page).response["violations"]
    return [
        f"{where}: {v['id']} ({v['impact']}) at {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in SERIOUS
    ]


@pytest.mark.parametrize("width", WIDTHS)
def test_no_serious_accessibility_violation_on_any_page_or_dialog(
    admin_page: Page, app: App, fleet: dict[str, int], width: str
) -> None:
    page = admin_page
    page.set_viewport_size(WIDTHS[width])
    app.service.cleanup_runs([fleet["dead_old"]], actor="ops:cron")  # a revertible clean-up
    problems: list[str] = []
    for name in PAGES:
        open_page(page, name, fleet)
        problems += serious_violations(page, name)
    dialogs = {
        "stuck": ("#clean-stuck-runs", f"#force-{fleet['resumable']}"),
        "history": ("[id^='revert-']",),
    }
    for name, openers in dialogs.items():
        open_page(page, name, fleet)
        for opener in openers:
            page.locator(opener).first.click()
            expect(page.get_by_role("dialog")).to_be_visible()
            problems += serious_violations(page, f"{name} {opener} dialog")
            page.keyboard.press("Escape")
            expect(page.get_by_role("dialog")).to_have_count(0)
    if width == "phone":
        page.click("#nav-menu")
        expect(page.locator("#nav-menu-content")).to_be_visible()
        problems += serious_violations(page, "menu")
    page.context.clear_cookies()
    page.goto("/login")
    expect(page.locator("#login-submit")).to_be_visible()
    problems += serious_violations(page, "login")
    assert not problems, "\n".join(problems)
