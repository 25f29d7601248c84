"""Many scrapers on one SQLite file: each heartbeats and reports progress every second through
the run tracker; count the writes that failed with "database is locked"."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

SCRAPER = "Scraper {index:02d}"


def _scraper(index: int, settings_env: dict[str, str], seconds: float, queue: Any) -> None:
    import logging
    import os

    os.environ.update(settings_env)
    from cleanup_core import CleanupService, DatabaseError, Settings
    from cleanup_core.db import Database
    from cleanup_core.tracker import track_run

    failures = {"locked": 0, "other": 0}

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                failures["locked" if "locked" in record.getMessage() else "other"] += 1

    logging.getLogger("cleanup_core").addHandler(Count())
    settings = Settings.load()
    service = CleanupService(settings, database=Database(settings, create_missing=True))
    writes = 0
    latencies: list[float] = []
    with track_run(SCRAPER.format(index=index), service=service) as run:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                run.progress(extracted=1)
                writes += 1
            except DatabaseError as exc:
                failures["locked" if "locked" in str(exc) else "other"] += 1
            latencies.append(time.perf_counter() - started)
            time.sleep(max(0.0, 1.0 - (time.perf_counter() - started)))
    service.db.dispose()
    queue.put({"writes": writes, "latencies": latencies, **failures})


def run(settings_env: dict[str, str], *, scrapers: int = 50, seconds: float = 30.0) -> dict:
    """``scrapers`` processes for ``seconds``: heartbeats every second (the tracker's thread)
    plus one progress write a second each."""
    env = {**settings_env, "CLEANUP_HEARTBEAT_INTERVAL_SECONDS": "1"}
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=_scraper, args=(i, env, seconds, queue)) for i in range(scrapers)
    ]
    started = time.perf_counter()
    for process in processes:
        process.start()
    results = [queue.get(timeout=seconds + 120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    elapsed = time.perf_counter() - started
    latencies = sorted(x for r in results for x in r["latencies"])
    return {
        "scrapers": scrapers,
        "seconds": seconds,
        "progress_writes": sum(r["writes"] for r in results),
        "locked_errors": sum(r["locked"] for r in results),
        "other_errors": sum(r["other"] for r in results),
        "progress_write_p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "progress_write_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "elapsed_s": round(elapsed, 1),
    }


if __name__ == "__main__":  # a quick manual check: python -m benchmarks.tracker_load DB_PATH
    import sys

    path = Path(sys.argv[1]).absolute()
    print(json.dumps(run({"CLEANUP_DATABASE_URL": f"sqlite:///{path}"}, seconds=10), indent=1))
