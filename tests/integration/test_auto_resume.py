"""Bounded auto-resume: the monitor launches the resume_command of resumable runs, once per
backoff interval per run, never for dead, alive or young runs, and gives up after
max_resume_attempts; on a real SQLite file and PostgreSQL, with a real command that records
its arguments (tests/helpers/record_argv.py) and a real notification receiver."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from cleanup_core import CleanupService, Settings
from cleanup_core.alerts import Monitor
from cleanup_core.config import PortalOverride
from cleanup_core.db import Database
from cleanup_core.errors import ConfigError
from cleanup_core.vocabulary import LaunchState, Rule, RunState
from tests.conftest import NOW, ago
from tests.integration.test_monitor import Webhook

RECORDER = Path(__file__).resolve().parents[1] / "helpers" / "record_argv.py"


@pytest.fixture
def webhook():
    hook = Webhook().start()
    yield hook
    hook.stop()


@pytest.fixture
def started(tmp_path) -> Path:
    """One line per process the launches really started."""
    return tmp_path / "started.jsonl"


@pytest.fixture
def make_monitor(settings, tmp_path, started, webhook):
    services: list[CleanupService] = []

    def make(*, portals=None, **overrides) -> Monitor:
        values = {
            "auto_resume": True,
            "resume_command": " ".join(
                ["{python}", shlex.quote(str(RECORDER)), shlex.quote(str(started)), "{run_id}"]
            ),
            "resume_backoff_minutes": 10,
            "max_resume_attempts": 3,
            "log_dir": str(tmp_path / "logs"),
            "notify_urls": [webhook.url],
            "busy_timeout_seconds": 20,
            **overrides,
        }
        no_global_command = values["resume_command"] is None
        configured = settings.with_overrides(**values)
        if no_global_command:
            configured = replace(configured, resume_command=None)
        if portals:
            configured = replace(configured, portals=portals)
        service = CleanupService(configured, database=Database(configured, create_missing=True))
        services.append(service)
        return Monitor(service)

    yield make
    for service in services:
        for launch in service.list_launches(limit=1000, now=NOW):
            if launch.pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(launch.pid, signal.SIGKILL)
        service.db.dispose()


def cycle(monitor: Monitor, minutes: float = 0):
    return monitor.run_cycle(now=NOW + timedelta(minutes=minutes), force=True)


def settle(service: CleanupService, timeout: float = 30.0) -> list:
    """Every launch once its process ended (the wrapper recorded its exit code)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = service.list_launches(limit=1000, now=NOW)
        if all(launch.exit_code is not None for launch in found):
            return found
        time.sleep(0.05)
    pytest.fail(f"launches did not end within {timeout:g} s")


def processes(started: Path) -> list[list[str]]:
    """The arguments of every process that really ran."""
    if not started.exists():
        return []
    return [json.loads(line)["argv"] for line in started.read_text().splitlines()]


def test_one_launch_per_backoff_interval_and_never_for_dead_alive_or_young(
    runs, make_monitor, started, webhook
):
    resumable = runs.add("Assam Tenders", extracted_total_tenders=7)
    dead = runs.add("MP Tenders", started_at=ago(hours=30))
    alive = runs.add("Kerala", extracted_total_tenders=3, last_heartbeat_at=ago(minutes=1))
    young = runs.add("CPPP", started_at=ago(hours=1))
    monitor = make_monitor()
    service = monitor.service

    first = cycle(monitor)
    assert first.outcome == "ok" and first.auto_resumed == [resumable]
    (launch,) = service.list_launches(now=NOW)
    assert (launch.run_id, launch.automatic, launch.actor) == (resumable, True, monitor.actor)
    assert monitor.actor.startswith("monitor:")
    (event,) = service.history(actions=["resume_launched"], limit=10).events
    assert (event.run_id, event.actor, event.details["automatic"]) == (
        resumable,
        monitor.actor,
        True,
    )
    assert "1 auto-resumed" in webhook.posts[0]["title"]
    assert (
        f"AUTO-RESUMED run {resumable}: launched process {launch.pid} (attempt 1 of 3"
        in (webhook.posts[0]["message"])
    )

    # Back-to-back cycles within the backoff: no second launch, while it is starting or after
    # it ended.
    assert cycle(monitor, minutes=1).auto_resumed == []
    settle(service)
    assert cycle(monitor, minutes=5).auto_resumed == []
    assert cycle(monitor, minutes=9.9).auto_resumed == []
    assert len(service.list_launches(now=NOW)) == 1
    # Once the backoff has passed, the next attempt.
    assert cycle(monitor, minutes=10.5).auto_resumed == [resumable]
    settle(service)
    assert processes(started) == [[str(resumable)], [str(resumable)]]
    for other in (dead, alive, young):
        assert service.list_launches(run_id=other, now=NOW) == []


