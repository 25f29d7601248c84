"""The real dashboard in Debian's Chromium: `reflex run --env prod` on a free port, against a
throw-away SQLite file that the tests seed and inspect through the core service.

Run these on their own (pytest-playwright's sync API must not share a process with asyncio
tests): ``python -m pytest tests/browser``. The app reads the database live, so each test
reseeds it (``fleet``) and gets a fresh browser context (a fresh Reflex client token).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import delete, func, select

from cleanup_core import CleanupService, Settings
from cleanup_core.accounts import Accounts
from cleanup_core.db import Database
from cleanup_core.models import (
    DashboardSession,
    DeletedRun,
    DemoRun,
    Launch,
    Run,
    RunCheckpoint,
    RunEvent,
    Tender,
)
from cleanup_core.service import AuditEvent
from tests.conftest import Runs
from tests.helpers.dashboard_server import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    ServerError,
    app_env,
    log_problems,
    serve,
)
from tests.helpers.live_fleet import hours_ago, seed_live_fleet

RECORD_ARGV = ROOT / "tests" / "helpers" / "record_argv.py"
# A portal whose resume_command keeps running (a scraper that has not heartbeated yet), so its
# launch stays "starting" (tests/browser/test_launches.py).
SLOW_PORTAL = "Slow Portal"
SLOW_COMMAND = "{python} -c " + shlex.quote(
    "import time; print('scraping page 1', flush=True); time.sleep(120)"
)
ADMIN, VIEWER = "alice", "victor"
PASSWORD = "browser test password 1"
SESSION_COOKIE = "cleanup_session"
WIDE = {"width": 1400, "height": 900}


@dataclass
class App:
    """The running dashboard and the database behind it."""

    url: str
    service: CleanupService
    accounts: Accounts
    checkpoint_dir: Path
    launch_record: Path
    log_path: Path
    checkout_before: str  # ``git status`` of the project before the app started ...
    checkout_started: str  # ... and once it answered

    def events(self, run_id: int | None = None, action: str | None = None) -> list[AuditEvent]:
        found = self.service.history(run_id=run_id, limit=1000).events
        return [e for e in found if action is None or e.action == action]

    def status(self, run_id: int) -> str | None:
        return self.service.run_status(run_id)

    def sessions(self) -> int:
        with self.service.db.read() as conn:
            return conn.execute(select(func.count()).select_from(DashboardSession)).scalar_one()

    def launched(self, timeout: float = 20.0) -> list[str]:
        """The argv the launched test command recorded (it runs in the background)."""
        deadline = time.monotonic() + timeout
        while not self.launch_record.exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"no command was launched (no {self.launch_record})")
            time.sleep(0.05)
        argv = json.loads(self.launch_record.read_text())["argv"]
        self.launch_record.unlink()
        return argv


def checkout_status() -> str:
    """What ``git status`` says about the project's files, untracked ones included."""
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def _cli(env: dict[str, str], *args: str, stdin: str = "") -> None:
    subprocess.run(
        [sys.executable, "-m", "cleanup_core", *args],
        input=stdin,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )


# The portals whose scrapers the dashboard can launch (each has its own resume_command and
# start_command in the config file); any other portal has none, so its launch buttons are
# disabled with a note (tests/browser/test_shift.py).
LAUNCHABLE = (
    "Assam Tenders",
    "CPPP Central",
    "MP Tenders",
    "Kerala eTenders",
    "Gujarat Tenders",
    "West Bengal eTender",
    "Tamil Nadu Tenders",
)
NOT_LAUNCHABLE = "Odisha Tenders"


def launch_config(recorder: str) -> str:
    """A config file giving each of ``LAUNCHABLE`` commands that record what they were run with."""
    lines = []
    for portal in LAUNCHABLE:
        lines += [
            f"[portals.{json.dumps(portal)}]",
            f"resume_command = {json.dumps(f'{recorder} resume {{portal}} {{run_id}}')}",
            f"start_command = {json.dumps(f'{recorder} start {{portal}}')}",
            "",
        ]
    return "\n".join(lines)


