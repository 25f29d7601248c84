"""The README's scheduling examples, run as written (with the example paths pointed here)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
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
