"""The README's "Prometheus and Grafana" section, run as written: the print-and-serve commands
in bash from the checkout, the textfile collector's cron line, the prometheus.yml (checked by
``promtool check config``) and the rules' unit test command (with the example paths pointed
here and the port a free one)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TZ
from tests.helpers.metrics_fleet import parse_exposition, runs_by_portal, seed_metrics_fleet

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SECTION = README[README.index("## Prometheus and Grafana") : README.index("## How a run is judged")]
EXAMPLE_ROOT = "/opt/tender-cleanup"
TEXTFILE_DIR = "/var/lib/node_exporter/textfile_collector"

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def block(language: str) -> str:
    (found,) = re.findall(rf"```{language}\n(.*?)```", SECTION, flags=re.DOTALL)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def shell_env(db_url: str, checkpoint_dir: Path) -> dict[str, str]:
    """The operator's shell: the venv activated, the database and checkpoints configured (and
    the zone the fixtures wrote naive times in)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CLEANUP_")}
    return env | {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        "PYTHONPATH": str(ROOT),
        "CLEANUP_DATABASE_URL": db_url,
        "CLEANUP_CHECKPOINT_DIR": str(checkpoint_dir),
        "CLEANUP_TIMEZONE": TZ,
    }


@sqlite_only
def test_print_and_serve_run_as_written(db_url, checkpoint_dir, service, runs):
    fleet = seed_metrics_fleet(service, runs, checkpoint_dir)
    port = free_port()
    script = block("bash").replace("9464", str(port))
    assert script.count(str(port)) == 2
    proc = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=ROOT,
        env=shell_env(db_url, checkpoint_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dead = [line for line in proc.stdout.splitlines() if 'state="dead"' in line]
    expected = sum(states["dead"] for states in fleet.states.values())
    assert len(dead) == len(fleet.states), "one line per portal with running runs"
    assert sum(float(line.rsplit(" ", 1)[1]) for line in dead) == expected
    assert "cleanup_up 1.0" in proc.stdout
    assert f"serving metrics on http://127.0.0.1:{port}/metrics" in proc.stderr


@sqlite_only
def test_the_textfile_cron_line_writes_the_file_atomically(
    db_url, checkpoint_dir, service, runs, tmp_path
):
    fleet = seed_metrics_fleet(service, runs, checkpoint_dir)
    lines = [line for line in block("cron").splitlines() if line.strip()]
    setting, job = lines
    name, value = setting.split("=", 1)
    assert (name, value) == ("CLEANUP_DATABASE_URL", f"sqlite:///{EXAMPLE_ROOT}/data/tenders.db")
    command = job.split(None, 5)[5]
    textfile_dir = tmp_path / "textfile_collector"
    textfile_dir.mkdir()
    command = command.replace(TEXTFILE_DIR, str(textfile_dir)).replace(
        f"{EXAMPLE_ROOT}/.venv/bin/python", shlex.quote(sys.executable)
    )
    env = {**shell_env(db_url, checkpoint_dir), "CLEANUP_DATABASE_URL": db_url}

    def run(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", "-c", command], env=environment, capture_output=True, text=True, timeout=120
        )

    done = run(env)
    assert done.returncode == 0, done.stderr
    assert [path.name for path in textfile_dir.iterdir()] == ["tender_cleanup.prom"]
    written = (textfile_dir / "tender_cleanup.prom").read_text()
    assert runs_by_portal(parse_exposition(written)) == fleet.states

    broken = run({**env, "CLEANUP_DATABASE_URL": f"sqlite:///{tmp_path}/missing.db"})
    assert broken.stdout == ""
    assert broken.stderr.startswith("error: The database file"), broken.stderr
    assert broken.stderr.count("\n") == 1, "cron mails the output: one line"
    assert [path.name for path in textfile_dir.iterdir()] == ["tender_cleanup.prom"]
    assert (textfile_dir / "tender_cleanup.prom").read_text() == written, "the old file stays"


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    assert path, "promtool is missing: install Debian's prometheus package (scripts/test.sh does)"
    return subprocess.run([path, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_the_prometheus_config_passes_promtool(tmp_path):
    token = tmp_path / "tender-cleanup.token"
    token.write_text("7f3a9c-metrics-scrape-token\n")
    config = (
        block("yaml")
        .replace(f"{EXAMPLE_ROOT}/examples", str(ROOT / "examples"))
        .replace("/etc/prometheus/tender-cleanup.token", str(token))
    )
    path = tmp_path / "prometheus.yml"
    path.write_text(config)
    checked = promtool("check", "config", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout


def test_the_rules_unit_test_command_runs_as_written():
    (command,) = re.findall(r"`(promtool test rules [^`]+)`", SECTION)
    assert command.startswith("promtool ")
    args = shlex.split(command)[1:]
    tested = promtool(*args)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
