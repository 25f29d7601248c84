"""Helpers shared by the attack tests: the real clock, child-process environments, and reading
a database the way an outside observer would (its own engine, raw SQL)."""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from tests.conftest import TZ

ROOT = Path(__file__).resolve().parents[2]


def real_now() -> datetime:
    """The attack tests run real processes against the real clock."""
    return datetime.now(UTC)


def real_ago(**delta: float) -> datetime:
    return real_now() - timedelta(**delta)


def claim(portal_name: str, **how: Any) -> None:
    """Claim a portal with ``track_run`` where the claim must fail (``pytest.raises`` around)."""
    from cleanup_core import track_run

    with track_run(portal_name, **how):
        pytest.fail(f"claimed {portal_name!r}")


def child_env(**settings: Any) -> dict[str, str]:
    """The environment of a child process: this checkout importable, rows read in the zone the
    tests wrote them in, plus ``CLEANUP_*`` settings given as keyword arguments."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", "CLEANUP_TIMEZONE": TZ}
    env.update({f"CLEANUP_{name.upper()}": str(value) for name, value in settings.items()})
    return env


@pytest.fixture
def observer(db_url: str) -> Iterator[Engine]:
    """An engine of our own, outside the tool, for checking what is really in the database."""
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables a clean-up may touch, to prove that nothing changed."""
    tables = {}
    with engine.connect() as conn:
        for table in ("runs", "run_events", "tenders"):
            rows = conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))
            tables[table] = [tuple(row) for row in rows]
    return tables


class LockHolder:
    """Drives ``lock_holder.py`` in its own process (see there); safe to call from threads."""

    def __init__(self, db_url: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.lock_holder", db_url],
            cwd=ROOT,
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lock = threading.Lock()

    def _command(self, command: str, answer: str) -> None:
        with self._lock:
            assert self.process.stdin is not None and self.process.stdout is not None
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
            ready, _, _ = select.select([self.process.stdout], [], [], 30)
            assert ready, f"the lock holder did not answer {command!r} within 30 s"
            assert self.process.stdout.readline().strip() == answer

    def lock(self) -> None:
        self._command("lock", "locked")

    def release(self) -> None:
        self._command("release", "released")

    def kill(self) -> None:
        """SIGKILL while holding the lock: the lock must die with the process."""
        self.process.kill()
        self.process.wait(10)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def lock_holder(db_url: str, service: Any) -> Iterator[LockHolder]:
    """Another process, ready to take the database's write lock (schema adopted first)."""
    service.scan()
    holder = LockHolder(db_url)
    yield holder
    holder.close()


def wait_for(condition: Any, *, timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


class LogRecords(logging.Handler):
    """Every record one logger emits, whatever the CLI tests did to propagation."""

    def __init__(self, logger_name: str):
        super().__init__(logging.DEBUG)
        self.logger = logging.getLogger(logger_name)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, containing: str = "") -> list[str]:
        return [m for r in list(self.records) if containing in (m := r.getMessage())]

    def __enter__(self) -> LogRecords:
        self._level = self.logger.level
        self.logger.addHandler(self)
        self.logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self._level)
