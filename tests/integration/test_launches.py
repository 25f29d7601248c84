"""Launches are tracked: each is a row whose exit code the wrapper learns, and a launch that is
still starting blocks a second one of the same run (decided in the database), on a real SQLite
file and PostgreSQL, with real processes."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

import cleanup_core.service.launches as launches_module
from cleanup_core import CleanupService, RefusedError
from cleanup_core.db import Database
from cleanup_core.vocabulary import LaunchState
from tests.conftest import NOW

RECORDER = Path(__file__).resolve().parents[1] / "helpers" / "record_argv.py"


def python_command(code: str) -> str:
    """A command template that runs ``code`` in this Python."""
    return f"{{python}} -c {shlex.quote(code)}"


def recorder(out: Path, *args: str) -> str:
    return " ".join(["{python}", shlex.quote(str(RECORDER)), shlex.quote(str(out)), *args])


SLOW = python_command("import time; print('scraping', flush=True); time.sleep(60)")


class Launcher:
    """A service whose commands are set per test; kills what it started when the test ends."""

    def __init__(self, settings, tmp_path: Path) -> None:
        self.settings = settings
        self.tmp_path = tmp_path
        self.services: list[CleanupService] = []
        self.pids: list[int] = []

    def service(self, **overrides) -> CleanupService:
        configured = self.settings.with_overrides(log_dir=str(self.tmp_path / "logs"), **overrides)
        svc = CleanupService(configured, database=Database(configured, create_missing=True))
        self.services.append(svc)
        return svc

    def close(self) -> None:
        for pid in self.pids:  # each launch's wrapper leads its own process group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        for svc in self.services:
            svc.db.dispose()


@pytest.fixture
def launcher(settings, tmp_path):
    made = Launcher(settings, tmp_path)
    yield made
    made.close()


def ended(service: CleanupService, launch_id: int, timeout: float = 30.0):
    """The launch once the wrapper recorded its end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (view,) = [v for v in service.list_launches(limit=1000, now=NOW) if v.id == launch_id]
        if view.exit_code is not None:
            return view
        time.sleep(0.05)
    pytest.fail(f"launch {launch_id} recorded no exit code in {timeout:g} s")


def test_a_launch_is_a_row_and_the_wrapper_records_its_exit(launcher, runs, tmp_path):
    out = tmp_path / "argv.json"
    service = launcher.service(resume_command=recorder(out, "--resume", "{run_id}"))
    run_id = runs.add("Assam Tenders", extracted_total_tenders=4)

    result = service.launch_resume(run_id, actor="ops:alice", now=NOW)
    launcher.pids.append(result.pid)

    (first,) = service.list_launches(run_id=run_id, now=NOW)
    assert first.id == result.launch_id
    assert (first.run_id, first.portal_name, first.action, first.actor) == (
        run_id,
        "Assam Tenders",
        "resume",
        "ops:alice",
    )
    assert first.argv == result.argv and first.argv[-2:] == ("--resume", str(run_id))
    assert first.pid == result.pid and first.host and first.log_path == str(result.log_path)
    assert first.launched_at == NOW and not first.automatic
    view = ended(service, result.launch_id)
    assert json.loads(out.read_text())["argv"] == ["--resume", str(run_id)]
    assert (view.state, view.exit_code) == (LaunchState.SUCCEEDED, 0)
    assert view.ended_at is not None
    latest = service.latest_launch(run_id=run_id, now=NOW)
    assert latest is not None and "recorded 2 arguments" in latest.log_tail
    assert latest.log_tail[-1] == f"[launch {view.id}] the process exited with code 0"


def test_a_command_that_exits_at_once_is_failed_with_its_exit_code(launcher, runs):
    service = launcher.service(
        resume_command=python_command("import sys; print('login refused'); sys.exit(3)")
    )
    run_id = runs.add("Assam Tenders", extracted_total_tenders=4)
    result = service.launch_resume(run_id, actor="ops", now=NOW)
    view = ended(service, result.launch_id)
    assert (view.state, view.exit_code) == (LaunchState.FAILED, 3)
    assert "without its run making progress" in view.note
    assert "login refused" in service.latest_launch(run_id=run_id, now=NOW).log_tail


def test_a_starting_launch_refuses_a_second_until_the_run_heartbeats_or_time_passes(launcher, runs):
    service = launcher.service(resume_command=SLOW, resume_backoff_minutes=10)
    run_id = runs.add("Assam Tenders", extracted_total_tenders=4)
    first = service.launch_resume(run_id, actor="alice", now=NOW)
    launcher.pids.append(first.pid)
    assert service.latest_launch(run_id=run_id, now=NOW).state is LaunchState.STARTING

    since = NOW.astimezone(service.settings.timezone).strftime("%H:%M")
    with pytest.raises(RefusedError) as refused:
        service.launch_resume(run_id, actor="bob", now=NOW + timedelta(minutes=1))
    assert str(refused.value) == (
        f"Run {run_id} is already being resumed by alice since {since} (pid {first.pid}); "
        f"wait until it heartbeats or 10 min pass (launch {first.launch_id})."
    )
    assert len(service.list_launches(run_id=run_id, now=NOW)) == 1

    # Once the time has passed with no sign of the scraper, the launch has expired.
    later = NOW + timedelta(minutes=10)
    assert service.latest_launch(run_id=run_id, now=later).state is LaunchState.EXPIRED
    second = service.launch_resume(run_id, actor="bob", now=later)
    launcher.pids.append(second.pid)
    assert [v.actor for v in service.list_launches(run_id=run_id, now=later)] == ["bob", "alice"]

    # A heartbeat after the launch means the scraper is at work: running.
    runs.update(run_id, last_heartbeat_at=later + timedelta(seconds=30))
    assert service.latest_launch(run_id=run_id, now=later).state is LaunchState.RUNNING


