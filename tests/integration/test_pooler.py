"""Connections and poolers: everything through a real PgBouncer in transaction mode, and the
connection budget of a scraper process (``db_pool = none``) counted by the server itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from benchmarks import pooler_load
from cleanup_core import (
    CLEANED,
    COMPLETED,
    RUNNING,
    CleanupService,
    ConfigError,
    DatabaseError,
    PortalBusyError,
    RunState,
    Settings,
    load_demo,
    track_run,
)
from cleanup_core import db as db_module
from cleanup_core.cli import cli
from cleanup_core.db import Database
from cleanup_core.demo import synthetic_portal
from cleanup_core.models import Run
from tests.conftest import NOW, PG_ADMIN_URL, TZ
from tests.helpers.pgbouncer import PgBouncer, fresh_database, running_pgbouncer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bouncer() -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode with two server connections per database."""
    with running_pgbouncer(PG_ADMIN_URL, default_pool_size=2) as running:
        yield running


@pytest.fixture
def database_name() -> Iterator[str]:
    with fresh_database(PG_ADMIN_URL, "cleanup_pool") as name:
        yield name


@pytest.fixture
def pooled_url(bouncer: PgBouncer, database_name: str) -> str:
    return bouncer.url(database_name)


@pytest.fixture
def direct_url(database_name: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=database_name).render_as_string(hide_password=False)


@pytest.fixture
def observer(direct_url: str) -> Iterator[Engine]:
    """The server seen directly, not through the pooler."""
    engine = create_engine(direct_url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def settings_for(url: str, checkpoint_dir: Path, **values: object) -> Settings:
    return Settings.load(
        {}, database_url=url, checkpoint_dir=str(checkpoint_dir), timezone=TZ, **values
    )


def pooled(url: str, checkpoint_dir: Path, **values: object) -> CleanupService:
    settings = settings_for(url, checkpoint_dir, db_pooler="transaction", **values)
    return CleanupService(settings, database=Database(settings, create_missing=True))


# -- everything works through PgBouncer -------------------------------------------------------


@pytest.mark.postgres
def test_demo_scan_clean_and_revert_through_the_pooler(pooled_url, checkpoint_dir, observer):
    def invoke(*args: str) -> dict:
        argv = [*args, "--json", "--db", pooled_url, "--checkpoint-dir", str(checkpoint_dir)]
        runner = CliRunner(env={"CLEANUP_TIMEZONE": TZ, "CLEANUP_DB_POOLER": "transaction"})
        result = runner.invoke(cli, argv, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    demo = invoke("demo")
    before = invoke("scan")
    dead = sorted(run["id"] for run in before["dead_runs"])
    assert dead == sorted(demo["runs"]["dead"])
    assert before["resumable_count"] == 2 and before["attention_count"] == 1

    cleaned = invoke("clean", "--auto")
    assert sorted(cleaned["cleaned"]) == dead
    assert invoke("scan")["dead_count"] == 0
    reverted = invoke("revert", str(dead[0]))
    assert (reverted["run_id"], reverted["reverted"], reverted["why_not"]) == (dead[0], True, None)

    with observer.connect() as conn:
        status = dict(conn.execute(text("SELECT id, status FROM runs")).all())
    assert status[dead[0]] == RUNNING
    assert all(status[run_id] == CLEANED for run_id in dead[1:])


@pytest.mark.postgres
def test_the_demo_scraper_resumes_a_run_through_the_pooler(pooled_url, checkpoint_dir, observer):
    service = pooled(pooled_url, checkpoint_dir)
    report = load_demo(service)
    service.db.dispose()
    (run_id,) = report.runs["resumable_progress"]
    with observer.connect() as conn:
        portal = conn.execute(text("SELECT portal_name FROM runs WHERE id = :i"), {"i": run_id})
        portal_name = portal.scalar_one()
    as_of = report.loaded_at.astimezone(service.settings.timezone).date()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CLEANUP_TIMEZONE": TZ,
        "CLEANUP_DB_POOL": "none",
        "CLEANUP_DB_POOLER": "transaction",
    }
    scraper = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "demo_scraper.py"),
            "--portal",
            portal_name,
            "--delay",
            "0",
            "--as-of",
            as_of.isoformat(),
            "--db",
            pooled_url,
            "--checkpoint-dir",
            str(checkpoint_dir),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert scraper.returncode == 0, scraper.stderr
    assert f"resuming run {run_id}" in scraper.stderr

    expected = sorted(t["tender_id"] for t in synthetic_portal(portal_name, as_of=as_of).tenders())
    with observer.connect() as conn:
        stored = conn.execute(
            text("SELECT tender_id FROM tenders WHERE run_id = :i ORDER BY tender_id"),
            {"i": run_id},
        )
        assert [row[0] for row in stored] == expected
        status = conn.execute(text("SELECT status FROM runs WHERE id = :i"), {"i": run_id})
        assert status.scalar_one() == COMPLETED


