"""Judging one running run: alive, young, resumable, dead, or needing a person's attention.

Pure functions: facts read from the database, what the checkpoint proves, the portal's policy and
``now`` go in; a verdict with its reasons comes out. The rules (DESIGN.md section 4):

- alive: heartbeat fresher than the heartbeat timeout, and the worker has not released the run
  (on Ctrl-C/SIGTERM the tracker records ``released_at``). Never touched, whatever its age.
- young: no fresh heartbeat and younger than the age threshold: it may still be starting -> wait.
- resumable: not alive, and progress (extracted or skipped > 0) or a checkpoint with tender data.
  A run that never sent a heartbeat must also be past the threshold (it may still be running).
- dead: not alive, past the threshold, no progress (NULL counts as 0), no checkpoint with data.
- attention: what would be dead but cannot be ruled out: unreadable checkpoint or counters,
  unknown start time, a start in the future, or a portal excluded from clean-up. Never cleaned
  automatically; a person decides.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from math import isfinite
from typing import Any

from cleanup_core.checkpoints import CheckpointInfo
from cleanup_core.config import Policy
from cleanup_core.numbers import whole_number
from cleanup_core.timestamps import duration, parse_timestamp

# A start time this far in the future is a clock or data problem, not skew between hosts.
FUTURE_TOLERANCE = timedelta(minutes=5)


class RunState(enum.StrEnum):
    ALIVE = "alive"
    YOUNG = "young"
    RESUMABLE = "resumable"
    DEAD = "dead"
    ATTENTION = "attention"


class Action(enum.StrEnum):
    """What the pre-scrape check tells a scraper to do."""

    START = "start"
    RESUME = "resume"
    CLEANUP = "cleanup"
    WAIT = "wait"


ACTION_FOR_STATE = {
    RunState.ALIVE: Action.WAIT,
    RunState.YOUNG: Action.WAIT,
    RunState.RESUMABLE: Action.RESUME,
    RunState.DEAD: Action.CLEANUP,
    RunState.ATTENTION: Action.WAIT,
}


@dataclass(frozen=True)
class RunFacts:
    """A running run as stored: raw values, exactly as the database returned them."""

    id: int
    portal_name: str | None
    status: str | None
    started_at: object = None
    completed_at: object = None
    extracted_total_tenders: object = None
    skipped_existing_total: object = None
    last_heartbeat_at: object = None
    last_progress_at: object = None
    worker_id: str | None = None
    attempt: object = None
    released_at: object = None


@dataclass(frozen=True)
class Reason:
    """One rule that fired, in words and as evidence a program can read."""

    rule: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "message": self.message, **self.evidence}


@dataclass(frozen=True)
class Verdict:
    run_id: int
    portal_name: str | None
    state: RunState
    reasons: tuple[Reason, ...]
    policy: Policy
    checkpoint: CheckpointInfo
    started_at: datetime | None = None
    age_hours: float | None = None
    extracted: int | None = None
    skipped: int | None = None
    last_heartbeat_at: datetime | None = None
    heartbeat_age_minutes: float | None = None
    last_progress_at: datetime | None = None
    worker_id: str | None = None
    attempt: int | None = None

    @property
    def action(self) -> Action:
        return ACTION_FOR_STATE[self.state]

    @property
    def summary(self) -> str:
        """The reasons in one line, for tables and logs."""
        return "; ".join(reason.message for reason in self.reasons)

    @property
    def checkpoint_tenders(self) -> int:
        return self.checkpoint.tender_count if self.checkpoint.is_evidence_for(self.run_id) else 0

    def to_dict(self) -> dict[str, Any]:
        """The seed's run dict (id, portal_name, started_at, age_hours, counters) plus evidence."""
        return {
            "id": self.run_id,
            "portal_name": self.portal_name,
            "state": self.state.value,
            "action": self.action.value,
            "started_at": _iso(self.started_at),
            "age_hours": None if self.age_hours is None else round(self.age_hours, 2),
            "extracted_total_tenders": self.extracted,
            "skipped_existing_total": self.skipped,
            "last_heartbeat_at": _iso(self.last_heartbeat_at),
            "heartbeat_age_minutes": _round(self.heartbeat_age_minutes),
            "last_progress_at": _iso(self.last_progress_at),
            "worker_id": self.worker_id,
            "attempt": self.attempt,
            "age_threshold_hours": round(self.policy.age_threshold_hours, 2),
            "checkpoint": self.checkpoint.to_dict(),
            "checkpoint_tenders": self.checkpoint_tenders,
            "reasons": [reason.to_dict() for reason in self.reasons],
            "summary": self.summary,
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def _counter(value: object) -> int | None:
    """NULL -> 0; a whole number >= 0 -> itself; anything else -> None (unknown)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and value >= 0 else None
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return 0
        return whole_number(text)
    return None


def _attempt(value: object) -> int | None:
    return None if value is None else _counter(value)


def classify(
    facts: RunFacts, *, checkpoint: CheckpointInfo, policy: Policy, now: datetime, tz: tzinfo
) -> Verdict:
    """Judge one run whose status is ``running`` at time ``now`` (aware)."""
    reasons: list[Reason] = []
    add = reasons.append
    threshold_h = policy.age_threshold_hours
    timeout_min = _minutes(policy.heartbeat_timeout)

    started, start_problem = _read_time(facts.started_at, tz)
    heartbeat, heartbeat_problem = _read_time(facts.last_heartbeat_at, tz)
    progress_at, _ = _read_time(facts.last_progress_at, tz)
    released, _ = _read_time(facts.released_at, tz)
    extracted = _counter(facts.extracted_total_tenders)
    skipped = _counter(facts.skipped_existing_total)

    age = None if started is None else now - started
    heartbeat_age = None if heartbeat is None else now - heartbeat

    def verdict(state: RunState) -> Verdict:
        return Verdict(
            run_id=facts.id,
            portal_name=facts.portal_name,
            state=state,
            reasons=tuple(reasons),
            policy=policy,
            checkpoint=checkpoint,
            started_at=started,
            age_hours=None if age is None else max(_hours(age), 0.0),
            extracted=extracted,
            skipped=skipped,
            last_heartbeat_at=heartbeat,
            heartbeat_age_minutes=None if heartbeat_age is None else _minutes(heartbeat_age),
            last_progress_at=progress_at,
            worker_id=facts.worker_id,
            attempt=_attempt(facts.attempt),
        )

    # 1. A fresh heartbeat means a worker is on it right now.
    if heartbeat_problem:
        add(
            Reason(
                "heartbeat_unreadable",
                f"last heartbeat {heartbeat_problem}",
                {"raw": _raw(facts.last_heartbeat_at)},
            )
        )
        return verdict(RunState.ATTENTION)
    was_released = released is not None and (heartbeat is None or released >= heartbeat)
    if was_released:
        # The worker let go of the run on purpose (Ctrl-C, SIGTERM): nobody is on it any more.
        add(
            Reason(
                "released",
                f"worker let go of the run {duration(max(now - released, timedelta(0)))} ago "
                "(interrupted); no heartbeat since",
                {"released_at": released.isoformat()},
            )
        )
    elif heartbeat_age is not None and heartbeat_age < policy.heartbeat_timeout:
        minutes = max(_minutes(heartbeat_age), 0.0)
        note = " (in the future: clock skew?)" if heartbeat_age < timedelta(0) else ""
        add(
            Reason(
                "heartbeat_fresh",
                f"heartbeat {minutes:.1f} min ago{note} (timeout {timeout_min:g} min)",
                {
                    "heartbeat_age_minutes": round(_minutes(heartbeat_age), 2),
                    "heartbeat_timeout_minutes": timeout_min,
                },
            )
        )
        return verdict(RunState.ALIVE)
    elif heartbeat_age is not None:
        add(
            Reason(
                "heartbeat_lost",
                f"no heartbeat for {duration(heartbeat_age)} (timeout {timeout_min:g} min)",
                {
                    "heartbeat_age_minutes": round(_minutes(heartbeat_age), 2),
                    "heartbeat_timeout_minutes": timeout_min,
                },
            )
        )

    # 2. Evidence of work done: counters and the checkpoint.
    progress = (extracted or 0) > 0 or (skipped or 0) > 0
    counters_unknown = extracted is None or skipped is None
    if progress:
        add(
            Reason(
                "progress",
                f"made progress: {extracted or 0} extracted, {skipped or 0} skipped",
                {"extracted": extracted, "skipped": skipped},
            )
        )
    elif counters_unknown:
        add(
            Reason(
                "counters_unreadable",
                "progress counters are not whole numbers: "
                f"extracted={_raw(facts.extracted_total_tenders)}, "
                f"skipped={_raw(facts.skipped_existing_total)}",
                {
                    "extracted_raw": _raw(facts.extracted_total_tenders),
                    "skipped_raw": _raw(facts.skipped_existing_total),
                },
            )
        )
    else:
        add(
            Reason(
                "no_progress",
                "no progress: 0 extracted, 0 skipped",
                {"extracted": extracted, "skipped": skipped},
            )
        )
    has_checkpoint = checkpoint.is_evidence_for(facts.id)
    checkpoint_problem = checkpoint.status.is_problem
    add(_checkpoint_reason(checkpoint, facts.id))
    evidence = progress or has_checkpoint

    # 3. Age against the threshold.
    threshold_note = f"threshold {threshold_h:g} h, {policy.threshold_source}"
    if start_problem or started is None:
        what = start_problem or "is not recorded"
        add(Reason("start_unknown", f"start time {what}", {"raw": _raw(facts.started_at)}))
    elif age is not None and age < -FUTURE_TOLERANCE:
        add(
            Reason(
                "start_in_future",
                f"start time is {_hours(-age):.1f} h in the future (clock or data problem)",
                {"started_at": started.isoformat()},
            )
        )
    elif age is not None and age < policy.age_threshold:
        add(
            Reason(
                "young",
                f"started {max(_hours(age), 0):.1f} h ago ({threshold_note})",
                {"age_hours": round(max(_hours(age), 0), 2), "age_threshold_hours": threshold_h},
            )
        )
    else:
        add(
            Reason(
                "old",
                f"started {_hours(age):.1f} h ago ({threshold_note})",
                {"age_hours": round(_hours(age), 2), "age_threshold_hours": threshold_h},
            )
        )
    is_old = age is not None and not start_problem and age >= policy.age_threshold

    # 4. The verdict.
    had_worker = heartbeat is not None or was_released  # a tracked worker, now gone
    if evidence and (is_old or had_worker):
        return verdict(RunState.RESUMABLE)
    if not is_old:
        known_young = age is not None and -FUTURE_TOLERANCE <= age < policy.age_threshold
        return verdict(RunState.YOUNG if known_young else RunState.ATTENTION)
    if counters_unknown or checkpoint_problem:
        return verdict(RunState.ATTENTION)
    if policy.exclude_from_cleanup:
        add(Reason("portal_excluded", "portal is excluded from clean-up by its policy"))
        return verdict(RunState.ATTENTION)
    return verdict(RunState.DEAD)


def _checkpoint_reason(checkpoint: CheckpointInfo, run_id: int) -> Reason:
    where = {
        "checkpoint_path": str(checkpoint.path) if checkpoint.path else None,
        "checkpoint_status": checkpoint.status.value,
    }
    if checkpoint.status.is_problem:
        return Reason(
            "checkpoint_unreadable",
            f"checkpoint {checkpoint.status.value}: {checkpoint.detail}",
            where,
        )
    if checkpoint.names_other_run(run_id):
        return Reason(
            "checkpoint_other_run",
            f"checkpoint belongs to run {checkpoint.run_id}",
            {**where, "checkpoint_run_id": checkpoint.run_id},
        )
    if checkpoint.has_data:
        return Reason(
            "checkpoint_data",
            f"checkpoint has {checkpoint.tender_count} tenders",
            {**where, "checkpoint_tenders": checkpoint.tender_count},
        )
    if checkpoint.status.value == "ok":
        return Reason("checkpoint_empty", "checkpoint has no tenders", where)
    return Reason("no_checkpoint", "no checkpoint file", where)


def _read_time(raw: object, tz: tzinfo) -> tuple[datetime | None, str | None]:
    try:
        return parse_timestamp(raw, tz), None
    except ValueError as exc:
        return None, f"is unreadable ({exc})"


def _raw(value: object) -> Any:
    """A stored value as JSON-safe evidence."""
    if isinstance(value, str):
        return value[:80]
    if value is None or isinstance(value, int) or (isinstance(value, float) and isfinite(value)):
        return value
    return repr(value)[:80]
