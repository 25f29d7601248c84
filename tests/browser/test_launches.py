"""Launches in a real browser: Resume pressed twice while its scraper is still starting is
refused with a message, and the run page and the Portals page show the launch."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ADMIN, SLOW_PORTAL, App, LiveRuns

pytestmark = pytest.mark.browser

ACTOR = f"dashboard:{ADMIN}"


def toast(page: Page, text: str) -> None:
    expect(page.locator("[data-sonner-toast]").filter(has_text=text)).to_be_visible()


def test_a_second_resume_while_the_first_starts_is_refused_and_the_launch_is_shown(
    admin_page: Page, app: App, fleet: dict, runs: LiveRuns
) -> None:
    page = admin_page
    run_id = runs.add(SLOW_PORTAL, age_hours=40, extracted_total_tenders=3)
    try:
        page.goto("/portals")
        button = page.locator(f"#portal-resume-{run_id}")
        button.click()
        toast(page, f"to resume run {run_id} of '{SLOW_PORTAL}'")
        button.click()
        toast(page, f"Run {run_id} is already being resumed by {ACTOR} since ")
        toast(page, "wait until it heartbeats or 10 min pass")
        (launch,) = app.service.list_launches(run_id=run_id)
        assert (launch.actor, launch.state, launch.exit_code) == (ACTOR, "starting", None)
        assert [e.actor for e in app.events(run_id, "resume_launched")] == [ACTOR]
        expect(page.locator(f"#portal-launch-state-{run_id}")).to_have_text("starting")
        expect(page.locator(f"#portal-launch-{run_id}")).to_contain_text(
            f"(resume run {run_id}) by {ACTOR}"
        )

        # The run page: state, who, the process, and the log's last lines (the scraper's first
        # line may take a moment to reach the log).
        deadline = time.monotonic() + 20
        while True:
            page.goto(f"/run?id={run_id}")
            expect(page.locator("#launch-state")).to_have_text("starting")
            log = page.locator("#launch-log")
            if log.count() or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        expect(log).to_contain_text("scraping page 1")
        expect(page.locator("#launch-actor")).to_have_text(ACTOR)
        expect(page.locator("#launch-pid")).to_have_text(str(launch.pid))
        expect(page.locator("#launch-what")).to_have_text(f"resume run {run_id}")
    finally:
        for started in app.service.list_launches(limit=100):
            if started.pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(started.pid, signal.SIGKILL)
