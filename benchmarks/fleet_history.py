"""A simulated fleet of legacy scrapers: who ran when, for how long, and which runs crashed.

Pure and seeded (no database, no clock): the same arguments always give the same history. The
detection benchmark (``benchmarks.detection``) replays it through the real classifier.

- 50 portals of three kinds. Most are *fast*: a typical run takes 4 to 50 minutes. A few are
  *medium* (2 to 8 hours) and a few *slow*, far slower than a day (20 to 40 hours).
- Each run's duration is log-normal around its portal's typical duration (a portal has its own
  spread), so a portal's longest runs are several times its typical one.
- Each portal has a schedule: a slot every few hours (a cron line). A slot is skipped while the
  portal's previous scraper process is still working (a lock file), so two runs of one portal
  never work at once; a crashed process no longer holds the lock.
- The scrapers are legacy ones: they never heartbeat, and they write their counters only when
  they finish. A running row has ``started_at``, ``status = 'running'`` and counters 0 or NULL,
  no checkpoint and no stored tenders: its age is the only evidence.
- Inside the measured window, some runs crash at a uniformly random point of their would-be
  duration: the process is gone and the row stays ``running`` forever. Some others fail
  normally (the scraper catches the error and writes ``failed``).
- Before the window, ``history_days`` of the same schedule give the database the completed runs
  an operator already has when a feature that learns from history is switched on. Runs there do
  not crash (a crash there would have been cleaned long before the window starts).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from benchmarks.synthetic import portal_names

# The measured window starts here: a fixed moment, never the wall clock.
WINDOW_START = datetime(2026, 9, 1, tzinfo=UTC)

SLOW_PORTALS = 4
MEDIUM_PORTALS = 4
CRASH_RATE = 0.03  # of the runs that start inside the window
FAIL_RATE = 0.02  # runs that end as 'failed' (the scraper caught its own error)
NULL_COUNTER_SHARE = 0.3  # portals whose scrapers leave the counters NULL until they finish
START_JITTER_MINUTES = 3.0

FAST, MEDIUM, SLOW = "fast", "medium", "slow"
KINDS = (FAST, MEDIUM, SLOW)


@dataclass(frozen=True)
class PortalProfile:
    """How one portal's runs behave: a log-normal duration and a schedule."""

    name: str
    kind: str
    typical_minutes: float  # the median run
    spread: float  # sigma of log(duration)
    period_hours: float  # one slot every period
    phase_minutes: float  # the first slot, after the history starts
    null_counters: bool  # counters NULL (not 0) while running

    def duration(self, rng: random.Random) -> timedelta:
        return timedelta(minutes=rng.lognormvariate(math.log(self.typical_minutes), self.spread))


@dataclass(frozen=True)
class SimulatedRun:
    """One run as it happened. ``ends_at``/``final_status`` are when and how the scraper wrote
    its end; a crashed run has neither: it stopped at ``crashed_at`` and its row stays running."""

    id: int
    portal: str
    started_at: datetime
    ends_at: datetime | None
    final_status: str | None
    crashed_at: datetime | None
    extracted: int
    skipped: int
    null_counters: bool

    @property
    def crashed(self) -> bool:
        return self.crashed_at is not None

    @property
    def stops_at(self) -> datetime:
        """When the scraper process stops working on the run (it finished, failed or died)."""
        stop = self.crashed_at or self.ends_at
        assert stop is not None
        return stop

    def healthy_at(self, moment: datetime) -> bool:
        """Still being worked on by a live scraper at ``moment``."""
        return self.started_at <= moment < self.stops_at


@dataclass
class FleetHistory:
    portals: list[PortalProfile]
    runs: list[SimulatedRun]  # in start order; ids 1, 2, ... in that order
    history_start: datetime
    start: datetime  # the measured window
    end: datetime
    seed: int
    by_id: dict[int, SimulatedRun] = field(init=False, repr=False)
    kind_of: dict[str, str] = field(init=False, repr=False)  # portal -> its kind

    def __post_init__(self) -> None:
        self.by_id = {run.id: run for run in self.runs}
        self.kind_of = {p.name: p.kind for p in self.portals}

    @property
    def window_runs(self) -> list[SimulatedRun]:
        """The runs that start inside the measured window."""
        return [r for r in self.runs if self.start <= r.started_at < self.end]

    def describe(self) -> dict[str, object]:
        window = self.window_runs
        return {
            "seed": self.seed,
            "portals": {kind: sum(p.kind == kind for p in self.portals) for kind in KINDS},
            "days": (self.end - self.start).days,
            "history_days": (self.start - self.history_start).days,
            "runs": len(window),
            "history_runs": len(self.runs) - len(window),
            "crashed_runs": sum(r.crashed for r in window),
            "failed_runs": sum(r.final_status == "failed" for r in window),
            "crash_rate": CRASH_RATE,
            "fail_rate": FAIL_RATE,
        }


