"""Each figure next to its reference on the same database, in the same process."""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine

import cleanup_core
from cleanup_core import CleanupService, Settings
from cleanup_core.db import Database


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": _ms(statistics.median(ordered)),
        "p99_ms": _ms(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]),
        "n": len(ordered),
    }


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


class Raw:
    """The database's own speed: plain SQL on a plain DB-API connection."""

    def __init__(self, url: str):
        self.engine = create_engine(url)
        self.conn = self.engine.raw_connection()

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        cursor = self.conn.cursor()
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        cursor.close()
        return rows

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


def placeholder(url: str) -> str:
    return "?" if url.startswith("sqlite") else "%s"


def pre_scrape_check(settings: Settings, portals: list[str], *, calls: int = 400) -> dict:
    """``check_portal_resume`` vs an indexed SELECT of the portal's running rows."""
    cleanup_core.configure(settings)
    rng = random.Random(1)
    chosen = [rng.choice(portals) for _ in range(calls)]
    for portal in chosen[:20]:  # warm caches (statements, checkpoint files)
        cleanup_core.check_portal_resume(portal)
    ours = [timed(lambda p=p: cleanup_core.check_portal_resume(p)) for p in chosen]
    raw = Raw(settings.database_url)
    mark = placeholder(settings.database_url)
    sql = f"SELECT * FROM runs WHERE status = 'running' AND portal_name = {mark}"
    for portal in chosen[:20]:
        raw.query(sql, (portal,))
    reference = [timed(lambda p=p: raw.query(sql, (p,))) for p in chosen]
    raw.close()
    cleanup_core.configure(None)
    ours_p, raw_p = percentiles(ours), percentiles(reference)
    return {
        "check_portal_resume": ours_p,
        "raw_select": raw_p,
        "ratio_p50": round(ours_p["p50_ms"] / raw_p["p50_ms"], 2),
    }


# Peak RSS of this process alone: /proc's VmHWM belongs to the process's own memory map, while
# getrusage's ru_maxrss keeps the parent's peak across fork + exec.
PEAK_RSS = """
def peak_rss_mb():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

SUMMARY_CHILD = (
    PEAK_RSS
    + """
import json, sys, time
from cleanup_core import CleanupService, Settings
service = CleanupService(Settings.load())
service.scan()  # open and adopt outside the timing
started = time.perf_counter()
summary = service.scan().to_dict()
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "stuck": summary["total_stuck"],
                  "max_rss_mb": peak_rss_mb()}))
"""
)

RAW_CHILD = (
    PEAK_RSS
    + """
import json, time
from sqlalchemy import create_engine
from cleanup_core import Settings
engine = create_engine(Settings.load().database_url)
conn = engine.raw_connection()
started = time.perf_counter()
cursor = conn.cursor()
cursor.execute("SELECT * FROM runs WHERE status = 'running'")
rows = cursor.fetchall()
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "rows": len(rows), "max_rss_mb": peak_rss_mb()}))
"""
)


def _child(code: str, env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def summary(env: dict[str, str]) -> dict:
    """``get_stuck_run_summary`` (time and the process's peak RSS) vs a raw SELECT of all
    running rows, each in a fresh process so the peaks do not mix."""
    ours = _child(SUMMARY_CHILD, env)
    raw = _child(RAW_CHILD, env)
    return {
        "summary_s": round(ours["seconds"], 3),
        "summary_peak_rss_mb": round(ours["max_rss_mb"], 1),
        "raw_select_all_running_s": round(raw["seconds"], 3),
        "raw_peak_rss_mb": round(raw["max_rss_mb"], 1),
        "ratio": round(ours["seconds"] / raw["seconds"], 2),
    }


def bulk_cleanup(settings: Settings, make_copy: Callable[[], Settings]) -> dict:
    """Cleaning all dead runs four ways, each on a fresh copy of the same database."""
    results: dict[str, Any] = {}

    service = CleanupService(make_copy(), database=None)
    dead = [v.run_id for v in service.scan().dead]
    results["dead_runs"] = len(dead)
    results["service_cleanup_runs_s"] = round(
        timed(lambda: service.cleanup_runs(dead, actor="benchmark")), 3
    )
    cleaned = service.history(actions=["cleanup"], limit=1).total
    assert cleaned == len(dead), (cleaned, len(dead))
    service.db.dispose()

    copy = make_copy()
    raw = Raw(copy.database_url)
    ids = ",".join(map(str, dead))
    now = "2026-11-28 12:00:00"

    def one_statement() -> None:
        cursor = raw.conn.cursor()
        cursor.execute(
            f"UPDATE runs SET status = 'Timeout - Auto-cleaned', completed_at = '{now}' "
            f"WHERE id IN ({ids}) AND status = 'running'"
        )
        cursor.execute(
            "INSERT INTO run_events (run_id, portal_name, action, actor, from_status, "
            "to_status, created_at, details) SELECT id, portal_name, 'cleanup', 'raw', "
            f"'running', status, '{now}', '{{}}' FROM runs WHERE id IN ({ids})"
        )
        raw.conn.commit()

    results["raw_update_insert_s"] = round(timed(one_statement), 3)
    raw.close()

    copy = make_copy()
    raw = Raw(copy.database_url)
    mark = placeholder(copy.database_url)

    def row_by_row() -> None:
        for run_id in dead:
            cursor = raw.conn.cursor()
            cursor.execute(
                "UPDATE runs SET status = 'Timeout - Auto-cleaned', completed_at = "
                f"{mark} WHERE id = {mark} AND status = 'running'",
                (now, run_id),
            )
            cursor.execute(
                "INSERT INTO run_events (run_id, action, actor, from_status, to_status, "
                f"created_at, details) VALUES ({mark}, 'cleanup', 'raw', 'running', "
                f"'Timeout - Auto-cleaned', {mark}, '{{}}')",
                (run_id, now),
            )
            raw.conn.commit()

    results["raw_per_row_commit_s"] = round(timed(row_by_row), 3)
    raw.close()

    copy = make_copy()
    cleanup_core.configure(copy)

    def seed_pattern() -> None:
        summary = cleanup_core.get_stuck_run_summary()
        for run in summary["dead_runs"]:
            cleanup_core.cleanup_run(run["id"])

    results["seed_pattern_s"] = round(timed(seed_pattern), 3)
    cleanup_core.configure(None)

    ours = results["service_cleanup_runs_s"]
    results["ratio_vs_raw_update_insert"] = round(ours / results["raw_update_insert_s"], 2)
    results["faster_than_per_row_x"] = round(results["raw_per_row_commit_s"] / ours, 1)
    results["faster_than_seed_pattern_x"] = round(results["seed_pattern_s"] / ours, 1)
    return results


def open_database(settings: Settings) -> CleanupService:
    return CleanupService(settings, database=Database(settings, create_missing=True))
