"""The resume launcher: the configured command runs detached, with each value as one argument."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path

import pytest

from cleanup_core import (
    COMPLETED,
    CleanupService,
    LaunchError,
    RefusedError,
    RunNotFoundError,
    Settings,
    launch_resume,
    launch_start,
    portal_slug,
)
from cleanup_core.db import Database
from tests.conftest import NOW, TZ, ago

RECORDER = Path(__file__).resolve().parents[1] / "helpers" / "record_argv.py"
HOSTILE = 'Assam"; touch /tmp/pwned; echo "$(id) {run_id} `id` > ../../etc/passwd'


def recorder_command(out: Path, *args: str) -> str:
    """A command template that runs the recorder, writing to ``out``."""
    return " ".join(["{python}", shlex.quote(str(RECORDER)), shlex.quote(str(out)), *args])


def recorded(out: Path, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while not out.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"the launched process wrote nothing to {out} in {timeout:g} s")
        time.sleep(0.02)
    return json.loads(out.read_text())


def launched_events(service, action="resume_launched"):
    return list(service.history(actions=[action], limit=100).events)


@pytest.fixture
def out(tmp_path):
    return tmp_path / "argv.json"


@pytest.fixture
def launcher(settings, out, tmp_path):
    """A service whose resume and start commands run the recorder."""
    configured = settings.with_overrides(
        resume_command=recorder_command(
            out, "--portal", "{portal}", "--resume", "{run_id}", "--slug", "{portal_slug}"
        ),
        start_command=recorder_command(out, "start", "--portal={portal}"),
        log_dir=str(tmp_path / "logs"),
    )
    svc = CleanupService(configured, database=Database(configured, create_missing=True))
    yield svc
    svc.db.dispose()


def test_resume_runs_the_template_with_each_value_as_one_argument(launcher, runs, out):
    run_id = runs.add(HOSTILE, extracted_total_tenders=12)
    result = launch_resume(launcher, run_id, actor="ops:alice", now=NOW)
    record = recorded(out)
    assert record["argv"] == [
        "--portal",
        HOSTILE,
        "--resume",
        str(run_id),
        "--slug",
        portal_slug(HOSTILE),
    ], "the portal name is one argument, untouched by any shell or by the placeholders"
    assert not Path("/tmp/pwned").exists()
    assert record["sid"] != os.getsid(0), "detached into its own session"
    assert record["stdin"] == ""
    assert record["database_url"] == launcher.settings.database_url
    assert record["checkpoint_dir"] == str(launcher.settings.checkpoint_dir)
    assert result.argv[0] == sys.executable
    assert list(result.argv[-6:]) == record["argv"]
    assert result.run_id == run_id
    assert result.log_path.parent == launcher.settings.launch_log_dir
    assert "recorded 6 arguments" in _log_text(result.log_path)
    (event,) = launched_events(launcher)
    assert (event.run_id, event.portal_name, event.actor) == (run_id, HOSTILE, "ops:alice")
    assert event.details["argv"] == list(result.argv)
    assert event.details["pid"] == result.pid
    assert runs.get(run_id)["status"] == "running", "the launcher itself changes no run"


def _log_text(path: Path, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text()
        if text:
            return text
        time.sleep(0.02)
    return ""


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"last_heartbeat_at": ago(minutes=2)}, r"is alive, not resumable: a worker is on it"),
        ({"started_at": ago(hours=2)}, r"is young, not resumable"),
        ({"extracted_total_tenders": 0}, r"is dead, not resumable"),
        ({"status": COMPLETED}, r"is not running \(status 'completed'\); nothing to resume"),
    ],
)
def test_runs_that_must_not_be_resumed_are_refused(launcher, runs, out, values, message):
    row = {"extracted_total_tenders": 3, **values}
    run_id = runs.add("Assam Tenders", **row)
    with pytest.raises(RefusedError, match=rf"Run {run_id} {message}"):
        launch_resume(launcher, run_id, actor="ops", now=NOW)
    assert not out.exists(), "nothing was started"
    assert launched_events(launcher) == []


def test_an_unknown_run_is_refused(launcher, out):
    with pytest.raises(RunNotFoundError, match="No run with id 404"):
        launch_resume(launcher, 404, actor="ops", now=NOW)
    assert not out.exists()


def test_without_a_command_it_says_what_to_configure(service, runs):
    run_id = runs.add("Assam Tenders", extracted_total_tenders=3)
    with pytest.raises(RefusedError, match="No resume_command is configured for portal"):
        launch_resume(service, run_id, actor="ops", now=NOW)
    with pytest.raises(RefusedError, match="No start_command is configured for portal"):
        launch_start(service, "Kerala eTenders", actor="ops", now=NOW)
    assert launched_events(service) == []


def test_a_portal_can_have_its_own_command(db_url, checkpoint_dir, tmp_path, runs):
    general, special = tmp_path / "general.json", tmp_path / "special.json"
    config = tmp_path / "cleanup.toml"
    config.write_text(
        f"resume_command = {json.dumps(recorder_command(general, '{portal}'))}\n"
        f'[portals."mp_tenders"]\n'
        f"resume_command = {json.dumps(recorder_command(special, 'mp', '{run_id}'))}\n"
    )
    settings = Settings.load(
        {}, config_file=config, database_url=db_url, checkpoint_dir=str(checkpoint_dir), timezone=TZ
    )
    service = CleanupService(settings, database=Database(settings, create_missing=True))
    try:
        mp = runs.add("MP Tenders", extracted_total_tenders=3)
        assam = runs.add("Assam Tenders", extracted_total_tenders=3)
        launch_resume(service, mp, actor="ops", now=NOW)
        launch_resume(service, assam, actor="ops", now=NOW)
    finally:
        service.db.dispose()
    assert recorded(special)["argv"] == ["mp", str(mp)]
    assert recorded(general)["argv"] == ["Assam Tenders"]


def test_start_runs_the_start_command_and_is_refused_on_a_busy_portal(launcher, runs, out):
    result = launch_start(launcher, HOSTILE, actor="cron", now=NOW)
    assert recorded(out)["argv"] == ["start", f"--portal={HOSTILE}"]
    (event,) = launched_events(launcher, "start_launched")
    assert (event.run_id, event.portal_name, event.details["pid"]) == (0, HOSTILE, result.pid)

    out.unlink()
    alive = runs.add("Kerala eTenders", last_heartbeat_at=ago(minutes=1))
    with pytest.raises(RefusedError, match=rf"Portal 'Kerala eTenders' is busy: run {alive}"):
        launch_start(launcher, "Kerala eTenders", actor="cron", now=NOW)
    assert not out.exists()
    assert len(launched_events(launcher, "start_launched")) == 1


def test_a_command_that_cannot_start_is_a_clear_error(launcher, runs):
    broken = launcher.settings.with_overrides(resume_command="/nonexistent/scraper {portal}")
    service = CleanupService(broken, database=launcher.db)
    run_id = runs.add("Assam Tenders", extracted_total_tenders=3)
    with pytest.raises(LaunchError, match=r"Could not start the resume_command .*nonexistent"):
        launch_resume(service, run_id, actor="ops", now=NOW)
    # Recorded as a failed launch (as a shell would say: exit code 127), never a traceback.
    (launch,) = service.list_launches(run_id=run_id, now=NOW)
    assert (launch.state, launch.exit_code, launch.pid) == ("failed", 127, None)
    assert "no such file" in launch.error
    (event,) = launched_events(launcher)
    assert event.details["error"] == launch.error and event.details["launch_id"] == launch.id
