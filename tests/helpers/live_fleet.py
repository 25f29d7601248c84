"""The fleet the dashboard tests (state handlers and browser) look at: one running run in each
state plus finished runs, aged against the real clock, and a corrupt checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cleanup_core.checkpoints import checkpoint_path


def hours_ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


def seed_live_fleet(add: Callable[..., int], checkpoint_dir: Path) -> dict[str, int]:
    """``add(portal, age_hours=..., **columns)`` writes one run; returns the ids by state."""
    corrupt = checkpoint_path(checkpoint_dir, "West Bengal eTender")
    assert corrupt is not None
    corrupt.write_text('{"tenders": [{"tender_id": "WB-1"')
    return {
        "dead": add("Assam Tenders", age_hours=30),
        "dead_old": add("CPPP Central", age_hours=50, extracted_total_tenders=None),
        "resumable": add("MP Tenders", age_hours=40, extracted_total_tenders=7),
        "young": add("Kerala eTenders", age_hours=2),
        "alive": add(
            "Gujarat Tenders",
            age_hours=90,
            last_heartbeat_at=datetime.now(UTC) - timedelta(minutes=3),
            worker_id="scraper-01:4242",
        ),
        "attention": add("West Bengal eTender", age_hours=31),
        "completed": add(
            "Assam Tenders",
            status="completed",
            age_hours=80,
            completed_at=hours_ago(78),
            extracted_total_tenders=120,
        ),
        "finished": add(
            "Tamil Nadu Tenders", status="completed", age_hours=20, completed_at=hours_ago(18)
        ),
    }
