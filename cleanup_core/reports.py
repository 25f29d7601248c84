"""Read models for the dashboard: the overview, a page of runs, one run's detail, the portals.

Everything here is display-ready (times in the configured zone, small flat records) so the web
app holds little state and no logic. This module only formats: every read goes through the
service, the same as the CLI's. Stored text (portal names, statuses, workers, actors, reasons)
goes through ``display.safe_text``: the browser never gets a bidi override or control character
to render.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cleanup_core.checkpoints import CheckpointInfo, CheckpointStatus, portal_slug
from cleanup_core.classify import Verdict, counter_value, recorded
from cleanup_core.display import NEVER, counter_text, safe_text, short_text
from cleanup_core.numbers import LARGEST_ID
from cleanup_core.records import PortalStatusCount, RunFacts
from cleanup_core.service import (
    AuditEvent,
    CleanupService,
    LaunchView,
    PortalThreshold,
    StuckRunSummary,
    decide_portal,
    shared_checkpoints,
)
from cleanup_core.stalls import cursor_location
from cleanup_core.timestamps import duration, parse_timestamp
from cleanup_core.vocabulary import (
    AUDIT_ACTION_LABELS,
    Action,
    AuditAction,
    CheckpointSource,
    RunState,
    RunStatus,
)

PAGE_SIZES = (10, 25, 50, 100)
# The overview's chart groups run statuses: the known ones, and everything else.
STATUS_GROUPS = ("running", "completed", "failed", "cleaned", "other")
_GROUP_OF_STATUS: dict[str, str] = {
    RunStatus.RUNNING: "running",
    RunStatus.COMPLETED: "completed",
    RunStatus.FAILED: "failed",
    RunStatus.CLEANED: "cleaned",
}
CHART_DAYS = 14
CHART_LABEL = 24  # characters of a portal name under the chart (angled, it must fit)


def _status_group(status: str | None) -> str:
    return _GROUP_OF_STATUS.get(status or "", "other")


class Formatter:
    """Times and ages as the operator reads them: in the configured zone, short."""

    def __init__(self, service: CleanupService, now: datetime):
        self.tz = service.settings.timezone
        self.now = now

    def moment(self, raw: object) -> str:
        try:
            parsed = parse_timestamp(raw, self.tz)
        except ValueError:
            return f"unreadable: {safe_text(str(raw)[:40])}"
        return "" if parsed is None else parsed.astimezone(self.tz).strftime("%Y-%m-%d %H:%M")

    def ago(self, raw: object) -> str:
        try:
            parsed = parse_timestamp(raw, self.tz)
        except ValueError:
            return "?"
        return "" if parsed is None else duration(self.now - parsed) + " ago"


# -- overview ---------------------------------------------------------------------------------


@dataclass
class PortalStatusCounts:
    portal: str  # a chart label: escaped and shortened
    running: int = 0
    completed: int = 0
    failed: int = 0
    cleaned: int = 0
    other: int = 0


@dataclass
class DayCount:
    day: str
    count: int


@dataclass
class Overview:
    running: int
    alive: int
    young: int
    resumable: int
    dead: int
    attention: int
    cleaned_last_7_days: int
    by_portal: list[PortalStatusCounts]
    cleanups_by_day: list[DayCount]
    checked_at: str


def overview(
    service: CleanupService,
    *,
    now: datetime | None = None,
    summary: StuckRunSummary | None = None,
    counts: Sequence[PortalStatusCount] | None = None,
) -> Overview:
    """The counts and charts; ``summary`` and ``counts``: a scan and the status counts already
    read (the dashboard's shared ones)."""
    if summary is None:
        summary = service.scan(now=now)
    now = summary.checked_at
    states = Counter(v.state for v in summary.verdicts)
    tz = service.settings.timezone
    first_day = (now.astimezone(tz) - timedelta(days=CHART_DAYS - 1)).date()
    if counts is None:
        counts = service.read_status_counts()
    since = min(now - timedelta(days=7), now - timedelta(days=CHART_DAYS))
    cleanups = service.read_event_times(AuditAction.CLEANUP, since)
    portals: dict[str, PortalStatusCounts] = {}
    for row in counts:
        name = row.portal_name or "(no portal)"
        entry = portals.setdefault(name, PortalStatusCounts(short_text(name, CHART_LABEL)))
        group = _status_group(row.status)
        setattr(entry, group, getattr(entry, group) + row.count)
    days: Counter[str] = Counter()
    last_week = 0
    for raw in cleanups:
        try:
            moment = parse_timestamp(raw, tz)
        except ValueError:
            continue
        if moment is None:
            continue
        last_week += moment >= now - timedelta(days=7)
        local_day = moment.astimezone(tz).date()
        if local_day >= first_day:
            days[local_day.isoformat()] += 1
    by_day = []
    for offset in range(CHART_DAYS):
        day = first_day + timedelta(days=offset)
        by_day.append(DayCount(day.strftime("%m-%d"), days[day.isoformat()]))
    return Overview(
        running=len(summary.verdicts),
        alive=states[RunState.ALIVE],
        young=states[RunState.YOUNG],
        resumable=states[RunState.RESUMABLE],
        dead=states[RunState.DEAD],
        attention=states[RunState.ATTENTION],
        cleaned_last_7_days=last_week,
        by_portal=sorted(portals.values(), key=lambda p: p.portal.lower()),
        cleanups_by_day=by_day,
        checked_at=now.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z"),
    )


# -- runs -------------------------------------------------------------------------------------


def portal_names(
    service: CleanupService, counts: Sequence[PortalStatusCount] | None = None
) -> dict[str, str]:
    """Every portal that has runs, for filters: the name as shown (escaped, shortened; unique)
    -> the name as stored, which the filter then uses (``counts``: the status counts already
    read)."""
    if counts is None:
        counts = service.read_status_counts()
    stored = {row.portal_name for row in counts}
    names: dict[str, str] = {}
    for name in sorted({n for n in stored if isinstance(n, str) and n}, key=str.lower):
        label = short_text(name, 60)
        while label in names:  # two long names alike in their first 60 characters
            label += "'"
        names[label] = name
    return names


@dataclass
class RunRow:
    id: int
    portal_name: str
    status: str
    state: str  # for running runs: alive / young / resumable / dead / attention
    started_at: str
    completed_at: str
    extracted: str
    skipped: str
    heartbeat: str
    worker_id: str
    overdue: bool = False  # running longer than its portal's p99 x overdue_factor


@dataclass
class RunsPage:
    rows: list[RunRow]
    total: int
    page: int
    page_size: int

    @property
    def page_count(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _counter_text(value: object) -> str:
    """A stored counter as shown everywhere (``display.counter_text``): its number, a dash when
    never recorded (NULL), "?" when it is not a whole number."""
    return counter_text(recorded(value), counter_value(value))


def _run_row(run: RunFacts, state: str, fmt: Formatter, overdue: bool = False) -> RunRow:
    return RunRow(
        id=run.id,
        portal_name=safe_text(_text(run.portal_name)),
        status=safe_text(_text(run.status)),
        state=state,
        started_at=fmt.moment(run.started_at),
        completed_at=fmt.moment(run.completed_at),
        extracted=_counter_text(run.extracted_total_tenders),
        skipped=_counter_text(run.skipped_existing_total),
        heartbeat=fmt.ago(run.last_heartbeat_at) or NEVER,
        worker_id=safe_text(_text(run.worker_id)),
        overdue=overdue,
    )


def _text(value: object) -> str:
    """A stored text column as text (a legacy SQLite row may hold a number or a BLOB)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def runs_page(
    service: CleanupService,
    *,
    page: int = 1,
    page_size: int = 25,
    sort: str = "id",
    descending: bool = True,
    status: str | None = None,
    portal: str | None = None,
    search: str | None = None,
    state: str | None = None,
    now: datetime | None = None,
) -> RunsPage:
    """One page of runs; running ones carry their live state. Unknown sort columns and page
    sizes are refused (the browser can send anything)."""
    if page_size not in PAGE_SIZES:
        raise ValueError(f"page size must be one of {PAGE_SIZES}, got {page_size!r}")
    page = max(1, int(page))
    last_page = LARGEST_ID // page_size  # any later page starts beyond what a column can count
    if page > last_page:
        raise ValueError(f"page must be from 1 to {last_page}, got {page!r}")
    found = service.read_runs_page(
        statuses=[status] if status else None,
        portal_name=portal or None,
        search=(search or "").strip()[:200] or None,
        sort=sort,
        descending=descending,
        limit=page_size,
        offset=(page - 1) * page_size,
        state=state or None,
        now=now,
    )
    fmt = Formatter(service, found.checked_at)
    return RunsPage(
        rows=[
            _run_row(r, _state(found.states.get(r.id)), fmt, r.id in found.overdue)
            for r in found.runs
        ],
        total=found.total,
        page=page,
        page_size=page_size,
    )


def _state(state: RunState | None) -> str:
    return "" if state is None else state.value


# Stored field names in an event's details as a person reads them; any other name is shown
# with its underscores as spaces.
FIELD_LABELS = {
    "extracted_total_tenders": "extracted",
    "skipped_existing_total": "skipped",
    "last_heartbeat_at": "last heartbeat",
    "last_progress_at": "last progress",
    "started_at": "started",
    "completed_at": "completed",
    "released_at": "released",
    "worker_id": "worker",
    "previous_worker_id": "previous worker",
    "portal_name": "portal",
    "run_id": "run",
    "cleaned_run_ids": "cleaned runs",
    "seen_tenders": "tenders seen",
    "pid": "process id",
    "log_path": "log file",
    "argv": "command",
}


def field_label(name: str) -> str:
    """A stored field name as a person reads it (``extracted_total_tenders`` -> ``extracted``)."""
    return FIELD_LABELS.get(name, name.replace("_", " "))


def action_label(action: str) -> str:
    """An audit action as a person reads it (``resume_launched`` -> ``Resume launched``); an
    action this version does not know is shown as stored."""
    try:
        return AUDIT_ACTION_LABELS[AuditAction(action)]
    except ValueError:
        return action


def _detail_value(value: object) -> str:
    if isinstance(value, list):
        return " ".join(str(item) for item in value)
    return str(value)


def _details_text(details: dict[str, object]) -> str:
    return ", ".join(
        f"{field_label(k)}: {_detail_value(v)}"
        for k, v in details.items()
        if v is not None
        and v != ""
        and not isinstance(v, dict)
        and not (isinstance(v, list) and any(isinstance(i, dict | list) for i in v))
    )


@dataclass
class EventRow:
    id: int
    run_id: int
    portal_name: str
    action: str  # as stored (a vocabulary.AuditAction value)
    actor: str
    from_status: str
    to_status: str
    created_at: str
    summary: str
    revertible: bool = False
    run_deleted: bool = False  # shown as "run N (deleted)": a later run may have the id
    action_label: str = ""  # what a person reads: "Clean-up", "Resume launched"


@dataclass
class LaunchRow:
    """The latest launch of a run or portal, for display (``id`` 0: none)."""

    id: int = 0
    what: str = ""
    state: str = ""  # a LaunchState
    actor: str = ""
    launched_at: str = ""
    pid: str = ""
    exit_code: str = ""
    note: str = ""
    log_path: str = ""
    log: list[str] = field(default_factory=list)  # its last lines, escaped

    @property
    def summary(self) -> str:
        if not self.id:
            return ""
        pid = f", pid {self.pid}" if self.pid else ""
        code = f", exit code {self.exit_code}" if self.exit_code else ""
        return (
            f"launch {self.id} ({self.what}) by {self.actor} at {self.launched_at}{pid}: "
            f"{self.state}{code}"
        )


def launch_row(view: LaunchView | None, fmt: Formatter) -> LaunchRow:
    """A launch as the pages show it: every stored text escaped, the log too."""
    if view is None:
        return LaunchRow()
    return LaunchRow(
        id=view.id,
        what=safe_text(view.what),
        state=view.state.value,
        actor=safe_text(view.actor),
        launched_at=fmt.moment(view.launched_at),
        pid="" if view.pid is None else str(view.pid),
        exit_code="" if view.exit_code is None else str(view.exit_code),
        note=safe_text(view.note),
        log_path=safe_text(view.log_path or ""),
        log=[safe_text(line[:500]) for line in view.log_tail],
    )


@dataclass
class RunDetail:
    run: RunRow
    attempt: str
    last_progress: str
    checkpoint: str
    reasons: list[str] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    resume_command_set: bool = False  # its portal has a resume_command (Resume can work)
    revertible: bool = False  # its latest clean-up can be reverted now
    # A person may resume it: resumable, or needing attention only because the monitor's
    # automatic resumes ran out (``Verdict.resumable_by_hand``).
    resumable_by_hand: bool = False
    launch: LaunchRow = field(default_factory=LaunchRow)  # its latest launch
    stalled: str = ""  # an alive run not getting anywhere: where, and for how long


def event_rows(service: CleanupService, events: Sequence[AuditEvent]) -> list[EventRow]:
    """Audit events for display (``revertible`` as the audit trail says: decided in SQL)."""
    tz = service.settings.timezone
    rows = []
    for event in events:
        details = event.details
        summary = ""
        if event.action == AuditAction.CLEANUP:
            summary = "; ".join(r.get("message", "") for r in details.get("reasons", []))
            if details.get("forced"):
                summary = f"forced ({details.get('state')}): {summary}"
        elif event.action == AuditAction.REVERT:
            summary = f"undid the clean-up of event {details.get('reverted_event_id')}"
        elif event.action == AuditAction.DELETE:
            summary = "run record deleted (tenders kept)"
        elif details:
            summary = _details_text(details)
        rows.append(
            EventRow(
                id=event.id,
                run_id=event.run_id,
                portal_name=safe_text(event.portal_name or ""),
                action=safe_text(str(event.action)),
                actor=safe_text(event.actor),
                from_status=safe_text(event.from_status or ""),
                to_status=safe_text(event.to_status or ""),
                created_at=event.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
                if event.created_at
                else "",
                summary=safe_text(summary[:500]),
                revertible=event.revertible,
                run_deleted=event.run_deleted,
                action_label=safe_text(action_label(str(event.action))),
            )
        )
    return rows


def checkpoint_text(info: CheckpointInfo) -> str:
    """One line about a run's checkpoint (its row in the database, else the file), for the
    run detail."""
    if info.source is CheckpointSource.DATABASE:
        if info.status.is_problem:
            return f"in the database, {info.status.value}: {info.detail}"
        where = cursor_location(info.cursor)
        at = f", at {where}" if where else ""
        return (
            f"{info.tender_count} tenders{at}, updated {info.updated_at or '?'} (in the database)"
        )
    if info.path is None or info.status is CheckpointStatus.MISSING:
        return "no checkpoint file"
    if info.status.is_problem:
        return f"{info.status.value}: {info.detail} ({info.path})"
    owner = f" of run {info.run_id}" if info.run_id is not None else ""
    return f"{info.tender_count} tenders{owner}, updated {info.updated_at or '?'} ({info.path})"


def run_detail(
    service: CleanupService, run_id: int, *, now: datetime | None = None
) -> RunDetail | None:
    """Everything about one run, or ``None`` if it does not exist."""
    found = service.read_run(run_id, now=now)
    if found is None:
        return None
    run, verdict = found.run, found.verdict
    fmt = Formatter(service, found.checked_at)
    rows = event_rows(service, found.events)
    launch = service.latest_launch(run_id=run_id, now=found.checked_at)
    return RunDetail(
        launch=launch_row(launch, fmt),
        run=_run_row(
            run,
            verdict.state.value if verdict else "",
            fmt,
            overdue=verdict is not None and verdict.overdue,
        ),
        attempt=_counter_text(run.attempt),
        last_progress=fmt.ago(run.last_progress_at) or NEVER,
        checkpoint=safe_text(checkpoint_text(found.checkpoint)),
        reasons=[safe_text(r.message) for r in verdict.reasons] if verdict else [],
        events=rows,
        resume_command_set=service.launch_commands(run.portal_name).resume,
        revertible=any(row.revertible for row in rows),
        resumable_by_hand=bool(verdict and verdict.resumable_by_hand),
        stalled=safe_text(verdict.stall.message) if verdict and verdict.stall else "",
    )


# -- portals ----------------------------------------------------------------------------------


@dataclass
class PortalRow:
    portal: str  # as stored: the argument of the row's actions, never shown
    portal_shown: str
    last_run_id: int
    last_status: str
    last_started_at: str
    running: int
    action: str
    reason: str
    run_id: int  # the run the action is about (0: none)
    run_ids: list[int] = field(default_factory=list)
    shared_checkpoint: str = ""  # why this portal needs attention: it shares its checkpoint
    # The check says wait because a run needs attention (not because one is alive or young).
    attention: bool = False
    resume_command_set: bool = False  # Resume / Start / Clean up & start can launch a scraper
    start_command_set: bool = False
    # Its latest launch (of a run of it or of a start): state, one line, the log's last lines.
    launch_state: str = ""
    launch_text: str = ""
    launch_note: str = ""
    launch_log: list[str] = field(default_factory=list)
    typical_duration: str = ""  # p50 / p99 of its completed runs, and how many (issue 15)
    threshold: str = ""  # the age threshold in effect now
    threshold_source: str = ""  # default, config or learned


def portal_rows(
    service: CleanupService,
    age_threshold_hours: float | None = None,
    *,
    now: datetime | None = None,
    summary: StuckRunSummary | None = None,
) -> list[PortalRow]:
    """One row per portal: its newest run and the pre-scrape verdict, from one scan
    (``summary``: one already made, e.g. the dashboard's shared scan)."""
    if summary is None:
        summary = service.scan(age_threshold_hours, now=now)
    latest = service.read_latest_runs()
    running: dict[str | None, list[Verdict]] = {}
    for verdict in summary.verdicts:
        running.setdefault(verdict.portal_name, []).append(verdict)
    fmt = Formatter(service, summary.checked_at)
    sharing = {
        name: names
        for names in shared_checkpoints(_text(last.portal_name) for last in latest)
        for name in names
    }
    launches = service.latest_launches_by_portal(
        [_text(last.portal_name) for last in latest], now=summary.checked_at
    )
    thresholds = {row.portal_name: row for row in service.thresholds(now=summary.checked_at)}
    rows = []
    for last in latest:
        name = _text(last.portal_name)
        check = decide_portal(name, running.get(name, []), summary.checked_at)
        commands = service.launch_commands(name)
        launch = launch_row(launches.get(name), fmt)
        threshold = thresholds.get(name)
        rows.append(
            PortalRow(
                portal=name,
                portal_shown=safe_text(name),
                last_run_id=last.id,
                last_status=safe_text(_text(last.status)),
                last_started_at=fmt.moment(last.started_at),
                running=len(running.get(name, [])),
                action=check.action.value,
                reason=safe_text(check.reason),
                run_id=check.run_id or 0,
                run_ids=list(check.run_ids),
                shared_checkpoint=_shared_text(name, sharing.get(name, ())),
                attention=_waits_for_attention(check.action, running.get(name, [])),
                resume_command_set=commands.resume,
                start_command_set=commands.start,
                launch_state=launch.state,
                launch_text=launch.summary,
                launch_note=launch.note,
                launch_log=launch.log,
                typical_duration=_typical_text(threshold),
                threshold="" if threshold is None else f"{threshold.threshold_hours:.3g} h",
                threshold_source="" if threshold is None else threshold.source.value,
            )
        )
    return sorted(rows, key=lambda r: r.portal.lower())


def _waits_for_attention(action: Action, verdicts: list[Verdict]) -> bool:
    """The portal waits for a person: none of its runs is alive or young (which the wait would
    be about), but one needs attention (an unreadable checkpoint, an unknown start ...)."""
    states = {v.state for v in verdicts}
    return (
        action is Action.WAIT
        and RunState.ATTENTION in states
        and not states & {RunState.ALIVE, RunState.YOUNG}
    )


def _typical_text(threshold: PortalThreshold | None) -> str:
    """``p50 12 min / p99 40 min (41 runs)``: how long the portal's completed runs took."""
    stats = threshold.stats if threshold is not None else None
    if stats is None:
        return "no completed runs"
    p50 = duration(timedelta(seconds=stats.p50_seconds))
    p99 = duration(timedelta(seconds=stats.p99_seconds))
    noun = "run" if stats.completed_runs == 1 else "runs"
    return f"p50 {p50} / p99 {p99} ({stats.completed_runs} {noun})"


def _shared_text(name: str, names: tuple[str, ...]) -> str:
    """Why a portal needs attention when it shares its checkpoint file, or ""."""
    others = [other for other in names if other != name]
    if not others:
        return ""
    listed = ", ".join(repr(other) for other in others)
    return safe_text(
        f"shares the checkpoint file {portal_slug(name)}.json with {listed}: rename one of them"
    )