def test_a_start_that_is_starting_refuses_a_second_start(launcher, runs):
    service = launcher.service(start_command=SLOW)
    first = service.launch_start("Kerala eTenders", actor="alice", now=NOW)
    launcher.pids.append(first.pid)
    with pytest.raises(RefusedError, match=r"Portal 'Kerala eTenders' is already being started"):
        service.launch_start("Kerala eTenders", actor="bob", now=NOW)
    (view,) = service.list_launches(portal_name="Kerala eTenders", now=NOW)
    assert (view.run_id, view.action, view.state) == (None, "start", LaunchState.STARTING)


def test_concurrent_launch_attempts_launch_exactly_once(launcher, runs):
    """Eight admins press Resume at once, each through its own connection pool."""
    services = [launcher.service(resume_command=SLOW, busy_timeout_seconds=20) for _ in range(8)]
    run_id = runs.add("Assam Tenders", extracted_total_tenders=4)
    for service in services:
        service.scan(now=NOW)  # connected before the race
    barrier = threading.Barrier(len(services))
    outcomes: list[tuple[str, str]] = []

    def press(i: int) -> None:
        barrier.wait()
        try:
            result = services[i].launch_resume(run_id, actor=f"admin{i}", now=NOW)
            launcher.pids.append(result.pid)
            outcomes.append(("launched", result.actor))
        except RefusedError as exc:
            outcomes.append(("refused", str(exc)))

    threads = [threading.Thread(target=press, args=(i,)) for i in range(len(services))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    launched = [who for kind, who in outcomes if kind == "launched"]
    refused = [why for kind, why in outcomes if kind == "refused"]
    assert len(launched) == 1 and len(refused) == len(services) - 1
    assert all(f"is already being resumed by {launched[0]}" in why for why in refused)
    (row,) = services[0].list_launches(run_id=run_id, now=NOW)
    assert row.actor == launched[0]
    events = services[0].history(actions=["resume_launched"], limit=100).events
    assert [e.actor for e in events] == launched


def test_launches_of_unknown_runs_and_bad_arguments_are_clear(launcher):
    service = launcher.service()
    assert service.list_launches(run_id=404, now=NOW) == []
    assert service.latest_launch(portal_name="nowhere", now=NOW) is None
    with pytest.raises(ValueError, match="run id must be a whole number"):
        service.list_launches(run_id="7; drop table runs", now=NOW)  # type: ignore[arg-type]
    assert service.finish_launch(12345, exit_code=0) is False


def test_the_wrapper_records_a_program_that_vanished_as_127(launcher, runs, tmp_path, monkeypatch):
    """The program existed when the launcher checked, but not when the wrapper started it."""
    gone = tmp_path / "scraper.sh"
    gone.write_text("#!/bin/sh\nexit 0\n")
    gone.chmod(0o755)
    service = launcher.service(resume_command=f"{shlex.quote(str(gone))} {{run_id}}")
    run_id = runs.add("Assam Tenders", extracted_total_tenders=4)
    real_spawn = launches_module.spawn

    def spawn_after_removal(*args, **kwargs):
        gone.unlink()
        return real_spawn(*args, **kwargs)

    monkeypatch.setattr(launches_module, "spawn", spawn_after_removal)
    result = service.launch_resume(run_id, actor="ops", now=NOW)
    view = ended(service, result.launch_id)
    assert (view.state, view.exit_code) == (LaunchState.FAILED, 127)
    assert "could not start" in (view.error or "")


def test_a_deleted_runs_launches_are_not_inherited_by_a_reused_id(launcher, runs):
    service = launcher.service(resume_command=SLOW)
    run_id = runs.add("Assam Tenders", extracted_total_tenders=4)
    launcher.pids.append(service.launch_resume(run_id, actor="alice", now=NOW).pid)
    runs.update(run_id, status="failed")
    assert service.delete_runs([run_id], confirm=True, actor="ops") == 1
    assert service.list_launches(run_id=run_id, now=NOW) == []
    reused = runs.add("Assam Tenders", id=run_id, extracted_total_tenders=4)
    assert reused == run_id
    result = service.launch_resume(reused, actor="bob", now=NOW)  # not "already being resumed"
    launcher.pids.append(result.pid)
    assert [v.actor for v in service.list_launches(run_id=run_id, now=NOW)] == ["bob"]
