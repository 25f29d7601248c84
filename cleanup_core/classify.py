"""Judging one running run: alive, young, resumable, dead, or needing a person's attention.

Pure functions: facts read from the database, what the checkpoint proves, the portal's policy and
``now`` go in; a verdict with its reasons comes out. The rules (docs/architecture.md, "State
rules"):

- alive: heartbeat fresher than the heartbeat timeout, and the worker has not released the run
  (on Ctrl-C/SIGTERM the tracker records ``released_at``). Never touched, whatever its age.
- young: no fresh heartbeat and younger than the age threshold: it may still be starting -> wait.
- resumable: not alive, and progress (extracted or skipped > 0), tenders stored under its id (a
  legacy scraper may update its counters only at the end), or a checkpoint with tender data.
  A run that never sent a heartbeat must also be past the threshold (it may still be running).
- dead: not alive, past the threshold, no progress (NULL counts as 0), no stored tenders, no
  checkpoint with data.
- attention: what would be dead but cannot be ruled out: unreadable checkpoint or counters,
  unknown start time, a start in the future, or a portal excluded from clean-up. Never cleaned
  automatically; a person decides. Also a resumable run the monitor already launched
  ``max_resume_attempts`` times without it finishing (``resume_attempts_exhausted``): it is
  never launched automatically again, but a person may still resume it by hand.

Besides its state, an alive or young run is *overdue* (``Rule.OVERDUE``) when it has been
running longer than its portal's p99 x overdue_factor (``Policy.overdue_after``, known only where
the portal's completed runs were read): worth a look even when it heartbeats. (A dead,
resumable or attention run is a problem to look at already.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from math import isfinite
from typing import Any

from cleanup_core.checkpoints import CheckpointInfo, CheckpointStatus
from cleanup_core.config import Policy
from cleanup_core.numbers import whole_number
from cleanup_core.records import RunFacts
from cleanup_core.stalls import Stall
from cleanup_core.timestamps import duration, parse_timestamp
from cleanup_core.vocabulary import ACTION_FOR_STATE, Action, Rule, RunState
from cleanup_core.vocabulary import CheckpointSource as Source

# The states a run is flagged overdue in: the others are a problem to look at already.
_MAY_BE_OVERDUE = frozenset({RunState.ALIVE, RunState.YOUNG})

# A start time this far in the future is a clock or data problem, not skew between hosts.
FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class Reason:
    """One rule that fired, in words and as evidence a program can read."""

    rule: Rule
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "message": self.message, **self.evidence}


@dataclass(slots=True)
class Verdict:
    """A run's state and the rules that decided it (read-only by convention). The reasons
    (messages and evidence) are written out only when someone reads them, and the class uses
    slots, so judging thousands of runs stays cheap."""

    run_id: int
    portal_name: str | None
    state: RunState
    rules: tuple[Rule, ...]
    policy: Policy
    checkpoint: CheckpointInfo
    facts: RunFacts
    now: datetime
    tz: tzinfo
    started_at: datetime | None = None
    age_hours: float | None = None
    extracted: int | None = None
    skipped: int | None = None
    last_heartbeat_at: datetime | None = None
    heartbeat_age_minutes: float | None = None
    released_at: datetime | None = None
    problems: dict[Rule, str] | None = None  # rule -> what was unreadable
    stall: Stall | None = None  # an alive run not getting anywhere (set by the service's scan)
    _reasons: tuple[Reason, ...] | None = None

    @property
    def worker_id(self) -> str | None:
        return self.facts.worker_id

    @property
    def extracted_recorded(self) -> bool:
        """Whether the extracted counter was ever stored (NULL counts as 0, but is unknown)."""
        return recorded(self.facts.extracted_total_tenders)

    @property
    def skipped_recorded(self) -> bool:
        return recorded(self.facts.skipped_existing_total)

    @property
    def last_progress_at(self) -> datetime | None:
        """When the worker last reported progress (read on demand: only the monitor needs it)."""
        moment, _ = _read_time(self.facts.last_progress_at, self.tz)
        return moment

    @property
    def attempt(self) -> int | None:
        return _attempt(self.facts.attempt)

    @property
    def stored_tenders(self) -> int | None:
        """Tenders stored under the run's id; ``None`` when they were not counted."""
        return self.facts.stored_tenders

    @property
    def overdue(self) -> bool:
        """Running longer than the portal's p99 x overdue_factor (a flag beside the state)."""
        return Rule.OVERDUE in self.rules

    @property
    def action(self) -> Action:
        return ACTION_FOR_STATE[self.state]

    @property
    def resumable_by_hand(self) -> bool:
        """Resumable, or resumable but out of automatic attempts: a person may resume it."""
        return self.state is RunState.RESUMABLE or Rule.RESUME_ATTEMPTS_EXHAUSTED in self.rules

    @property
    def reasons(self) -> tuple[Reason, ...]:
        if self._reasons is None:
            self._reasons = tuple(_explain(self, rule) for rule in self.rules)
        return self._reasons

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
            # NULL (never recorded) stays null; the rules count it as 0.
            "extracted_total_tenders": self.extracted if self.extracted_recorded else None,
            "skipped_existing_total": self.skipped if self.skipped_recorded else None,
            "last_heartbeat_at": _iso(self.last_heartbeat_at),
            "heartbeat_age_minutes": _round(self.heartbeat_age_minutes),
            "last_progress_at": _iso(self.last_progress_at),
            "worker_id": self.worker_id,
            "attempt": self.attempt,
            "age_threshold_hours": self.policy.age_threshold_hours,
            "threshold_hours": self.policy.age_threshold_hours,
            "threshold_source": str(self.policy.threshold_source),
            "overdue": self.overdue,
            "checkpoint": self.checkpoint.to_dict(),
            "checkpoint_source": self.checkpoint.shown_source,
            "checkpoint_tenders": self.checkpoint_tenders,
            "stored_tenders": self.stored_tenders,
            "reasons": [reason.to_dict() for reason in self.reasons],
            "summary": self.summary,
            "stalled": None if self.stall is None else self.stall.to_dict(),
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def _counter(value: object) -> int | None:
    """NULL -> 0; a whole number >= 0 -> itself; anything else -> None (unknown)."""
    if type(value) is int:  # the usual case first: this runs for every run of every scan
        return value if value >= 0 else None
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


