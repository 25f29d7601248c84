"""Crash: SIGKILL the real command line in the middle of a large ``clean --auto``.

The CLI cleans dead runs oldest first (by id) in batches of 500, each batch one transaction with
its audit events. Every run here is dead and nothing else touches them, so every batch that
commits cleans all 500 of its runs: after a kill at any instant, the cleaned runs must be exactly
the first ``k * 500`` runs by id, each with exactly one clean-up event, and none of the others may
have been touched. A second ``clean --auto`` then finishes the job.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlalchemy import insert, text

from cleanup_core import CLEANED, RUNNING
from cleanup_core.cli import BATCH_SIZE
from cleanup_core.models import Run
from tests.reliability.conftest import ROOT, child_env, real_ago

pytestmark = pytest.mark.slow

DEAD_RUNS = 40 * BATCH_SIZE + 137  # the last batch is a partial one
KILL_AFTER = (3 * BATCH_SIZE, 20 * BATCH_SIZE)  # cleaned runs seen before each kill


def add_dead_runs(service, count: int) -> list[int]:
    started = real_ago(hours=48)
    rows = [
        {"portal_name": f"Portal {i % 40:02d}", "status": RUNNING, "started_at": started}
        for i in range(count)
    ]
    with service.db.write() as conn:
        conn.execute(insert(Run.__table__), rows)
        return list(conn.execute(text("SELECT id FROM runs ORDER BY id")).scalars())


def cleaned_so_far(observer) -> int:
    with observer.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM run_events WHERE action = 'cleanup'")
        ).scalar_one()


def clean_auto(db_url: str, checkpoint_dir, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cleanup_core",
        "clean",
        "--auto",
        *extra,
        "--db",
        db_url,
        "--checkpoint-dir",
        str(checkpoint_dir),
    ]


def kill_midway(argv: list[str], observer, at_least: int) -> None:
    """Start the CLI, wait until ``at_least`` runs are cleaned, then SIGKILL its process group."""
    cli = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    try:
        while cleaned_so_far(observer) < at_least:
            if cli.poll() is not None:
                pytest.fail(f"the CLI ended before it was killed: {cli.stderr.read()!r}")
            if time.monotonic() > deadline:
                pytest.fail(f"fewer than {at_least} runs cleaned after 90 s")
            time.sleep(0.005)
    finally:
        os.killpg(cli.pid, signal.SIGKILL)
        cli.wait(30)
        cli.stderr.close()
    assert cli.returncode == -signal.SIGKILL


def audit(observer) -> tuple[dict[int, tuple], Counter]:
    with observer.connect() as conn:
        runs = {
            row.id: (row.status, row.completed_at)
            for row in conn.execute(text("SELECT id, status, completed_at FROM runs"))
        }
        events = Counter(
            conn.execute(text("SELECT run_id FROM run_events WHERE action = 'cleanup'")).scalars()
        )
        others = conn.execute(
            text("SELECT count(*) FROM run_events WHERE action <> 'cleanup'")
        ).scalar_one()
    assert others == 0
    return runs, events


def assert_consistent(observer, ids: list[int]) -> int:
    """Whole batches only, each cleaned run with exactly one event; returns how many."""
    runs, events = audit(observer)
    cleaned = [run_id for run_id in ids if runs[run_id][0] == CLEANED]
    assert len(cleaned) % BATCH_SIZE == 0, f"{len(cleaned)} cleaned: a half-applied batch"
    assert cleaned == ids[: len(cleaned)], "the cleaned runs are the first whole batches"
    assert all(runs[run_id][1] is not None for run_id in cleaned)
    untouched = ids[len(cleaned) :]
    assert all(runs[run_id] == (RUNNING, None) for run_id in untouched)
    assert set(events) == set(cleaned), "every cleaned run has its event, and only those"
    assert set(events.values()) <= {1}, "one event per cleaned run"
    return len(cleaned)


def test_sigkill_mid_clean_leaves_whole_batches_and_a_rerun_finishes(
    db_url, service, checkpoint_dir, observer
):
    ids = add_dead_runs(service, DEAD_RUNS)
    argv = clean_auto(db_url, checkpoint_dir)

    done = 0
    for at_least in KILL_AFTER:
        kill_midway(argv, observer, at_least)
        done = assert_consistent(observer, ids)
        assert at_least <= done < DEAD_RUNS, "killed in the middle"

    rerun = subprocess.run(
        clean_auto(db_url, checkpoint_dir, "--json"),
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads(rerun.stdout)
    assert result["message"] == f"Cleaned {DEAD_RUNS - done}/{DEAD_RUNS - done} dead runs"
    runs, events = audit(observer)
    assert all(runs[run_id][0] == CLEANED for run_id in ids)
    assert set(events) == set(ids) and set(events.values()) == {1}
