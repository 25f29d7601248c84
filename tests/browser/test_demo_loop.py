"""The demo's recovery loop in a real browser: the dashboard started on the demo database the way
`bash scripts/start.sh --demo` starts it (the demo, an admin account, then the app with no
command settings at all), Resume on a resumable run, and the run page shows the launched demo
scraper's run alive, its counters climbing, then completed with exactly the portal's 120
tenders, without a reload."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import text

from cleanup_core import CleanupService, RunState, Settings
from cleanup_core.accounts import Accounts
from cleanup_core.db import Database
from tests.helpers.dashboard_server import ROOT, ServerError, app_env, log_problems, serve

PASSWORD = "demo loop password 1"
WIDE = {"width": 1400, "height": 900}


@dataclass
class DemoApp:
    url: str
    service: CleanupService
    accounts: Accounts
    log_path: Path


def _cli(env: dict[str, str], *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cleanup_core", *args],
        input=stdin,
        text=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoApp]:
    work = tmp_path_factory.mktemp("demo-loop")
    # Only the database is named (start.sh uses ./data/tenders.db; a test must not write into
    # the checkout): the checkpoint folder and the scraper commands come from the settings
    # file the demo writes beside the database.
    env = app_env({"CLEANUP_DATABASE_URL": f"sqlite:///{work / 'data' / 'tenders.db'}"})
    _cli(env, "demo", "--checkpoint-dir", str(work / "checkpoints"))
    _cli(env, "admin", "create", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    settings = Settings.load(env)
    assert settings.config_file == work / "data" / "cleanup.toml"
    service = CleanupService(settings, database=Database(settings))
    log_path = work / "reflex.log"
    try:
        with serve(env, log_path) as server:
            yield DemoApp(server.url, service, Accounts(service.db), log_path)
    except ServerError as exc:
        pytest.fail(str(exc))
    finally:
        service.db.dispose()
    problems = log_problems(log_path.read_text(errors="replace"))
    assert not problems, f"the app logged errors ({log_path}):\n" + "\n".join(problems)


@pytest.fixture
def admin_page(browser: Browser, demo_app: DemoApp) -> Iterator[Page]:
    login = demo_app.accounts.log_in("admin", PASSWORD)
    assert login is not None
    context = browser.new_context(base_url=demo_app.url, viewport=WIDE)
    context.add_cookies([{"name": "cleanup_session", "value": login.token, "url": demo_app.url}])
    try:
        yield context.new_page()
    finally:
        context.close()


def extracted(page: Page) -> int:
    return int(page.locator("#detail-extracted").inner_text())


def test_resume_on_the_demo_runs_the_demo_scraper_to_completion(
    admin_page: Page, demo_app: DemoApp
) -> None:
    page = admin_page
    (run_id,) = [
        v.run_id
        for v in demo_app.service.scan().verdicts
        if v.state is RunState.RESUMABLE and v.portal_name == "MP Tenders"
    ]
    page.goto("/stuck")
    expect(page.locator("#page-title")).to_have_text("Stuck runs")
    page.click(f"#resume-{run_id}")
    expect(
        page.locator("[data-sonner-toast]").filter(
            has_text=f"to resume run {run_id} of 'MP Tenders'"
        )
    ).to_be_visible()

    page.goto(f"/run?id={run_id}")  # never reloaded: the page follows the running run
    status = page.locator("#detail-status")
    expect(status).to_contain_text("alive", timeout=30_000)
    first = extracted(page)
    assert 50 <= first < 120
    counts = {first}
    deadline = time.monotonic() + 90
    while "completed" not in status.inner_text():
        assert time.monotonic() < deadline, f"never completed; counts seen: {sorted(counts)}"
        counts.add(extracted(page))
        time.sleep(0.2)
    assert len({c for c in counts if c < 120}) >= 2, f"the counters climb: {sorted(counts)}"
    expect(page.locator("#detail-extracted")).to_have_text("120")
    expect(page.locator("#detail-attempt")).to_contain_text("2")
    expect(page.locator("#detail-events")).to_contain_text("Resume launched")
    assert demo_app.service.run_status(run_id) == "completed"


def newest_run(service: CleanupService, portal: str) -> int:
    with service.db.read() as conn:
        return conn.execute(
            text("SELECT max(id) FROM runs WHERE portal_name = :p"), {"p": portal}
        ).scalar_one()


@pytest.mark.parametrize(
    ("portal", "button", "said"),
    [
        ("Haryana eProcurement", "portal-start-", "to start a scrape of 'Haryana eProcurement'"),
        ("CPPP Central", "portal-cleanup-", "Cleaned 2/2 dead runs"),
    ],
)
def test_start_and_clean_up_and_start_on_the_demo_run_the_demo_scraper(
    admin_page: Page, demo_app: DemoApp, portal: str, button: str, said: str
) -> None:
    """Both portals' tenders were stored by an earlier run of the fleet: the new run scrapes the
    whole portal and stores none of its 120 tenders twice."""
    page, service = admin_page, demo_app.service
    before = newest_run(service, portal)
    page.goto("/portals")
    row = page.locator("[id^='portal-row-']").filter(has_text=portal)
    row.locator(f"[id^='{button}']").click()
    expect(page.locator("[data-sonner-toast]").filter(has_text=said)).to_be_visible()
    deadline = time.monotonic() + 30
    while (run_id := newest_run(service, portal)) == before:
        assert time.monotonic() < deadline, "the started scraper never claimed a run"
        time.sleep(0.2)
    page.goto(f"/run?id={run_id}")
    expect(page.locator("#detail-status")).to_contain_text("completed", timeout=90_000)
    expect(page.locator("#detail-extracted")).to_have_text("0")
    expect(page.locator("#detail-skipped")).to_have_text("120")
    expect(page.locator("#detail-worker")).to_contain_text("demo:")
