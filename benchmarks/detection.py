"""Detection latency and false positives: a simulated fleet's history replayed through the real
classifier on a real database, once with the static 24 h threshold and once with thresholds
learned from each portal's history (``adaptive_thresholds``, issue 15).

The replay advances simulated time in steps of the scan interval. At each step it writes what
the scrapers did since the last one (new runs as ``running`` rows, finished runs' final status,
``completed_at`` and counters; a crash writes nothing), then calls ``CleanupService.scan(now=t)``.

- A crashed run is *detected* at the first scan that judges it dead or resumable; its latency
  is that scan's time minus the moment it crashed (a run already misjudged while it still
  worked, e.g. a slow portal's run past 24 h, is detected at the first scan after its crash).
  Detected dead runs are then cleaned through ``CleanupService.cleanup_runs`` (as the monitor
  or the operator would), so the database holds what a real one would.
- A run judged dead or resumable while its scraper is still working is a *false positive*
  (counted once per run, however many scans misjudge it). False positives are left alone: the
  run goes on and completes.
- No run starts after the window; scans go on after it (up to ``DRAIN``) until every run has
  ended or been detected. A crash still undetected then counts as an infinite latency (it sorts
  last, so it can only make the median and p95 worse); how many there were is reported.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import text

from benchmarks.fleet_history import KINDS, SLOW, FleetHistory, SimulatedRun, simulate
from cleanup_core import CleanupService, Settings
from cleanup_core.db import Database
from cleanup_core.timestamps import format_legacy

SCAN_MINUTES = 15
DRAIN = timedelta(days=7)
STATIC, ADAPTIVE = "static 24 h", "adaptive"
ADAPTIVE_MISSING = "not available yet (needs issue 15's adaptive_thresholds)"
TARGET_RUNS = 10_000
TARGET_SPEED_UP = 5

INSERT_RUN = text(
    "INSERT INTO runs (id, portal_name, status, started_at, completed_at, "
    "extracted_total_tenders, skipped_existing_total) "
    "VALUES (:id, :portal, 'running', :started_at, NULL, :counter, :counter)"
)
FINISH_RUN = text(
    "UPDATE runs SET status = :status, completed_at = :completed_at, "
    "extracted_total_tenders = :extracted, skipped_existing_total = :skipped WHERE id = :id"
)


class Target(Protocol):
    """A fresh database (see ``benchmarks.__main__``'s targets)."""

    label: str

    def settings(self, **overrides: Any) -> Settings: ...

    def cleanup(self) -> None: ...


def adaptive_available() -> bool:
    """Whether ``Settings`` knows ``adaptive_thresholds`` yet (issue 15 adds it)."""
    try:
        Settings.load({}, adaptive_thresholds=True)
    except TypeError as exc:
        if "unknown setting" in str(exc):
            return False
        raise
    return True


@dataclass
class Outcome:
    """What the scans said about the runs."""

    latencies: dict[int, timedelta] = field(default_factory=dict)  # crashed run -> latency
    false_positives: dict[int, datetime] = field(default_factory=dict)  # run -> first misjudged
    attention: set[int] = field(default_factory=set)  # runs some scan put in 'attention'
    left_alone: int = 0  # detected dead runs the clean-up refused
    scans: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Event:
    at: datetime
    run: SimulatedRun
    starts: bool  # else: the scraper writes the run's end


def events(history: FleetHistory) -> list[Event]:
    """Every write the scrapers make, in time order (a crash writes nothing)."""
    found = [Event(r.started_at, r, True) for r in history.runs]
    found += [Event(r.ends_at, r, False) for r in history.runs if r.ends_at is not None]
    found.sort(key=lambda e: (e.at, not e.starts, e.run.id))
    return found


def scan_times(history: FleetHistory, interval: timedelta) -> Iterator[datetime]:
    moment = history.start
    while moment <= history.end + DRAIN:
        yield moment
        moment += interval


def replay(
    history: FleetHistory, settings: Settings, *, scan_minutes: float = SCAN_MINUTES
) -> Outcome:
    """Replay ``history`` on the (empty) database of ``settings``; see the module's docstring."""
    started = time.perf_counter()
    service = CleanupService(settings, database=Database(settings, create_missing=True))
    legacy = _legacy_writer(settings)
    outcome = Outcome()
    pending = events(history)
    position = 0
    crashed = [r for r in history.runs if r.crashed]
    last_stop = max((r.stops_at for r in history.runs if not r.crashed), default=history.start)
    try:
        for now in scan_times(history, timedelta(minutes=scan_minutes)):
            upto = position
            while upto < len(pending) and pending[upto].at <= now:
                upto += 1
            _write(service, pending[position:upto], legacy)
            position = upto
            _judge(service, history, now, outcome)
            outcome.scans += 1
            if now >= max(last_stop, history.end) and len(outcome.latencies) == len(crashed):
                break
    finally:
        service.db.dispose()
    outcome.seconds = time.perf_counter() - started
    return outcome


def _legacy_writer(settings: Settings) -> Callable[[datetime], str]:
    """Timestamps as legacy scrapers write them: naive text in the configured zone, to the
    second."""
    zone = settings.timezone
    return lambda moment: format_legacy(moment, zone)[:19]


def _write(service: CleanupService, batch: list[Event], legacy: Callable[[datetime], str]) -> None:
    if not batch:
        return
    starts = [
        {
            "id": e.run.id,
            "portal": e.run.portal,
            "started_at": legacy(e.run.started_at),
            "counter": None if e.run.null_counters else 0,
        }
        for e in batch
        if e.starts
    ]
    ends = [
        {
            "id": e.run.id,
            "status": e.run.final_status,
            "completed_at": legacy(e.at),
            "extracted": e.run.extracted,
            "skipped": e.run.skipped,
        }
        for e in batch
        if not e.starts
    ]
    with service.db.write() as conn:
        if starts:
            conn.execute(INSERT_RUN, starts)
        if ends:
            conn.execute(FINISH_RUN, ends)


def _judge(service: CleanupService, history: FleetHistory, now: datetime, outcome: Outcome) -> None:
    summary = service.scan(now=now)
    detected_dead = []
    for verdict in (*summary.dead, *summary.resumable):
        run = history.by_id[verdict.run_id]
        if run.healthy_at(now):
            outcome.false_positives.setdefault(run.id, now)
        elif run.crashed and run.id not in outcome.latencies:
            assert run.crashed_at is not None
            outcome.latencies[run.id] = now - run.crashed_at
            detected_dead.append(run.id)
    outcome.attention.update(v.run_id for v in summary.attention)
    dead = {v.run_id for v in summary.dead}
    to_clean = [run_id for run_id in detected_dead if run_id in dead]
    if to_clean:
        result = service.cleanup_runs(to_clean, actor="detection-benchmark", now=now)
        outcome.left_alone += len(result.left_alone)


# -- figures ---------------------------------------------------------------------------------


def _hours(delta: timedelta | float) -> float | None:
    if isinstance(delta, float):
        return None  # infinite: never detected
    return round(delta.total_seconds() / 3600, 2)


def _rank(ordered: list[Any], share: float) -> Any:
    """The nearest-rank percentile of an ascending list."""
    index = max(0, min(len(ordered) - 1, -(-len(ordered) * share // 1) - 1))
    return ordered[int(index)]


def latency_figures(latencies: list[timedelta], undetected: int) -> dict[str, Any]:
    """Median and p95 in hours; undetected crashes count as infinite (``None`` when the
    percentile falls on one)."""
    ordered: list[Any] = sorted(latencies) + [float("inf")] * undetected
    if not ordered:
        return {"crashed": 0, "median_h": None, "p95_h": None}
    return {
        "crashed": len(ordered),
        "median_h": _hours(_rank(ordered, 0.5)),
        "p95_h": _hours(_rank(ordered, 0.95)),
    }


def figures(history: FleetHistory, outcome: Outcome, config: str) -> dict[str, Any]:
    """One configuration's row."""
    crashed = [r for r in history.runs if r.crashed]
    undetected = [r for r in crashed if r.id not in outcome.latencies]
    row: dict[str, Any] = {
        "config": config,
        "available": True,
        "runs": len(history.window_runs),
        "crashed_runs": len(crashed),
        "undetected_crashes": len(undetected),
        **{
            k: v
            for k, v in latency_figures(list(outcome.latencies.values()), len(undetected)).items()
            if k != "crashed"
        },
        "by_kind": {},
        "false_positives": len(outcome.false_positives),
        "attention_runs": len(outcome.attention),
        "left_alone_by_cleanup": outcome.left_alone,
        "scans": outcome.scans,
        "replay_s": round(outcome.seconds, 1),
    }
    fp_kinds = Counter(history.kind_of[history.by_id[i].portal] for i in outcome.false_positives)
    for kind in KINDS:
        ofkind = [r for r in crashed if history.kind_of[r.portal] == kind]
        row["by_kind"][kind] = {
            **latency_figures(
                [outcome.latencies[r.id] for r in ofkind if r.id in outcome.latencies],
                sum(r.id not in outcome.latencies for r in ofkind),
            ),
            "false_positives": fp_kinds[kind],
        }
    return row


def unavailable(config: str) -> dict[str, Any]:
    return {"config": config, "available": False, "note": ADAPTIVE_MISSING}


def targets(static: dict[str, Any], adaptive: dict[str, Any]) -> list[dict[str, str]]:
    """Issue 15's targets, each ``met``, ``not met`` or not available yet."""
    slow_fp = static["by_kind"][SLOW]["false_positives"]
    rows = [
        {
            "target": "static 24 h shows the slow portals' false positives",
            "status": "met" if slow_fp > 0 else "not met",
            "value": f"{slow_fp} on slow portals",
        }
    ]
    wanted = [
        f"adaptive median latency <= 1/{TARGET_SPEED_UP} of static",
        f"0 false positives with adaptive over >= {TARGET_RUNS:,} runs",
    ]
    if not adaptive["available"]:
        return rows + [{"target": t, "status": ADAPTIVE_MISSING, "value": ""} for t in wanted]
    fast_enough = (
        adaptive["median_h"] is not None
        and static["median_h"] is not None
        and adaptive["median_h"] * TARGET_SPEED_UP <= static["median_h"]
    )
    rows.append(
        {
            "target": wanted[0],
            "status": "met" if fast_enough else "not met",
            "value": f"{adaptive['median_h']} h vs {static['median_h']} h",
        }
    )
    clean = adaptive["false_positives"] == 0 and adaptive["runs"] >= TARGET_RUNS
    rows.append(
        {
            "target": wanted[1],
            "status": "met" if clean else "not met",
            "value": f"{adaptive['false_positives']} over {adaptive['runs']:,} runs",
        }
    )
    return rows


# -- the section -----------------------------------------------------------------------------


def measure(
    backend: str,
    make_target: Callable[[str], Target],
    *,
    seed: int = 15,
    days: int = 90,
    history_days: int = 60,
    scan_minutes: float = SCAN_MINUTES,
) -> dict[str, Any]:
    """Simulate once, then replay on a fresh ``backend`` database per configuration
    (``make_target(name)`` gives one). Returns the section's JSON."""
    history = simulate(seed=seed, days=days, history_days=history_days)
    rows = []
    for config, overrides in ((STATIC, {}), (ADAPTIVE, {"adaptive_thresholds": True})):
        if overrides and not adaptive_available():
            rows.append(unavailable(config))
            continue
        target = make_target(f"detection-{config.split()[0]}")
        print(f"-- detection, {config}, on {target.label}: replaying ...", flush=True)
        try:
            outcome = replay(history, target.settings(**overrides), scan_minutes=scan_minutes)
        finally:
            target.cleanup()
        rows.append(figures(history, outcome, config))
    static, adaptive = rows
    return {
        "backend": backend,
        "simulation": {**history.describe(), "scan_minutes": scan_minutes},
        "configs": rows,
        "targets": targets(static, adaptive),
    }


def _latency(hours: float | None, crashed: int) -> str:
    if not crashed:
        return "-"
    return "undetected" if hours is None else f"{hours:g}"


def _kind_latency(figures: dict[str, Any]) -> str:
    crashed = figures["crashed"]
    median, p95 = _latency(figures["median_h"], crashed), _latency(figures["p95_h"], crashed)
    return f"{median} / {p95} ({crashed} crashes)"


def _lines() -> list[tuple[str, Callable[[dict[str, Any]], str]]]:
    """The printed rows: a label and how to show it for one configuration."""
    lines: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("runs simulated", lambda r: f"{r['runs']:,}"),
        ("crashed runs", lambda r: f"{r['crashed_runs']:,}"),
        ("detection latency median h", lambda r: _latency(r["median_h"], r["crashed_runs"])),
        ("detection latency p95 h", lambda r: _latency(r["p95_h"], r["crashed_runs"])),
    ]
    for kind in KINDS:
        lines.append(
            (
                f"  {kind} portals: median / p95 h",
                lambda r, k=kind: _kind_latency(r["by_kind"][k]),
            )
        )
    lines += [
        ("undetected crashes", lambda r: str(r["undetected_crashes"])),
        ("false positives (runs)", lambda r: str(r["false_positives"])),
    ]
    for kind in KINDS:
        lines.append(
            (f"  on {kind} portals", lambda r, k=kind: str(r["by_kind"][k]["false_positives"]))
        )
    lines += [
        ("attention verdicts (runs)", lambda r: str(r["attention_runs"])),
        ("scans / replay s", lambda r: f"{r['scans']:,} / {r['replay_s']:g}"),
    ]
    return lines


def print_section(section: dict[str, Any]) -> None:
    """Both configurations side by side, then the targets."""
    sim = section["simulation"]
    kinds = sim["portals"]
    print(
        f"detection ({section['backend']}): {sum(kinds.values())} portals "
        f"({kinds['fast']} fast, {kinds['medium']} medium, {kinds['slow']} slow), "
        f"{sim['days']} days, {sim['runs']:,} runs after {sim['history_runs']:,} in "
        f"{sim['history_days']} days of history, a scan every {sim['scan_minutes']:g} min"
    )
    configs = section["configs"]
    table = [("", *(c["config"] for c in configs))]
    table += [
        (name, *(show(c) if c["available"] else "" if row else c["note"] for c in configs))
        for row, (name, show) in enumerate(_lines())
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    for target in section["targets"]:
        value = f" ({target['value']})" if target["value"] else ""
        print(f"target: {target['target']}: {target['status']}{value}")
