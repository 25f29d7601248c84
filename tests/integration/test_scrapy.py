"""The Scrapy integration as operators run it: real `scrapy crawl` processes of the example project
against the bundled portal server on loopback, on a real SQLite file and on PostgreSQL.

The server can hold result pages back (``site.hold_after(n)``): a crawl then stops making
progress at a known page, so a kill or a signal lands mid-crawl without any fixed sleep."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from cleanup_core import COMPLETED, RUNNING, Action, CleanupService
from cleanup_core.checkpoints import read_checkpoint
from cleanup_core.demo import synthetic_portal

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "examples" / "scrapy_portal"
AS_OF = date(2026, 11, 27)
PORTAL = "Goa eProcurement"
TENDER_FIELDS = (
    "tender_id",
    "title",
    "organisation",
    "closing_date",
    "reference_number",
    "category",
    "value_inr",
    "published_date",
)
HEARTBEAT = {
    "CLEANUP_HEARTBEAT_INTERVAL_SECONDS": "1",
    "CLEANUP_HEARTBEAT_TIMEOUT_MINUTES": "0.05",  # 3 s
}


def load_portal_server():
    spec = importlib.util.spec_from_file_location("portal_server", PROJECT / "portal_server.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


portal_server = load_portal_server()


class Site:
    """The bundled portal server in a thread, able to hold result pages back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._served = 0
        self._limit: int | None = None
        self._released = threading.Event()
        site = self

        class HoldingHandler(portal_server.PortalHandler):
            def do_GET(self) -> None:
                if urlsplit(self.path).path == "/tenders":
                    site._wait_for_turn()
                super().do_GET()

        self.server = portal_server.make_server("127.0.0.1", 0, HoldingHandler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def hold_after(self, pages: int) -> None:
        """Serve ``pages`` more result pages, then hold every later one until ``release``."""
        with self._lock:
            self._limit = self._served + pages
            self._released.clear()

    def release(self) -> None:
        with self._lock:
            self._limit = None
        self._released.set()

    def _wait_for_turn(self) -> None:
        with self._lock:
            self._served += 1
            held = self._limit is not None and self._served > self._limit
        if held:
            self._released.wait(60)

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    running = Site()
    yield running
    running.close()


class Crawl:
    """One `scrapy crawl gepnic` process, its output in a file."""

    def __init__(self, settings, site: Site, log_path: Path, **env: str):
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CLEANUP_")}
        environment |= {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "CLEANUP_DATABASE_URL": settings.database_url,
            "CLEANUP_CHECKPOINT_DIR": str(settings.checkpoint_dir),
            "CLEANUP_TIMEZONE": "Asia/Kolkata",
            **HEARTBEAT,
            **env,
        }
        self.log_path = log_path
        argv = [
            sys.executable, "-m", "scrapy", "crawl", "gepnic",
            "-a", f"portal_name={PORTAL}", "-a", f"as_of={AS_OF}",
            "-s", f"PORTAL_URL={site.url}", "-s", "TELNETCONSOLE_ENABLED=False",
        ]  # fmt: skip
        with log_path.open("w") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=PROJECT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def output(self) -> str:
        return self.log_path.read_text()

    def wait(self, timeout: float = 90) -> str:
        self.process.wait(timeout)
        return self.output


def crawl(settings, site: Site, tmp_path: Path, name: str, **env: str) -> Crawl:
    return Crawl(settings, site, tmp_path / f"{name}.log", **env)


def wait_for(condition, *, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


def query(service, sql, **params):
    with service.db.read() as conn:
        return conn.execute(text(sql), params).all()


def stored_count(service) -> int:
    return query(service, "SELECT count(*) FROM tenders")[0][0]


def tender_rows(service):
    """Every stored tender as a comparable tuple, sorted; a tender stored twice shows twice."""
    return sorted(
        tuple(row) for row in query(service, f"SELECT {', '.join(TENDER_FIELDS)} FROM tenders")
    )


def expected_rows():
    return sorted(
        tuple(t[f] for f in TENDER_FIELDS) for t in synthetic_portal(PORTAL, as_of=AS_OF).tenders()
    )


def runs_of(service):
    return query(
        service,
        "SELECT id, status, attempt, extracted_total_tenders, skipped_existing_total, released_at "
        "FROM runs ORDER BY id",
    )


def actions(service, run_id):
    return [e.action for e in reversed(service.history(run_id=run_id, limit=100).events)]


def test_an_uninterrupted_crawl_completes_with_exactly_the_portal_tenders(
    service, settings, site, tmp_path
):
    output = crawl(settings, site, tmp_path, "crawl").wait()
    assert "Spider closed (finished)" in output, output
    ((run_id, status, attempt, extracted, skipped, _),) = runs_of(service)
    assert (status, attempt, extracted, skipped) == (COMPLETED, 1, 120, 0)
    assert tender_rows(service) == expected_rows()
    assert {r[0] for r in query(service, "SELECT DISTINCT run_id FROM tenders")} == {run_id}
    assert actions(service, run_id) == ["start", "complete"]
    saved = read_checkpoint(settings.checkpoint_dir, PORTAL, max_bytes=10**7)
    assert saved.info.run_id == run_id
    assert saved.cursor["page"] == 3 and saved.cursor["as_of"] == AS_OF.isoformat()
    assert (
        saved.cursor["organisation"]
        == synthetic_portal(PORTAL, as_of=AS_OF).organisations[-1].chain
    )


def test_a_crawl_killed_with_sigkill_is_resumed_to_exactly_the_uninterrupted_tenders(
    service, settings, site, tmp_path
):
    site.hold_after(5)  # organisation 1's three pages, organisation 2's first two
    first = crawl(settings, site, tmp_path, "killed")
    try:
        wait_for(lambda: stored_count(service) == 50, what="five result pages stored")
    finally:
        first.process.kill()  # SIGKILL: nothing is released, flushed or ended
        first.wait()
    ((run_id, status, attempt, extracted, _, _),) = runs_of(service)
    assert (status, attempt, extracted) == (RUNNING, 1, 50)

    quick = CleanupService(
        settings.with_overrides(heartbeat_timeout_minutes=0.05), database=service.db
    )
    check = wait_for(
        lambda: (c := quick.check_portal(PORTAL)).action is Action.RESUME and c,
        what="the dead crawl's heartbeat to time out",
    )
    assert check.run_id == run_id

    site.release()
    output = crawl(settings, site, tmp_path, "resumed").wait()
    assert "Spider closed (finished)" in output, output
    assert f"resuming run {run_id} (attempt 2); 50 tenders seen already" in output
    assert "resuming at organisation 2, page 2" in output
    ((same_run, status, attempt, extracted, skipped, _),) = runs_of(service)
    assert (same_run, status, attempt, extracted, skipped) == (run_id, COMPLETED, 2, 120, 0)
    assert tender_rows(service) == expected_rows(), "none missing, none twice"
    assert actions(service, run_id) == ["start", "resume", "complete"]


def test_sigterm_releases_the_run_and_the_next_crawl_resumes_it(service, settings, site, tmp_path):
    site.hold_after(5)
    first = crawl(settings, site, tmp_path, "terminated")
    wait_for(lambda: stored_count(service) == 50, what="five result pages stored")
    first.process.send_signal(signal.SIGTERM)
    wait_for(lambda: "Closing spider (shutdown)" in first.output, what="Scrapy's shutdown")
    site.release()  # the page in flight is finished, nothing new is fetched
    output = first.wait()
    assert "Spider closed (shutdown)" in output, output
    ((run_id, status, attempt, extracted, _, released_at),) = runs_of(service)
    assert (status, attempt, extracted, released_at is not None) == (RUNNING, 1, 60, True)
    release = service.history(run_id=run_id, limit=1).events[0]
    assert (release.action, release.details["reason"]) == ("release", "shutdown")
    saved = read_checkpoint(settings.checkpoint_dir, PORTAL, max_bytes=10**7)
    assert (saved.info.run_id, saved.cursor["page"]) == (run_id, 3)
    # Released: resumable now, although the heartbeat timeout has not passed.
    check = service.check_portal(PORTAL)
    assert (check.action, check.run_id) == (Action.RESUME, run_id)

    output = crawl(settings, site, tmp_path, "resumed").wait()
    assert "Spider closed (finished)" in output, output
    ((same_run, status, attempt, extracted, _, _),) = runs_of(service)
    assert (same_run, status, attempt, extracted) == (run_id, COMPLETED, 2, 120)
    assert tender_rows(service) == expected_rows()
    assert actions(service, run_id) == ["start", "release", "resume", "complete"]


def test_two_crawls_of_one_portal_started_together_one_runs_the_other_is_busy(
    service, settings, site, tmp_path
):
    service.scan()  # the schema exists before the two crawls race for the portal
    site.hold_after(0)  # whoever claims the portal stays at its first result page
    crawls = [crawl(settings, site, tmp_path, name) for name in ("a", "b")]
    loser = wait_for(
        lambda: next((c for c in crawls if c.process.poll() is not None), None),
        what="one crawl to give up",
    )
    winner = next(c for c in crawls if c is not loser)
    output = loser.output
    assert "Spider closed (portal_busy)" in output, output
    assert f"Portal {PORTAL!r} is busy: run " in output
    ((run_id, status, *_),) = runs_of(service)
    assert status == RUNNING
    assert actions(service, run_id) == ["start"], "the busy crawl wrote nothing"
    assert winner.process.poll() is None

    site.release()
    assert "Spider closed (finished)" in winner.wait()
    ((_, status, attempt, extracted, *_),) = runs_of(service)
    assert (status, attempt, extracted) == (COMPLETED, 1, 120)
    assert actions(service, run_id) == ["start", "complete"]
