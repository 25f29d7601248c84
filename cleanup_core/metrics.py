"""Prometheus metrics: running runs by judged state per portal, the overdue ones, the oldest running
run's age, the monitor's last cycle and the audit trail's events by action.

A ``prometheus_client`` collector computes every value when it is scraped (one scan through the
service, the same judgement as ``scan``), so nothing goes stale between scrapes and no timer
runs. The library writes the exposition format and escapes label values such as portal names.
``python -m cleanup_core metrics`` prints it once (node_exporter's textfile collector) or serves
it (``--listen``); the dashboard's backend serves it at ``/metrics`` when enabled.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from cleanup_core.classify import RunState
from cleanup_core.errors import CleanupError
from cleanup_core.service import CleanupService, MonitorCycleRecord, StuckRunSummary

log = logging.getLogger("cleanup_core.metrics")


@dataclass(frozen=True)
class FleetReading:
    """What one scrape reads through the service."""

    summary: StuckRunSummary
    event_counts: Mapping[str, int]
    last_cycle: MonitorCycleRecord | None


def read_fleet(service: CleanupService, age_threshold_hours: float | None = None) -> FleetReading:
    """Judge every running run and read the audit counts and the monitor's last cycle."""
    return FleetReading(
        summary=service.scan(age_threshold_hours),
        event_counts=service.event_counts(),
        last_cycle=service.last_monitor_cycle(),
    )


def fleet_metrics(reading: FleetReading, *, monitor_interval_seconds: float) -> list[Metric]:
    """The metric families of one reading. Every state has a sample for every portal with
    running runs (0 where none), so a query such as ``cleanup_runs{state="dead"} > 0`` sees a
    portal's dead runs disappear instead of its series."""
    runs = GaugeMetricFamily(
        "cleanup_runs",
        "Running runs by portal and judged state (alive, young, resumable, dead, attention).",
        labels=["portal", "state"],
    )
    oldest = GaugeMetricFamily(
        "cleanup_oldest_running_age_seconds",
        "Age of the portal's oldest running run (runs whose start time can be read).",
        labels=["portal"],
    )
    overdue = GaugeMetricFamily(
        "cleanup_runs_overdue",
        "Alive or young running runs older than their portal's p99 x overdue_factor; known "
        "where adaptive_thresholds is on for the portal.",
        labels=["portal"],
    )
    states: dict[str, Counter[RunState]] = {}
    ages: dict[str, float] = {}
    overdue_counts: Counter[str] = Counter()
    for verdict in reading.summary.verdicts:
        portal = verdict.portal_name or ""
        states.setdefault(portal, Counter())[verdict.state] += 1
        if verdict.overdue:
            overdue_counts[portal] += 1
        if verdict.age_hours is not None:
            ages[portal] = max(ages.get(portal, verdict.age_hours), verdict.age_hours)
    for portal in sorted(states):
        for state in RunState:
            runs.add_metric([portal, state.value], states[portal][state])
        overdue.add_metric([portal], overdue_counts[portal])
        if portal in ages:
            oldest.add_metric([portal], ages[portal] * 3600)
    events = CounterMetricFamily(
        "cleanup_events",
        "Audit events by action (clean-ups, reverts, deletions, starts, resumes, ...), "
        "as recorded in the database.",
        labels=["action"],
    )
    for action, count in sorted(reading.event_counts.items()):
        events.add_metric([action], count)
    last_started = GaugeMetricFamily(
        "cleanup_monitor_last_cycle_timestamp_seconds",
        "When the monitor's latest finished cycle started (Unix time); absent before its first.",
    )
    last_ok = GaugeMetricFamily(
        "cleanup_monitor_last_cycle_ok",
        "1 if the monitor's latest finished cycle succeeded, 0 if it failed; absent before its "
        "first.",
    )
    cycle = reading.last_cycle
    if cycle is not None:
        if cycle.started_at is not None:
            last_started.add_metric([], cycle.started_at.timestamp())
        last_ok.add_metric([], 1 if cycle.ok else 0)
    interval = GaugeMetricFamily(
        "cleanup_monitor_interval_seconds",
        "The configured time between monitor cycles (monitor_interval_minutes).",
        value=monitor_interval_seconds,
    )
    return [runs, overdue, oldest, events, last_started, last_ok, interval]


class FleetCollector:
    """A collector whose every scrape reads the fleet anew. A database that is down or locked
    makes the scrape report ``cleanup_up 0`` (and log why), unless ``raise_errors``: then the
    error reaches the caller (the one-shot ``metrics`` command)."""

    def __init__(
        self,
        service: CleanupService,
        *,
        age_threshold_hours: float | None = None,
        raise_errors: bool = False,
    ):
        self.service = service
        self.age_threshold_hours = age_threshold_hours
        self.raise_errors = raise_errors

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        try:
            reading = read_fleet(self.service, self.age_threshold_hours)
        except CleanupError as exc:
            if self.raise_errors:
                raise
            log.error("metrics: cannot read the runs: %s", exc)
            yield from _health(up=False, seconds=time.perf_counter() - started)
            return
        families = fleet_metrics(
            reading, monitor_interval_seconds=self.service.settings.monitor_interval_minutes * 60
        )
        yield from _health(up=True, seconds=time.perf_counter() - started)
        yield from families


def _health(*, up: bool, seconds: float) -> list[Metric]:
    return [
        GaugeMetricFamily(
            "cleanup_up",
            "1 if this scrape could read and judge the runs, 0 if the database was down, "
            "locked or not the scrapers' (the log says why).",
            value=1 if up else 0,
        ),
        GaugeMetricFamily(
            "cleanup_scan_duration_seconds",
            "How long this scrape took to read and judge the runs.",
            value=seconds,
        ),
    ]


def registry(
    service: CleanupService,
    *,
    age_threshold_hours: float | None = None,
    raise_errors: bool = False,
) -> CollectorRegistry:
    """A registry holding only this tool's collector."""
    found = CollectorRegistry(auto_describe=False)
    found.register(
        FleetCollector(service, age_threshold_hours=age_threshold_hours, raise_errors=raise_errors)
    )
    return found


def render(service: CleanupService, *, age_threshold_hours: float | None = None) -> bytes:
    """The exposition text, once; a database error is raised, not reported as a metric."""
    return generate_latest(
        registry(service, age_threshold_hours=age_threshold_hours, raise_errors=True)
    )


def serve(
    service: CleanupService,
    host: str,
    port: int,
    *,
    age_threshold_hours: float | None = None,
) -> tuple[WSGIServer, Thread]:
    """Serve the metrics over HTTP from a background thread (prometheus_client's server);
    each scrape reads the fleet anew and survives a database outage."""
    return start_http_server(
        port, addr=host, registry=registry(service, age_threshold_hours=age_threshold_hours)
    )
