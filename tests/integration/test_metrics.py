"""Prometheus metrics through the real entry point, ``python -m cleanup_core metrics``: the text
parses with prometheus_client's parser and says what ``scan --json`` says about the same
database; hostile portal names survive the escaping; ``--listen`` serves fresh values over real
HTTP and lives through a database outage; the one-shot mode's errors are one line."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from cleanup_core import CleanupService, Settings
from cleanup_core.db import Database
from tests.conftest import BACKENDS
from tests.helpers.db_proxy import Proxy
from tests.helpers.metrics_fleet import (
    HOSTILE,
    STATES,
    by_label,
    parse_exposition,
    real_ago,
    runs_by_portal,
    seed_metrics_fleet,
)
from tests.reliability.conftest import ROOT, child_env

postgres_only = pytest.mark.parametrize(
    "db_url", [b for b in BACKENDS if b == "postgresql"], indirect=True
)
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
CLI = (sys.executable, "-m", "cleanup_core")
SERVING = re.compile(r"serving metrics on (http://127\.0\.0\.1:\d+/metrics)")


@pytest.fixture
def fleet(service, runs, checkpoint_dir):
    return seed_metrics_fleet(service, runs, checkpoint_dir)


def cli(db_url: str, checkpoint_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args, "--db", db_url, "--checkpoint-dir", str(checkpoint_dir)],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, start: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"error: {start}"), proc.stderr
    assert proc.stdout == ""


def states(**counts: int) -> dict[str, int]:
    return {state: counts.get(state, 0) for state in STATES}


# At 45 h, the runs dead, resumable or needing attention at 24 h but younger than 45 h are young.
AT_45_HOURS = {
    "Assam Tenders": states(young=2, alive=1),
    "MP Tenders": states(young=1, dead=1),
    HOSTILE: states(young=2),
    "West Bengal eTender": states(young=1),
}


@pytest.mark.parametrize("flags", [(), ("--age-hours", "45")], ids=["default", "age-hours"])
def test_the_metrics_say_what_scan_json_says(db_url, checkpoint_dir, fleet, flags):
    printed = cli(db_url, checkpoint_dir, "metrics", *flags)
    assert printed.returncode == 0, printed.stderr
    scanned = cli(db_url, checkpoint_dir, "scan", "--json", *flags)
    assert scanned.returncode == 0, scanned.stderr
    samples = parse_exposition(printed.stdout)
    scan = json.loads(scanned.stdout)

    by_portal = runs_by_portal(samples)
    assert by_portal == (AT_45_HOURS if flags else fleet.states)
    for state in STATES:
        total = sum(counts[state] for counts in by_portal.values())
        assert total == scan[f"{state}_count"], state
    oldest_listed: dict[str, float] = {}
    for state in ("resumable", "dead", "attention"):
        listed = Counter(run["portal_name"] for run in scan[f"{state}_runs"])
        counted = {portal: s[state] for portal, s in by_portal.items() if s[state]}
        assert counted == dict(listed), state
        for run in scan[f"{state}_runs"]:
            portal = run["portal_name"]
            oldest_listed[portal] = max(oldest_listed.get(portal, 0.0), run["age_hours"])
    oldest = by_label(samples, "cleanup_oldest_running_age_seconds", "portal")
    assert {portal: round(age / 3600) for portal, age in oldest.items()} == fleet.oldest_hours
    for portal, hours in oldest_listed.items():
        if round(hours) == fleet.oldest_hours[portal]:  # its oldest run is one scan lists
            assert oldest[portal] / 3600 == pytest.approx(hours, abs=0.05)
    assert samples[("cleanup_up", frozenset())] == 1
    assert samples[("cleanup_scan_duration_seconds", frozenset())] > 0


def test_events_and_the_monitor_match_history_and_status(db_url, checkpoint_dir, fleet):
    samples = parse_exposition(cli(db_url, checkpoint_dir, "metrics").stdout)
    assert by_label(samples, "cleanup_events_total", "action") == fleet.events
    for action, count in fleet.events.items():
        history = cli(db_url, checkpoint_dir, "history", "--json", "--action", action)
        assert json.loads(history.stdout)["total"] == count
    status = json.loads(cli(db_url, checkpoint_dir, "status", "--json").stdout)["monitor"]
    assert status["outcome"] == "ok"
    last_check = datetime.fromisoformat(status["last_check"]).timestamp()
    assert samples[("cleanup_monitor_last_cycle_timestamp_seconds", frozenset())] == pytest.approx(
        last_check, abs=1e-3
    )
    assert samples[("cleanup_monitor_last_cycle_ok", frozenset())] == 1
    assert samples[("cleanup_monitor_interval_seconds", frozenset())] == 1800


def test_a_hostile_portal_name_is_escaped_by_the_library(db_url, checkpoint_dir, fleet):
    text = cli(db_url, checkpoint_dir, "metrics").stdout
    for line in text.splitlines():
        assert line.startswith(("# ", "cleanup_")), f"a label broke a line: {line!r}"
    assert r'portal="Evil \"quoted\" \\ back\nslash ' in text
    samples = parse_exposition(text)
    assert runs_by_portal(samples)[HOSTILE] == fleet.states[HOSTILE]
    assert HOSTILE in by_label(samples, "cleanup_oldest_running_age_seconds", "portal")


def test_before_the_monitor_ever_ran_its_metrics_are_absent(db_url, checkpoint_dir, runs):
    runs.add("Assam Tenders", started_at=real_ago(hours=30))
    samples = parse_exposition(cli(db_url, checkpoint_dir, "metrics").stdout)
    names = {name for name, _ in samples}
    assert "cleanup_monitor_last_cycle_timestamp_seconds" not in names
    assert "cleanup_monitor_last_cycle_ok" not in names
    assert "cleanup_events_total" not in names  # no audit event yet
    assert runs_by_portal(samples) == {"Assam Tenders": states(dead=1)}


# -- errors of the one-shot mode ------------------------------------------------------------


def test_a_missing_database_file_is_one_line(tmp_path):
    missing = tmp_path / "nowhere" / "tenders.db"
    proc = cli(f"sqlite:///{missing}", tmp_path, "metrics")
    assert_one_line_error(proc, 1, f"The database file {missing} does not exist")
    assert not missing.parent.exists(), "nothing was created"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@postgres_only
def test_an_unreachable_server_is_one_line(db_url, checkpoint_dir):
    url = make_url(db_url).set(port=closed_port()).render_as_string(hide_password=False)
    proc = cli(url, checkpoint_dir, "metrics")
    assert_one_line_error(proc, 1, "Cannot reach the database server")


@sqlite_only
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--json",), "metrics prints Prometheus's text format; --json does not apply"),
        (("--listen", "9464"), "--listen wants HOST:PORT, e.g. 127.0.0.1:9464 (got '9464')"),
        (("--listen", ":9464"), "--listen wants HOST:PORT"),
        (("--listen", "127.0.0.1:http"), "--listen wants HOST:PORT"),
        (("--listen", "127.0.0.1:70000"), "--listen wants HOST:PORT"),
    ],
)
def test_usage_mistakes_are_refused(db_url, checkpoint_dir, fleet, args, message):
    proc = cli(db_url, checkpoint_dir, "metrics", *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"error: {message}"), proc.stderr


@sqlite_only
def test_a_port_in_use_is_one_line(db_url, checkpoint_dir, fleet):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = cli(db_url, checkpoint_dir, "metrics", "--listen", f"127.0.0.1:{port}")
    assert_one_line_error(proc, 1, f"cannot listen on 127.0.0.1:{port}: Address already in use")


# -- --listen over real HTTP ----------------------------------------------------------------


@dataclass
class Listener:
    url: str
    log: str = ""  # what it wrote on stderr after its first line, once it stopped

    def scrape(self):
        with urllib.request.urlopen(self.url, timeout=60) as response:  # noqa: S310 (loopback)
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            return parse_exposition(response.read().decode())


@contextmanager
def listening(db_url: str, checkpoint_dir: Path) -> Iterator[Listener]:
    """``metrics --listen 127.0.0.1:0`` (a free port) as its own process; its stderr (the log)
    is in ``log`` once the block ends."""
    process = subprocess.Popen(
        [
            *CLI,
            "metrics",
            "--listen",
            "127.0.0.1:0",
            "--db",
            db_url,
            "--checkpoint-dir",
            str(checkpoint_dir),
        ],
        cwd=ROOT,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    listener = Listener("")
    try:
        first = process.stderr.readline()
        found = SERVING.search(first)
        assert found, f"not serving: {first}"
        listener.url = found.group(1)
        yield listener
        assert process.poll() is None, "the server is still up"
    finally:
        process.terminate()
        _, listener.log = process.communicate(timeout=30)


def test_each_scrape_reads_the_database_anew(db_url, checkpoint_dir, service, fleet):
    with listening(db_url, checkpoint_dir) as listener:
        before = listener.scrape()
        assert runs_by_portal(before) == fleet.states
        cleaned = service.cleanup_runs(fleet.dead, actor="test").cleaned
        assert sorted(cleaned) == sorted(fleet.dead)
        after = listener.scrape()
    assert sum(s["dead"] for s in runs_by_portal(after).values()) == 0
    assert runs_by_portal(after)["MP Tenders"] == states(young=1)
    assert by_label(after, "cleanup_events_total", "action") == {"cleanup": 5, "revert": 1}
    assert "Traceback" not in listener.log


def test_listen_before_the_database_exists_then_after(tmp_path, checkpoint_dir):
    path = tmp_path / "later" / "tenders.db"
    url = f"sqlite:///{path}"
    with listening(url, checkpoint_dir) as listener:
        down = listener.scrape()
        assert down == {
            ("cleanup_up", frozenset()): 0,
            ("cleanup_scan_duration_seconds", frozenset()): down[
                ("cleanup_scan_duration_seconds", frozenset())
            ],
        }, "an outage reports cleanup_up 0 and nothing else"
        settings = Settings.load({}, database_url=url, checkpoint_dir=str(checkpoint_dir))
        seeder = CleanupService(settings, database=Database(settings, create_missing=True))
        seeder.init_database()
        seeder.db.dispose()
        up = listener.scrape()
    assert up[("cleanup_up", frozenset())] == 1
    assert runs_by_portal(up) == {}
    (error,) = [line for line in listener.log.splitlines() if "ERROR" in line]
    assert f"metrics: cannot read the runs: The database file {path} does not exist" in error
    assert "Traceback" not in listener.log


@pytest.fixture
def proxy(db_url):
    upstream = make_url(db_url)
    proxy = Proxy((upstream.host, upstream.port or 5432))
    proxy.start()
    yield proxy
    proxy.stop()


@postgres_only
def test_listen_lives_through_a_server_outage(db_url, checkpoint_dir, fleet, proxy):
    through = make_url(db_url).set(port=proxy.port).render_as_string(hide_password=False)
    with listening(through, checkpoint_dir) as listener:
        assert runs_by_portal(listener.scrape()) == fleet.states
        proxy.stop()
        down = listener.scrape()
        assert down[("cleanup_up", frozenset())] == 0
        assert {name for name, _ in down} == {"cleanup_up", "cleanup_scan_duration_seconds"}
        proxy.start()
        back = listener.scrape()
    assert back[("cleanup_up", frozenset())] == 1
    assert runs_by_portal(back) == fleet.states
    errors = [line for line in listener.log.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "metrics: cannot read the runs: Cannot reach" in errors[0]
    assert "Traceback" not in listener.log