def recorded(value: object) -> bool:
    """Whether a stored counter holds a value (NULL or blank text: never recorded)."""
    return not (value is None or (isinstance(value, str) and value.strip() == ""))


def counter_value(value: object) -> int | None:
    """A stored counter as the rules read it (NULL -> 0; unreadable -> ``None``)."""
    return _counter(value)


def _attempt(value: object) -> int | None:
    return None if value is None else _counter(value)


def classify(
    facts: RunFacts, *, checkpoint: CheckpointInfo, policy: Policy, now: datetime, tz: tzinfo
) -> Verdict:
    """Judge one run whose status is ``running`` at time ``now`` (aware).

    Runs for every running run of every scan and pre-scrape check, so it only decides; the
    reasons are written out from ``rules`` when someone reads them (``Verdict.reasons``)."""
    problems: dict[Rule, str] | None = None  # rule -> what could not be read
    started, start_problem = _read_time(facts.started_at, tz)
    heartbeat, heartbeat_problem = _read_time(facts.last_heartbeat_at, tz)
    released, _ = _read_time(facts.released_at, tz)
    extracted = _counter(facts.extracted_total_tenders)
    skipped = _counter(facts.skipped_existing_total)
    age = None if started is None else now - started
    heartbeat_age = None if heartbeat is None else now - heartbeat
    was_released = released is not None and (heartbeat is None or released >= heartbeat)

    # 1. A fresh heartbeat means a worker is on it right now, unless it let go of the run
    #    (Ctrl-C, SIGTERM) after that heartbeat.
    if heartbeat_problem:
        problems = {Rule.HEARTBEAT_UNREADABLE: heartbeat_problem}
        rules: tuple[Rule, ...] = (Rule.HEARTBEAT_UNREADABLE,)
        state = RunState.ATTENTION
    elif (
        not was_released and heartbeat_age is not None and heartbeat_age < policy.heartbeat_timeout
    ):
        rules, state = (Rule.HEARTBEAT_FRESH,), RunState.ALIVE
    else:
        if was_released:
            worker_rule: tuple[Rule, ...] = (Rule.RELEASED,)
        elif heartbeat_age is not None:
            worker_rule = (Rule.HEARTBEAT_LOST,)
        else:
            worker_rule = ()
        # 2. Evidence of work done: counters, stored tenders and the checkpoint.
        progress = (extracted or 0) > 0 or (skipped or 0) > 0
        counters_unknown = extracted is None or skipped is None
        progress_rule = (
            Rule.PROGRESS
            if progress
            else Rule.COUNTERS_UNREADABLE
            if counters_unknown
            else Rule.NO_PROGRESS
        )
        stored = facts.stored_tenders
        if stored is None:
            tenders_rule: tuple[Rule, ...] = ()
        else:
            tenders_rule = (Rule.TENDERS_STORED,) if stored > 0 else (Rule.NO_TENDERS_STORED,)
        evidence = progress or bool(stored) or checkpoint.is_evidence_for(facts.id)
        # 3. Age against the threshold.
        if start_problem or age is None:
            problems = {Rule.START_UNKNOWN: start_problem or "is not recorded"}
            age_rule = Rule.START_UNKNOWN
        elif age < -FUTURE_TOLERANCE:
            age_rule = Rule.START_IN_FUTURE
        elif age < policy.age_threshold:
            age_rule = Rule.YOUNG
        else:
            age_rule = Rule.OLD
        checkpoint_rule = _checkpoint_rule(checkpoint, facts.id)
        rules = (*worker_rule, progress_rule, *tenders_rule, checkpoint_rule, age_rule)
        # 4. The verdict.
        is_old = age_rule == Rule.OLD
        if evidence and (is_old or heartbeat is not None or was_released):
            state = RunState.RESUMABLE  # a tracked worker is gone, or it is old: resume it
            if (facts.auto_resumes or 0) >= policy.max_resume_attempts:
                # The monitor tried often enough: a person decides now.
                rules, state = (*rules, Rule.RESUME_ATTEMPTS_EXHAUSTED), RunState.ATTENTION
        elif not is_old:
            state = RunState.YOUNG if age_rule == Rule.YOUNG else RunState.ATTENTION
        elif counters_unknown or checkpoint.status.is_problem:
            state = RunState.ATTENTION
        elif policy.exclude_from_cleanup:
            rules, state = (*rules, Rule.PORTAL_EXCLUDED), RunState.ATTENTION
        else:
            state = RunState.DEAD
    if (
        policy.overdue_after is not None
        and age is not None
        and age >= policy.overdue_after
        and state in _MAY_BE_OVERDUE
    ):
        rules = (*rules, Rule.OVERDUE)
    return Verdict(
        run_id=facts.id,
        portal_name=facts.portal_name,
        state=state,
        rules=rules,
        policy=policy,
        checkpoint=checkpoint,
        facts=facts,
        now=now,
        tz=tz,
        started_at=started,
        age_hours=None if age is None else max(age.total_seconds() / 3600, 0.0),
        extracted=extracted,
        skipped=skipped,
        last_heartbeat_at=heartbeat,
        heartbeat_age_minutes=None if heartbeat_age is None else _minutes(heartbeat_age),
        released_at=released,
        problems=problems,
    )


