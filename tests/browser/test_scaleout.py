"""The scale-out deployment: PostgreSQL, Reflex's Redis state manager and two backend workers,
each running the monitor as a lifespan task. The app works across workers, and the monitor runs
each cycle once and notifies once, not once per worker."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from cleanup_core import CleanupService, Settings
from cleanup_core.db import Database
from cleanup_core.models import Run
from tests.conftest import PG_ADMIN_URL
from tests.helpers.dashboard_server import app_env, free_port, log_problems, serve

INTERVAL_MINUTES = 0.05  # 3 s, so a few cycles pass in a short test
USER, PASSWORD = "scale", "scale-out password 1"


class Webhook:
    """apprise's JSON webhook, received on loopback."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("scaleout")
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"cleanup_scaleout_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    hook = Webhook()
    cleanup_env = {
        "CLEANUP_DATABASE_URL": url,
        "CLEANUP_CHECKPOINT_DIR": str(work / "checkpoints"),
        "CLEANUP_MONITOR_IN_DASHBOARD": "true",
        "CLEANUP_MONITOR_INTERVAL_MINUTES": str(INTERVAL_MINUTES),
        "CLEANUP_NOTIFY_URLS": hook.url,
    }
    settings = Settings.load(cleanup_env)
    service = CleanupService(settings, database=Database(settings))
    service.init_database()  # a new database, set up as `python -m cleanup_core init` does
    with service.db.write() as conn:
        dead = conn.execute(
            insert(Run.__table__)
            .values(
                portal_name="Assam Tenders",
                status="running",
                started_at=datetime.now(UTC) - timedelta(hours=30),
            )
            .returning(Run.id)
        ).scalar_one()
    env = app_env(cleanup_env, REDIS_URL="redis://127.0.0.1:6379", GRANIAN_WORKERS="2")
    subprocess.run(
        ["python", "-m", "cleanup_core", "admin", "create", USER, "--password-stdin"],
        input=PASSWORD,
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    try:
        with serve(env, work / "reflex.log") as server:
            yield server, service, hook, dead
        problems = log_problems(server.log())
        assert not problems, "\n".join(problems)
    finally:
        hook.server.shutdown()
        hook.server.server_close()
        service.db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def backend_workers(pid: int) -> int:
    """Processes in the server's process group that serve the backend."""
    listing = subprocess.run(
        ["ps", "-o", "pid=,args=", "-g", str(pid)], capture_output=True, text=True, check=True
    ).stdout
    return sum(1 for line in listing.splitlines() if "python" in line or "granian" in line)


def test_two_workers_share_state_through_redis(scaled, browser: Browser):
    server, _, _, dead = scaled
    assert backend_workers(server.pid) >= 3, "the reflex process and two workers"
    page = browser.new_page()
    page.goto(f"{server.url}/login")
    page.fill("#username", USER)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{server.url}/")
    for _ in range(3):  # several round trips, whichever worker serves them
        page.goto(f"{server.url}/stuck")
        expect(page.locator(f"#dead-row-{dead}")).to_be_visible()
        expect(page.locator("#current-user")).to_have_text(USER)
    page.close()


def test_each_cycle_runs_once_and_notifies_once(scaled):
    server, service, hook, dead = scaled
    time.sleep(INTERVAL_MINUTES * 60 * 4)
    with service.db.read() as conn:
        cycles = conn.execute(
            text("SELECT started_at, holder FROM monitor_cycles ORDER BY id")
        ).all()
    assert len(cycles) >= 3
    gaps = [(b.started_at - a.started_at).total_seconds() for a, b in pairwise(cycles)]
    assert min(gaps) >= INTERVAL_MINUTES * 60 * 0.9, f"two workers ran one cycle: {gaps}"
    assert len(hook.posts) == 1, "one message for the one new dead run, not one per worker"
    assert f"NEW DEAD run {dead}" in hook.posts[0]["message"]
    assert Path(server.log_path).exists()