def test_concurrent_cycles_of_two_monitors_launch_once(runs, make_monitor, started):
    run_a = runs.add("Assam Tenders", extracted_total_tenders=7)
    run_b = runs.add("MP Tenders", extracted_total_tenders=2)
    monitors = [make_monitor(), make_monitor()]
    barrier = threading.Barrier(2)
    reports = []

    def run(monitor: Monitor) -> None:
        barrier.wait()
        for minutes in (0, 0.5, 1):
            reports.append(cycle(monitor, minutes))

    threads = [threading.Thread(target=run, args=(m,)) for m in monitors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(run_id for r in reports for run_id in r.auto_resumed) == [run_a, run_b]
    settle(monitors[0].service)
    assert sorted(processes(started)) == sorted([[str(run_a)], [str(run_b)]])


def test_concurrent_automatic_launches_of_one_run_launch_once(runs, make_monitor, started):
    """Without the monitor's lease in the way: eight monitors' launches race in the database."""
    run_id = runs.add("Assam Tenders", extracted_total_tenders=7)
    services = [make_monitor().service for _ in range(8)]
    for service in services:
        service.scan(now=NOW)
    barrier = threading.Barrier(len(services))
    launched, refused = [], []

    def press(service: CleanupService) -> None:
        barrier.wait()
        try:
            launched.append(
                service.launch_resume(run_id, actor="monitor:x", now=NOW, automatic=True)
            )
        except Exception as exc:  # noqa: BLE001 - the test counts what happened
            refused.append(exc)

    threads = [threading.Thread(target=press, args=(s,)) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(launched) == 1 and len(refused) == 7
    assert all("is already being resumed" in str(exc) for exc in refused)
    settle(services[0])
    assert processes(started) == [[str(run_id)]]


def test_the_attempt_limit_sends_the_run_to_a_person(runs, make_monitor, webhook):
    run_id = runs.add("Assam Tenders", extracted_total_tenders=7)
    monitor = make_monitor(
        resume_command="{python} -c 'import sys; print(\"captcha\"); sys.exit(5)' {run_id}"
    )
    service = monitor.service
    for attempt in range(3):
        report = cycle(monitor, minutes=11 * attempt)
        assert report.auto_resumed == [run_id], f"attempt {attempt + 1}"
        settle(service)
    assert [v.state for v in service.list_launches(now=NOW)] == [LaunchState.FAILED] * 3
    assert {v.exit_code for v in service.list_launches(now=NOW)} == {5}

    gave_up = cycle(monitor, minutes=33)
    assert gave_up.auto_resumed == []
    (verdict,) = service.scan(now=NOW + timedelta(minutes=33)).verdicts
    assert verdict.state is RunState.ATTENTION
    assert Rule.RESUME_ATTEMPTS_EXHAUSTED in verdict.rules
    assert "auto-resume launched it 3 times" in verdict.summary
    assert "last exit code 5" in verdict.summary
    assert f"NEW NEEDS ATTENTION run {run_id}: " in webhook.posts[-1]["message"]
    assert "launched it 3 times" in webhook.posts[-1]["message"]
    # Never again automatically, however long it waits...
    assert cycle(monitor, minutes=120).auto_resumed == []
    assert len(service.list_launches(now=NOW)) == 3
    # ...but a person can still resume it by hand.
    by_hand = service.launch_resume(run_id, actor="ops:alice", now=NOW + timedelta(hours=3))
    assert by_hand.run_id == run_id
    settle(service)
    assert cycle(monitor, minutes=240).auto_resumed == []
    assert [v.automatic for v in service.list_launches(now=NOW)] == [False, True, True, True]


def test_a_resumed_run_that_completes_is_never_launched_again(runs, make_monitor, started):
    run_id = runs.add("Assam Tenders", extracted_total_tenders=7)
    monitor = make_monitor()
    assert cycle(monitor).auto_resumed == [run_id]
    settle(monitor.service)
    runs.update(run_id, status="completed", completed_at=NOW + timedelta(minutes=5))
    for minutes in (11, 30, 60):
        assert cycle(monitor, minutes).auto_resumed == []
    assert len(processes(started)) == 1


def test_a_missing_or_failing_command_is_recorded_failed_and_the_cycle_goes_on(
    runs, make_monitor, started, webhook
):
    broken = runs.add("Broken Portal", extracted_total_tenders=2)
    crashing = runs.add("Crashing Portal", extracted_total_tenders=2)
    healthy = runs.add("Assam Tenders", extracted_total_tenders=7)
    monitor = make_monitor(
        portals={
            "Broken Portal": PortalOverride(resume_command="/nonexistent/scraper {run_id}"),
            "Crashing Portal": PortalOverride(
                resume_command="{python} -c 'raise SystemExit(2)' {run_id}"
            ),
        }
    )
    report = cycle(monitor)
    assert report.outcome == "ok"
    assert report.launch_failures == [broken]
    assert sorted(report.auto_resumed) == sorted([crashing, healthy])
    launches = {v.run_id: v for v in settle(monitor.service)}
    assert (launches[broken].state, launches[broken].exit_code) == (LaunchState.FAILED, 127)
    assert "no such file" in launches[broken].error
    assert (launches[crashing].state, launches[crashing].exit_code) == (LaunchState.FAILED, 2)
    assert (launches[healthy].state, launches[healthy].exit_code) == (LaunchState.SUCCEEDED, 0)
    assert processes(started) == [[str(healthy)]]
    assert (
        f"AUTO-RESUMED run {broken}: launch FAILED (attempt 1 of 3)"
        in (webhook.posts[0]["message"])
    )


def test_auto_resume_without_a_resume_command_is_a_settings_error(tmp_path, service, runs):
    with pytest.raises(ConfigError, match="auto_resume is on but no resume_command is set"):
        # (The test's own database: a demo loaded into the checkout's ./data/tenders.db
        # leaves a cleanup.toml with a resume_command beside it.)
        Settings.load({"CLEANUP_AUTO_RESUME": "true"}, database_url=service.settings.database_url)
    config = tmp_path / "cleanup.toml"
    config.write_text('[portals."Assam Tenders"]\nauto_resume = true\n')
    with pytest.raises(ConfigError, match="auto_resume is on for portal 'Assam Tenders'"):
        Settings.load({}, config_file=config)
    # On globally with only one portal's command: a stored portal without one is named when
    # the monitor starts.
    config.write_text(
        'auto_resume = true\n[portals."Assam Tenders"]\nresume_command = "scrape {run_id}"\n'
    )
    settings = Settings.load({}, config_file=config, database_url=service.settings.database_url)
    runs.add("MP Tenders", extracted_total_tenders=1)
    monitor = Monitor(CleanupService(settings, database=service.db))
    with pytest.raises(ConfigError, match="no resume_command is set for portal 'MP Tenders'"):
        monitor.check_settings()
    assert Settings.load({"CLEANUP_MAX_RESUME_ATTEMPTS": "5"}).max_resume_attempts == 5
    assert Settings.load({"CLEANUP_RESUME_BACKOFF_MINUTES": "2.5"}).resume_backoff_minutes == 2.5
    with pytest.raises(ConfigError, match="CLEANUP_MAX_RESUME_ATTEMPTS"):
        Settings.load({"CLEANUP_MAX_RESUME_ATTEMPTS": "0"})


def test_a_portal_without_a_command_is_logged_and_the_others_are_resumed(
    runs, make_monitor, started, caplog
):
    """A monitor that did not check at start (inside the dashboard) meets a portal stored
    since: it says so and goes on."""
    with_command = runs.add("Assam Tenders", extracted_total_tenders=7)
    without = runs.add("MP Tenders", extracted_total_tenders=2)
    monitor = make_monitor(
        resume_command=None,
        portals={
            "Assam Tenders": PortalOverride(
                resume_command=" ".join(
                    ["{python}", shlex.quote(str(RECORDER)), shlex.quote(str(started)), "{run_id}"]
                )
            )
        },
    )
    caplog.set_level("ERROR", logger="cleanup_core.alerts")
    report = cycle(monitor)
    assert report.outcome == "ok" and report.auto_resumed == [with_command]
    assert (
        f"auto_resume is on for portal 'MP Tenders' but it has no resume_command; run {without}"
        in (caplog.text)
    )
    settle(monitor.service)
    assert processes(started) == [[str(with_command)]]