def portal_profiles(rng: random.Random, names: list[str]) -> list[PortalProfile]:
    """Kinds handed out at random (seeded); each portal's duration and schedule drawn for its
    kind."""
    kinds = [SLOW] * SLOW_PORTALS + [MEDIUM] * MEDIUM_PORTALS
    kinds += [FAST] * (len(names) - len(kinds))
    rng.shuffle(kinds)
    profiles = []
    for name, kind in zip(names, kinds, strict=True):
        if kind == FAST:
            typical = math.exp(rng.uniform(math.log(4), math.log(50)))
            spread = rng.uniform(0.3, 0.8)
            period = rng.choice([3, 4, 6, 8, 12])
        elif kind == MEDIUM:
            typical = rng.uniform(2, 8) * 60
            spread = rng.uniform(0.3, 0.5)
            period = 6
        else:
            typical = rng.uniform(20, 40) * 60
            spread = rng.uniform(0.1, 0.25)
            period = 6
        profiles.append(
            PortalProfile(
                name=name,
                kind=kind,
                typical_minutes=typical,
                spread=spread,
                period_hours=period,
                phase_minutes=rng.uniform(0, period * 60),
                null_counters=rng.random() < NULL_COUNTER_SHARE,
            )
        )
    return profiles


def simulate(
    *,
    seed: int = 15,
    portals: int = 50,
    days: int = 90,
    history_days: int = 60,
    start: datetime = WINDOW_START,
) -> FleetHistory:
    """The fleet's runs from ``history_days`` before ``start`` until ``days`` after it."""
    names = portal_names()[:portals]
    profiles = portal_profiles(random.Random(f"profiles-{seed}"), names)
    history_start = start - timedelta(days=history_days)
    end = start + timedelta(days=days)
    drafts: list[dict[str, object]] = []
    for profile in profiles:
        drafts.extend(
            _portal_runs(
                profile, random.Random(f"{seed}-{profile.name}"), history_start, start, end
            )
        )
    drafts.sort(key=lambda d: (d["started_at"], d["portal"]))
    runs = [SimulatedRun(id=i, **d) for i, d in enumerate(drafts, start=1)]  # type: ignore[arg-type]
    return FleetHistory(profiles, runs, history_start, start, end, seed)


def _portal_runs(
    profile: PortalProfile,
    rng: random.Random,
    history_start: datetime,
    start: datetime,
    end: datetime,
) -> list[dict[str, object]]:
    period = timedelta(hours=profile.period_hours)
    slot = history_start + timedelta(minutes=profile.phase_minutes)
    free_at = history_start  # when the portal's previous scraper process let go of its lock
    runs = []
    while slot < end:
        if slot >= free_at:
            begun = slot + timedelta(minutes=rng.uniform(0, START_JITTER_MINUTES))
            duration = profile.duration(rng)
            ends_at: datetime | None = None
            status: str | None = None
            crashed_at: datetime | None = None
            extracted = skipped = 0
            if begun >= start and rng.random() < CRASH_RATE:
                crashed_at = begun + duration * rng.random()
            elif rng.random() < FAIL_RATE:
                ends_at, status = begun + duration * rng.uniform(0.05, 1.0), "failed"
            else:
                ends_at, status = begun + duration, "completed"
                extracted, skipped = rng.randint(1, 800), rng.randint(0, 300)
            runs.append(
                {
                    "portal": profile.name,
                    "started_at": begun,
                    "ends_at": ends_at,
                    "final_status": status,
                    "crashed_at": crashed_at,
                    "extracted": extracted,
                    "skipped": skipped,
                    "null_counters": profile.null_counters,
                }
            )
            free_at = crashed_at or ends_at  # type: ignore[assignment]
        slot += period
    return runs