def _progress_message(v: Verdict, rule: Rule) -> str:
    """Progress as stored: a counter never recorded (NULL) is said to be unknown, not 0."""
    extracted, skipped = v.extracted_recorded, v.skipped_recorded
    if rule == Rule.NO_PROGRESS and not extracted and not skipped:
        return "no progress recorded"
    counted = [
        f"{v.extracted or 0} extracted" if extracted else "extracted never recorded",
        f"{v.skipped or 0} skipped" if skipped else "skipped never recorded",
    ]
    lead = "made progress" if rule == Rule.PROGRESS else "no progress"
    return f"{lead}: {', '.join(counted)}"


def _progress_evidence(v: Verdict) -> dict[str, Any]:
    return {
        "extracted": v.extracted if v.extracted_recorded else None,
        "skipped": v.skipped if v.skipped_recorded else None,
    }


def _checkpoint_rule(checkpoint: CheckpointInfo, run_id: int) -> Rule:
    if checkpoint.status.is_problem:
        return Rule.CHECKPOINT_UNREADABLE
    if checkpoint.names_other_run(run_id):
        return Rule.CHECKPOINT_OTHER_RUN
    if checkpoint.has_data:
        return Rule.CHECKPOINT_DATA
    if checkpoint.status is CheckpointStatus.OK:
        return Rule.CHECKPOINT_EMPTY
    return Rule.NO_CHECKPOINT


