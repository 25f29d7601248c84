"""The soak test's fleet: scrapers, pre-scrape starters and two cleaners, each its own process.

    python -m tests.reliability.fleet CONFIG.json

This process is only a supervisor: it imports ``cleanup_core`` once, opens no database and starts
no thread, then forks every member (importing the library costs about 0.7 s of CPU, which 25
spawned interpreters on a 2-core machine would spend before the soak even starts). Each member is
a separate OS process with its own connections, so SQLite's file locks and PostgreSQL's row and
advisory locks are taken across processes, as on a real fleet. A scraper that crashes (``os._exit``
in the middle of a run, leaving its run ``running``) is replaced by a fresh process in its slot
until the deadline.

Every member writes what it did to its own JSON-lines journal with unbuffered ``os.write`` calls,
so a member that dies with ``os._exit`` loses nothing it had written: claims, progress it
committed, crashes, clean-ups, and every exception and every warning logged by ``cleanup_core``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cleanup_core import (
    Action,
    CleanupService,
    PortalBusyError,
    Settings,
    start_portal,
    track_run,
)
from cleanup_core.db import Database

CRASHED = 17  # the exit status of a scraper that crashed on purpose
BROKEN = 70  # the exit status of a member that died of an exception it did not expect
# What a scraper does with a run it claimed, and how often.
PLANS = {
    "finish": 0.55,
    "fail": 0.1,
    "crash before progress": 0.1,
    "crash after progress": 0.15,
    "crash at any moment": 0.1,  # in a transaction, a heartbeat, a checkpoint write, ...
}


class Journal:
    """One member's record of what it did: a JSON object per line, written unbuffered."""

    def __init__(self, path: Path):
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, kind: str, **fields: Any) -> None:
        line = json.dumps(
            {"kind": kind, "t": time.time(), "pid": os.getpid(), **fields}, default=str
        )
        os.write(self._fd, (line + "\n").encode())

    def error(self, where: str, exc: BaseException) -> None:
        self.write(
            "error",
            where=where,
            type=type(exc).__name__,
            message=str(exc),
            traceback="".join(traceback.format_exception(exc)),
        )


class _JournalHandler(logging.Handler):
    def __init__(self, journal: Journal):
        super().__init__(logging.WARNING)
        self.journal = journal

    def emit(self, record: logging.LogRecord) -> None:
        self.journal.write(
            "log", level=record.levelname, logger=record.name, message=record.getMessage()
        )


def _watch(journal: Journal) -> None:
    """Journal every warning ``cleanup_core`` logs and every exception that ends a thread (a
    heartbeat thread that died would otherwise go unnoticed)."""
    logger = logging.getLogger("cleanup_core")
    logger.handlers[:] = [_JournalHandler(journal)]
    logger.setLevel(logging.WARNING)
    logger.propagate = False

    def on_thread_exception(args: threading.ExceptHookArgs) -> None:
        journal.error(f"thread {args.thread.name if args.thread else '?'}", args.exc_value)

    threading.excepthook = on_thread_exception


class DeliberateFailure(Exception):
    """Raised inside a run on purpose, so the run ends ``failed``."""


def _tenders(prefix: str, count: int, rng: random.Random) -> list[dict[str, Any]]:
    batch = [{"tender_id": f"{prefix}.{k}", "title": f"Tender {prefix}.{k}"} for k in range(count)]
    if rng.random() < 0.3:
        batch.append(dict(batch[0]))  # a repeat within the batch: counted as skipped
    return batch


def _crash_later(seconds: float, journal: Journal, run_id: int) -> None:
    def crash() -> None:
        journal.write("crash", run_id=run_id, plan="crash at any moment")
        os._exit(CRASHED)

    timer = threading.Timer(seconds, crash)
    timer.daemon = True
    timer.start()


def scraper(config: dict[str, Any], slot: int, generation: int, journal: Journal) -> int:
    """Claim a random portal again and again until the deadline: add tenders, save checkpoints,
    finish, fail, or crash hard in the middle of the run (the process then ends)."""
    settings = Settings.load(config["env"])
    rng = random.Random(f"{config['seed']}-scraper-{slot}-{generation}")
    worker = f"scraper{slot}.{generation}:{os.getpid()}"
    number = 0
    while time.time() < config["deadline"]:
        number += 1
        portal = rng.choice(config["portals"])
        plan = rng.choices(list(PLANS), weights=list(PLANS.values()))[0]
        steps = rng.randint(1, 4)
        try:
            with track_run(portal, settings=settings, worker_id=worker) as run:
                journal.write(
                    "claimed",
                    portal=portal,
                    run_id=run.run_id,
                    attempt=run.attempt,
                    action=run.action.value,
                    cleaned=list(run.cleaned_run_ids),
                )
                if plan == "crash before progress":
                    journal.write("crash", portal=portal, run_id=run.run_id, plan=plan)
                    os._exit(CRASHED)
                if plan == "crash at any moment":
                    _crash_later(rng.uniform(0, 0.2 * steps), journal, run.run_id)
                for step in range(steps):
                    time.sleep(rng.uniform(0.05, 0.3))
                    if step == 0 or rng.random() < 0.6:
                        prefix = f"{slot}.{generation}.{number}.{step}"
                        added = run.add_tenders(_tenders(prefix, rng.randint(1, 3), rng))
                        journal.write(
                            "progress",
                            run_id=run.run_id,
                            added=added.added,
                            skipped=added.skipped,
                        )
                        if rng.random() < 0.5:
                            run.save_checkpoint(cursor={"page": step})
                if plan == "crash after progress":
                    journal.write("crash", portal=portal, run_id=run.run_id, plan=plan)
                    os._exit(CRASHED)
                if plan == "fail":
                    raise DeliberateFailure(f"scraper {worker} failed run {run.run_id} on purpose")
            journal.write("finished", portal=portal, run_id=run.run_id, status=run.status)
        except PortalBusyError as busy:
            journal.write("busy", portal=portal, run_id=busy.run_id, reason=busy.reason)
            time.sleep(rng.uniform(0.05, 0.2))
        except DeliberateFailure:
            journal.write("failed", portal=portal, run_id=run.run_id, status=run.status)
        except Exception as exc:  # noqa: BLE001 - every unexpected error is journaled for the test
            journal.error("scraper", exc)
            time.sleep(0.1)
    return 0


