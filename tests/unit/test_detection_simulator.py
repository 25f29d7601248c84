"""The detection benchmark's simulated fleet and its figures (benchmarks/fleet_history.py,
benchmarks/detection.py): the benchmark is only as good as these."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import fields
from datetime import timedelta
from itertools import pairwise

import pytest

from benchmarks import detection
from benchmarks.fleet_history import FAST, SLOW, simulate
from cleanup_core import Settings


@pytest.fixture(scope="module")
def fleet():
    return simulate()


def test_the_same_seed_gives_the_same_history_and_another_seed_another():
    first, again = (
        simulate(seed=3, days=4, history_days=2),
        simulate(seed=3, days=4, history_days=2),
    )
    other = simulate(seed=4, days=4, history_days=2)
    assert first.runs == again.runs
    assert first.portals == again.portals
    assert first.runs != other.runs


def test_the_default_fleet_is_big_enough_and_heavy_tailed(fleet):
    assert len(fleet.portals) == 50
    assert len(fleet.window_runs) >= detection.TARGET_RUNS
    durations = defaultdict(list)
    for run in fleet.runs:
        if run.final_status == "completed":
            hours = (run.ends_at - run.started_at).total_seconds() / 3600
            durations[run.portal].append(hours)
    typical = {portal: statistics.median(hours) for portal, hours in durations.items()}
    fast = [p.name for p in fleet.portals if p.kind == FAST]
    slow = [p.name for p in fleet.portals if p.kind == SLOW]
    assert len(fast) > len(fleet.portals) / 2
    assert all(typical[portal] < 1 for portal in fast)
    assert slow
    assert all(20 <= typical[portal] <= 40 for portal in slow)
    # heavy tails: somewhere a portal's longest run is several times its typical one
    assert max(max(durations[p]) / typical[p] for p in fast) > 4


def test_a_portal_never_has_two_runs_working_at_once(fleet):
    by_portal = defaultdict(list)
    for run in fleet.runs:
        by_portal[run.portal].append(run)
    for runs in by_portal.values():
        for earlier, later in pairwise(runs):
            assert later.started_at >= earlier.stops_at


def test_ids_follow_start_order_and_every_run_ends_or_crashes(fleet):
    assert [r.id for r in fleet.runs] == list(range(1, len(fleet.runs) + 1))
    assert all(a.started_at <= b.started_at for a, b in pairwise(fleet.runs))
    for run in fleet.runs:
        if run.crashed:
            assert run.ends_at is None and run.final_status is None
            assert run.started_at < run.crashed_at
        else:
            assert run.final_status in ("completed", "failed")
            assert run.started_at < run.ends_at


def test_crashes_happen_only_inside_the_window_and_are_a_few_percent(fleet):
    crashed = [r for r in fleet.runs if r.crashed]
    assert all(r.started_at >= fleet.start for r in crashed)
    assert 0.01 < len(crashed) / len(fleet.window_runs) < 0.06
    assert any(r.crashed for r in fleet.window_runs if fleet.kind_of[r.portal] == SLOW)


def test_a_healthy_run_is_one_whose_scraper_still_works(fleet):
    run = next(r for r in fleet.runs if r.crashed)
    assert run.healthy_at(run.started_at)
    assert run.healthy_at(run.crashed_at - timedelta(seconds=1))
    assert not run.healthy_at(run.crashed_at)
    assert not run.healthy_at(run.started_at - timedelta(seconds=1))


def test_undetected_crashes_count_as_infinite_latency():
    hours = [timedelta(hours=h) for h in (1, 2, 3)]
    assert detection.latency_figures(hours, 0) == {"crashed": 3, "median_h": 2.0, "p95_h": 3.0}
    assert detection.latency_figures(hours, 1) == {"crashed": 4, "median_h": 2.0, "p95_h": None}
    assert detection.latency_figures(hours, 3)["median_h"] == 3.0  # the lower median
    assert detection.latency_figures(hours, 4)["median_h"] is None
    assert detection.latency_figures([], 0)["median_h"] is None


def row(median: float, false_positives: int, slow_fp: int = 0, runs: int = 20_000) -> dict:
    return {
        "available": True,
        "runs": runs,
        "median_h": median,
        "false_positives": false_positives,
        "by_kind": {SLOW: {"false_positives": slow_fp}},
    }


def test_targets_are_met_or_not_met_from_both_rows():
    met = detection.targets(row(24.0, 180, slow_fp=180), row(4.8, 0))
    assert [t["status"] for t in met] == ["met", "met", "met"]
    missed = detection.targets(row(24.0, 0), row(5.0, 1))
    assert [t["status"] for t in missed] == ["not met", "not met", "not met"]
    too_few_runs = detection.targets(row(24.0, 3, slow_fp=3), row(2.0, 0, runs=9_999))
    assert [t["status"] for t in too_few_runs] == ["met", "met", "not met"]


def test_an_adaptive_row_that_cannot_run_yet_is_reported_not_failed():
    rows = detection.targets(row(24.0, 5, slow_fp=5), detection.unavailable(detection.ADAPTIVE))
    assert rows[0]["status"] == "met"
    assert [t["status"] for t in rows[1:]] == [detection.ADAPTIVE_MISSING] * 2


def test_adaptive_is_available_exactly_when_settings_know_it():
    known = "adaptive_thresholds" in {f.name for f in fields(Settings)}
    assert detection.adaptive_available() is known
