"""The stuck-runs panel in a real browser: navigation to both tables rendered, and the Clean
Stuck Runs round trip (button, preview, confirm, result), against a benchmark database."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.helpers.dashboard_server import CHROMIUM, CHROMIUM_ARGS, app_env, serve

USER, PASSWORD = "bench", "benchmark password"


def measure(cleanup_env: dict[str, str], workdir: Path, *, dead: int, resumable: int) -> dict:
    """Seconds from navigation until both tables show their counts, and from the Clean Stuck
    Runs click until the result toast (the clean-up changes the database: use a copy)."""
    env = app_env(cleanup_env)
    subprocess.run(
        [sys.executable, "-m", "cleanup_core", "admin", "create", USER, "--password-stdin"],
        input=PASSWORD,
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    with serve(env, workdir / "reflex.log") as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{server.url}/login")
        page.fill("#username", USER)
        page.fill("#password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_url(f"{server.url}/")
        page.goto(f"{server.url}/runs")  # warm the app; then time the panel from a cold page
        page.wait_for_selector("#runs-table")

        started = time.perf_counter()
        page.goto(f"{server.url}/stuck")
        page.wait_for_function(
            "([dead, resumable]) => "
            "document.querySelector('#dead-table-count')?.textContent === dead && "
            "document.querySelector('#resumable-table-count')?.textContent === resumable",
            arg=[str(dead), str(resumable)],
            timeout=60_000,
        )
        panel = time.perf_counter() - started

        started = time.perf_counter()
        page.click("#clean-stuck-runs")
        page.wait_for_selector("#clean-confirm:not([disabled])", timeout=60_000)
        page.click("#clean-confirm")
        page.get_by_text(f"Cleaned {dead}/{dead} dead runs").first.wait_for(timeout=60_000)
        round_trip = time.perf_counter() - started
        browser.close()
    return {"panel_rendered_s": round(panel, 2), "clean_round_trip_s": round(round_trip, 2)}
