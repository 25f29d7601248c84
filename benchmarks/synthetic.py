"""A synthetic operator database: years of finished runs plus a pile of running ones in every
state, over 50 portals, with checkpoint files for some portals."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from cleanup_core import CleanupService, Settings
from cleanup_core.checkpoints import write_checkpoint
from cleanup_core.db import Database
from cleanup_core.timestamps import format_legacy, format_utc

PORTALS = 50
RUN_COLUMNS = (
    "id, portal_name, status, started_at, completed_at, extracted_total_tenders, "
    "skipped_existing_total, last_heartbeat_at, last_progress_at, worker_id, attempt"
)


@dataclass
class Fleet:
    total: int
    running: int
    states: dict[str, int] = field(default_factory=dict)
    portals: list[str] = field(default_factory=list)
    seconds: float = 0.0


def portal_names() -> list[str]:
    states = [
        "Assam",
        "Bihar",
        "Goa",
        "Kerala",
        "Punjab",
        "Odisha",
        "Sikkim",
        "Tripura",
        "Manipur",
        "Mizoram",
    ]
    kinds = ["Tenders", "eProcurement", "PWD Works", "Health Dept", "Water Board"]
    return [f"{s} {k}" for s in states for k in kinds][:PORTALS]


def running_mix(running: int) -> dict[str, int]:
    """10 % alive, 10 % young, 30 % resumable by progress, 40 % dead, the rest resumable."""
    mix = {
        "alive": running // 10,
        "young": running // 10,
        "dead": running * 4 // 10,
        "resumable_checkpoint": min(PORTALS // 2, running // 100),
    }
    mix["resumable_progress"] = running - sum(mix.values())
    return mix


def build(
    settings: Settings, *, total: int, running: int, now: datetime | None = None, seed: int = 7
) -> Fleet:
    """Create the schema through the tool (adoption), then bulk-insert rows with plain SQL."""
    import time

    started = time.perf_counter()
    now = now or datetime.now(UTC)
    rng = random.Random(seed)
    tz = settings.timezone
    service = CleanupService(settings, database=Database(settings, create_missing=True))
    portals = portal_names()
    running = min(running, total)
    mix = running_mix(running)
    rows = []
    run_id = 0

    def legacy(moment: datetime) -> str:
        return format_legacy(moment, tz)[:19]

    for _ in range(total - running):
        run_id += 1
        begun = now - timedelta(days=rng.uniform(2, 1000))
        status = rng.choices(
            ["completed", "failed", "Timeout - Auto-cleaned"], weights=[85, 10, 5]
        )[0]
        extracted = rng.randint(0, 900) if status == "completed" else 0
        rows.append(
            (
                run_id,
                rng.choice(portals),
                status,
                legacy(begun),
                legacy(begun + timedelta(hours=rng.uniform(0.2, 30))),
                extracted,
                rng.randint(0, 300),
                None,
                None,
                None,
                None,
            )
        )
    checkpoint_runs: dict[str, int] = {}
    for state, count in mix.items():
        for index in range(count):
            run_id += 1
            portal = portals[index % PORTALS]
            heartbeat = progress = None
            extracted = skipped = 0
            if state == "alive":
                begun = now - timedelta(hours=rng.uniform(1, 70))
                heartbeat = format_utc(now - timedelta(seconds=rng.uniform(1, 600)))
                extracted = rng.randint(0, 500)
                progress = heartbeat
            elif state == "young":
                begun = now - timedelta(hours=rng.uniform(0.1, 20))
            elif state == "resumable_progress":
                begun = now - timedelta(hours=rng.uniform(25, 400))
                extracted, skipped = rng.randint(1, 800), rng.randint(0, 100)
            elif state == "resumable_checkpoint":
                begun = now - timedelta(hours=rng.uniform(25, 400))
                checkpoint_runs[portal] = run_id
            else:  # dead
                begun = now - timedelta(hours=rng.uniform(25, 2000))
            rows.append(
                (
                    run_id,
                    portal,
                    "running",
                    legacy(begun),
                    None,
                    extracted,
                    skipped,
                    heartbeat,
                    progress,
                    None,
                    None,
                )
            )
    rng.shuffle(rows)
    _insert(service, rows)
    del rows  # a million tuples: do not carry them into the measurements
    for portal, owner in checkpoint_runs.items():
        tenders = [{"tender_id": f"2026_{portal[:3].upper()}_{i}_1"} for i in range(40)]
        write_checkpoint(
            settings.checkpoint_dir,
            portal,
            tenders=tenders,
            run_id=owner,
            cursor={"organisation": "PWD", "page": 3},
        )
    service.db.dispose()
    return Fleet(total, running, mix, portals, time.perf_counter() - started)


def _insert(service: CleanupService, rows: list[tuple]) -> None:
    placeholders = ", ".join(f":p{i}" for i in range(11))
    statement = text(f"INSERT INTO runs ({RUN_COLUMNS}) VALUES ({placeholders})")
    batch = 20_000
    with service.db.write() as conn:
        for start in range(0, len(rows), batch):
            conn.execute(
                statement,
                [
                    {f"p{i}": value for i, value in enumerate(row)}
                    for row in rows[start : start + batch]
                ],
            )
        if conn.dialect.name == "postgresql":
            conn.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('runs', 'id'), "
                    "(SELECT max(id) FROM runs))"
                )
            )
            conn.execute(text("ANALYZE runs"))
        else:
            conn.execute(text("ANALYZE"))


def describe(fleet: Fleet) -> str:
    return json.dumps({"total": fleet.total, "running": fleet.running, **fleet.states})


def checkpoint_dir_for(base: Path, label: str) -> Path:
    path = base / f"checkpoints-{label}"
    path.mkdir(parents=True, exist_ok=True)
    return path