def _explain(v: Verdict, rule: Rule) -> Reason:
    """The message and evidence of one rule that fired for ``v``."""
    match rule:
        case Rule.HEARTBEAT_FRESH | Rule.HEARTBEAT_LOST:
            return _heartbeat_reason(v, rule)
        case Rule.PROGRESS | Rule.NO_PROGRESS:
            return Reason(rule, _progress_message(v, rule), _progress_evidence(v))
        case Rule.TENDERS_STORED | Rule.NO_TENDERS_STORED:
            count = v.stored_tenders or 0
            message = (
                f"{count} tender{'' if count == 1 else 's'} stored"
                if count
                else "no tenders stored"
            )
            return Reason(rule, message, {"stored_tenders": count})
        case Rule.YOUNG | Rule.OLD:
            age = v.now - v.started_at if v.started_at is not None else timedelta(0)
            hours = max(age.total_seconds() / 3600, 0.0)
            message = f"started {hours:.1f} h ago ({v.policy.threshold_text})"
            # The threshold exactly as applied: the audit trail keeps what the clean-up used.
            evidence = {
                "age_hours": round(hours, 2),
                "age_threshold_hours": v.policy.age_threshold_hours,
                "threshold_source": str(v.policy.threshold_source),
            }
            return Reason(rule, message, evidence)
        case (
            Rule.CHECKPOINT_UNREADABLE
            | Rule.CHECKPOINT_OTHER_RUN
            | Rule.CHECKPOINT_DATA
            | Rule.CHECKPOINT_EMPTY
            | Rule.NO_CHECKPOINT
        ):
            return _checkpoint_reason(v.checkpoint, rule)
        case Rule.HEARTBEAT_UNREADABLE:
            message = f"last heartbeat {(v.problems or {})[rule]}"
            return Reason(rule, message, {"raw": _raw(v.facts.last_heartbeat_at)})
        case Rule.RELEASED:
            since = max(v.now - v.released_at, timedelta(0)) if v.released_at else timedelta(0)
            message = (
                f"worker let go of the run {duration(since)} ago (interrupted); no heartbeat since"
            )
            return Reason(rule, message, {"released_at": _iso(v.released_at)})
        case Rule.COUNTERS_UNREADABLE:
            extracted = _raw(v.facts.extracted_total_tenders)
            skipped = _raw(v.facts.skipped_existing_total)
            message = (
                f"progress counters are not whole numbers: extracted={extracted}, skipped={skipped}"
            )
            return Reason(rule, message, {"extracted_raw": extracted, "skipped_raw": skipped})
        case Rule.START_UNKNOWN:
            message = f"start time {(v.problems or {})[rule]}"
            return Reason(rule, message, {"raw": _raw(v.facts.started_at)})
        case Rule.START_IN_FUTURE:
            ahead = (v.started_at - v.now).total_seconds() / 3600 if v.started_at else 0.0
            message = f"start time is {ahead:.1f} h in the future (clock or data problem)"
            return Reason(rule, message, {"started_at": _iso(v.started_at)})
        case Rule.PORTAL_EXCLUDED:
            return Reason(rule, "portal is excluded from clean-up by its policy")
        case Rule.OVERDUE:
            return _overdue_reason(v)
        case Rule.RESUME_ATTEMPTS_EXHAUSTED:
            launches = v.facts.auto_resumes or 0
            code = v.facts.last_auto_resume_exit
            last = "still running or unknown" if code is None else str(code)
            message = (
                f"auto-resume launched it {launches} times (max_resume_attempts "
                f"{v.policy.max_resume_attempts}) without it finishing; last exit code {last}; "
                "not launched automatically again, resume it by hand"
            )
            return Reason(
                rule,
                message,
                {
                    "auto_resumes": launches,
                    "max_resume_attempts": v.policy.max_resume_attempts,
                    "last_exit_code": code,
                },
            )
    raise ValueError(f"no explanation for rule {rule!r}")


