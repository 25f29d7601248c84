"""Hostile portal names in a real browser at 1440 px: a 5,000-character name is cut with an
ellipsis (the whole name in its title, on hover) and pushes no column or button off the screen;
a U+202E in a name is shown as ``\\u202e``, so the name never reads reversed."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import App, LiveRuns

pytestmark = pytest.mark.browser

LONG = "Long portal " + "x" * 5000
REVERSED = "Assam\u202egpj.exe"
WIDTH = 1440


@pytest.fixture
def hostile(app: App, runs: LiveRuns, fleet: dict) -> dict[str, int]:
    ids = {
        "long_dead": runs.add(LONG, age_hours=30, worker_id="w" * 3000),
        "long_resumable": runs.add(LONG, age_hours=45, extracted_total_tenders=4),
        "reversed_dead": runs.add(REVERSED, age_hours=33),
        "long_cleaned": runs.add(LONG, age_hours=70),
    }
    app.service.cleanup_runs([ids["long_cleaned"]], actor="ops:" + "y" * 3000)
    return ids


@pytest.fixture
def wide(admin_page: Page) -> Page:
    admin_page.set_viewport_size({"width": WIDTH, "height": 900})
    return admin_page


def assert_cut_with_title(name: Locator) -> None:
    """The name shows cut (one line, much narrower than the window) and whole in its title."""
    expect(name).to_have_attribute("title", LONG)
    box = name.bounding_box()
    assert box is not None and box["width"] < WIDTH / 3, box
    assert name.evaluate("e => e.scrollWidth > e.clientWidth")  # cut, with the ellipsis


def assert_on_screen(element: Locator) -> None:
    expect(element).to_be_visible()
    box = element.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= WIDTH, box


def assert_no_sideways_scroll(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow} px"
    assert "\u202e" not in page.inner_text("body")


def test_the_stuck_panel(wide: Page, hostile: dict, screenshot_dir: Path) -> None:
    page = wide
    page.goto("/stuck")
    dead = page.locator(f"#dead-row-{hostile['long_dead']}")
    expect(dead).to_be_visible()
    assert_cut_with_title(page.locator(f"#stuck-portal-{hostile['long_dead']}"))
    assert_on_screen(dead.get_by_text("no progress"))  # the Reasons column
    assert_on_screen(page.locator(f"#cleanup-{hostile['long_dead']}"))
    assert_on_screen(page.locator(f"#resume-{hostile['long_resumable']}"))
    assert_on_screen(page.locator(f"#force-{hostile['long_resumable']}"))
    expect(page.locator(f"#stuck-portal-{hostile['reversed_dead']}")).to_have_text(
        "Assam\\u202egpj.exe"
    )
    assert_no_sideways_scroll(page)
    page.screenshot(path=screenshot_dir / "stuck-long-names-1440.png", full_page=True)

    page.click("#clean-stuck-runs")
    preview = page.locator(f"#preview-row-{hostile['long_dead']}")
    expect(preview).to_be_visible()
    assert_cut_with_title(preview.locator("[title]"))
    assert_on_screen(page.locator("#clean-confirm"))
    page.screenshot(path=screenshot_dir / "stuck-long-names-dialog-1440.png")


def test_the_runs_page(wide: Page, hostile: dict, screenshot_dir: Path) -> None:
    page = wide
    page.goto("/runs")
    row = page.locator(f"#run-row-{hostile['long_dead']}")
    expect(row).to_be_visible()
    assert_cut_with_title(page.locator(f"#run-portal-{hostile['long_dead']}"))
    worker = row.locator("td").last.locator("[title]")
    expect(worker).to_have_attribute("title", "w" * 3000)
    assert_on_screen(worker)  # the last column
    assert_no_sideways_scroll(page)
    page.screenshot(path=screenshot_dir / "runs-long-names-1440.png", full_page=True)


def test_the_portals_page(wide: Page, hostile: dict, screenshot_dir: Path) -> None:
    page = wide
    page.goto("/portals")
    row = page.locator(f"#portal-row-{hostile['long_cleaned']}")
    expect(row).to_be_visible()
    assert_cut_with_title(row.locator("[title]"))
    assert_on_screen(page.locator(f"#portal-resume-{hostile['long_cleaned']}"))  # newest run
    assert_no_sideways_scroll(page)
    page.screenshot(path=screenshot_dir / "portals-long-names-1440.png", full_page=True)


def test_the_history_page(wide: Page, app: App, hostile: dict, screenshot_dir: Path) -> None:
    page = wide
    (cleanup,) = app.events(hostile["long_cleaned"], "cleanup")
    page.goto("/history")
    row = page.locator(f"#event-row-{cleanup.id}")
    expect(row).to_be_visible()
    assert_cut_with_title(row.locator("td").nth(3).locator("[title]"))  # the Portal column
    expect(row.locator("td").nth(5).locator("[title]")).to_have_attribute(
        "title", "ops:" + "y" * 3000
    )
    assert_on_screen(page.locator(f"#revert-{cleanup.id}"))
    assert_no_sideways_scroll(page)
    page.screenshot(path=screenshot_dir / "history-long-names-1440.png", full_page=True)


def test_the_run_detail_and_overview_pages(wide: Page, hostile: dict, screenshot_dir: Path) -> None:
    page = wide
    page.goto(f"/run?id={hostile['long_dead']}")
    expect(page.locator("#detail-portal")).to_have_text(LONG)  # the whole name, wrapped
    assert_no_sideways_scroll(page)
    page.screenshot(path=screenshot_dir / "run-detail-long-name-1440.png", full_page=True)
    page.goto(f"/run?id={hostile['reversed_dead']}")
    expect(page.locator("#detail-portal")).to_have_text("Assam\\u202egpj.exe")
    page.goto("/")
    expect(page.locator("#chart-by-portal")).to_be_visible()
    page.wait_for_timeout(800)  # let the chart finish animating before the picture
    assert_no_sideways_scroll(page)
    page.screenshot(path=screenshot_dir / "overview-long-names-1440.png", full_page=True)
