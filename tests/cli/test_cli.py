"""The command line through its real entry point: click's runner in-process, a subprocess for
``python -m cleanup_core``, and a pseudo-terminal (pexpect) for the prompts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pexpect
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, insert, text

from cleanup_core import CLEANED
from cleanup_core.cli import cli
from cleanup_core.models import Tender
from tests.conftest import TZ

ROOT = Path(__file__).resolve().parents[2]


def real_ago(**delta: float) -> datetime:
    """The CLI judges by the real clock, so these rows are placed relative to it."""
    return datetime.now(UTC) - timedelta(**delta)


@pytest.fixture
def fleet(runs):
    return {
        "dead1": runs.add("Assam Tenders", started_at=real_ago(hours=30)),
        "dead2": runs.add("MP Tenders", started_at=real_ago(hours=50)),
        "resumable": runs.add(
            "MP Tenders", started_at=real_ago(hours=40), extracted_total_tenders=7
        ),
        "young": runs.add("Kerala", started_at=real_ago(hours=2)),
        "alive": runs.add(
            "Gujarat", started_at=real_ago(hours=90), last_heartbeat_at=real_ago(minutes=1)
        ),
        "done": runs.add("Assam Tenders", status="completed", started_at=real_ago(hours=80)),
    }


@pytest.fixture
def invoke(db_url, checkpoint_dir):
    """Run a command in-process with the test database and checkpoint folder."""

    def run(*args: str, input: str | None = None):
        argv = [*args, "--db", db_url, "--checkpoint-dir", str(checkpoint_dir)]
        runner = CliRunner(env={"CLEANUP_TIMEZONE": TZ})
        return runner.invoke(cli, argv, input=input, catch_exceptions=False)

    return run


@pytest.fixture
def command(db_url, checkpoint_dir):
    """The argv of ``python -m cleanup_core`` against the test database."""

    def argv(*args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "cleanup_core",
            *args,
            "--db",
            db_url,
            "--checkpoint-dir",
            str(checkpoint_dir),
        ]

    return argv


def child_env() -> dict[str, str]:
    # The rows were written with naive times in TZ; the CLI must read them in the same zone.
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", "CLEANUP_TIMEZONE": TZ}


def snapshot(db_url: str) -> tuple[list, list]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        runs = conn.execute(text("SELECT * FROM runs ORDER BY id")).all()
        events = conn.execute(text("SELECT * FROM run_events ORDER BY id")).all()
    engine.dispose()
    return runs, events


def statuses(runs, fleet) -> dict[str, str]:
    return {name: runs.get(run_id)["status"] for name, run_id in fleet.items()}


# -- scan -----------------------------------------------------------------------------------


def test_scan_shows_resumable_and_dead_tables(invoke, fleet):
    result = invoke("scan")
    assert result.exit_code == 0
    out = result.output
    resumable, dead = out.index("Resumable runs"), out.index("Dead runs")
    section = out[dead : out.index("Needs attention")]
    assert f"│ {fleet['dead1']} " in section or f"{fleet['dead1']} │" in section
    assert "Assam Tenders" in section and "MP Tenders" in section
    assert "no progress" in section
    assert "MP Tenders" in out[resumable:dead]
    assert "Running: 5" in out and "dead: 2" in out and "total stuck: 3" in out


def test_counters_never_recorded_are_a_dash_and_null_not_zero(invoke, runs):
    """NULL counters: a dash in the table (as on the dashboard), null in JSON, and the reason says
    no progress was recorded; stored zeros stay 0."""
    unknown = runs.add("Null Portal", started_at=real_ago(hours=30), extracted_total_tenders=None)
    zeros = runs.add(
        "Zero Portal",
        started_at=real_ago(hours=30),
        extracted_total_tenders=0,
        skipped_existing_total=0,
    )
    out = invoke("scan").output
    line = next(text for text in out.splitlines() if "Null Portal" in text)
    assert line.count("–") == 2 and " 0 " not in line, line
    assert "no progress recorded" in out
    zero_line = next(text for text in out.splitlines() if "Zero Portal" in text)
    assert "–" not in zero_line and "no progress: 0 extracted, 0 skipped" in zero_line
    data = json.loads(invoke("scan", "--json").stdout)
    by_id = {run["id"]: run for run in data["dead_runs"]}
    assert by_id[unknown]["extracted_total_tenders"] is None
    assert by_id[unknown]["skipped_existing_total"] is None
    assert by_id[zeros]["extracted_total_tenders"] == 0


def test_scan_json_matches_the_service_summary(invoke, service, fleet):
    result = invoke("scan", "--json")
    data = json.loads(result.stdout)
    expected = service.scan().to_dict()
    assert [r["id"] for r in data["dead_runs"]] == [r["id"] for r in expected["dead_runs"]]
    assert [r["id"] for r in data["resumable_runs"]] == [fleet["resumable"]]
    for key in ("total_stuck", "dead_count", "resumable_count", "running_count"):
        assert data[key] == expected[key]
    assert data["dead_runs"][0]["reasons"][0]["rule"]


def test_scan_age_hours_changes_the_split(invoke, fleet):
    data = json.loads(invoke("scan", "--json", "--age-hours", "45").stdout)
    assert [r["id"] for r in data["dead_runs"]] == [fleet["dead2"]]
    assert data["age_threshold_hours"] == 45


# -- clean ----------------------------------------------------------------------------------


def test_dry_run_changes_nothing(invoke, db_url, fleet):
    before = snapshot(db_url)
    result = invoke("clean", "--dry-run")
    assert result.exit_code == 0
    assert "Dry run: 2 dead runs would be cleaned; nothing was changed." in result.output
    assert snapshot(db_url) == before
    data = json.loads(invoke("clean", "--dry-run", "--json").stdout)
    assert sorted(r["id"] for r in data["dead_runs"]) == sorted([fleet["dead1"], fleet["dead2"]])
    assert snapshot(db_url) == before


def test_dry_run_json_is_the_scan_document_plus_the_flag(invoke, fleet):
    """``scan`` is "the same as clean --dry-run": the same document, with ``dry_run``."""
    scan = json.loads(invoke("scan", "--json").stdout)
    dry = json.loads(invoke("clean", "--dry-run", "--json").stdout)
    assert dry.pop("dry_run") is True
    assert set(dry) == set(scan)
    for key, value in scan.items():
        if key.endswith("_runs"):  # the same runs, judged the same (their ages move on)
            assert [(r["id"], r["state"]) for r in dry[key]] == [
                (r["id"], r["state"]) for r in value
            ]
        elif key != "checked_at":
            assert dry[key] == value, key


def test_auto_cleans_exactly_the_dead_runs(invoke, runs, fleet):
    result = invoke("clean", "--auto")
    assert result.exit_code == 0
    assert "Cleaned 2/2 dead runs" in result.output
    assert statuses(runs, fleet) == {
        "dead1": CLEANED,
        "dead2": CLEANED,
        "resumable": "running",
        "young": "running",
        "alive": "running",
        "done": "completed",
    }
    assert runs.count("run_events", "action = 'cleanup'") == 2
    again = json.loads(invoke("clean", "--auto", "--json").stdout)
    assert again["cleaned"] == [] and again["message"] == "Cleaned 0/0 dead runs"


def test_auto_from_the_real_entry_point_for_a_scheduler(command, runs, fleet):
    proc = subprocess.run(
        command("clean", "--auto", "--json"),
        capture_output=True,
        text=True,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert sorted(data["cleaned"]) == sorted([fleet["dead1"], fleet["dead2"]])
    assert data["message"] == "Cleaned 2/2 dead runs"


def test_clean_without_a_terminal_refuses_instead_of_waiting(command, db_url, fleet):
    before = snapshot(db_url)
    proc = subprocess.run(
        command("clean"),
        capture_output=True,
        text=True,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no terminal to ask on: use --auto")
    assert "Traceback" not in proc.stderr
    assert snapshot(db_url) == before


def test_auto_and_dry_run_together_is_a_usage_error(invoke, db_url, fleet):
    before = snapshot(db_url)
    result = invoke("clean", "--auto", "--dry-run")
    assert result.exit_code == 2
    assert "contradict" in result.stderr
    assert snapshot(db_url) == before


def spawn(argv: list[str], **kwargs) -> pexpect.spawn:
    return pexpect.spawn(
        argv[0],
        argv[1:],
        env=child_env(),
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 200),
        **kwargs,
    )


def test_interactive_clean_on_a_terminal(command, runs, fleet):
    child = spawn(command("clean"))
    child.expect("What should happen to the 2 dead runs")
    child.expect(r"Choice \(1, 2, 3\)")
    child.sendline("1")
    child.expect("Cleaned 2/2 dead runs")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert statuses(runs, fleet)["dead1"] == CLEANED


def test_interactive_cancel_changes_nothing(command, db_url, fleet):
    before = snapshot(db_url)
    child = spawn(command("clean"))
    child.expect(r"Choice \(1, 2, 3\)")
    child.sendline("3")
    child.expect("Cancelled; nothing was changed.")
    child.expect(pexpect.EOF)
    assert snapshot(db_url) == before


def test_interactive_delete_needs_the_typed_count(command, db_url, runs, fleet):
    before = snapshot(db_url)
    child = spawn(command("clean"))
    child.expect(r"Choice \(1, 2, 3\)")
    child.sendline("2")
    child.expect(r"Type the number of runs to delete \(2\) to confirm")
    child.sendline("yes")
    child.expect("Not confirmed; nothing was deleted.")
    child.expect(pexpect.EOF)
    assert snapshot(db_url) == before

    # A tender stored under dead1 is progress: dead1 is resumable now, not offered.
    with runs.service.db.write() as conn:
        conn.execute(insert(Tender.__table__).values(run_id=fleet["dead1"], tender_id="T1"))
    child = spawn(command("clean"))
    child.expect(r"Choice \(1, 2, 3\)")
    child.sendline("2")
    child.expect(r"to delete \(1\) to confirm")
    child.sendline("1")
    child.expect("Deleted 1/1 dead run records")
    child.expect(pexpect.EOF)
    assert runs.get(fleet["dead1"])["status"] == "running"
    assert runs.get(fleet["dead2"]) is None
    assert runs.get(fleet["resumable"])["status"] == "running"
    assert runs.count("tenders") == 1
    assert runs.count("run_events", "action = 'delete'") == 1


def test_ctrl_c_at_the_prompt_changes_nothing(command, db_url, fleet):
    before = snapshot(db_url)
    child = spawn(command("clean"))
    child.expect(r"Choice \(1, 2, 3\)")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130 or child.signalstatus == signal.SIGINT
    assert snapshot(db_url) == before


def test_a_large_clean_shows_progress_on_a_terminal_only(command, runs):
    for _ in range(1100):
        runs.add("Bulk Portal", started_at=real_ago(hours=30))
    child = spawn(command("clean", "--auto"))
    child.expect("cleaning")
    child.expect("Cleaned 1100/1100 dead runs")
    child.expect(pexpect.EOF)
    assert runs.count("runs", f"status = '{CLEANED}'") == 1100
    assert runs.count("run_events") == 1100


# -- status, check ----------------------------------------------------------------------------


def test_status_counts_and_fail_if_dead(invoke, fleet):
    result = invoke("status")
    assert result.exit_code == 0
    assert "Dead runs: 2" in result.output and "Resumable runs: 1" in result.output
    words = " ".join(result.output.split())  # however the console wrapped the lines
    assert "The monitor has never run." in words
    assert 'Start it with "python -m cleanup_core watch"' in words  # says how to start it
    assert invoke("status", "--fail-if-dead").exit_code == 3
    data = json.loads(invoke("status", "--json").stdout)
    assert (data["dead_count"], data["resumable_count"], data["running_count"]) == (2, 1, 5)
    invoke("clean", "--auto")
    assert invoke("status", "--fail-if-dead").exit_code == 0


@pytest.mark.parametrize("asked", ["gujarat", "Gujarat ", "GUJARAT"])
def test_check_of_a_variant_name_is_the_stored_portals_verdict(invoke, fleet, asked):
    """Same checkpoint file, same config section: the same portal, named as stored."""
    result = invoke("check", asked)
    assert result.exit_code == 0
    assert result.output.startswith(f"wait: run {fleet['alive']} is alive")
    assert f"portal: Gujarat (asked for {asked!r})" in result.output
    data = json.loads(invoke("check", asked, "--json").stdout)
    assert (data["action"], data["portal_name"], data["requested_name"]) == (
        "wait",
        "Gujarat",
        asked,
    )


def test_check_prints_the_verdict_and_its_reason(invoke, service, fleet):
    result = invoke("check", "MP Tenders")
    assert result.exit_code == 0
    assert result.output.startswith("resume: run ")
    assert "made progress: 7 extracted" in result.output
    assert invoke("check", "Nowhere").output.startswith("start: no running run for 'Nowhere'")
    assert invoke("check", "Gujarat").output.startswith("wait: run ")
    data = json.loads(invoke("check", "Assam Tenders", "--json").stdout)
    expected = service.check_portal("Assam Tenders").to_dict()
    assert (data["action"], data["run_id"], data["run_ids"]) == (
        expected["action"],
        expected["run_id"],
        expected["run_ids"],
    )


# -- revert, history, delete ----------------------------------------------------------------


def test_revert_round_trip_and_its_errors(invoke, runs, fleet):
    invoke("clean", "--auto")
    result = invoke("revert", str(fleet["dead1"]))
    assert result.exit_code == 0
    assert f"Reverted the clean-up of run {fleet['dead1']}: it is running again" in result.output
    assert runs.get(fleet["dead1"])["status"] == "running"
    again = invoke("revert", str(fleet["dead1"]))
    assert again.exit_code == 1
    assert "already reverted" in again.stderr
    assert invoke("revert", str(fleet["young"])).stderr.strip().endswith("never cleaned up")
    unknown = invoke("revert", "987654")
    assert (unknown.exit_code, unknown.stderr.strip()) == (
        1,
        "error: Nothing to revert for run 987654: there is no such run",
    )
    assert invoke("revert", "abc").exit_code == 2


def test_history_newest_first_with_filters(invoke, fleet):
    invoke("clean", "--auto")
    invoke("revert", str(fleet["dead2"]))
    data = json.loads(invoke("history", "--json").stdout)
    assert data["total"] == 3
    assert [e["action"] for e in data["events"]] == ["revert", "cleanup", "cleanup"]
    mp = json.loads(invoke("history", "--portal", "MP Tenders", "--json").stdout)
    assert {e["run_id"] for e in mp["events"]} == {fleet["dead2"]}
    assert len(json.loads(invoke("history", "--limit", "1", "--json").stdout)["events"]) == 1
    table = invoke("history").output
    assert "Audit trail (3 of 3)" in table and "revert" in table
    assert invoke("history", "--limit", "0").exit_code == 2


def test_delete_refuses_running_runs_and_keeps_tenders(invoke, runs, fleet):
    with runs.service.db.write() as conn:
        conn.execute(insert(Tender.__table__).values(run_id=fleet["done"], tender_id="T9"))
    refused = invoke("delete", str(fleet["done"]), str(fleet["dead1"]), "--yes")
    assert refused.exit_code == 1
    assert f"Run {fleet['dead1']} is still running" in refused.stderr
    assert runs.get(fleet["done"]) is not None
    no_tty = invoke("delete", str(fleet["done"]))
    assert no_tty.exit_code == 2 and "--yes" in no_tty.stderr
    assert runs.get(fleet["done"]) is not None
    done = invoke("delete", str(fleet["done"]), "--yes", "--json")
    assert json.loads(done.stdout) == {"deleted": 1, "run_ids": [fleet["done"]]}
    assert runs.get(fleet["done"]) is None
    assert runs.count("tenders") == 1
    missing = invoke("delete", "555555", "--yes")
    assert (missing.exit_code, missing.stderr.strip()) == (1, "error: No run with id 555555.")


def store_tenders(runs, run_id: int, count: int, prefix: str = "T") -> None:
    with runs.service.db.write() as conn:
        conn.execute(
            insert(Tender.__table__),
            [
                {"run_id": run_id, "portal_name": "Assam Tenders", "tender_id": f"{prefix}{i}"}
                for i in range(count)
            ],
        )


def test_clean_auto_leaves_a_crashed_run_that_stored_tenders(invoke, runs, fleet):
    """500 tenders stored, counters 0, no checkpoint: resumable, never cleaned."""
    crashed = runs.add("Assam Tenders", started_at=real_ago(hours=48), extracted_total_tenders=0)
    store_tenders(runs, crashed, 500)
    scan = invoke("scan").output
    resumable = scan[scan.index("Resumable runs") : scan.index("Dead runs")]
    assert f"{crashed} " in resumable and "500 tenders stored" in resumable
    result = invoke("clean", "--auto")
    assert "Cleaned 2/2 dead runs" in result.output
    assert runs.get(crashed)["status"] == "running"
    assert "note:" not in result.output


def replace_tenders_without_run_id(runs) -> None:
    with runs.service.db.write() as conn:
        conn.execute(text("DROP TABLE tenders"))
        conn.execute(text("CREATE TABLE tenders (id INTEGER PRIMARY KEY, tender_id TEXT)"))


def test_a_tenders_table_without_run_id_is_noted_once_never_an_error(invoke, runs, fleet):
    replace_tenders_without_run_id(runs)
    note = "stored tenders are not progress evidence here"
    for args in (("scan",), ("status",), ("clean", "--dry-run")):
        result = invoke(*args)
        assert result.exit_code == 0, (args, result.output)
        assert result.output.count(note) == 1, (args, result.output)
    for args in (("scan", "--json"), ("status", "--json"), ("clean", "--dry-run", "--json")):
        data = json.loads(invoke(*args).stdout)
        notes = data["notes"] if "notes" in data else data["summary"]["notes"]
        assert len(notes) == 1 and note in notes[0], args
    cleaned = invoke("clean", "--auto")
    assert cleaned.output.count(note) == 1
    assert "Cleaned 2/2 dead runs" in cleaned.output
    assert json.loads(invoke("clean", "--auto", "--json").stdout)["notes"] == []


def test_history_shows_a_deleted_runs_events_as_the_deleted_runs(invoke, runs, fleet, backend):
    invoke("clean", "--auto")
    deleted = fleet["dead2"]
    assert invoke("delete", str(deleted), "--yes").exit_code == 0
    reused = runs.add("Kerala", id=deleted, status="completed", started_at=real_ago(hours=1))
    assert reused == deleted  # a legacy scraper inserted a run under the freed id
    table = invoke("history").output
    assert f"{deleted} (deleted)" in table
    data = json.loads(invoke("history", "--json").stdout)
    mine = [e for e in data["events"] if e["run_id"] == deleted]
    assert [(e["action"], e["run_deleted"]) for e in mine] == [
        ("delete", True),
        ("cleanup", True),
    ]
    assert json.loads(invoke("history", "--run", str(deleted), "--json").stdout) == {
        "total": 0,
        "events": [],
    }


def test_delete_then_demo_never_costs_the_deleted_runs_data(command, runs, fleet, backend):
    """The reproduction, through the real entry point: run 2's tenders are kept by `delete`;
    SQLite gives id 2 to a demo run; reloading the demo used to delete them with its own."""
    done = fleet["done"]  # the newest run, so SQLite hands its id out again
    store_tenders(runs, done, 50, prefix="REAL-")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            command(*args), capture_output=True, text=True, env=child_env(), timeout=120
        )
        assert proc.returncode == 0, (args, proc.stderr)
        return proc

    run("delete", str(done), "--yes")
    (delete_event,) = json.loads(run("history", "--action", "delete", "--json").stdout)["events"]
    assert (delete_event["run_id"], delete_event["run_deleted"]) == (done, True)
    first = json.loads(run("demo", "--force", "--json").stdout)
    demo_ids = {i for ids in first["runs"].values() for i in ids}
    if backend == "sqlite":
        assert done in demo_ids, "SQLite reused the deleted run's id for a demo run"
    run("demo", "--force")
    run("demo", "--force")
    assert runs.count("tenders", f"run_id = {done} AND tender_id LIKE 'REAL-%'") == 50
    events = json.loads(run("history", "--limit", "1000", "--json").stdout)["events"]
    assert next(e for e in events if e["id"] == delete_event["id"]) == delete_event
    own = json.loads(run("history", "--run", str(done), "--json").stdout)["events"]
    assert all(not e["run_deleted"] and e["actor"].startswith("worker:demo:") for e in own)


def test_delete_with_a_typed_confirmation(command, runs, fleet):
    child = spawn(command("delete", str(fleet["done"])))
    child.expect(r"Type the number of runs \(1\) to confirm")
    child.sendline("1")
    child.expect("Deleted 1 run records")
    child.expect(pexpect.EOF)
    assert runs.get(fleet["done"]) is None


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["scan", "--age-hours", "abc"], 2, "--age-hours must be a positive, finite number"),
        (["scan", "--age-hours", "-3"], 2, "--age-hours must be a positive, finite number"),
        (["scan", "--age-hours", "0"], 2, "--age-hours must be a positive, finite number"),
        (["scan", "--age-hours", "nan"], 2, "--age-hours must be a positive, finite number"),
        (["clean", "--auto", "--age-hours", "1e11"], 2, "at most 87600, got '1e11'"),
        (["scan", "--age-hours", "1e400"], 2, "at most 87600"),
        (["scan", "--age-hours", "6"], 2, "false positives"),
        (["scan", "--age-hours", "1e-300", "--force"], 2, "at least one millisecond"),
        (["revert", "99999999999999999999"], 2, "a run id is a whole number from 1 to"),
        (["revert", "9223372036854775808"], 2, "a run id is a whole number from 1 to"),
        (["resume", "99999999999999999999"], 2, "a run id is a whole number from 1 to"),
        (["delete", "1", "99999999999999999999", "--yes"], 2, "a run id is a whole number"),
        (["history", "--run", "99999999999999999999"], 2, "a run id is a whole number"),
        (["revert", "0"], 2, "a run id is a whole number from 1 to"),
        (["revert", "1e3"], 2, "a run id is a whole number from 1 to"),
        (["revert", "9" * 5000], 2, "a run id is a whole number from 1 to"),
        (["history", "--limit", "99999999999999999999"], 2, "not in the range 1<=x<=1000"),
        (["history", "--limit", "1e400"], 2, "'1e400' is not a valid integer"),
        (["scan", "--bogus"], 2, "No such option '--bogus'"),
        (["frobnicate"], 2, "No such command 'frobnicate'"),
        (["check"], 2, "Missing argument 'PORTAL'"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(command, fleet, args, code, message):
    proc = subprocess.run(
        command(*args), capture_output=True, text=True, env=child_env(), timeout=60
    )
    assert proc.returncode == code
    assert message in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: ")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CLEANUP_HEARTBEAT_TIMEOUT_MINUTES", "1e20"),
        ("CLEANUP_AGE_THRESHOLD_HOURS", "1e400"),
        ("CLEANUP_BUSY_TIMEOUT_SECONDS", "1e-300"),
        ("CLEANUP_MAX_CHECKPOINT_MB", "1e309"),
        ("CLEANUP_MONITOR_INTERVAL_MINUTES", "-1e400"),
    ],
)
def test_out_of_range_settings_are_one_line_with_exit_code_2(command, fleet, name, value):
    env = {**child_env(), name: value}
    proc = subprocess.run(command("status"), capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"error: {name}: must be a positive")
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert value in proc.stderr


def test_a_long_bad_run_id_is_shown_shortened(command, fleet):
    proc = subprocess.run(
        command("revert", "9" * 5000), capture_output=True, text=True, env=child_env(), timeout=60
    )
    assert proc.returncode == 2
    assert len(proc.stderr) < 300, proc.stderr


def test_force_allows_a_short_threshold(invoke, fleet):
    result = invoke("scan", "--json", "--age-hours", "6", "--force")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["age_threshold_hours"] == 6


def test_missing_database_is_one_clear_line(tmp_path):
    argv = [sys.executable, "-m", "cleanup_core", "scan", "--db", f"sqlite:///{tmp_path}/no.db"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=child_env(), timeout=60)
    assert proc.returncode == 1
    assert proc.stderr == (
        f"error: The database file {tmp_path}/no.db does not exist. Check CLEANUP_DATABASE_URL "
        "(or --db); to start a new database there run `python -m cleanup_core init`, or load a "
        "demo fleet with `python -m cleanup_core demo`.\n"
    )
    assert not (tmp_path / "no.db").exists()


def test_unreadable_config_file(tmp_path, fleet, command):
    bad = tmp_path / "bad.toml"
    bad.write_text("age_threshold_hours = [oops")
    proc = subprocess.run(
        command("scan", "--config", str(bad)),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: CLEANUP_CONFIG file {bad}: cannot be read")
    assert "Traceback" not in proc.stderr


def test_verbose_shows_the_traceback(tmp_path):
    argv = [
        sys.executable,
        "-m",
        "cleanup_core",
        "scan",
        "-v",
        "--db",
        f"sqlite:///{tmp_path}/no.db",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, env=child_env(), timeout=60)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].startswith("error: The database file")


def test_locked_database_is_a_clear_error(command, db_url, backend, runs, fleet):
    engine = create_engine(db_url)
    conn = engine.connect()
    if backend == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.execute(text("LOCK TABLE runs IN EXCLUSIVE MODE"))
    try:
        env = {**child_env(), "CLEANUP_BUSY_TIMEOUT_SECONDS": "0.5"}
        proc = subprocess.run(
            command("clean", "--auto"), capture_output=True, text=True, env=env, timeout=60
        )
    finally:
        conn.rollback()
        conn.close()
        engine.dispose()
    assert proc.returncode == 1
    assert "is locked: another process held its write lock" in proc.stderr
    assert "Nothing was changed" in proc.stderr
    assert runs.count("run_events") == 0
    assert runs.get(fleet["dead1"])["status"] == "running"


def test_json_keeps_stdout_clean_and_logs_on_stderr(command, fleet):
    proc = subprocess.run(
        command("clean", "--auto", "--json", "-v"),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["message"] == "Cleaned 2/2 dead runs"
    assert f"cleaned run {fleet['dead1']}" in proc.stderr


def test_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"])
    for name in ("scan", "clean", "status", "check", "revert", "history", "delete"):
        assert f"  {name} " in result.output
    clean_help = CliRunner().invoke(cli, ["clean", "--help"]).output
    for option in (
        "--auto",
        "--dry-run",
        "--db",
        "--checkpoint-dir",
        "--config",
        "--age-hours",
        "--force",
        "--json",
        "--verbose",
    ):
        assert option in clean_help


def test_admin_unlock_lifts_a_login_lockout(invoke, service):
    from cleanup_core.accounts import Accounts, LoginThrottle
    from cleanup_core.errors import LoginThrottledError

    password = "correct horse battery staple"
    assert invoke("init").exit_code == 0
    assert invoke("admin", "create", "alice", "--password-stdin", input=password).exit_code == 0
    strict = Accounts(service.db, throttle=LoginThrottle(delay_after=1, lockout_after=1))
    assert strict.log_in("alice", "a wrong guess", client="203.0.113.7") is None
    with pytest.raises(LoginThrottledError):
        strict.log_in("alice", password, client="198.51.100.2")

    result = invoke("admin", "unlock", "alice")

    assert result.exit_code == 0
    assert "Cleared the failed logins of 'alice'" in result.output
    assert strict.log_in("alice", password, client="198.51.100.2") is not None
    unknown = invoke("admin", "unlock", "nobody")
    assert unknown.exit_code != 0 and "No user 'nobody'" in unknown.output