def _overdue_reason(v: Verdict) -> Reason:
    after = v.policy.overdue_after or timedelta(0)
    history = v.policy.history
    p99 = history.p99_seconds / 3600 if history else 0.0
    hours = v.age_hours or 0.0
    message = (
        f"overdue: running {hours:.1f} h, longer than {after.total_seconds() / 3600:.1f} h "
        f"({p99:.1f} h, the p99 of its portal's completed runs, x overdue_factor)"
    )
    evidence = {
        "overdue_after_hours": round(after.total_seconds() / 3600, 2),
        "p99_hours": round(p99, 2),
    }
    return Reason(Rule.OVERDUE, message, evidence)


def _heartbeat_reason(v: Verdict, rule: Rule) -> Reason:
    minutes = v.heartbeat_age_minutes or 0.0
    timeout = _minutes(v.policy.heartbeat_timeout)
    if rule == Rule.HEARTBEAT_FRESH:
        note = " (in the future: clock skew?)" if minutes < 0 else ""
        message = f"heartbeat {max(minutes, 0.0):.1f} min ago{note} (timeout {timeout:g} min)"
    else:
        lost = duration(timedelta(minutes=minutes))
        message = f"no heartbeat for {lost} (timeout {timeout:g} min)"
    evidence = {"heartbeat_age_minutes": round(minutes, 2), "heartbeat_timeout_minutes": timeout}
    return Reason(rule, message, evidence)


def _checkpoint_reason(checkpoint: CheckpointInfo, rule: Rule) -> Reason:
    where = {
        "checkpoint_path": str(checkpoint.path) if checkpoint.path else None,
        "checkpoint_status": checkpoint.status.value,
        "checkpoint_source": checkpoint.shown_source,
    }
    name = "checkpoint in the database" if checkpoint.source is Source.DATABASE else "checkpoint"
    if rule == Rule.CHECKPOINT_UNREADABLE:
        message = f"{name} {checkpoint.status.value}: {checkpoint.detail}"
        return Reason(rule, message, where)
    if rule == Rule.CHECKPOINT_OTHER_RUN:
        message = f"{name} belongs to run {checkpoint.run_id}"
        return Reason(rule, message, {**where, "checkpoint_run_id": checkpoint.run_id})
    if rule == Rule.CHECKPOINT_DATA:
        message = f"{name} has {checkpoint.tender_count} tenders"
        return Reason(rule, message, {**where, "checkpoint_tenders": checkpoint.tender_count})
    if rule == Rule.CHECKPOINT_EMPTY:
        return Reason(rule, f"{name} has no tenders", where)
    return Reason(rule, "no checkpoint file", where)


def _read_time(raw: object, tz: tzinfo) -> tuple[datetime | None, str | None]:
    if raw is None:
        return None, None
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