@pytest.mark.postgres
def test_two_scrapers_claim_one_portal_through_the_pooler(pooled_url, checkpoint_dir, observer):
    services = [pooled(pooled_url, checkpoint_dir, db_pool="none") for _ in range(2)]
    for service in services:
        service.scan()  # connected and adopted before the race
    barrier = threading.Barrier(2)
    busy_seen = threading.Event()
    outcomes: list[tuple[str, object]] = []

    def claim(service: CleanupService) -> None:
        barrier.wait()
        try:
            with track_run("Assam Tenders", service=service) as run:
                outcomes.append(("claimed", run.run_id))
                busy_seen.wait(30)  # hold the run until the other one has met it
        except PortalBusyError as busy:
            outcomes.append(("busy", busy.run_id))
            busy_seen.set()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcomes.append(("error", repr(exc)))
            busy_seen.set()

    threads = [threading.Thread(target=claim, args=(service,)) for service in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(kind for kind, _ in outcomes) == ["busy", "claimed"], outcomes
    (claimed,) = [run_id for kind, run_id in outcomes if kind == "claimed"]
    (busy_on,) = [run_id for kind, run_id in outcomes if kind == "busy"]
    assert busy_on == claimed
    with observer.connect() as conn:
        rows = conn.execute(text("SELECT id, status FROM runs")).all()
    assert rows == [(claimed, COMPLETED)]


@pytest.mark.postgres
def test_clients_taking_turns_on_server_connections_repeat_statements(pooled_url, checkpoint_dir):
    """psycopg prepares a statement on the server after five runs; behind a transaction pooler
    the next client on that server connection would meet it ("already exists")."""
    services = [pooled(pooled_url, checkpoint_dir) for _ in range(3)]
    for _ in range(8):
        for service in services:
            assert service.scan().verdicts == ()
            assert service.check_portal("Assam Tenders").action.value == "start"
    for service in services:
        service.db.dispose()


@pytest.mark.postgres
def test_naive_timestamps_are_read_in_the_configured_zone_through_the_pooler(
    pooled_url, checkpoint_dir
):
    service = pooled(pooled_url, checkpoint_dir)
    # 23.5 h before NOW in IST wall-clock time; read as UTC it would be only 18 h.
    with service.db.write() as conn:
        run_id = conn.execute(
            Run.__table__.insert()
            .values(portal_name="Assam Tenders", status=RUNNING, started_at="2026-11-27 18:00:00")
            .returning(Run.id)
        ).scalar_one()
    (verdict,) = service.scan(now=NOW).verdicts
    assert verdict.run_id == run_id
    assert verdict.state is RunState.YOUNG
    assert verdict.age_hours == pytest.approx(23.5)
    service.db.dispose()


@pytest.mark.postgres
def test_zone_and_lock_timeout_hold_per_transaction_and_leave_no_session_state(
    database_name, checkpoint_dir
):
    with running_pgbouncer(PG_ADMIN_URL, default_pool_size=1) as single:
        service = pooled(single.url(database_name), checkpoint_dir, busy_timeout_seconds=7)
        with service.db.read() as conn:
            inside = conn.execute(text("SHOW TimeZone")).scalar_one()
            lock_timeout = conn.execute(text("SHOW lock_timeout")).scalar_one()
        service.db.dispose()
        # Another client of the pooler gets the same (only) server connection afterwards.
        other = create_engine(single.url(database_name), poolclass=NullPool)
        with other.connect() as conn:
            server_zone = conn.execute(text("SHOW TimeZone")).scalar_one()
            server_lock_timeout = conn.execute(text("SHOW lock_timeout")).scalar_one()
            backends = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d"),
                {"d": database_name},
            ).scalar_one()
        other.dispose()
    assert (inside, lock_timeout) == (TZ, "7s")
    assert backends == 1, "one server connection served both clients"
    assert server_zone != TZ
    assert server_lock_timeout == "0"


def test_startup_options_are_refused_behind_a_transaction_pooler(checkpoint_dir):
    url = "postgresql+psycopg://scraper@127.0.0.1:1/tenders?options=-csearch_path%3Dtenders"
    service = pooled(url, checkpoint_dir)
    with pytest.raises(ConfigError, match="ALTER ROLE") as refused:
        service.scan()
    assert "CLEANUP_DB_POOLER" in str(refused.value)


