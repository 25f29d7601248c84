"""N people on the dashboard at once while one admin cleans the dead runs: the time from a
click in the navigation until that page's data reaches the browser, p50 and p95, for N = 1, 10
and 30 sessions (browser contexts in one Chromium, each its own Reflex client).

Each session goes round Runs -> Stuck runs -> History -> Overview by clicking the navigation,
once to warm up; then one admin clicks Confirm in Clean Stuck Runs (every dead run: 4,000 of
10,000 running on the default fleet) and at that moment every session goes on clicking round
until the clean-up has returned. A navigation counts from the click until the websocket delivers
the page's data (the update carrying the page state's rows or counts; a page re-shown from the
tab's state before that does not count). Navigations that began while the clean-up ran are
reported on their own ("during clean-up"). Between two N the cleaned runs are put back by SQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Page, WebSocket, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from cleanup_core import CleanupService, Settings
from cleanup_core.accounts import Accounts
from cleanup_core.db import Database
from tests.helpers.dashboard_server import CHROMIUM, CHROMIUM_ARGS, app_env, serve

USER, PASSWORD = "bench", "benchmark password"
COOKIE = "cleanup_session"
# The navigation link, and what the update with that page's data carries: the page state's name
# and one of the vars its load sets.
ROUND = (
    ("#nav-runs", "runs____runs_state", "rows"),
    ("#nav-stuck", "stuck____stuck_state", "dead_total"),
    ("#nav-history", "history____history_state", "events"),
    ("#nav-overview", "overview____overview_state", "running"),
)


@dataclass
class Session:
    page: Page
    frames: list[tuple[float, str]] = field(default_factory=list)  # (when, text) received
    times: list[tuple[float, float]] = field(default_factory=list)  # (began, seconds)
    errors: list[str] = field(default_factory=list)  # navigations that timed out

    def listen(self, socket: WebSocket) -> None:
        socket.on(
            "framereceived", lambda frame: self.frames.append((time.perf_counter(), str(frame)))
        )

    async def data_after(self, began: float, state: str, var: str, timeout: float = 60) -> float:
        """When the first update carrying ``state``'s ``var`` after ``began`` arrived."""
        deadline = time.perf_counter() + timeout
        seen = 0
        while time.perf_counter() < deadline:
            for when, text in self.frames[seen:]:
                if when >= began and state in text and f'"{var}_rx_state_"' in text:
                    return when
            seen = len(self.frames)
            await asyncio.sleep(0.005)
        raise TimeoutError(f"no {state}.{var} within {timeout:g} s")


async def browse(
    session: Session, ready: asyncio.Queue[None], cleaning: asyncio.Event, done: asyncio.Event
) -> None:
    """Go round the pages: a warm-up round, then from the moment the clean-up starts until it
    has returned (everyone clicks at once when it starts: the worst moment)."""
    step = 0

    async def navigate() -> None:
        nonlocal step
        link, state, var = ROUND[step % len(ROUND)]
        step += 1
        began = time.perf_counter()
        try:
            await session.page.click(link)
            arrived = await session.data_after(began, state, var)
        except (TimeoutError, PlaywrightTimeout) as exc:  # counted, and the round goes on
            session.errors.append(str(exc).splitlines()[0])
            return
        session.times.append((began, arrived - began))

    try:
        for _ in range(len(ROUND)):
            await navigate()
    finally:
        ready.put_nowait(None)
    await cleaning.wait()
    while not done.is_set():
        await navigate()


def quantiles(seconds: list[float]) -> dict[str, Any]:
    if not seconds:
        return {"navigations": 0}
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "navigations": len(ordered),
        "p50_s": round(statistics.median(ordered), 3),
        "p95_s": round(p95, 3),
        "max_s": round(ordered[-1], 3),
    }


