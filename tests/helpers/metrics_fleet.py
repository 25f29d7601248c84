"""A fleet for the metrics tests: running runs in every state on several portals (one with a
hostile name), a finished and a cleaned run, audit events of two actions and a monitor cycle,
all judged by the real clock (the command line judges by it)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from cleanup_core import CleanupService
from cleanup_core.alerts import Monitor
from cleanup_core.checkpoints import checkpoint_path
from tests.conftest import Runs

# Quotes, a backslash, a newline and a right-to-left override: the exposition must escape them.
HOSTILE = 'Evil "quoted" \\ back\nslash \u202egnp.exe'
STATES = ("alive", "young", "resumable", "dead", "attention")


def real_ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


@dataclass(frozen=True)
class Fleet:
    """What was seeded: running runs by portal and state, each portal's oldest age in hours,
    the audit events by action, and the ids of the dead runs."""

    states: dict[str, dict[str, int]]
    oldest_hours: dict[str, float]
    events: dict[str, int]
    dead: list[int]


def seed_metrics_fleet(service: CleanupService, runs: Runs, checkpoint_dir: Path) -> Fleet:
    corrupt = checkpoint_path(checkpoint_dir, "West Bengal eTender")
    assert corrupt is not None
    corrupt.write_text('{"tenders": [{"tender_id": "WB-1"')  # unreadable: needs attention
    dead = [
        runs.add("Assam Tenders", started_at=real_ago(hours=30)),
        runs.add("MP Tenders", started_at=real_ago(hours=50)),
        runs.add(HOSTILE, started_at=real_ago(hours=26)),
    ]
    runs.add("Assam Tenders", started_at=real_ago(hours=40), extracted_total_tenders=7)
    runs.add("Assam Tenders", started_at=real_ago(hours=90), last_heartbeat_at=real_ago(minutes=1))
    runs.add("MP Tenders", started_at=real_ago(hours=2))
    runs.add(HOSTILE, started_at=real_ago(hours=1))
    runs.add("West Bengal eTender", started_at=real_ago(hours=31))
    runs.add("Kerala eTenders", status="completed", started_at=real_ago(hours=80))
    cleaned = runs.add("Goa eProcurement", started_at=real_ago(hours=30))
    assert service.cleanup_runs([cleaned], actor="test").cleaned == (cleaned,)
    assert service.revert_cleanup(cleaned, actor="test")
    assert service.cleanup_runs([cleaned], actor="test").cleaned == (cleaned,)
    assert Monitor(service).run_cycle().outcome == "ok"  # no notification URLs: sends nothing

    def portal(**counts: int) -> dict[str, int]:
        return {state: counts.get(state, 0) for state in STATES}

    return Fleet(
        states={
            "Assam Tenders": portal(dead=1, resumable=1, alive=1),
            "MP Tenders": portal(dead=1, young=1),
            HOSTILE: portal(dead=1, young=1),
            "West Bengal eTender": portal(attention=1),
        },
        oldest_hours={
            "Assam Tenders": 90,
            "MP Tenders": 50,
            HOSTILE: 26,
            "West Bengal eTender": 31,
        },
        events={"cleanup": 2, "revert": 1},
        dead=dead,
    )


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_exposition(text: str) -> Samples:
    """Every sample of an exposition, by name and labels (via prometheus_client's parser)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def sample_names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    """One metric's values keyed by one label (its only one)."""
    return {
        dict(labels)[label]: value for (found, labels), value in samples.items() if found == name
    }


def runs_by_portal(samples: Samples) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for (name, labels), value in samples.items():
        if name == "cleanup_runs":
            label = dict(labels)
            found.setdefault(label["portal"], {})[label["state"]] = int(value)
    return found


def metric_names_in(expressions: Iterable[str]) -> set[str]:
    """The ``cleanup_*`` metric names a set of PromQL expressions reads."""
    return {name for expr in expressions for name in re.findall(r"\bcleanup_[a-z_]+\b", expr)}
