"""The classification rules (docs/architecture.md, "State rules"), case by case, and their
invariants."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleanup_core import Action, CheckpointInfo, CheckpointStatus, Policy, RunFacts, RunState
from cleanup_core.classify import classify
from cleanup_core.durations import PortalStats
from cleanup_core.timestamps import format_utc

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TZ = ZoneInfo("Asia/Kolkata")
POLICY = Policy(age_threshold=timedelta(hours=24), heartbeat_timeout=timedelta(minutes=30))
NO_CHECKPOINT = CheckpointInfo(Path("/cp/assam.json"), CheckpointStatus.MISSING)


def checkpoint(count: int, run_id: int | None = None, status=CheckpointStatus.OK) -> CheckpointInfo:
    return CheckpointInfo(Path("/cp/assam.json"), status, tender_count=count, run_id=run_id)


def utc(hours: float = 0, minutes: float = 0) -> str:
    return format_utc(NOW - timedelta(hours=hours, minutes=minutes))


def judge(ckpt=NO_CHECKPOINT, policy=POLICY, **facts):
    values = {"id": 1, "portal_name": "Assam", "status": "running", **facts}
    return classify(RunFacts(**values), checkpoint=ckpt, policy=policy, now=NOW, tz=TZ)


def rules(verdict) -> set[str]:
    return {reason.rule for reason in verdict.reasons}


# Naive text is IST wall-clock time: NOW (12:00 UTC) is 17:30 IST.
OLD = "2026-11-26 17:30:00"  # 48 h ago
YOUNG = "2026-11-28 15:30:00"  # 2 h ago


@pytest.mark.parametrize(
    ("case", "facts", "ckpt", "state"),
    [
        ("old, nothing", {"started_at": OLD}, NO_CHECKPOINT, RunState.DEAD),
        (
            "old, NULL counters",
            {"started_at": OLD, "extracted_total_tenders": None},
            NO_CHECKPOINT,
            RunState.DEAD,
        ),
        (
            "old, zero counters",
            {"started_at": OLD, "extracted_total_tenders": 0, "skipped_existing_total": 0},
            NO_CHECKPOINT,
            RunState.DEAD,
        ),
        (
            "old, extracted",
            {"started_at": OLD, "extracted_total_tenders": 4},
            NO_CHECKPOINT,
            RunState.RESUMABLE,
        ),
        (
            "old, skipped only",
            {"started_at": OLD, "skipped_existing_total": 9},
            NO_CHECKPOINT,
            RunState.RESUMABLE,
        ),
        ("old, checkpoint data", {"started_at": OLD}, checkpoint(3), RunState.RESUMABLE),
        (
            "old, checkpoint of this run",
            {"started_at": OLD},
            checkpoint(3, run_id=1),
            RunState.RESUMABLE,
        ),
        (
            "old, checkpoint of another run",
            {"started_at": OLD},
            checkpoint(3, run_id=2),
            RunState.DEAD,
        ),
        ("old, empty checkpoint", {"started_at": OLD}, checkpoint(0), RunState.DEAD),
        (
            "old, corrupt checkpoint",
            {"started_at": OLD},
            checkpoint(0, status=CheckpointStatus.CORRUPT),
            RunState.ATTENTION,
        ),
        (
            "old, oversized checkpoint",
            {"started_at": OLD},
            checkpoint(0, status=CheckpointStatus.OVERSIZED),
            RunState.ATTENTION,
        ),
        (
            "old, unsafe checkpoint",
            {"started_at": OLD},
            checkpoint(0, status=CheckpointStatus.UNSAFE),
            RunState.ATTENTION,
        ),
        (
            "old, corrupt checkpoint but progress",
            {"started_at": OLD, "extracted_total_tenders": 2},
            checkpoint(0, status=CheckpointStatus.CORRUPT),
            RunState.RESUMABLE,
        ),
        ("young, nothing", {"started_at": YOUNG}, NO_CHECKPOINT, RunState.YOUNG),
        (
            "young with progress, no heartbeat ever",
            {"started_at": YOUNG, "extracted_total_tenders": 5},
            NO_CHECKPOINT,
            RunState.YOUNG,
        ),
        (
            "young with progress, heartbeat lost",
            {"started_at": YOUNG, "extracted_total_tenders": 5, "last_heartbeat_at": utc(hours=1)},
            NO_CHECKPOINT,
            RunState.RESUMABLE,
        ),
        (
            "young with checkpoint, heartbeat lost",
            {"started_at": YOUNG, "last_heartbeat_at": utc(hours=1)},
            checkpoint(2),
            RunState.RESUMABLE,
        ),
        (
            "young, no progress, heartbeat lost",
            {"started_at": YOUNG, "last_heartbeat_at": utc(hours=1)},
            NO_CHECKPOINT,
            RunState.YOUNG,
        ),
        (
            "old, fresh heartbeat",
            {"started_at": OLD, "last_heartbeat_at": utc(minutes=5)},
            NO_CHECKPOINT,
            RunState.ALIVE,
        ),
        (
            "ancient, fresh heartbeat",
            {"started_at": "2020-01-01 00:00:00", "last_heartbeat_at": utc(minutes=29)},
            NO_CHECKPOINT,
            RunState.ALIVE,
        ),
        (
            "heartbeat slightly in the future",
            {"started_at": OLD, "last_heartbeat_at": utc(minutes=-3)},
            NO_CHECKPOINT,
            RunState.ALIVE,
        ),
        (
            "old, stale heartbeat, nothing",
            {"started_at": OLD, "last_heartbeat_at": utc(hours=3)},
            NO_CHECKPOINT,
            RunState.DEAD,
        ),
        (
            "heartbeat garbage",
            {"started_at": OLD, "last_heartbeat_at": "soon"},
            NO_CHECKPOINT,
            RunState.ATTENTION,
        ),
        ("start NULL", {"started_at": None}, NO_CHECKPOINT, RunState.ATTENTION),
        ("start garbage", {"started_at": "last tuesday"}, NO_CHECKPOINT, RunState.ATTENTION),
        (
            "start NULL, heartbeat lost, progress",
            {"started_at": None, "extracted_total_tenders": 3, "last_heartbeat_at": utc(hours=2)},
            NO_CHECKPOINT,
            RunState.RESUMABLE,
        ),
        (
            "start far in the future",
            {"started_at": "2027-01-01 00:00:00"},
            NO_CHECKPOINT,
            RunState.ATTENTION,
        ),
        (
            "start a minute in the future",
            {"started_at": utc(minutes=-1)},
            NO_CHECKPOINT,
            RunState.YOUNG,
        ),
        (
            "counter garbage",
            {"started_at": OLD, "extracted_total_tenders": "lots"},
            NO_CHECKPOINT,
            RunState.ATTENTION,
        ),
        (
            "counter negative",
            {"started_at": OLD, "skipped_existing_total": -1},
            NO_CHECKPOINT,
            RunState.ATTENTION,
        ),
        (
            "counter as text digits",
            {"started_at": OLD, "extracted_total_tenders": "12"},
            NO_CHECKPOINT,
            RunState.RESUMABLE,
        ),
        (
            "counter as float",
            {"started_at": OLD, "extracted_total_tenders": 0.0},
            NO_CHECKPOINT,
            RunState.DEAD,
        ),
        ("exactly at the threshold", {"started_at": utc(hours=24)}, NO_CHECKPOINT, RunState.DEAD),
        (
            "just under the threshold",
            {"started_at": utc(hours=23, minutes=59)},
            NO_CHECKPOINT,
            RunState.YOUNG,
        ),
        (
            "offset in the text",
            {"started_at": "2026-11-26T12:00:00+00:00"},
            NO_CHECKPOINT,
            RunState.DEAD,
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_classification_table(case, facts, ckpt, state):
    assert judge(ckpt, **facts).state is state, case


def test_each_state_maps_to_the_pre_scrape_action():
    assert judge(started_at=OLD).action is Action.CLEANUP
    assert judge(started_at=OLD, extracted_total_tenders=1).action is Action.RESUME
    assert judge(started_at=YOUNG).action is Action.WAIT
    assert judge(started_at=OLD, last_heartbeat_at=utc(minutes=1)).action is Action.WAIT
    assert judge(started_at=None).action is Action.WAIT


def test_dead_verdict_carries_its_evidence():
    verdict = judge(started_at=OLD, extracted_total_tenders=None)
    assert rules(verdict) == {"no_progress", "no_checkpoint", "old"}
    old = next(r for r in verdict.reasons if r.rule == "old")
    assert old.evidence == {
        "age_hours": 48.0,
        "age_threshold_hours": 24.0,
        "threshold_source": "default",
    }
    assert verdict.age_hours == pytest.approx(48.0)
    as_dict = verdict.to_dict()
    assert as_dict["id"] == 1
    assert as_dict["state"] == "dead"
    assert as_dict["action"] == "cleanup"
    assert as_dict["extracted_total_tenders"] is None  # NULL: never recorded, JSON keeps null
    assert {r["rule"] for r in as_dict["reasons"]} == {"no_progress", "no_checkpoint", "old"}
    assert "48.0 h ago" in verdict.summary


def test_checkpoint_reason_names_the_file_and_count():
    verdict = judge(checkpoint(17), started_at=OLD)
    reason = next(r for r in verdict.reasons if r.rule == "checkpoint_data")
    assert reason.evidence["checkpoint_tenders"] == 17
    assert reason.evidence["checkpoint_path"] == "/cp/assam.json"
    assert verdict.checkpoint_tenders == 17


def test_corrupt_checkpoint_is_flagged_with_its_reason():
    bad = CheckpointInfo(Path("/cp/a.json"), CheckpointStatus.CORRUPT, detail="not valid JSON")
    verdict = judge(bad, started_at=OLD)
    assert verdict.state is RunState.ATTENTION
    assert "checkpoint corrupt: not valid JSON" in verdict.summary


def test_excluded_portal_is_never_dead():
    policy = Policy(timedelta(hours=24), timedelta(minutes=30), exclude_from_cleanup=True)
    verdict = judge(policy=policy, started_at=OLD)
    assert verdict.state is RunState.ATTENTION
    assert "portal_excluded" in rules(verdict)


def test_per_portal_threshold_is_applied():
    slow = Policy(timedelta(hours=72), timedelta(minutes=30), threshold_source="config")
    verdict = judge(policy=slow, started_at=OLD)
    assert verdict.state is RunState.YOUNG
    assert "(threshold 72 h (config for this portal))" in verdict.summary


def test_per_portal_heartbeat_timeout_is_applied():
    strict = Policy(timedelta(hours=24), timedelta(minutes=5))
    assert judge(policy=strict, started_at=OLD, last_heartbeat_at=utc(minutes=10)).state is (
        RunState.DEAD
    )
    assert judge(started_at=OLD, last_heartbeat_at=utc(minutes=10)).state is RunState.ALIVE


# -- invariants, over arbitrary facts -------------------------------------------------------


def compact(shape: str) -> st.SearchStrategy[object]:
    """A moment in a compact shape (``%Y%m%d`` ...), as text or as an integer column."""
    moments = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1))
    return st.tuples(moments, st.booleans()).map(
        lambda m: int(m[0].strftime(shape)) if m[1] else m[0].strftime(shape)
    )


# Starts that name no single moment: a date without a time, and numbers that are neither epoch
# time between 2000 and 2100 nor compact date and time.
unreadable_starts = st.one_of(
    compact("%Y%m%d"),
    compact("%Y%m%d").map(float),
    st.sampled_from(["1", "1.5", 1, 1.5, 0, -1, "0", "-5", "20261201.5", "+20261201"]),
    st.integers(min_value=-(10**15), max_value=946_684_799).filter(lambda n: len(str(n)) != 8),
    st.integers(min_value=4_102_444_800, max_value=10**11 - 1).filter(lambda n: len(str(n)) != 12),
    st.integers(min_value=4_102_444_800_000, max_value=10**13 - 1),
    st.floats(max_value=946_684_799.5).filter(lambda f: not f.is_integer()),
)
timestamps = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda d: d.isoformat(sep=" ")
    ),
    st.integers(min_value=-(10**12), max_value=10**13),
    st.integers(min_value=10**13, max_value=10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    compact("%Y%m%d%H%M%S"),
    compact("%Y%m%d%H%M"),
    unreadable_starts,
)
counters = st.one_of(st.none(), st.integers(-5, 10**6), st.text(max_size=8), st.floats())
checkpoints = st.builds(
    CheckpointInfo,
    path=st.just(Path("/cp/x.json")),
    status=st.sampled_from(CheckpointStatus),
    tender_count=st.integers(0, 50),
    run_id=st.one_of(st.none(), st.integers(1, 3)),
)
policies = st.builds(
    Policy,
    age_threshold=st.timedeltas(timedelta(minutes=1), timedelta(days=30)),
    heartbeat_timeout=st.timedeltas(timedelta(minutes=1), timedelta(days=1)),
    exclude_from_cleanup=st.booleans(),
)
facts = st.builds(
    RunFacts,
    id=st.integers(1, 3),
    portal_name=st.text(max_size=10),
    status=st.just("running"),
    started_at=timestamps,
    extracted_total_tenders=counters,
    skipped_existing_total=counters,
    last_heartbeat_at=st.one_of(
        st.none(),
        st.timedeltas(timedelta(days=-1), timedelta(days=60)).map(lambda d: format_utc(NOW - d)),
        st.text(max_size=10),
    ),
    stored_tenders=st.one_of(st.none(), st.integers(0, 1000)),
)


@given(run=facts, ckpt=checkpoints, policy=policies)
def test_dead_only_without_any_evidence(run, ckpt, policy):
    verdict = classify(run, checkpoint=ckpt, policy=policy, now=NOW, tz=TZ)
    if verdict.state is not RunState.DEAD:
        return
    # never dead with progress
    assert verdict.extracted == 0
    assert verdict.skipped == 0
    # never dead with tenders stored under its id
    assert not run.stored_tenders
    # never dead with checkpoint data for this run, nor with an unreadable checkpoint
    assert not ckpt.is_evidence_for(run.id)
    assert not ckpt.status.is_problem
    # never dead with a fresh heartbeat
    assert verdict.heartbeat_age_minutes is None or (
        verdict.heartbeat_age_minutes >= policy.heartbeat_timeout.total_seconds() / 60
    )
    # never dead below the threshold, or with an unknown age
    assert verdict.age_hours is not None
    assert verdict.age_hours >= policy.age_threshold.total_seconds() / 3600
    assert not policy.exclude_from_cleanup
    assert verdict.reasons


@given(start=unreadable_starts, ckpt=checkpoints, policy=policies, heartbeat_hours=st.floats(1, 99))
def test_a_run_whose_start_cannot_be_read_unambiguously_is_never_dead(
    start, ckpt, policy, heartbeat_hours
):
    """Whatever else holds (no progress, a lost heartbeat, any checkpoint), a start time that
    names no single moment is never grounds for a clean-up: the run needs a person."""
    for heartbeat in (None, utc(hours=heartbeat_hours)):
        verdict = judge(ckpt, policy, started_at=start, last_heartbeat_at=heartbeat)
        assert verdict.state is not RunState.DEAD, (start, verdict.summary)
        assert verdict.action is not Action.CLEANUP
        if verdict.state is RunState.ATTENTION:
            reason = next(r for r in verdict.reasons if r.rule == "start_unknown")
            assert str(start).strip() in reason.message, reason.message


@pytest.mark.parametrize(
    ("start", "state", "age_hours"),
    [
        # NOW is 2026-11-28 17:30 in Asia/Kolkata
        (20261128, RunState.ATTENTION, None),
        ("20261128", RunState.ATTENTION, None),
        (20261001, RunState.ATTENTION, None),  # August 1970 if read as epoch seconds
        ("1", RunState.ATTENTION, None),
        ("1.5", RunState.ATTENTION, None),
        (20261128153000, RunState.YOUNG, 2.0),  # not the year 2612
        ("20261126173000", RunState.DEAD, 48.0),
        (202611261730, RunState.DEAD, 48.0),
    ],
)
def test_compact_and_bare_number_starts(start, state, age_hours):
    verdict = judge(started_at=start)
    assert verdict.state is state, verdict.summary
    assert verdict.age_hours == (None if age_hours is None else pytest.approx(age_hours))
    if state is RunState.ATTENTION:
        assert "start time is unreadable" in verdict.summary
        assert repr(start) in verdict.summary


@given(run=facts, ckpt=checkpoints, policy=policies)
def test_every_verdict_explains_itself(run, ckpt, policy):
    verdict = classify(run, checkpoint=ckpt, policy=policy, now=NOW, tz=TZ)
    assert verdict.reasons
    as_dict = verdict.to_dict()
    assert as_dict["state"] == verdict.state.value
    assert all("rule" in r and "message" in r for r in as_dict["reasons"])
    json.dumps(as_dict, allow_nan=False)  # raises on values a browser or script cannot read


def test_a_released_run_is_not_alive_even_with_a_fresh_heartbeat():
    """On Ctrl-C/SIGTERM the tracker releases the run: resumable at once, not in 30 minutes."""
    verdict = judge(
        started_at=YOUNG,
        extracted_total_tenders=3,
        last_heartbeat_at=utc(minutes=2),
        released_at=utc(minutes=1),
    )
    assert verdict.state is RunState.RESUMABLE
    assert "released" in rules(verdict)


def test_a_heartbeat_after_the_release_means_a_worker_took_it_again():
    verdict = judge(started_at=YOUNG, last_heartbeat_at=utc(minutes=1), released_at=utc(minutes=5))
    assert verdict.state is RunState.ALIVE


def test_a_released_run_without_evidence_is_not_dead_while_young():
    verdict = judge(started_at=YOUNG, last_heartbeat_at=utc(minutes=2), released_at=utc(minutes=1))
    assert verdict.state is RunState.YOUNG


# -- tenders stored under the run's id: progress evidence ------------------------------------


def test_stored_tenders_make_an_old_run_without_counters_resumable():
    """A legacy scraper stores tenders as it goes and updates its counters only at the end."""
    verdict = judge(started_at=OLD, extracted_total_tenders=0, stored_tenders=500)
    assert verdict.state is RunState.RESUMABLE
    assert verdict.action is Action.RESUME
    reason = next(r for r in verdict.reasons if r.rule == "tenders_stored")
    assert reason.message == "500 tenders stored"
    assert reason.evidence == {"stored_tenders": 500}
    assert verdict.stored_tenders == 500
    assert verdict.to_dict()["stored_tenders"] == 500


def test_one_stored_tender_is_evidence_too():
    verdict = judge(started_at=OLD, stored_tenders=1)
    assert verdict.state is RunState.RESUMABLE
    assert "1 tender stored" in verdict.summary


def test_stored_tenders_follow_the_age_rules_of_other_evidence():
    """A run that never sent a heartbeat may still be running while young."""
    assert judge(started_at=YOUNG, stored_tenders=40).state is RunState.YOUNG
    lost = judge(started_at=YOUNG, last_heartbeat_at=utc(minutes=45), stored_tenders=40)
    assert lost.state is RunState.RESUMABLE
    fresh = judge(started_at=OLD, last_heartbeat_at=utc(minutes=2), stored_tenders=40)
    assert fresh.state is RunState.ALIVE


def test_counted_zero_stored_tenders_is_said_and_uncounted_is_not():
    counted = judge(started_at=OLD, stored_tenders=0)
    assert counted.state is RunState.DEAD
    assert rules(counted) == {"no_progress", "no_tenders_stored", "no_checkpoint", "old"}
    assert "no tenders stored" in counted.summary
    uncounted = judge(started_at=OLD)
    assert uncounted.state is RunState.DEAD
    assert rules(uncounted) == {"no_progress", "no_checkpoint", "old"}
    assert uncounted.stored_tenders is None


@pytest.mark.parametrize(
    ("counters", "message"),
    [
        ({"extracted_total_tenders": None, "skipped_existing_total": None}, "no progress recorded"),
        ({"extracted_total_tenders": "", "skipped_existing_total": None}, "no progress recorded"),
        (
            {"extracted_total_tenders": 0, "skipped_existing_total": 0},
            "no progress: 0 extracted, 0 skipped",
        ),
        (
            {"extracted_total_tenders": 0, "skipped_existing_total": None},
            "no progress: 0 extracted, skipped never recorded",
        ),
        (
            {"extracted_total_tenders": None, "skipped_existing_total": 0},
            "no progress: extracted never recorded, 0 skipped",
        ),
        (
            {"extracted_total_tenders": None, "skipped_existing_total": 4},
            "made progress: extracted never recorded, 4 skipped",
        ),
    ],
)
def test_progress_reasons_say_unknown_for_counters_never_recorded(counters, message):
    """A NULL counter counts as 0 for the rules but is not reported as a stored 0."""
    verdict = judge(started_at=OLD, **counters)
    reason = next(r for r in verdict.reasons if r.rule in ("no_progress", "progress"))
    assert reason.message == message
    shown = verdict.to_dict()
    for column, key in (
        ("extracted_total_tenders", "extracted"),
        ("skipped_existing_total", "skipped"),
    ):
        stored = counters[column]
        expected = None if stored in (None, "") else stored
        assert shown[column] == expected
        assert reason.evidence[key] == expected


def test_a_run_out_of_automatic_resume_attempts_needs_a_person():
    """Fed by the service from the launches table: the rules decide, classify stays pure."""
    base = {"started_at": utc(hours=30), "extracted_total_tenders": 5}
    fewer = judge(auto_resumes=2, last_auto_resume_exit=1, **base)
    assert fewer.state is RunState.RESUMABLE and fewer.resumable_by_hand
    exhausted = judge(auto_resumes=3, last_auto_resume_exit=1, **base)
    assert exhausted.state is RunState.ATTENTION
    assert "resume_attempts_exhausted" in rules(exhausted)
    assert exhausted.resumable_by_hand, "a person may still resume it"
    assert "launched it 3 times (max_resume_attempts 3)" in exhausted.summary
    assert "last exit code 1" in exhausted.summary
    reason = next(r for r in exhausted.reasons if r.rule == "resume_attempts_exhausted")
    assert reason.evidence == {"auto_resumes": 3, "max_resume_attempts": 3, "last_exit_code": 1}
    higher = Policy(POLICY.age_threshold, POLICY.heartbeat_timeout, max_resume_attempts=4)
    assert judge(policy=higher, auto_resumes=3, **base).state is RunState.RESUMABLE
    # Only a run that would be resumed is affected: a dead or alive one stays what it is.
    assert judge(auto_resumes=9, started_at=utc(hours=30)).state is RunState.DEAD
    alive = judge(auto_resumes=9, last_heartbeat_at=utc(minutes=1), **base)
    assert alive.state is RunState.ALIVE and not alive.resumable_by_hand


def test_only_an_alive_or_young_run_is_flagged_overdue():
    # Learned from runs of 20 min (p99 20 min): overdue after an hour; the threshold says 72 h.
    stats = PortalStats.of("Assam", [20 * 60.0] * 30)
    policy = Policy(
        timedelta(hours=72),
        timedelta(minutes=30),
        threshold_source="config",
        history=stats,
        overdue_after=timedelta(hours=1),
    )
    alive = judge(policy=policy, started_at=YOUNG, last_heartbeat_at=utc(minutes=1))
    young = judge(policy=policy, started_at=YOUNG)
    assert (alive.state, alive.overdue) == (RunState.ALIVE, True)
    assert (young.state, young.overdue) == (RunState.YOUNG, True)
    assert "overdue: running 2.0 h, longer than 1.0 h" in young.summary
    on_time = judge(policy=replace(policy, overdue_after=timedelta(hours=3)), started_at=YOUNG)
    assert not on_time.overdue and "overdue" not in on_time.summary
    # A run judged dead is reported as dead; overdue would say nothing more.
    dead = judge(policy=replace(policy, age_threshold=timedelta(hours=1)), started_at=YOUNG)
    assert (dead.state, dead.overdue) == (RunState.DEAD, False)
