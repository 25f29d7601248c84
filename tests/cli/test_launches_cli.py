"""``resume`` prints the launch, a second ``resume`` while it is starting is refused, and
``launches`` lists them: through ``python -m cleanup_core`` in real processes."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.test_cli import child_env, real_ago

RECORDER = Path(__file__).resolve().parents[1] / "helpers" / "record_argv.py"
SLOW = "{python} -c " + shlex.quote("import time; print('scraping', flush=True); time.sleep(60)")


@pytest.fixture
def cli_run(db_url, checkpoint_dir, tmp_path):
    pids: list[int] = []

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "cleanup_core", *args]
        argv += ["--db", db_url, "--checkpoint-dir", str(checkpoint_dir)]
        full_env = {**child_env(), "CLEANUP_LOG_DIR": str(tmp_path / "logs"), **(env or {})}
        done = subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=120)
        if done.returncode == 0 and "--json" in args and args[0] in ("resume", "start"):
            pids.append(json.loads(done.stdout)["pid"])
        return done

    run.pids = pids  # type: ignore[attr-defined]
    yield run
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def test_resume_prints_the_launch_and_a_second_is_refused_while_it_starts(runs, cli_run):
    run_id = runs.add("MP Tenders", started_at=real_ago(hours=40), extracted_total_tenders=7)
    env = {"CLEANUP_RESUME_COMMAND": SLOW}

    first = cli_run("resume", str(run_id), "--json", env=env)
    assert first.returncode == 0, first.stderr
    launched = json.loads(first.stdout)
    assert launched["run_id"] == run_id and launched["launch_id"] >= 1
    assert launched["argv"][:2] == [sys.executable, "-c"]

    second = cli_run("resume", str(run_id), env=env)
    assert second.returncode == 1
    assert f"error: Run {run_id} is already being resumed by " in second.stderr
    assert f"(pid {launched['pid']}); wait until it heartbeats or 10 min pass" in second.stderr

    listed = cli_run("launches", "--run", str(run_id), "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)["launches"]
    assert (row["id"], row["state"], row["pid"]) == (
        launched["launch_id"],
        "starting",
        launched["pid"],
    )
    assert row["argv"] == launched["argv"] and row["exit_code"] is None
    deadline = time.monotonic() + 20
    while "scraping" not in (listed_tail := row["log_tail"]) and time.monotonic() < deadline:
        time.sleep(0.1)
        row = json.loads(cli_run("launches", "--run", str(run_id), "--json").stdout)["launches"][0]
    assert "scraping" in listed_tail

    table = cli_run("launches", "--portal", "MP Tenders")
    assert table.returncode == 0
    assert f"resume run {run_id}" in table.stdout and "starting" in table.stdout


def test_resume_in_words_says_how_to_follow_the_launch(runs, cli_run, tmp_path):
    run_id = runs.add("MP Tenders", started_at=real_ago(hours=40), extracted_total_tenders=7)
    out = tmp_path / "argv.json"
    command = f"{{python}} {shlex.quote(str(RECORDER))} {shlex.quote(str(out))} {{run_id}}"
    done = cli_run("resume", str(run_id), env={"CLEANUP_RESUME_COMMAND": command})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Launch 1: started process ")
    assert f"follow it: python -m cleanup_core launches --run {run_id} --tail" in done.stdout
    empty = cli_run("launches", "--run", "999")
    assert empty.returncode == 0 and "No launches recorded." in empty.stdout