# Modules that start an app of their own. `reflex run` exports the frontend into the checkout's
# one .web folder with its backend's port built in, so after such a start the shared app's pages
# talk to that other (soon stopped) backend: "Cannot connect to server". They run after every
# test of the shared app.
OWN_APP_MODULES = frozenset({"test_demo_loop.py", "test_scaleout.py"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name in OWN_APP_MODULES)  # stable: order kept within


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """Accounts made with the CLI, then the app started the way an operator starts it."""
    work = tmp_path_factory.mktemp("dashboard")
    checkpoint_dir = work / "checkpoints"
    checkpoint_dir.mkdir()
    record = work / "launched.json"
    recorder = f"{{python}} {shlex.quote(str(RECORD_ARGV))} {shlex.quote(str(record))}"
    config = work / "cleanup.toml"
    config.write_text(
        launch_config(recorder)
        + f'[portals."{SLOW_PORTAL}"]\nresume_command = {json.dumps(SLOW_COMMAND)}\n'
    )
    cleanup_env = {
        "CLEANUP_DATABASE_URL": f"sqlite:///{work / 'dashboard.db'}",
        "CLEANUP_CHECKPOINT_DIR": str(checkpoint_dir),
        "CLEANUP_TIMEZONE": "Asia/Kolkata",
        "CLEANUP_LOG_DIR": str(work / "launch-logs"),
        "CLEANUP_CONFIG": str(config),
        # The third failed login in a row locks (test_abuse.py); a test that fails once and
        # then logs in is unaffected.
        "CLEANUP_LOGIN_LOCKOUT_AFTER": "3",
        # Each test seeds its own fleet, which the app must show at once (not a scan kept from
        # the test before); test_live.py shows pages following changes made elsewhere.
        "CLEANUP_DASHBOARD_SCAN_SECONDS": "0",
    }
    env = app_env(cleanup_env)
    _cli(env, "init")
    _cli(env, "admin", "create", ADMIN, "--password-stdin", stdin=PASSWORD + "\n")
    _cli(env, "admin", "create", VIEWER, "--role", "viewer", "--password-stdin", stdin=PASSWORD)
    settings = Settings.load(cleanup_env)
    service = CleanupService(settings, database=Database(settings))

    log_path = work / "reflex.log"
    before = checkout_status()
    try:
        with serve(env, log_path) as server:
            yield App(
                server.url,
                service,
                Accounts(service.db),
                checkpoint_dir,
                record,
                log_path,
                checkout_before=before,
                checkout_started=checkout_status(),
            )
    except ServerError as exc:
        pytest.fail(str(exc))
    finally:
        service.db.dispose()
    log_text = log_path.read_text(errors="replace")
    problems = log_problems(log_text)
    assert not problems, f"the app logged errors ({log_path}):\n" + "\n".join(problems)
    assert PASSWORD not in log_text, "a password reached the app's log"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def base_url(app: App) -> str:
    """The app under test (this also replaces pytest-playwright's own ``base_url`` fixture,
    which pytest 9 deprecates)."""
    return app.url


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": WIDE}


class LiveRuns(Runs):
    """Run rows written as a scraper would, aged against the real clock."""

    def add(self, portal_name: str = "Assam Tenders", *, age_hours: float = 48, **values: Any):
        values.setdefault("started_at", hours_ago(age_hours))
        return super().add(portal_name, **values)


@pytest.fixture
def runs(app: App) -> LiveRuns:
    return LiveRuns(app.service)


@pytest.fixture
def fleet(app: App, runs: LiveRuns) -> dict[str, int]:
    """A fresh fleet for each test: one running run in each state, plus finished runs."""
    with app.service.db.write() as conn:
        for table in (RunEvent, Tender, Run, DeletedRun, DemoRun, Launch, RunCheckpoint):
            conn.execute(delete(table))
    for path in app.checkpoint_dir.iterdir():
        path.unlink()
    app.launch_record.unlink(missing_ok=True)
    return seed_live_fleet(runs.add, app.checkpoint_dir)


def _signed_in(browser: Browser, app: App, username: str) -> Iterator[Page]:
    """A fresh browser context holding a real session cookie, as after logging in."""
    login = app.accounts.log_in(username, PASSWORD)
    assert login is not None
    context = browser.new_context(base_url=app.url, viewport=WIDE)
    context.add_cookies(
        [{"name": SESSION_COOKIE, "value": login.token, "url": app.url, "sameSite": "Strict"}]
    )
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def admin_page(browser: Browser, app: App, fleet: dict[str, int]) -> Iterator[Page]:
    yield from _signed_in(browser, app, ADMIN)


@pytest.fixture
def viewer_page(browser: Browser, app: App, fleet: dict[str, int]) -> Iterator[Page]:
    yield from _signed_in(browser, app, VIEWER)


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where page screenshots go: $SCREENSHOT_DIR, else a temporary folder."""
    chosen = os.environ.get("SCREENSHOT_DIR")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
