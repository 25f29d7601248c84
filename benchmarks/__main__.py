"""``python -m benchmarks``: build synthetic databases and measure, side by side with references.

    python -m benchmarks                          # every section on SQLite
    python -m benchmarks --sizes 100000           # one size
    python -m benchmarks --pg postgresql+psycopg://postgres@127.0.0.1/postgres   # also PostgreSQL
    python -m benchmarks --skip-browser --skip-tracker --skip-detection
    python -m benchmarks --only detection         # one section
    python -m benchmarks --only pooler --pg ADMIN_URL   # a scraper fleet through PgBouncer
    python -m benchmarks --only live                    # 1, 10, 30 sessions during a clean-up
    python -m benchmarks --only live --live-size 100000 --live-sessions 1,5   # a quick try

Sections: ``pooler`` (with --pg only: 500 scrapers heartbeating through PgBouncer), ``scale``
(the sizes: pre-scrape check, summary, clean-up, dashboard), ``tracker`` (many scrapers on one
SQLite file), ``detection`` (crash detection latency and false positives
over a simulated 90-day fleet history, static vs adaptive thresholds) and ``live`` (N dashboard
sessions navigating while one admin cleans 4,000 dead runs: time to data per navigation).

Prints tables and writes JSON (figures, ratios, sizes, machine info) to --out; a section that was
not run this time keeps its figures from the file already there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks import dashboard, detection, figures, live, pooler_load, synthetic, tracker_load
from cleanup_core import Settings

RUNNING = 10_000
SECTIONS = ("pooler", "scale", "tracker", "detection", "live")


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class SqliteTarget:
    """A database file per size; copies of it for the destructive clean-up figures."""

    def __init__(self, workdir: Path, size: int | str):
        self.workdir = workdir
        self.path = workdir / f"runs-{size}.db"
        self.label = f"sqlite-{size}"
        self.copies = 0

    def settings(self, path: Path | None = None, **overrides: Any) -> Settings:
        return Settings.load(
            {},
            database_url=f"sqlite:///{path or self.path}",
            checkpoint_dir=str(self.workdir / "checkpoints"),
            timezone="UTC",
            **overrides,
        )

    def copy(self) -> Settings:
        self.copies += 1
        target = self.workdir / f"copy-{self.copies}.db"
        source = sqlite3.connect(self.path)
        destination = sqlite3.connect(target)
        source.backup(destination)
        source.close()
        destination.close()
        return self.settings(target)

    def cleanup(self) -> None:
        for path in self.workdir.glob("copy-*.db*"):
            path.unlink()


class SqliteFile(SqliteTarget):
    """One database file, deleted afterwards (no copies)."""

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


class PostgresTarget:
    def __init__(self, admin_url: str, workdir: Path, size: int | str):
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.base = make_url(admin_url)
        self.name = f"bench_{size}_{uuid.uuid4().hex[:6]}".replace("-", "_")
        self.workdir = workdir
        self.label = f"postgresql-{size}"
        self.created = [self.name]
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))

    def settings(self, name: str | None = None, **overrides: Any) -> Settings:
        url = self.base.set(database=name or self.name).render_as_string(hide_password=False)
        return Settings.load(
            {},
            database_url=url,
            checkpoint_dir=str(self.workdir / "checkpoints"),
            timezone="UTC",
            **overrides,
        )

    def copy(self) -> Settings:
        name = f"{self.name}_c{len(self.created)}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.name}"'))
        self.created.append(name)
        return self.settings(name)

    def cleanup(self) -> None:
        with self.admin.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


def measure(target: Any, size: int, args: argparse.Namespace) -> dict[str, Any]:
    print(f"-- {target.label}: generating {size:,} runs ({RUNNING:,} running) ...", flush=True)
    fleet = synthetic.build(target.settings(), total=size, running=RUNNING)
    print(f"   generated in {fleet.seconds:.1f} s", flush=True)
    settings = target.settings()
    result: dict[str, Any] = {
        "size": size,
        "running": fleet.running,
        "mix": fleet.states,
        "generate_s": round(fleet.seconds, 1),
    }
    result["pre_scrape_check"] = figures.pre_scrape_check(settings, fleet.portals)
    env = {
        **os.environ,
        "CLEANUP_DATABASE_URL": settings.database_url,
        "CLEANUP_CHECKPOINT_DIR": str(settings.checkpoint_dir),
        "CLEANUP_TIMEZONE": "UTC",
    }
    result["summary"] = figures.summary(env)
    result["bulk_cleanup"] = figures.bulk_cleanup(settings, target.copy)
    if not args.skip_browser:
        copy = target.copy()
        summary = figures.open_database(copy).scan()
        print("   dashboard in Chromium ...", flush=True)
        result["dashboard"] = dashboard.measure(
            {
                "CLEANUP_DATABASE_URL": copy.database_url,
                "CLEANUP_CHECKPOINT_DIR": str(copy.checkpoint_dir),
                "CLEANUP_TIMEZONE": "UTC",
            },
            Path(target.workdir),
            dead=len(summary.dead),
            resumable=len(summary.resumable),
        )
    return result


def scale(workdir: Path, sizes: list[int], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every size on SQLite (and PostgreSQL with ``--pg``)."""
    results = []
    for size in sizes:
        targets: list[Any] = [SqliteTarget(workdir / f"sqlite-{size}", size)]
        if args.pg:
            targets.append(PostgresTarget(args.pg, workdir / f"pg-{size}", size))
        for target in targets:
            Path(target.workdir).mkdir(parents=True, exist_ok=True)
            try:
                result = measure(target, size, args)
            finally:
                target.cleanup()
            result["label"] = target.label
            results.append(result)
            print(json.dumps(result, indent=1), flush=True)
    return results


