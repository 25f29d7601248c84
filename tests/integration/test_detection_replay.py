"""The detection benchmark's replay (benchmarks/detection.py) on a crafted history, through the
real scan and clean-up on a real SQLite file and PostgreSQL: latencies, false positives and what
the database holds afterwards are what the rules say."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from benchmarks import detection
from benchmarks.fleet_history import (
    FAST,
    SLOW,
    WINDOW_START,
    FleetHistory,
    PortalProfile,
    SimulatedRun,
)

START = WINDOW_START


def profile(name: str, kind: str) -> PortalProfile:
    return PortalProfile(name, kind, 30.0, 0.5, 6, 0.0, null_counters=False)


def run(
    run_id: int,
    portal: str,
    *,
    starts: float,
    ends: float | None = None,
    crashes=None,
    status: str = "completed",
    nulls: bool = False,
) -> SimulatedRun:
    """Times in hours after the window's start."""
    return SimulatedRun(
        id=run_id,
        portal=portal,
        started_at=START + timedelta(hours=starts),
        ends_at=None if ends is None else START + timedelta(hours=ends),
        final_status=None if ends is None else status,
        crashed_at=None if crashes is None else START + timedelta(hours=crashes),
        extracted=0 if status == "failed" else 120,
        skipped=0 if status == "failed" else 7,
        null_counters=nulls,
    )


def crafted() -> FleetHistory:
    portals = [profile("Goa Tenders", FAST), profile("Bihar eProcurement", SLOW)]
    runs = [
        run(1, "Bihar eProcurement", starts=-2, ends=28),  # healthy for 30 h: judged dead at 24 h
        run(2, "Goa Tenders", starts=0, crashes=1 / 6),  # crashed 10 minutes in
        run(3, "Goa Tenders", starts=6, ends=6.5),
        run(4, "Goa Tenders", starts=12, ends=12.25, status="failed", nulls=True),
        run(5, "Goa Tenders", starts=18, crashes=18.5, nulls=True),  # counters NULL: still dead
    ]
    return FleetHistory(
        portals, runs, START - timedelta(days=1), START, START + timedelta(days=2), 0
    )


def test_a_crash_is_detected_at_the_first_scan_past_the_threshold_and_cleaned(settings, service):
    history = crafted()
    outcome = detection.replay(history, settings)

    # scans every 15 min from the window's start: run 2 (started at 0) is 24 h old at 24:00
    assert outcome.latencies == {
        2: timedelta(hours=24) - timedelta(minutes=10),
        5: timedelta(hours=24) - timedelta(minutes=30),
    }
    # run 1 (started 2 h before the window) was judged dead from 22:00, 24 h after its start,
    # until it completed at 28:00: one false positive, counted once
    assert outcome.false_positives == {1: START + timedelta(hours=22)}
    assert outcome.attention == set()
    assert outcome.left_alone == 0
    # every crash was detected and every run had ended by the window's end (48:00): no drain
    assert outcome.scans == 4 * 48 + 1

    with service.db.read() as conn:
        rows = dict(conn.execute(text("SELECT id, status FROM runs")).all())
    assert rows == {
        1: "completed",
        2: "Timeout - Auto-cleaned",
        3: "completed",
        4: "failed",
        5: "Timeout - Auto-cleaned",
    }
    cleaned = service.history(actions=["cleanup"]).events
    assert sorted(e.run_id for e in cleaned) == [2, 5]
    assert {e.actor for e in cleaned} == {"detection-benchmark"}


def test_the_figures_of_a_replay_split_by_portal_kind(settings):
    history = crafted()
    row = detection.figures(history, detection.replay(history, settings), detection.STATIC)
    assert row["crashed_runs"] == 2 and row["undetected_crashes"] == 0
    assert (row["median_h"], row["p95_h"]) == (23.5, round(23 + 5 / 6, 2))
    assert row["by_kind"][FAST]["crashed"] == 2
    assert row["by_kind"][SLOW] == {
        "crashed": 0,
        "median_h": None,
        "p95_h": None,
        "false_positives": 1,
    }
    assert row["false_positives"] == 1


def with_history() -> FleetHistory:
    """``crafted`` after 25 completed runs of each portal: Goa's take 30 min, Bihar's 30 h."""
    earlier = [(-2 - 31.0 * (25 - i), "Bihar eProcurement", 30.0) for i in range(25)]
    earlier += [(-6.0 * (25 - i), "Goa Tenders", 0.5) for i in range(25)]
    earlier.sort()
    runs = [
        run(i, portal, starts=starts, ends=starts + hours)
        for i, (starts, portal, hours) in enumerate(earlier, start=1)
    ]
    base = len(runs)
    window = crafted().runs
    runs += [r.__class__(**{**r.__dict__, "id": r.id + base}) for r in window]
    runs.sort(key=lambda r: r.started_at)
    return FleetHistory(
        crafted().portals, runs, START - timedelta(days=34), START, START + timedelta(days=2), 0
    )


def test_adaptive_thresholds_find_a_fast_portals_crash_in_hours_and_spare_the_slow_one(settings):
    # (the static 24 h replay of the same window: see the tests above)
    history = with_history()
    base = 50
    adaptive = detection.replay(history, settings.with_overrides(adaptive_thresholds=True))
    # Goa's learned threshold is the 2 h floor: its crash 10 min in is found at 2:00
    assert adaptive.latencies == {
        base + 2: timedelta(hours=2) - timedelta(minutes=10),
        base + 5: timedelta(hours=2) - timedelta(minutes=30),
    }
    # Bihar's is 3 x 30 h: its healthy 30 h run is never judged dead
    assert adaptive.false_positives == {}
    assert adaptive.left_alone == 0
