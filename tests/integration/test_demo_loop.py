"""The demo closes the loop: `python -m cleanup_core demo` configures the demo scraper's
commands where every entry point finds them, and Resume, Start and "Clean up & start" (through
the service, as the dashboard calls them) start real scraper processes that end their runs with
exactly the tenders an uninterrupted scrape stores.

Real SQLite files and real processes: the demo and the uninterrupted scrape run as commands from
another folder, and the service is built from nothing but CLEANUP_DATABASE_URL, as the dashboard
builds it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from cleanup_core import CleanupService, RunState, Settings, load_demo
from cleanup_core.checkpoints import inspect_checkpoint
from cleanup_core.db import Database
from cleanup_core.demo import DEMO_CONFIG_MARKER, demo_commands

ROOT = Path(__file__).resolve().parents[2]
SCRAPER = ROOT / "examples" / "demo_scraper.py"
ACTOR = "dashboard:alice"
TENDER_COLUMNS = (
    "tender_id, title, organisation, closing_date, reference_number, category, value_inr, "
    "published_date"
)


def clean_env(**cleanup: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEANUP_")}
    env["PYTHONPATH"] = str(ROOT)
    return env | cleanup


def cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cleanup_core", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def tender_rows(service: CleanupService, where: str, **params: object) -> list[tuple]:
    with service.db.read() as conn:
        rows = conn.execute(text(f"SELECT {TENDER_COLUMNS} FROM tenders WHERE {where}"), params)
        return sorted(tuple(row) for row in rows)


def uninterrupted(tmp_path: Path, portal: str, as_of: str) -> list[tuple]:
    """The tenders a scrape of ``portal`` that nothing interrupts stores, on a fresh database."""
    work = tmp_path / f"fresh-{portal.replace(' ', '-')}"
    url = f"sqlite:///{work / 'fresh.db'}"
    done = subprocess.run(
        [sys.executable, str(SCRAPER), "--portal", portal, "--delay", "0", "--as-of", as_of],
        env=clean_env(CLEANUP_DATABASE_URL=url, CLEANUP_CHECKPOINT_DIR=str(work / "cp")),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    settings = Settings.load({}, database_url=url)
    fresh = CleanupService(settings, database=Database(settings))
    try:
        return tender_rows(fresh, "portal_name = :p", p=portal)
    finally:
        fresh.db.dispose()


def follow(service: CleanupService, run_id: int, timeout: float = 120.0) -> set[RunState]:
    """Wait until the run is no longer running; the states it was judged in on the way."""
    seen: set[RunState] = set()
    deadline = time.monotonic() + timeout
    while service.run_status(run_id) == "running":
        verdict = next((v for v in service.scan().verdicts if v.run_id == run_id), None)
        if verdict is not None:
            seen.add(verdict.state)
        if time.monotonic() > deadline:
            pytest.fail(f"run {run_id} still running after {timeout:g} s (states {seen})")
        time.sleep(0.3)
    return seen


@pytest.fixture
def demo(tmp_path):
    """The demo loaded by the command line from a folder that is not the checkout, then a
    service built from the database URL alone (the dashboard's way)."""
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    elsewhere.mkdir()
    url = f"sqlite:///{data / 'tenders.db'}"
    loaded = cli(
        elsewhere, clean_env(), "demo", "--db", url, "--checkpoint-dir", str(tmp_path / "cp")
    )
    assert loaded.returncode == 0, loaded.stderr
    settings = Settings.load({"CLEANUP_DATABASE_URL": url})
    service = CleanupService(settings, database=Database(settings))
    yield service, url, elsewhere
    service.db.dispose()


def test_the_demo_configures_its_commands_beside_its_database(demo, tmp_path):
    service, url, elsewhere = demo
    settings = service.settings
    assert settings.config_file == tmp_path / "data" / "cleanup.toml"
    assert settings.config_file.read_text().splitlines()[0] == DEMO_CONFIG_MARKER
    assert settings.checkpoint_dir == tmp_path / "cp", "the checkpoints are found too"
    for portal in ("MP Tenders", "CPPP Central"):
        assert settings.resume_command_for(portal) == demo_commands()["resume_command"]
        assert settings.start_command_for(portal) == demo_commands()["start_command"]
    crash_test = settings.policy_for("Goa eProcurement")
    assert crash_test.heartbeat_timeout.total_seconds() == 12, "the README's crash test"
    assert settings.policy_for("MP Tenders").heartbeat_timeout.total_seconds() == 30 * 60
    explicit = Settings.load({"CLEANUP_DATABASE_URL": url, "CLEANUP_RESUME_COMMAND": "mine"})
    assert explicit.resume_command_for("MP Tenders") == "mine", "the environment still wins"
    status = cli(elsewhere, clean_env(CLEANUP_DATABASE_URL=url), "status", "--json")
    assert status.returncode == 0, status.stderr
    assert '"resumable_count": 2' in status.stdout


@pytest.mark.parametrize("portal", ["MP Tenders", "Uttar Pradesh eTender"])
def test_resume_finishes_a_resumable_demo_run_with_an_uninterrupted_scrapes_tenders(
    demo, tmp_path, portal
):
    """MP Tenders: the demo scraper's run, killed after five pages; Uttar Pradesh eTender: an
    old scraper's run that left a checkpoint but never counted."""
    service, _, _ = demo
    (run_id,) = [
        v.run_id
        for v in service.scan().verdicts
        if v.state is RunState.RESUMABLE and v.portal_name == portal
    ]
    checkpoint = inspect_checkpoint(
        service.settings.checkpoint_dir, portal, max_bytes=service.settings.max_checkpoint_bytes
    )
    as_of = checkpoint.cursor["as_of"]
    before = len(tender_rows(service, "run_id = :r", r=run_id))

    launched = service.launch_resume(run_id, actor=ACTOR)

    assert launched.argv[1] == str(SCRAPER) and "--demo-fleet" in launched.argv
    states = follow(service, run_id)
    assert RunState.ALIVE in states, "the resumed run heartbeats while it scrapes"
    assert service.run_status(run_id) == "completed", launched.log_path.read_text()
    stored = tender_rows(service, "run_id = :r", r=run_id)
    assert stored == uninterrupted(tmp_path, portal, as_of)
    assert 0 < before < len(stored) == 120
    with service.db.read() as conn:
        extracted, attempt = conn.execute(
            text("SELECT extracted_total_tenders, attempt FROM runs WHERE id = :r"), {"r": run_id}
        ).one()
    if portal == "MP Tenders":  # the demo scraper's own run: its counters add up
        assert (extracted, attempt) == (120, 2)
    events = [e.action for e in service.history(run_id=run_id).events]
    assert events[:3] == ["complete", "resume", "resume_launched"]


def test_start_and_clean_up_and_start_run_the_demo_scraper_and_a_reload_replaces_them(
    demo, tmp_path
):
    service, url, elsewhere = demo
    before = {v.run_id for v in service.scan().verdicts}
    started = service.launch_start("Haryana eProcurement", actor=ACTOR)
    both = service.clean_up_and_start("CPPP Central", actor=ACTOR)
    assert both.launched is not None, both.message
    assert len(both.cleanup.cleaned) == 2
    new_runs: dict[str, int] = {}
    deadline = time.monotonic() + 60
    while len(new_runs) < 2:
        for verdict in service.scan().verdicts:
            if verdict.run_id not in before:
                new_runs[verdict.portal_name] = verdict.run_id
        assert time.monotonic() < deadline, (started.log_path.read_text(), new_runs)
        time.sleep(0.2)
    for portal, run_id in new_runs.items():
        follow(service, run_id)
        assert service.run_status(run_id) == "completed"
        portal_tenders = tender_rows(service, "portal_name = :p", p=portal)
        checkpoint = inspect_checkpoint(service.settings.checkpoint_dir, portal, max_bytes=10**7)
        assert checkpoint.run_id == run_id
        as_of = checkpoint.cursor["as_of"]
        assert portal_tenders == uninterrupted(tmp_path, portal, as_of), portal

    again = cli(elsewhere, clean_env(CLEANUP_DATABASE_URL=url), "demo", "--json")
    assert again.returncode == 0, "the runs the demo scraper started are the demo's: " + (
        again.stderr
    )
    assert '"replaced_runs": 18' in again.stdout
    assert service.settings.config_file.read_text().splitlines()[0] == DEMO_CONFIG_MARKER


def test_auto_resume_finishes_the_demos_resumable_runs_with_no_further_setting(demo):
    """The README's sentence: one monitor cycle with CLEANUP_AUTO_RESUME=1, from another
    folder, launches the demo's resume command for both resumable runs, and both finish."""
    service, url, elsewhere = demo
    resumable = {v.run_id for v in service.scan().verdicts if v.state is RunState.RESUMABLE}
    assert len(resumable) == 2
    cycle = cli(
        elsewhere,
        clean_env(CLEANUP_DATABASE_URL=url, CLEANUP_AUTO_RESUME="1"),
        "watch",
        "--once",
        "--now",
    )
    assert cycle.returncode == 0, cycle.stderr
    assert "2 auto-resumed" in cycle.stdout
    for run_id in resumable:
        follow(service, run_id)
        assert service.run_status(run_id) == "completed"
        assert len(tender_rows(service, "run_id = :r", r=run_id)) == 120


@pytest.fixture
def sqlite_service(tmp_path):
    data = tmp_path / "data"
    settings = Settings.load(
        {}, database_url=f"sqlite:///{data / 'tenders.db'}", checkpoint_dir=str(tmp_path / "cp")
    )
    service = CleanupService(settings, database=Database(settings, create_missing=True))
    yield service, data / "cleanup.toml"
    service.db.dispose()


def test_an_operators_own_cleanup_toml_is_never_overwritten(sqlite_service):
    service, path = sqlite_service
    path.parent.mkdir(parents=True)
    path.write_text('resume_command = "/opt/scrapers/resume {run_id}"\n')
    report = load_demo(service)
    assert path.read_text() == 'resume_command = "/opt/scrapers/resume {run_id}"\n'
    assert report.settings_file is None
    assert "is not the demo's and was left as it is" in report.message


def test_no_commands_are_configured_beside_a_database_with_other_runs(sqlite_service, runs_of):
    service, path = sqlite_service
    runs_of(service).add("Real Portal", status="completed")
    report = load_demo(service, force=True)
    assert not path.exists()
    assert "holds 1 runs that are not the demo's" in report.message
    assert "resume_command = " in report.message, "it says what to set instead"


@pytest.fixture
def runs_of():
    from tests.conftest import Runs

    return Runs


def test_on_postgresql_the_demo_says_which_commands_to_set(service, backend):
    report = load_demo(service)
    if backend == "sqlite":
        assert report.settings_file is not None
        assert report.settings_file.name == "cleanup.toml"
        assert "Resume, Start and Clean up & start run examples/demo_scraper.py" in report.message
    else:
        assert report.settings_file is None
        assert "No scraper commands configured (the database is not an SQLite file)" in (
            report.message
        )
        assert repr(demo_commands()["resume_command"]) in report.message