# -- the connection budget, counted by the server ---------------------------------------------


def connections(observer: Engine, tag: str) -> list[tuple[str, float]]:
    """The server's connections whose application name starts with ``tag``: (name, age s)."""
    with observer.connect() as conn:
        return [
            (name, float(age))
            for name, age in conn.execute(
                text(
                    "SELECT application_name, "
                    "extract(epoch FROM clock_timestamp() - backend_start) "
                    "FROM pg_stat_activity WHERE application_name LIKE :tag"
                ),
                {"tag": f"{tag}%"},
            )
        ]


def connections_after_closing(observer: Engine, tag: str) -> list[tuple[str, float]]:
    """``connections`` once closed ones are gone: the server lets a backend go a moment after
    its client closed the connection."""
    deadline = time.monotonic() + 10
    while (found := connections(observer, tag)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def scraper_service(direct_url: str, checkpoint_dir: Path, name: str, **values: object):
    url = make_url(direct_url).update_query_dict({"application_name": name})
    settings = settings_for(url.render_as_string(hide_password=False), checkpoint_dir, **values)
    return CleanupService(settings, database=Database(settings, create_missing=True))


def heartbeats(observer: Engine) -> dict[int, object]:
    with observer.connect() as conn:
        return dict(conn.execute(text("SELECT id, last_heartbeat_at FROM runs")).all())


@pytest.mark.postgres
@pytest.mark.slow
def test_idle_tracked_scrapers_hold_no_connections_between_heartbeats(
    direct_url, checkpoint_dir, observer
):
    """Twelve scrapers, one thread each plus its heartbeat thread, connected to the server
    directly. The server shows at most one connection per scraper, and none that lived through
    two heartbeat intervals: each was opened for the transaction under way, not kept (a kept
    one would be as old as the scraper)."""
    tag, interval, count = f"idle-{uuid.uuid4().hex[:8]}-", 1.0, 12
    services = [
        scraper_service(
            direct_url,
            checkpoint_dir,
            f"{tag}{i:02d}",
            db_pool="none",
            heartbeat_interval_seconds=interval,
        )
        for i in range(count)
    ]
    claimed, done = threading.Barrier(count + 1), threading.Event()

    def scrape(index: int, service: CleanupService) -> None:
        with track_run(f"Portal {index:02d}", service=service):
            claimed.wait()
            done.wait(60)  # waiting for the portal, as scrapers mostly do

    threads = [threading.Thread(target=scrape, args=item) for item in enumerate(services)]
    for thread in threads:
        thread.start()
    try:
        claimed.wait(60)
        first = heartbeats(observer)
        samples = []
        deadline = time.monotonic() + 5 * interval
        while time.monotonic() < deadline:
            samples.append(connections(observer, tag))
            time.sleep(0.01)
        last = heartbeats(observer)
    finally:
        done.set()
        for thread in threads:
            thread.join(60)

    assert len(first) == count
    assert all(last[run_id] > first[run_id] for run_id in first), "every scraper heartbeated"
    for sample in samples:
        names = [name for name, _ in sample]
        assert len(names) == len(set(names)), f"two connections of one scraper: {sample}"
        assert all(age < 2 * interval for _, age in sample), f"a connection was kept: {sample}"
    assert connections_after_closing(observer, tag) == []


@pytest.mark.postgres
def test_a_pooled_process_keeps_its_connection_between_transactions(
    direct_url, checkpoint_dir, observer
):
    """The other side of the budget: the dashboard's and the monitor's bounded pool."""
    tag = f"queue-{uuid.uuid4().hex[:8]}"
    service = scraper_service(direct_url, checkpoint_dir, tag, db_pool="queue", db_pool_size=3)
    service.scan()
    service.scan()
    assert [name for name, _ in connections(observer, tag)] == [tag]
    service.db.dispose()
    assert connections_after_closing(observer, tag) == []


@pytest.mark.postgres
def test_the_heartbeat_waits_for_the_scraping_thread_instead_of_a_second_connection(
    direct_url, checkpoint_dir, observer
):
    """The scraping thread holds a transaction across several heartbeat intervals: the server
    sees one connection of this scraper throughout, and the heartbeat goes through after."""
    tag, interval = f"hold-{uuid.uuid4().hex[:8]}", 0.2
    service = scraper_service(
        direct_url, checkpoint_dir, tag, db_pool="none", heartbeat_interval_seconds=interval
    )
    with track_run("Assam Tenders", service=service) as run:
        (before,) = heartbeats(observer).values()
        samples = []
        with service.db.write() as conn:
            conn.execute(text("SELECT 1"))
            deadline = time.monotonic() + 6 * interval
            while time.monotonic() < deadline:
                samples.append(connections(observer, tag))
                time.sleep(0.02)
        deadline = time.monotonic() + 30
        while heartbeats(observer)[run.run_id] == before and time.monotonic() < deadline:
            time.sleep(0.05)
        after = heartbeats(observer)[run.run_id]
    assert all(len(sample) == 1 for sample in samples), samples
    assert after > before, "the heartbeat went through once the transaction ended"


@pytest.mark.postgres
def test_a_thread_may_open_a_transaction_inside_its_own(direct_url, checkpoint_dir):
    service = scraper_service(direct_url, checkpoint_dir, "nested", db_pool="none")
    finished = threading.Event()

    def nested() -> None:
        with service.db.write() as outer, service.db.read() as inner:
            outer.execute(text("SELECT 1"))
            inner.execute(text("SELECT 1"))
        finished.set()

    thread = threading.Thread(target=nested, daemon=True)
    thread.start()
    thread.join(20)
    assert finished.is_set(), "the thread waited for itself"


def test_a_full_pool_is_a_clear_error(settings, monkeypatch):
    monkeypatch.setattr(db_module, "POOL_TIMEOUT_SECONDS", 0.3)
    small = settings.with_overrides(db_pool="queue", db_pool_size=1)
    service = CleanupService(small, database=Database(small, create_missing=True))
    errors: list[Exception] = []

    def second_transaction() -> None:
        try:
            service.scan()
        except DatabaseError as exc:
            errors.append(exc)

    with service.db.read():
        thread = threading.Thread(target=second_transaction)
        thread.start()
        thread.join(20)
    service.db.dispose()
    (error,) = errors
    assert "All 1 connections of this process" in str(error)
    assert "CLEANUP_DB_POOL_SIZE" in str(error)


# -- many scrapers through PgBouncer ----------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
def test_fifty_scrapers_through_pgbouncer_lose_no_heartbeat(tmp_path):
    """The load test of ``python -m benchmarks``, small: 50 scrapers (and 50 rivals for their
    portals) in two processes, heartbeating every second for 10 s through PgBouncer with ten
    server connections."""
    result = pooler_load.measure(PG_ADMIN_URL, tmp_path, scrapers=50, seconds=10, processes=2)
    assert result["errors"] == 0, result["first_errors"]
    assert (result["claimed"], result["busy"]) == (50, 50)
    assert result["portals_with_one_run"] == 50
    assert result["runs_completed"] == 50
    assert result["heartbeat_gaps_checked"] >= 50 * 5
    assert result["lost_heartbeats"] == 0, result
    assert 0 < result["server_connections_max"] <= 10


@pytest.mark.postgres
def test_the_load_test_finds_a_heartbeat_older_than_two_intervals(direct_url, observer):
    """The load test's yardstick, on heartbeats written at known moments, window [2 s, 10 s]:
    a scraper silent for 2.5 s inside it is one loss; its 3 s gap before the window is none."""
    setup = Database(settings_for(direct_url, Path("unused")), create_missing=True)
    setup.initialize()
    setup.dispose()
    start = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def at(seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)

    beats = {
        "Steady": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        "Silent": [-2, 1, 2, 3, 5.5, 6.5, 7.5, 8.5],
    }
    run_ids = []
    with observer.connect() as conn:
        pooler_load.record_heartbeats(conn)
        for portal, (first, *later) in beats.items():
            run_id = conn.execute(
                text(
                    "INSERT INTO runs (portal_name, status, last_heartbeat_at) "
                    "VALUES (:p, 'running', :t) RETURNING id"
                ),
                {"p": portal, "t": at(first)},
            ).scalar_one()
            run_ids.append(run_id)
            for moment in later:
                conn.execute(
                    text("UPDATE runs SET last_heartbeat_at = :t WHERE id = :i"),
                    {"t": at(moment), "i": run_id},
                )
        ages = pooler_load.heartbeat_ages(conn, run_ids, at(2), at(10))
    # Steady: eight 1 s gaps from 2 s to 10 s. Silent: 2-3, 3-5.5, 5.5-6.5, 6.5-7.5, 7.5-8.5,
    # and 8.5 to the window's end.
    assert sorted(ages) == pytest.approx(sorted([1.0] * 8 + [1.0, 2.5, 1.0, 1.0, 1.0, 1.5]))
    assert pooler_load.lost_heartbeats(ages, 1.0) == 1
