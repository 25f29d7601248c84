"""The real dashboard against password guessing and bad numbers: the login throttle as a browser
sees it, the log lines fail2ban bans on (checked with Debian's fail2ban-regex and the README's
filter), and a threshold of 1e11 typed into the Stuck runs box."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import delete, select

from cleanup_core.models import LoginFailure
from tests.browser.conftest import ADMIN, PASSWORD, App
from tests.browser.test_dashboard import open_stuck, rows

pytestmark = pytest.mark.browser

README = Path(__file__).resolve().parents[2] / "README.md"
FAIL2BAN_REGEX = "/usr/bin/fail2ban-regex"


@pytest.fixture
def fresh_login_counts(app: App) -> Iterator[None]:
    """No failed logins before the test, and none left for the next one (every browser here
    comes from 127.0.0.1, which a lockout covers too)."""

    def clear() -> None:
        with app.service.db.write() as conn:
            conn.execute(delete(LoginFailure))

    clear()
    yield
    clear()


def failures_of(app: App, username: str) -> int:
    with app.service.db.read() as conn:
        count = conn.execute(
            select(LoginFailure.failures).where(
                LoginFailure.kind == "account", LoginFailure.name == username
            )
        ).scalar()
    return count or 0


def wait_for(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the dashboard did not record the attempt")
        time.sleep(0.05)


def readme_filter(tmp_path: Path) -> Path:
    """The fail2ban filter exactly as the README gives it."""
    (block,) = [
        b
        for b in re.findall(r"```ini\n(.*?)```", README.read_text(), re.DOTALL)
        if "failregex" in b
    ]
    path = tmp_path / "tender-dashboard.conf"
    path.write_text(block)
    return path


def test_guessing_is_throttled_then_locked_and_fail2ban_sees_every_failure(
    page: Page, app: App, fleet: dict, fresh_login_counts: None, screenshot_dir: Path, tmp_path
) -> None:
    page.goto("/login")
    for attempt in range(1, 4):
        page.fill("#username", ADMIN)
        page.fill("#password", f"guess number {attempt}")
        page.click("#login-submit")
        wait_for(lambda attempt=attempt: failures_of(app, ADMIN) == attempt)
        expect(page.locator("#login-error")).to_have_text("Wrong user name or password.")

    page.fill("#password", PASSWORD)  # the right password, during the lockout
    page.click("#login-submit")

    expect(page.locator("#login-error")).to_have_text(
        re.compile(r"^Too many failed logins; try again in (900|899) s\.$")
    )
    expect(page).to_have_url(re.compile(r"/login"))
    assert not {c["name"]: c["value"] for c in page.context.cookies()}.get("cleanup_session")
    page.screenshot(path=screenshot_dir / "login-throttled.png")

    # The app's own log: a line per failed attempt, with the browser's address, in the format
    # the README's filter matches - fail2ban-regex finds every one of them.
    lines = app.log_path.read_text(errors="replace").splitlines()
    prefix = (
        f"WARNING cleanup_core.accounts: failed dashboard login from 127.0.0.1 for user '{ADMIN}'"
    )
    mine = [line for line in lines if prefix in line]
    assert [line.split(": ", 1)[1].split(": ", 1)[1] for line in mine[-4:]] == [
        "wrong password",
        "wrong password",
        "wrong password",
        "refused, too many failed logins (try again in 900 s)",
    ]
    assert any(
        f"dashboard login lockout from 127.0.0.1 for user '{ADMIN}': the account is locked "
        "for 900 s after 3 failed logins" in line
        for line in lines
    )
    failed = [line for line in lines if "failed dashboard login from" in line]
    log = tmp_path / "dashboard.log"
    log.write_text("\n".join(lines) + "\n")
    found = subprocess.run(
        [FAIL2BAN_REGEX, "--out", "ip", str(log), str(readme_filter(tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert found.stdout.split() == ["127.0.0.1"] * len(failed)


def test_a_threshold_of_1e11_is_refused_in_the_box_and_the_panel_keeps_working(
    admin_page: Page, app: App, fleet: dict, screenshot_dir: Path
) -> None:
    page = admin_page
    open_stuck(page)
    page.click("#preset-36")
    expect(page.locator(f"#dead-row-{fleet['dead']}")).to_have_count(0)  # 30 h: young at 36 h

    page.fill("#threshold-input", "1e11")

    error = page.locator("#threshold-error")
    expect(error).to_contain_text("The threshold must be a positive, finite number of hours")
    expect(error).to_contain_text("at most 87600, got '1e11'; still using 36 h.")
    expect(page.locator("#preset-36")).to_have_class(re.compile(r"\brt-variant-solid\b"))
    expect(rows(page, "dead")).to_have_count(1)  # still judged at 36 h
    page.screenshot(path=screenshot_dir / "stuck-threshold-error.png", full_page=True)
    page.click("#refresh")
    expect(rows(page, "dead")).to_have_count(1)
    page.click("#clean-stuck-runs")
    expect(rows(page, "preview")).to_have_count(1)
    page.click("#clean-cancel")

    page.reload()

    expect(page.locator("#page-title")).to_have_text("Stuck runs")
    expect(page.locator("#threshold-input")).to_have_value("36")
    expect(page.locator("#threshold-error")).to_have_count(0)
    expect(rows(page, "dead")).to_have_count(1)
    expect(page.get_by_text("An error occurred")).to_have_count(0)
    page.click("#preset-24")
    expect(rows(page, "dead")).to_have_count(2)
