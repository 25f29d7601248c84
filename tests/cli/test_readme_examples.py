"""The README's scheduling examples, run as written (with the example paths pointed here)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, text

from cleanup_core import CLEANED, CleanupService, Settings
from cleanup_core.db import Database
from cleanup_core.models import Run

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
EXAMPLE_ROOT = "/opt/tender-cleanup"


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


@pytest.fixture
def example(tmp_path):
    """A database with one dead run where the examples expect it, and a way to run them."""
    data = tmp_path / "data"
    settings = Settings.load(
        {},
        database_url=f"sqlite:///{data}/tenders.db",
        checkpoint_dir=str(tmp_path / "checkpoints"),
    )
    service = CleanupService(settings, database=Database(settings, create_missing=True))
    with service.db.write() as conn:
        conn.execute(
            insert(Run.__table__).values(
                portal_name="Assam Tenders",
                status="running",
                started_at=datetime.now(UTC) - timedelta(hours=30),
            )
        )

    def localise(text: str) -> str:
        return text.replace(f"{EXAMPLE_ROOT}/.venv/bin/python", sys.executable).replace(
            f"{EXAMPLE_ROOT}/data", str(data)
        )

    def run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", "-c", localise(command)],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            cwd="/",
            timeout=120,
        )

    yield service, run, localise, data
    service.db.dispose()


def test_cron_lines_run_as_written(example):
    service, run, localise, data = example
    crontab = code_blocks("cron")[0]  # the Scheduling section's
    lines = [line for line in crontab.splitlines() if line.strip()]
    env = dict(line.split("=", 1) for line in lines if re.match(r"^[A-Z_]+=", line))
    env = {key: localise(value) for key, value in env.items()}
    jobs = [line.split(None, 5)[5] for line in lines if line[0].isdigit() or line[0] == "*"]
    assert len(jobs) == 2
    status_job = run(jobs[1], env)
    assert status_job.returncode == 3, "dead runs make the status job fail (cron mails it)"
    clean_job = run(jobs[0], env)
    assert clean_job.returncode == 0, clean_job.stderr
    assert "Cleaned 1/1 dead runs" in (data / "cleanup.log").read_text()
    assert run(jobs[1], env).returncode == 0
    assert service.scan().to_dict()["dead_count"] == 0


def test_systemd_service_runs_as_written(example):
    _, run, localise, _ = example
    unit = next(block for block in code_blocks("ini") if "ExecStart" in block)
    env_line = re.search(r"^Environment=(\w+)=(.*)$", unit, flags=re.MULTILINE)
    exec_start = re.search(r"^ExecStart=(.*)$", unit, flags=re.MULTILINE).group(1)
    result = run(exec_start, {env_line.group(1): localise(env_line.group(2))})
    assert result.returncode == 0, result.stderr
    assert "Cleaned 1/1 dead runs" in result.stdout
    timer = next(block for block in code_blocks("ini") if "[Timer]" in block)
    assert "OnCalendar=*-*-* 03:00:00" in timer


def windows_task(block: str) -> list[str]:
    """The arguments after python.exe of a `schtasks /create ... /tr "..."` line."""
    task = re.search(r'/tr "(.*)"', block).group(1)
    python, *args = shlex.split(task.replace("\\", "/"))
    assert python.endswith("/.venv/Scripts/python.exe")
    return args


def test_windows_tasks_run_the_same_commands(example):
    service, _, _, data = example
    clean_task, monitor_task = code_blocks("bat")
    assert "/sc daily /st 03:00" in clean_task
    assert "/sc minute /mo 30" in monitor_task
    local_db = f"sqlite:///{data}"
    for block, expected in (
        (monitor_task, "NEW DEAD run 1"),
        (clean_task, "Cleaned 1/1 dead runs"),
    ):
        args = [
            a.replace("sqlite:///C:/tender-cleanup/data", local_db) for a in windows_task(block)
        ]
        result = subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, timeout=120, cwd="/"
        )
        assert result.returncode == 0, result.stderr
        assert expected in result.stdout
    assert {v.run_id for v in service.scan().dead} == set()
    with service.db.read() as conn:
        assert conn.execute(text("SELECT status FROM runs")).scalar_one() == CLEANED


def test_monitor_cron_line_runs_as_written(example):
    _, run, _, data = example
    monitor_cron = code_blocks("cron")[1]
    job = monitor_cron.strip().split(None, 5)[5]
    env = {"CLEANUP_DATABASE_URL": f"sqlite:///{data}/tenders.db"}
    result = run(job, env)
    assert result.returncode == 0, result.stderr
    log = (data / "monitor.log").read_text()
    assert "monitor cycle ok" in log
    assert "NEW DEAD run 1" in log


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_scrapy_story_runs_as_written(tmp_path):
    """Crash, busy, resume: the README's Scrapy block in bash from the checkout, with the
    database and checkpoints in a temporary folder and the portal on a free port."""
    story = next(block for block in code_blocks("bash") if "scrapy crawl gepnic" in block)
    port = free_port()
    script = story.replace("--port 8765", f"--port {port}").replace(
        "scrapy crawl gepnic", f"scrapy crawl gepnic -s PORTAL_URL=http://127.0.0.1:{port}"
    )
    database = tmp_path / "tenders.db"
    env = {name: value for name, value in os.environ.items() if not name.startswith("CLEANUP_")}
    env |= {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        "PYTHONPATH": str(ROOT),
        "CLEANUP_DATABASE_URL": f"sqlite:///{database}",
        "CLEANUP_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
    }
    log = tmp_path / "story.log"
    with log.open("w") as output:
        shell = subprocess.Popen(
            ["bash", "-c", script],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its background jobs can be stopped with it
        )
        try:
            shell.wait(timeout=180)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGKILL)
    text_out = log.read_text()
    assert shell.returncode == 0, text_out
    assert text_out.count("Spider closed (portal_busy)") == 1, text_out
    assert "(attempt 2); " in text_out and "Spider closed (finished)" in text_out, text_out
    settings = Settings.load({}, database_url=f"sqlite:///{database}")
    service = CleanupService(settings, database=Database(settings))
    try:
        with service.db.read() as conn:
            (run,) = conn.execute(text("SELECT id, status, attempt FROM runs")).all()
            tenders = conn.execute(
                text("SELECT count(*), count(DISTINCT tender_id) FROM tenders")
            ).one()
        history = [e.action for e in reversed(service.history(run_id=run.id).events)]
    finally:
        service.db.dispose()
    assert (run.status, run.attempt) == ("completed", 2)
    assert tuple(tenders) == (120, 120), "every tender once"
    assert history == ["start", "resume", "complete"]
    assert re.findall(r"│ (start|resume|complete) +│", text_out) == ["complete", "resume", "start"]


def test_the_demo_crash_loop_runs_as_written(tmp_path):
    """The tour's loop: the demo loaded (as start.sh --demo loads it), the README's block run
    from the checkout (a demo scraper of Goa eProcurement killed with kill -9, then the check),
    then the resume it names, which finishes the run with the portal's 120 tenders; loading the
    demo again replaces that run too."""
    block = next(b for b in code_blocks("bash") if "kill -9 $!" in b)
    script = block.replace(".venv/bin/python", shlex.quote(sys.executable))
    database = tmp_path / "data" / "tenders.db"
    env = {name: value for name, value in os.environ.items() if not name.startswith("CLEANUP_")}
    env |= {"PYTHONPATH": str(ROOT), "CLEANUP_DATABASE_URL": f"sqlite:///{database}"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cleanup_core", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    loaded = cli("demo", "--checkpoint-dir", str(tmp_path / "checkpoints"))
    assert loaded.returncode == 0, loaded.stderr
    story = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert story.returncode == 0, story.stdout + story.stderr
    found = re.search(r"^resume: run (\d+) can be resumed: no heartbeat for", story.stdout, re.M)
    assert found, story.stdout + story.stderr
    run_id = int(found.group(1))
    assert cli("resume", str(run_id)).returncode == 0

    settings = Settings.load({}, database_url=f"sqlite:///{database}")
    service = CleanupService(settings, database=Database(settings))
    try:
        deadline = time.monotonic() + 120
        while service.run_status(run_id) == "running":
            assert time.monotonic() < deadline, "the resumed run never finished"
            time.sleep(0.5)
        assert service.run_status(run_id) == "completed"
        with service.db.read() as conn:
            stored = conn.execute(
                text("SELECT count(*), count(DISTINCT tender_id) FROM tenders WHERE run_id = :r"),
                {"r": run_id},
            ).one()
        assert tuple(stored) == (120, 120)
    finally:
        service.db.dispose()
    again = cli("demo")
    assert again.returncode == 0, again.stderr
    assert "replacing 17 earlier demo runs" in again.stdout