def tracker(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    path = workdir / "tracker-load.db"
    print(f"-- tracker: {args.scrapers} scrapers for {args.tracker_seconds:g} s ...", flush=True)
    return tracker_load.run(
        {
            "CLEANUP_DATABASE_URL": f"sqlite:///{path}",
            "CLEANUP_CHECKPOINT_DIR": str(workdir / "tracker-checkpoints"),
        },
        scrapers=args.scrapers,
        seconds=args.tracker_seconds,
    )


def pooler(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    print(
        f"-- pooler: {args.pool_scrapers} scrapers through PgBouncer for "
        f"{args.pool_seconds:g} s ...",
        flush=True,
    )
    return pooler_load.measure(
        args.pg,
        workdir,
        scrapers=args.pool_scrapers,
        seconds=args.pool_seconds,
        processes=args.pool_processes,
    )


def print_table(results: list[dict[str, Any]]) -> None:
    rows = [
        (
            "database",
            "check p50 ms (raw)",
            "x",
            "summary s (raw)",
            "RSS MB",
            "clean-up s (raw / per-row / seed)",
        )
    ]
    for r in results:
        check, summ, bulk = r["pre_scrape_check"], r["summary"], r["bulk_cleanup"]
        rows.append(
            (
                r["label"],
                f"{check['check_portal_resume']['p50_ms']} ({check['raw_select']['p50_ms']})",
                str(check["ratio_p50"]),
                f"{summ['summary_s']} ({summ['raw_select_all_running_s']})",
                str(summ["summary_peak_rss_mb"]),
                f"{bulk['service_cleanup_runs_s']} ({bulk['raw_update_insert_s']} / "
                f"{bulk['raw_per_row_commit_s']} / {bulk['seed_pattern_s']})",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def detection_sections(workdir: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The detection benchmark on SQLite (and PostgreSQL with ``--pg``): a fresh database per
    configuration."""
    backends: list[tuple[str, Callable[[str], Any]]] = [
        ("sqlite", lambda name: SqliteFile(workdir / name, name))
    ]
    if args.pg:
        backends.append(("postgresql", lambda name: PostgresTarget(args.pg, workdir / name, name)))
    return [
        detection.measure(
            backend,
            make_target,
            seed=args.detection_seed,
            days=args.detection_days,
            history_days=args.detection_history_days,
            scan_minutes=args.scan_minutes,
        )
        for backend, make_target in backends
    ]


def live_section(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The live dashboard on SQLite: ``--live-size`` runs (10,000 running, 4,000 of them dead;
    fewer on a small database), ``--live-sessions`` people at once."""
    size = args.live_size
    target = SqliteFile(workdir / "live", "live")
    Path(target.workdir).mkdir(parents=True, exist_ok=True)
    try:
        running = min(RUNNING, size // 10)
        print(f"-- live: generating {size:,} runs ({running:,} running) ...", flush=True)
        synthetic.build(target.settings(), total=size, running=running)
        sessions = [int(n) for n in args.live_sessions.split(",")]
        result = live.measure(target.settings(), Path(target.workdir), sessions=sessions)
    finally:
        target.cleanup()
    return {"size": size, "running": running, **result}


def chosen_sections(args: argparse.Namespace) -> list[str]:
    if args.only:
        return [s for s in SECTIONS if s in args.only]
    skipped = {
        "pooler": args.skip_pooler or not args.pg,
        "tracker": args.skip_tracker,
        "detection": args.skip_detection,
        "live": args.skip_browser,
    }
    return [s for s in SECTIONS if not skipped.get(s)]


def write_report(out: Path, ran: dict[str, Any]) -> None:
    """Write the sections that ran; keep the others' figures from the file already there."""
    report: dict[str, Any] = {}
    if out.exists():
        try:
            report = json.loads(out.read_text())
        except (OSError, ValueError) as exc:
            print(f"{out} could not be read ({exc}); writing a new one")
        if not isinstance(report, dict):
            report = {}
    when = datetime.now(UTC).isoformat(timespec="seconds")
    report["machine"] = machine()
    report.setdefault("measured_at", {}).update({name: when for name in ran})
    report.update({"results" if name == "scale" else name: value for name, value in ran.items()})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="10000,100000,1000000", help="total runs per database, comma-separated"
    )
    parser.add_argument("--pg", metavar="ADMIN_URL", help="also measure PostgreSQL")
    parser.add_argument("--out", default="benchmarks/results/latest.json")
    parser.add_argument("--workdir", help="where to put the databases (default: a temp dir)")
    parser.add_argument(
        "--only", action="append", choices=SECTIONS, help="run only this section (repeatable)"
    )
    parser.add_argument("--skip-browser", action="store_true", help="no dashboard timing")
    parser.add_argument("--skip-tracker", action="store_true", help="no tracker load test")
    parser.add_argument("--skip-detection", action="store_true", help="no detection benchmark")
    parser.add_argument("--scrapers", type=int, default=50)
    parser.add_argument("--tracker-seconds", type=float, default=30.0)
    parser.add_argument("--detection-days", type=int, default=90, help="the simulated window")
    parser.add_argument(
        "--detection-history-days",
        type=int,
        default=60,
        help="completed runs already in the database before the window",
    )
    parser.add_argument("--detection-seed", type=int, default=15)
    parser.add_argument(
        "--scan-minutes", type=float, default=detection.SCAN_MINUTES, help="simulated scan interval"
    )
    parser.add_argument("--skip-pooler", action="store_true", help="no PgBouncer fleet (--pg)")
    parser.add_argument("--live-size", type=int, default=1_000_000, help="runs in the database")
    parser.add_argument(
        "--live-sessions", default="1,10,30", help="dashboard sessions at once, comma-separated"
    )
    parser.add_argument("--pool-scrapers", type=int, default=500)
    parser.add_argument("--pool-seconds", type=float, default=60.0)
    parser.add_argument("--pool-processes", type=int, default=4)
    args = parser.parse_args()
    sections = chosen_sections(args)
    sizes = [int(s) for s in args.sizes.split(",")]
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="cleanup-bench-"))
    ran: dict[str, Any] = {}
    try:
        # First, while the server is quiet: the bulk loads below leave it writing dirty pages
        # out for a while, which slows every commit of a heartbeat fleet.
        if "pooler" in sections and args.pg:
            ran["pooler"] = pooler(workdir, args)
        if "scale" in sections:
            ran["scale"] = scale(workdir, sizes, args)
        if "tracker" in sections:
            ran["tracker"] = tracker(workdir, args)
        if "detection" in sections:
            ran["detection"] = detection_sections(workdir, args)
        if "live" in sections:
            ran["live"] = live_section(workdir, args)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    if "scale" in ran:
        print_table(ran["scale"])
    if "tracker" in ran:
        load = ran["tracker"]
        print(
            f"tracker: {load['scrapers']} scrapers x {load['seconds']:g} s: "
            f"{load['progress_writes']} progress writes, {load['locked_errors']} 'database is "
            f"locked' errors, write p50 {load['progress_write_p50_ms']} ms, "
            f"p99 {load['progress_write_p99_ms']} ms"
        )
    if "pooler" in ran:
        fleet = ran["pooler"]
        print(
            f"pooler: {fleet['scrapers']} scrapers x {fleet['seconds']:g} s through PgBouncer "
            f"(default_pool_size {fleet['pgbouncer_default_pool_size']}): {fleet['errors']} "
            f"errors, {fleet['lost_heartbeats']} lost heartbeats (oldest "
            f"{fleet['max_heartbeat_age_s']} s), {fleet['portals_with_one_run']} of "
            f"{fleet['scrapers']} portals with exactly one run, heartbeat write p50 "
            f"{fleet['heartbeat_write_p50_ms']} ms, p99 {fleet['heartbeat_write_p99_ms']} ms"
        )
    for section in ran.get("detection", []):
        detection.print_section(section)
    if "live" in ran:
        live.print_section(ran["live"])
    write_report(Path(args.out), ran)


if __name__ == "__main__":
    main()
