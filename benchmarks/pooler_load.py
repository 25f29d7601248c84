"""A fleet of scrapers on PostgreSQL through PgBouncer in transaction mode, using the real
tracker: each scraper is a thread with its own ``CleanupService`` and ``Database`` (as a scraper
process has), ``db_pool = none``, heartbeating every second; a few processes of many threads.

Every portal is claimed by two scrapers at once (in two processes): exactly one may win. The
winners then heartbeat for ``seconds`` and report progress now and then from their scraping
thread, while the database records every heartbeat (a trigger on ``runs``).

A heartbeat is *lost* when, at some moment of the measured window, a running scraper's
``last_heartbeat_at`` as the database has it was older than two heartbeat intervals; each such
gap between two heartbeats counts once. Errors are exceptions in a scraper (other than losing the
claim race) and warnings the tracker logged (a failed heartbeat is logged, then retried).
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import resource
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url

PORTAL = "Portal {index:04d}"
PROGRESS_EVERY_SECONDS = 10.0

_RECORD_HEARTBEATS = [
    "CREATE TABLE bench_heartbeats (run_id bigint NOT NULL, at timestamptz NOT NULL)",
    """CREATE FUNCTION bench_record_heartbeat() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           INSERT INTO bench_heartbeats VALUES (NEW.id, NEW.last_heartbeat_at);
           RETURN NEW;
       END $$""",
    """CREATE TRIGGER bench_heartbeat AFTER INSERT OR UPDATE OF last_heartbeat_at ON runs
       FOR EACH ROW EXECUTE FUNCTION bench_record_heartbeat()""",
]

# The longest a running scraper's heartbeat got, per gap between two of its heartbeats, within
# the window [t0, t1]; the window's end stands in for the next heartbeat of a scraper that
# stayed running.
_HEARTBEAT_AGES = """
WITH beats AS (
    SELECT run_id, at FROM bench_heartbeats WHERE run_id = ANY(:run_ids)
    UNION ALL
    SELECT id, CAST(:t1 AS timestamptz) FROM runs WHERE id = ANY(:run_ids)
), gaps AS (
    SELECT run_id, at, lag(at) OVER (PARTITION BY run_id ORDER BY at) AS previous FROM beats
)
SELECT extract(epoch FROM least(at, CAST(:t1 AS timestamptz)) - previous) AS age
FROM gaps
WHERE previous IS NOT NULL AND at > :t0 AND previous < :t1
"""


def record_heartbeats(conn: Connection) -> None:
    """From now on the database keeps every heartbeat written to ``runs`` (a trigger)."""
    for statement in _RECORD_HEARTBEATS:
        conn.execute(text(statement))


def heartbeat_ages(conn: Connection, run_ids: list[int], t0: datetime, t1: datetime) -> list[float]:
    """For each gap between two recorded heartbeats of ``run_ids`` that overlaps the window
    [t0, t1], the oldest the run's heartbeat got inside the window, in seconds."""
    rows = conn.execute(text(_HEARTBEAT_AGES), {"run_ids": run_ids, "t0": t0, "t1": t1})
    return [float(age) for (age,) in rows]


def lost_heartbeats(ages: list[float], interval: float) -> int:
    """How many times a heartbeat got older than two intervals."""
    return sum(1 for age in ages if age > 2 * interval)


def _database_class() -> type:
    """A ``Database`` that times the writes the tracker's heartbeat thread makes: from asking
    for the transaction (waiting for this scraper's other thread included) to the commit."""
    from cleanup_core.db import Database

    class TimedDatabase(Database):
        def __init__(self, settings: Any):
            super().__init__(settings)
            self.timings: list[tuple[float, float]] = []  # (called at, seconds)

        @contextmanager
        def write(self) -> Iterator[Connection]:
            if not threading.current_thread().name.startswith("heartbeat-"):
                with super().write() as conn:
                    yield conn
                return
            at, started = time.time(), time.perf_counter()
            with super().write() as conn:
                yield conn
            self.timings.append((at, time.perf_counter() - started))

    return TimedDatabase