async def one_round(url: str, token_for: Any, sessions: int, dead: int) -> dict[str, Any]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        async def open_session(path: str) -> Session:
            context = await browser.new_context(viewport={"width": 1400, "height": 900})
            await context.add_cookies(
                [{"name": COOKIE, "value": token_for(), "url": url, "sameSite": "Strict"}]
            )
            page = await context.new_page()
            session = Session(page)
            page.on("websocket", session.listen)
            await page.goto(url + path)
            return session

        admin = await open_session("/stuck")
        await admin.page.click("#refresh")  # a scan begun now: every dead run is back
        await admin.page.wait_for_function(
            "dead => document.querySelector('#dead-table-count')?.textContent === dead",
            arg=str(dead),
            timeout=120_000,
        )
        people = [await open_session("/") for _ in range(sessions)]
        for person in people:
            await person.page.wait_for_selector("#count-running", timeout=120_000)
        await admin.page.click("#clean-stuck-runs")
        await admin.page.wait_for_selector("#clean-confirm:not([disabled])", timeout=120_000)

        cleaning, done = asyncio.Event(), asyncio.Event()
        ready: asyncio.Queue[None] = asyncio.Queue()
        browsing = [asyncio.ensure_future(browse(p, ready, cleaning, done)) for p in people]
        for _ in people:  # everyone has been round once
            await ready.get()
        started = time.perf_counter()
        cleaning.set()
        await admin.page.click("#clean-confirm")
        await admin.page.get_by_text(f"Cleaned {dead}/{dead} dead runs").first.wait_for(
            timeout=300_000
        )
        ended = time.perf_counter()
        done.set()
        await asyncio.gather(*browsing)
        await browser.close()

    every = [seconds for p in people for _, seconds in p.times]
    during = [seconds for p in people for began, seconds in p.times if started <= began < ended]
    return {
        "sessions": sessions,
        "cleanup_s": round(ended - started, 2),
        "during_cleanup": quantiles(during),
        "timed_out": sum(len(p.errors) for p in people),
        "all": quantiles(every),
    }


def put_back(path: Path, ids: list[int]) -> None:
    """The cleaned runs running again, their clean-up events gone (for the next round)."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.executemany(
                "UPDATE runs SET status = 'running', completed_at = NULL WHERE id = ?",
                [(i,) for i in ids],
            )
            conn.execute("DELETE FROM run_events WHERE action = 'cleanup'")
    finally:
        conn.close()


def measure(settings: Settings, workdir: Path, *, sessions: list[int]) -> dict[str, Any]:
    """Every N in ``sessions`` against one running app; the figures per N and the targets."""
    service = CleanupService(settings, database=Database(settings))
    dead_ids = [v.run_id for v in service.scan().dead]
    env = app_env(
        {
            "CLEANUP_DATABASE_URL": settings.database_url,
            "CLEANUP_CHECKPOINT_DIR": str(settings.checkpoint_dir),
            "CLEANUP_TIMEZONE": "UTC",
        }
    )
    subprocess.run(
        [sys.executable, "-m", "cleanup_core", "admin", "create", USER, "--password-stdin"],
        input=PASSWORD,
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    accounts = Accounts(service.db)

    def token_for() -> str:
        login = accounts.log_in(USER, PASSWORD)
        assert login is not None
        return login.token

    path = Path(settings.database_url.removeprefix("sqlite:///"))
    rounds = []
    try:
        with serve(env, workdir / "reflex-live.log") as server:
            for n in sessions:
                print(f"   {n} session(s) navigating during a clean-up of {len(dead_ids):,} ...")
                rounds.append(asyncio.run(one_round(server.url, token_for, n, len(dead_ids))))
                print(f"   {rounds[-1]}", flush=True)
                put_back(path, dead_ids)
    finally:
        service.db.dispose()
    return {"dead": len(dead_ids), "rounds": rounds, **targets(rounds)}


def targets(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """p95 during the clean-up at the most sessions: at most 1 s, and at most twice one user's."""
    measured = [r for r in rounds if r["during_cleanup"].get("navigations")]
    if not measured:
        return {}
    single = min(measured, key=lambda r: r["sessions"])
    most = max(measured, key=lambda r: r["sessions"])
    one, many = single["during_cleanup"]["p95_s"], most["during_cleanup"]["p95_s"]
    return {
        "p95_single_s": one,
        "p95_most_s": many,
        "most_sessions": most["sessions"],
        "ratio": round(many / one, 2) if one else None,
        "meets_1s": many <= 1.0,
        "meets_2x": bool(one) and many <= 2 * one,
    }


def print_section(section: dict[str, Any]) -> None:
    print(f"live: {section['size']:,} runs, {section['dead']:,} dead cleaned per round")
    print("  sessions  clean-up s  navigations  p50 s  p95 s  (all navigations: p50 / p95)")
    for r in section["rounds"]:
        d, a = r["during_cleanup"], r["all"]
        print(
            f"  {r['sessions']:>8}  {r['cleanup_s']:>10}  {d.get('navigations', 0):>11}  "
            f"{d.get('p50_s', '-'):>5}  {d.get('p95_s', '-'):>5}  "
            f"({a.get('p50_s', '-')} / {a.get('p95_s', '-')})"
        )
    if "p95_most_s" in section:
        print(
            f"  p95 at {section['most_sessions']} sessions {section['p95_most_s']} s vs "
            f"{section['p95_single_s']} s for one: x{section['ratio']} "
            f"(targets: <= 1 s {'met' if section['meets_1s'] else 'MISSED'}, "
            f"<= 2x {'met' if section['meets_2x'] else 'MISSED'})"
        )
