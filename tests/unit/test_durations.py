"""The statistics of a portal's completed runs and the threshold learned from them (issue 15),
and how a policy picks its threshold: request > config > learned > default."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cleanup_core.config import Settings
from cleanup_core.durations import PortalStats, percentile
from cleanup_core.errors import ConfigError

MIN = 60.0
HOUR = 3600.0


def test_percentiles_interpolate_like_percentile_cont():
    ordered = [10.0, 20.0, 30.0, 40.0, 50.0]
    assert percentile(ordered, 0.5) == 30.0
    assert percentile(ordered, 0.95) == pytest.approx(48.0)
    assert percentile(ordered, 0.99) == pytest.approx(49.6)
    assert percentile([7.0], 0.99) == 7.0


def test_statistics_of_durations():
    stats = PortalStats.of("P", [m * MIN for m in range(1, 101)])  # 1..100 minutes
    assert stats is not None
    assert stats.completed_runs == 100
    assert stats.to_dict() == {
        "completed_runs": 100,
        "p50_minutes": 50.5,
        "p95_minutes": 95.0,
        "p99_minutes": 99.0,
        "longest_minutes": 100.0,
    }
    assert PortalStats.of("P", []) is None


def test_the_floor_holds_for_a_fast_portal():
    stats = PortalStats.of("Fast", [10 * MIN] * 25)
    assert stats is not None
    # 1.5 x 10 min and 3 x p99 (10 min) are both below the floor.
    assert stats.learned_threshold_hours(min_runs=20, floor_hours=2.0) == 2.0
    assert stats.learned_threshold_hours(min_runs=20, floor_hours=0.25) == pytest.approx(0.5)


def test_never_below_one_and_a_half_times_the_longest_run():
    # 99 runs of 10 minutes and one of 6 hours: the p99 stays small, the longest rules.
    stats = PortalStats.of("Odd", [10 * MIN] * 99 + [6 * HOUR])
    assert stats is not None
    assert stats.p99_seconds < 0.5 * stats.longest_seconds
    assert stats.learned_threshold_hours(min_runs=20, floor_hours=2.0) == pytest.approx(9.0)


def test_three_times_the_p99_when_it_is_larger():
    stats = PortalStats.of("Even", [h * HOUR for h in (1.0, 1.2, 1.4, 1.6) * 10])
    assert stats is not None
    expected = 3 * stats.p99_seconds / HOUR
    assert expected > 1.5 * stats.longest_hours
    assert stats.learned_threshold_hours(min_runs=20, floor_hours=2.0) == pytest.approx(expected)


def test_too_little_history_learns_nothing():
    stats = PortalStats.of("New", [30 * MIN] * 19)
    assert stats is not None
    assert stats.learned_threshold_hours(min_runs=20, floor_hours=2.0) is None


def settings(tmp_path, config: str = "", **overrides) -> Settings:
    path = tmp_path / "cleanup.toml"
    path.write_text(config)
    url = f"sqlite:///{tmp_path / 'x.db'}"
    return Settings.load({"CLEANUP_CONFIG": str(path)}, database_url=url, **overrides)


FORTY_MINUTES = PortalStats.of("Quick", [40 * MIN] * 41)


def test_precedence_request_config_learned_default(tmp_path):
    s = settings(
        tmp_path, "[portals.Configured]\nage_threshold_hours = 30\n", adaptive_thresholds=True
    )
    learned = s.policy_for("Quick", None, FORTY_MINUTES)
    assert (learned.age_threshold_hours, learned.threshold_source) == (2.0, "learned")
    assert learned.threshold_text == (
        "threshold 2.0 h learned from 41 completed runs, longest 0.7 h"
    )
    configured = s.policy_for("Configured", None, FORTY_MINUTES)
    assert (configured.age_threshold_hours, configured.threshold_source) == (30.0, "config")
    requested = s.policy_for("Configured", 12, FORTY_MINUTES)
    assert (requested.age_threshold_hours, requested.threshold_source) == (12.0, "requested")
    assert requested.threshold_text == "threshold 12 h (requested)"
    unknown = s.policy_for("Quick", None, None)
    assert (unknown.age_threshold_hours, unknown.threshold_source) == (24.0, "default")
    assert unknown.threshold_text == "threshold 24 h (default)"


def test_adaptive_is_off_by_default_and_can_be_set_per_portal(tmp_path):
    off = settings(tmp_path)
    assert not off.adaptive_thresholds and not off.reads_history
    assert off.policy_for("Quick", None, FORTY_MINUTES).threshold_source == "default"
    one = settings(tmp_path, "[portals.Quick]\nadaptive_thresholds = true\n")
    assert one.reads_history
    assert one.policy_for("quick", None, FORTY_MINUTES).threshold_source == "learned"
    assert one.policy_for("Other", None, FORTY_MINUTES).threshold_source == "default"
    but_not = settings(
        tmp_path, "[portals.Quick]\nadaptive_thresholds = false\n", adaptive_thresholds=True
    )
    assert but_not.policy_for("Quick", None, FORTY_MINUTES).threshold_source == "default"


def test_the_settings_come_from_the_environment_and_are_checked(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"  # no settings file beside it
    env = {
        "CLEANUP_ADAPTIVE_THRESHOLDS": "yes",
        "CLEANUP_HISTORY_DAYS": "30",
        "CLEANUP_MIN_HISTORY_RUNS": "50",
        "CLEANUP_LEARNED_THRESHOLD_FLOOR_HOURS": "1.5",
        "CLEANUP_OVERDUE_FACTOR": "4",
    }
    s = Settings.load(env, database_url=url)
    assert (s.adaptive_thresholds, s.history_days, s.min_history_runs) == (True, 30, 50)
    assert (s.learned_threshold_floor_hours, s.overdue_factor) == (1.5, 4.0)
    for name, bad in (
        ("CLEANUP_HISTORY_DAYS", "0"),
        ("CLEANUP_MIN_HISTORY_RUNS", "many"),
        ("CLEANUP_OVERDUE_FACTOR", "0.5"),
        ("CLEANUP_LEARNED_THRESHOLD_FLOOR_HOURS", "-1"),
        ("CLEANUP_ADAPTIVE_THRESHOLDS", "perhaps"),
    ):
        with pytest.raises(ConfigError, match=name):
            Settings.load({name: bad}, database_url=url)


def test_overdue_after_is_the_p99_times_the_factor(tmp_path):
    s = settings(tmp_path, adaptive_thresholds=True, overdue_factor=3)
    policy = s.policy_for("Quick", None, FORTY_MINUTES)
    assert policy.overdue_after == timedelta(minutes=120)
    # Without enough history there is no p99 to trust: nothing is overdue.
    few = PortalStats.of("Quick", [40 * MIN] * 5)
    assert s.policy_for("Quick", None, few).overdue_after is None
