"""Database down: the PostgreSQL server goes away (a TCP proxy in front of it is switched off:
it stops listening and cuts every open connection) or was never reachable, or the SQLite file
is missing or is not a database.

The command line says so in one line and exits 1; the library raises ``DatabaseUnavailableError``;
the monitor loop logs it and carries on; and a service object that lived through the outage
works again as soon as the server is back, without being recreated.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import pytest
from sqlalchemy import text, update
from sqlalchemy.engine import make_url

from cleanup_core import (
    CleanupError,
    CleanupService,
    DatabaseError,
    DatabaseUnavailableError,
    Settings,
    alerts,
    track_run,
)
from cleanup_core.alerts import Monitor, run_forever
from cleanup_core.db import Database
from cleanup_core.models import Run
from tests.conftest import BACKENDS
from tests.helpers.db_proxy import Proxy
from tests.reliability.conftest import ROOT, LogRecords, child_env, claim, real_ago, wait_for

UNREACHABLE = "Cannot reach the database server"
postgres_only = pytest.mark.parametrize(
    "db_url", [b for b in BACKENDS if b == "postgresql"], indirect=True
)
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def proxy(db_url):
    upstream = make_url(db_url)
    proxy = Proxy((upstream.host, upstream.port or 5432))
    proxy.start()
    yield proxy
    proxy.stop()


def through(db_url: str, port: int) -> str:
    return make_url(db_url).set(port=port).render_as_string(hide_password=False)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cleanup_core", *args, "--db", database_url],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line(proc: subprocess.CompletedProcess, message: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"error: {message}"), proc.stderr


@postgres_only
def test_the_command_line_with_the_server_down(db_url, service, proxy):
    service.scan()
    url = through(db_url, proxy.port)
    assert cli(url, "status").returncode == 0, "works through the proxy"
    proxy.stop()
    location = make_url(url).render_as_string(hide_password=True)
    for args in (("status",), ("clean", "--auto")):
        assert_one_line(cli(url, *args), f"{UNREACHABLE} {location}: ")


def cut_in_the_middle_of_a_transaction(service: CleanupService, proxy: Proxy, run_id: int) -> None:
    with service.db.write() as conn:
        table = Run.__table__
        conn.execute(update(table).where(table.c.id == run_id).values(worker_id="half"))
        proxy.stop()
        conn.execute(text("SELECT 1"))


@postgres_only
def test_a_long_lived_service_raises_then_recovers(db_url, settings, runs, proxy):
    dead = runs.add("Assam Tenders", started_at=real_ago(hours=30))
    proxied = settings.with_overrides(database_url=through(db_url, proxy.port))
    service = CleanupService(proxied, database=Database(proxied))
    assert [v.run_id for v in service.scan().dead] == [dead]

    # A restart while the service is idle: its pooled connections are dead, and the next call
    # does not notice (each connection is checked before it is used).
    proxy.stop()
    proxy.start()
    assert [v.run_id for v in service.scan().dead] == [dead]

    proxy.stop()
    for call in (
        service.scan,
        lambda: service.check_portal("Assam Tenders"),
        lambda: service.cleanup_run(dead),
        lambda: claim("MP Tenders", service=service),
    ):
        with pytest.raises(DatabaseUnavailableError, match=UNREACHABLE) as raised:
            call()
        assert isinstance(raised.value, CleanupError)

    proxy.start()  # the server is back, on the same address
    with pytest.raises(DatabaseUnavailableError, match=UNREACHABLE):
        cut_in_the_middle_of_a_transaction(service, proxy, dead)
    proxy.start()
    assert runs.get(dead)["worker_id"] is None, "the cut transaction was rolled back"
    assert service.cleanup_run(dead) is True, "the same service object works again"
    with track_run("MP Tenders", service=service) as run:
        run.add_tenders([{"tender_id": "T1"}])
    assert runs.get(run.run_id)["status"] == "completed"
    service.db.dispose()


def monitor_loop(monitor: Monitor, reports: list, stop: threading.Event) -> threading.Thread:
    loop = threading.Thread(
        target=run_forever, args=(monitor,), kwargs={"stop": stop, "on_cycle": reports.append}
    )
    loop.start()
    return loop


@postgres_only
def test_the_monitor_loop_survives_the_outage_and_resumes(
    db_url, settings, runs, proxy, monkeypatch
):
    runs.add("Assam Tenders", started_at=real_ago(hours=30))
    monkeypatch.setattr(alerts, "RETRY_AFTER_ERROR", 0.2)
    proxied = settings.with_overrides(
        database_url=through(db_url, proxy.port), monitor_interval_minutes=0.01
    )
    monitor = Monitor(CleanupService(proxied, database=Database(proxied)))
    reports: list = []
    stop = threading.Event()
    with LogRecords("cleanup_core.alerts") as log:
        loop = monitor_loop(monitor, reports, stop)
        try:
            wait_for(lambda: any(r.outcome == "ok" for r in reports), what="a first cycle")
            proxy.stop()
            wait_for(
                lambda: len(log.messages(f"could not run: {UNREACHABLE}")) >= 3,
                what="failed cycles to be logged",
            )
            assert loop.is_alive()
            seen = len(reports)
            proxy.start()
            wait_for(lambda: any(r.outcome == "ok" for r in reports[seen:]), what="recovery")
        finally:
            stop.set()
            loop.join(10)
    assert not loop.is_alive()
    failures = log.messages("could not run")
    assert all(UNREACHABLE in message for message in failures), failures
    monitor.service.db.dispose()


def test_a_server_nobody_listens_on(tmp_path):
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/cleanup"
    assert_one_line(cli(url, "scan"), f"{UNREACHABLE} {url}: ")
    settings = Settings.load({}, database_url=url, checkpoint_dir=str(tmp_path))
    with pytest.raises(DatabaseUnavailableError, match=UNREACHABLE):
        CleanupService(settings).scan()
    with pytest.raises(DatabaseUnavailableError, match=UNREACHABLE):
        claim("Assam Tenders", settings=settings)


@sqlite_only
def test_a_missing_sqlite_file_until_it_appears(tmp_path, settings, monkeypatch):
    """A volume that is not mounted yet: a clear error, no file created behind the operator's
    back, and a monitor that starts working once the database is there."""
    path = tmp_path / "later" / "runs.db"
    missing = settings.with_overrides(
        database_url=f"sqlite:///{path}", monitor_interval_minutes=0.01
    )
    with pytest.raises(DatabaseUnavailableError, match="does not exist"):
        CleanupService(missing).scan()
    with pytest.raises(DatabaseUnavailableError, match="does not exist"):
        claim("Assam Tenders", settings=missing)
    assert not path.parent.exists()

    monkeypatch.setattr(alerts, "RETRY_AFTER_ERROR", 0.2)
    monitor = Monitor(CleanupService(missing))
    reports: list = []
    stop = threading.Event()
    with LogRecords("cleanup_core.alerts") as log:
        loop = monitor_loop(monitor, reports, stop)
        try:
            wait_for(lambda: len(log.messages("does not exist")) >= 2, what="failed cycles")
            assert reports == [] and loop.is_alive()
            creator = CleanupService(missing, database=Database(missing, create_missing=True))
            creator.scan()
            creator.db.dispose()
            wait_for(lambda: any(r.outcome == "ok" for r in reports), what="a cycle")
        finally:
            stop.set()
            loop.join(10)
    assert not loop.is_alive()
    monitor.service.db.dispose()


@sqlite_only
def test_a_file_that_is_not_a_database(tmp_path, settings):
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 100)
    garbage = settings.with_overrides(database_url=f"sqlite:///{path}")
    with pytest.raises(DatabaseError, match="is not a usable SQLite database"):
        CleanupService(garbage).scan()
    assert_one_line(cli(garbage.database_url, "clean", "--auto"), f"{path} is not a usable")
    assert path.read_bytes() == b"these are my notes, not a database\n" * 100