def starter(config: dict[str, Any], slot: int, generation: int, journal: Journal) -> int:
    """The pre-scrape flow of the README: check the portal; on ``cleanup`` clean its dead runs
    with ``cleanup_run``; then ``start_portal`` with a short scrape (it waits on a busy portal)."""
    settings = Settings.load(config["env"])
    service = CleanupService(settings, database=Database(settings))
    rng = random.Random(f"{config['seed']}-starter-{slot}")
    number = 0

    def scrape(run: Any) -> int:
        added = run.add_tenders(_tenders(f"s{slot}.{number}", 2, rng))
        journal.write("progress", run_id=run.run_id, added=added.added, skipped=added.skipped)
        return added.added

    try:
        while time.time() < config["deadline"]:
            number += 1
            portal = rng.choice(config["portals"])
            try:
                check = service.check_portal(portal)
                journal.write("checked", portal=portal, action=check.action.value)
                if check.action is Action.CLEANUP:
                    for run_id in check.run_ids:
                        if service.cleanup_run(run_id, actor=f"starter{slot}"):
                            journal.write("cleaned", run_id=run_id, by=f"starter{slot}")
                outcome = start_portal(portal, scrape, service=service)
                if outcome.action is Action.WAIT:
                    journal.write("busy", portal=portal, run_id=outcome.run_id)
                else:
                    journal.write(
                        "finished", portal=portal, run_id=outcome.run_id, status=outcome.status
                    )
            except Exception as exc:  # noqa: BLE001 - every unexpected error is journaled
                journal.error("starter", exc)
            time.sleep(rng.uniform(0.1, 0.3))
    finally:
        service.db.dispose()
    return 0


def cleaner(config: dict[str, Any], slot: int, generation: int, journal: Journal) -> int:
    """Clean again and again. Cleaner 0 calls ``cleanup_if_needed``; cleaner 1 hands
    ``cleanup_runs`` every running run it sees - alive, young and resumable ones too - so only
    the judgement under lock and the compare-and-set keep those alive."""
    settings = Settings.load(config["env"])
    service = CleanupService(settings, database=Database(settings))
    actor = f"cleaner{slot}"
    threshold = settings.age_threshold_hours
    passes = 0
    try:
        while time.time() < config["deadline"]:
            passes += 1
            try:
                if slot == 0:
                    result = service.cleanup_if_needed(threshold, actor=actor)
                else:
                    every_running = [v.run_id for v in service.scan().verdicts]
                    result = service.cleanup_runs(every_running, actor=actor)
                for run_id in result.cleaned:
                    journal.write("cleaned", run_id=run_id, by=actor)
            except Exception as exc:  # noqa: BLE001 - every unexpected error is journaled
                journal.error("cleaner", exc)
            time.sleep(0.05)
    finally:
        service.db.dispose()
    journal.write("passes", count=passes)
    return 0


ROLES: dict[str, Callable[[dict[str, Any], int, int, Journal], int]] = {
    "scraper": scraper,
    "starter": starter,
    "cleaner": cleaner,
}


def supervise(config: dict[str, Any]) -> int:
    """Fork every member, replace crashed scrapers until the deadline, wait for all of them."""
    config["deadline"] = time.time() + config["duration"]
    log_dir = Path(config["log_dir"])
    own = Journal(log_dir / "supervisor.jsonl")
    members: dict[int, tuple[str, int, int]] = {}

    def launch(role: str, slot: int, generation: int) -> None:
        pid = os.fork()
        if pid == 0:  # the member
            code = BROKEN
            journal = Journal(log_dir / f"{role}-{slot}-{generation}-{os.getpid()}.jsonl")
            try:
                _watch(journal)
                code = ROLES[role](config, slot, generation, journal)
            except BaseException as exc:  # noqa: BLE001 - journaled, then the member exits
                journal.error(role, exc)
            finally:
                os._exit(code)
        members[pid] = (role, slot, generation)
        own.write("launched", role=role, slot=slot, generation=generation, member=pid)

    for role, count in (("cleaner", 2), ("starter", config["starters"])):
        for slot in range(count):
            launch(role, slot, 0)
    for slot in range(config["scrapers"]):
        launch("scraper", slot, 0)
    while members:
        pid, status = os.waitpid(-1, 0)
        role, slot, generation = members.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        own.write("exited", role=role, slot=slot, generation=generation, member=pid, code=code)
        if role == "scraper" and code == CRASHED and time.time() < config["deadline"] - 1:
            launch(role, slot, generation + 1)
    return 0


if __name__ == "__main__":
    sys.exit(supervise(json.loads(Path(sys.argv[1]).read_text())))