def _scrapers(
    indexes: list[int],
    settings_values: dict[str, Any],
    ready: Any,
    claimed: Any,
    stop: Any,
    results: Any,
) -> None:
    """One process: a thread per scraper in ``indexes`` (portal ``index`` each)."""
    from cleanup_core import CleanupService, PortalBusyError, Settings, track_run

    settings = Settings.load({}, **settings_values)
    warnings: list[str] = []
    outcomes: dict[str, list[Any]] = {"claimed": [], "busy": [], "errors": []}
    lock = threading.Lock()

    class Warnings(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                with lock:
                    warnings.append(record.getMessage())

    logging.getLogger("cleanup_core").addHandler(Warnings())
    database_class = _database_class()
    services = [CleanupService(settings, database=database_class(settings)) for _ in indexes]
    for service in services:
        service.db.engine  # noqa: B018 - opened (and its schema checked) before the race
    go, stopping = threading.Event(), threading.Event()
    claims_left = [len(indexes)]

    def claim_settled() -> None:
        with lock:
            claims_left[0] -= 1
            if claims_left[0] == 0:
                claimed.put(len(outcomes["claimed"]))

    def scrape(index: int, service: CleanupService) -> None:
        go.wait()
        portal = PORTAL.format(index=index)
        settled = False
        try:
            with track_run(portal, service=service, worker_id=f"load:{index}") as run:
                with lock:
                    outcomes["claimed"].append((portal, run.run_id))
                claim_settled()
                settled = True
                # Staggered, so the scrapers' progress writes do not all come at once.
                pause = PROGRESS_EVERY_SECONDS * (index % 10 + 1) / 10
                while not stopping.wait(pause):
                    run.progress(extracted=1)
                    pause = PROGRESS_EVERY_SECONDS
        except PortalBusyError:
            with lock:
                outcomes["busy"].append(portal)
        except Exception as exc:  # noqa: BLE001 - every error is counted and reported
            with lock:
                outcomes["errors"].append(f"{portal}: {type(exc).__name__}: {exc}")
        finally:
            if not settled:
                claim_settled()

    threads = [
        threading.Thread(target=scrape, args=(index, service), name=f"scraper-{index}")
        for index, service in zip(indexes, services, strict=True)
    ]
    for thread in threads:
        thread.start()
    ready.wait()
    go.set()
    stop.wait()
    stopping.set()
    for thread in threads:
        thread.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    timings = [timing for service in services for timing in service.db.timings]
    interval = settings.heartbeat_interval_seconds
    # How late each heartbeat thread woke up: the time from the end of its previous write plus
    # the interval to its next write. This is the simulation's own CPU starvation (every
    # scraper here shares two cores), not time spent on the database path.
    lateness = [
        (at, at - (previous_at + previous_seconds + interval))
        for service in services
        for (previous_at, previous_seconds), (at, _) in itertools.pairwise(service.db.timings)
    ]
    results.put(
        {
            "claimed": outcomes["claimed"],
            "busy": outcomes["busy"],
            "errors": outcomes["errors"] + warnings,
            "timings": timings,
            "lateness": lateness,
            "cpu_s": usage.ru_utime + usage.ru_stime,
        }
    )


def run(
    pooled_url: str,
    direct_url: str,
    *,
    checkpoint_dir: Path,
    scrapers: int = 500,
    seconds: float = 60.0,
    processes: int = 4,
    interval: float = 1.0,
    settle_seconds: float = 3.0,
) -> dict[str, Any]:
    """``scrapers`` scrapers (and as many rivals claiming the same portals) in ``processes``
    processes, against ``pooled_url`` (the database through PgBouncer); ``direct_url`` is the
    same database on the server itself, for observing it. The database must be empty."""
    from cleanup_core import Settings
    from cleanup_core.db import Database

    if processes < 2:
        raise ValueError("processes must be at least 2: a portal's two claimants race apart")
    settings_values = {
        "database_url": pooled_url,
        "checkpoint_dir": str(checkpoint_dir),
        "timezone": "UTC",
        "db_pool": "none",
        "db_pooler": "transaction",
        "heartbeat_interval_seconds": interval,
        "busy_timeout_seconds": 60,
    }
    setup = Database(Settings.load({}, **settings_values), create_missing=True)
    setup.initialize()
    setup.dispose()
    observer = create_engine(direct_url, isolation_level="AUTOCOMMIT")
    with observer.connect() as conn:
        record_heartbeats(conn)

    # Each portal's two claimants sit in different processes and start together.
    slices: list[list[int]] = [[] for _ in range(processes)]
    for index in range(scrapers):
        slices[index % processes].append(index)
        slices[(index + 1) % processes].append(index)
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(processes + 1)
    stop = context.Event()
    claimed, results = context.Queue(), context.Queue()
    workers = [
        context.Process(
            target=_scrapers, args=(part, settings_values, ready, claimed, stop, results)
        )
        for part in slices
    ]
    for worker in workers:
        worker.start()
    try:
        ready.wait(timeout=600)
        claim_started = time.perf_counter()
        winners = sum(claimed.get(timeout=600) for _ in workers)
        claim_seconds = time.perf_counter() - claim_started
        time.sleep(settle_seconds)
        server_connections = []
        with observer.connect() as conn:
            t0 = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
            window_start = time.time()
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                server_connections.append(_server_connections(conn, direct_url))
                time.sleep(0.5)
            t1 = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
            window_end = time.time()
        stop.set()
        reports = [results.get(timeout=600) for _ in workers]
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.kill()
    run_ids = [run_id for report in reports for _, run_id in report["claimed"]]
    with observer.connect() as conn:
        ages = heartbeat_ages(conn, run_ids, t0, t1)
        runs_per_portal = dict(
            conn.execute(text("SELECT portal_name, count(*) FROM runs GROUP BY portal_name")).all()
        )
        statuses = dict(
            conn.execute(text("SELECT status, count(*) FROM runs GROUP BY status")).all()
        )
    observer.dispose()

    def in_window(key: str) -> list[float]:
        return sorted(
            value
            for report in reports
            for at, value in report[key]
            if window_start <= at <= window_end
        )

    timings, lateness = in_window("timings"), in_window("lateness")
    errors = [e for report in reports for e in report["errors"]]
    portals = {PORTAL.format(index=i) for i in range(scrapers)}
    return {
        "scrapers": scrapers,
        "claimants": 2 * scrapers,
        "processes": processes,
        "seconds": seconds,
        "heartbeat_interval_s": interval,
        "claim_s": round(claim_seconds, 1),
        "claimed": winners,
        "busy": sum(len(report["busy"]) for report in reports),
        "portals_with_one_run": sum(1 for p in portals if runs_per_portal.get(p) == 1),
        "portals_with_other_than_one_run": sum(
            1 for p in portals if runs_per_portal.get(p, 0) != 1
        ),
        "runs_completed": statuses.get("completed", 0),
        "errors": len(errors),
        "first_errors": errors[:5],
        "heartbeat_writes": len(timings),
        "scraper_processes_cpu_s": round(sum(report["cpu_s"] for report in reports), 1),
        "heartbeat_gaps_checked": len(ages),
        "lost_heartbeats": lost_heartbeats(ages, interval),
        "max_heartbeat_age_s": round(max(ages, default=0.0), 2),
        "heartbeat_write_p50_ms": _percentile_ms(timings, 0.50),
        "heartbeat_write_p99_ms": _percentile_ms(timings, 0.99),
        "heartbeat_wakeup_late_p99_ms": _percentile_ms(lateness, 0.99),
        "heartbeat_wakeup_late_max_ms": _percentile_ms(lateness, 1.0),
        "server_connections_max": max(server_connections, default=0),
    }


def _server_connections(conn: Connection, direct_url: str) -> int:
    """Connections to the benchmark's database on the server (PgBouncer's), without ours."""
    database = make_url(direct_url).database
    return conn.execute(
        text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = :database AND pid <> pg_backend_pid()"
        ),
        {"database": database},
    ).scalar_one()


def _percentile_ms(sorted_values: list[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, int(len(sorted_values) * fraction))
    return round(sorted_values[index] * 1000, 2)


def measure(admin_url: str, workdir: Path, **options: Any) -> dict[str, Any]:
    """``run`` against a new database on ``admin_url``'s server, through a PgBouncer started
    for it (``default_pool_size = 10``); the database is dropped afterwards."""
    from tests.helpers.pgbouncer import running_pgbouncer

    scrapers = options.get("scrapers", 500)
    name = f"bench_pool_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        direct = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        with running_pgbouncer(
            admin_url, default_pool_size=10, max_client_conn=2 * scrapers + 100
        ) as bouncer:
            result = run(
                bouncer.url(name), direct, checkpoint_dir=workdir / "pool-checkpoints", **options
            )
        result["pgbouncer_default_pool_size"] = 10
        return result
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
