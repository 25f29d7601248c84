"""Every SQL statement the tool runs. Functions take an open ``Connection`` inside a transaction
the service started; none of them commits. Values come back raw (see ``models``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    CursorResult,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    inspect,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from cleanup_core.classify import RunFacts
from cleanup_core.models import (
    CLEANED,
    RUNNING,
    DashboardSession,
    DashboardUser,
    DeletedRun,
    DemoRun,
    LoginFailure,
    MonitorChannel,
    MonitorCycle,
    MonitorLease,
    MonitorNotice,
    MonitorProblem,
    Run,
    RunEvent,
    Tender,
)
from cleanup_core.numbers import whole_number
from cleanup_core.timestamps import parse_timestamp, utc_now

# Keeps every statement well under SQLite's and PostgreSQL's bound-parameter limits.
CHUNK = 5000

_runs = Run.__table__
_events = RunEvent.__table__
_tenders = Tender.__table__
_deleted = DeletedRun.__table__
_demo = DemoRun.__table__

FACT_COLUMNS = (
    _runs.c.id,
    _runs.c.portal_name,
    _runs.c.status,
    _runs.c.started_at,
    _runs.c.completed_at,
    _runs.c.extracted_total_tenders,
    _runs.c.skipped_existing_total,
    _runs.c.last_heartbeat_at,
    _runs.c.last_progress_at,
    _runs.c.worker_id,
    _runs.c.attempt,
    _runs.c.released_at,
)


def _storable(run_id: int) -> bool:
    """Whether an integer column can hold ``run_id`` at all. A larger id names no run; binding
    it would fail (SQLite raises OverflowError) instead of finding nothing."""
    return -(2**63) <= run_id < 2**63


def _chunks(items: Sequence[int]) -> Iterator[Sequence[int]]:
    """Statement-sized chunks of the ids, without those no run can have."""
    items = [run_id for run_id in items if _storable(run_id)]
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def database_now(conn: Connection) -> datetime:
    """The time to judge ages by. On a shared server it is the server's clock, so a scraper
    host whose clock is wrong cannot make healthy runs look dead; SQLite is local anyway."""
    if conn.dialect.name == "postgresql":
        return conn.execute(select(func.now())).scalar_one()
    return utc_now()


# -- which rows a run id links: its current incarnation's --
#
# A run id can be handed out again after its run was deleted (SQLite reuses the highest id;
# legacy scrapers insert runs with ids of their own). ``delete_runs`` records, per deleted run,
# the highest event and tender id it owned (``deleted_runs``); the run that has the id now owns
# only the rows above the latest of those watermarks. Every query that links rows to a run by
# its id goes through these conditions.


def _floor(watermark: Any, run_id: Any) -> Any:
    """SQL: the highest id of ``watermark``'s kind that a deleted run with ``run_id`` owned
    (0 when none was deleted)."""
    return (
        select(func.coalesce(func.max(watermark), 0))
        .where(_deleted.c.run_id == run_id)
        .scalar_subquery()
    )


def _current(table: Any, watermark: Any, run_id: Any) -> Any:
    """SQL: ``table``'s rows linked to the run that has ``run_id`` now. ``run_id`` is a number,
    or a column of an enclosing statement (the floor then looks up the row's own run id, so
    the subquery correlates with ``table`` however deep the nesting)."""
    key = run_id if isinstance(run_id, int) else table.c.run_id
    return and_(table.c.run_id == run_id, table.c.id > _floor(watermark, key))


def _current_events(run_id: Any) -> Any:
    """SQL: the audit events of the run that has ``run_id`` now."""
    return _current(_events, _deleted.c.last_event_id, run_id)


def _current_tenders(run_id: Any) -> Any:
    """SQL: the tenders stored by the run that has ``run_id`` now."""
    return _current(_tenders, _deleted.c.last_tender_id, run_id)


# An event at or below a deletion watermark of its run id belongs to a deleted run.
_RUN_DELETED = (
    exists()
    .where(_deleted.c.run_id == _events.c.run_id, _deleted.c.last_event_id >= _events.c.id)
    .label("run_deleted")
)


def tenders_link_runs(conn: Connection) -> bool:
    """Whether the ``tenders`` table has a ``run_id`` column, so stored tenders can be counted
    per run. (Adoption adds it, but the operator's own table may have been replaced since.)"""
    inspector = inspect(conn)
    if not inspector.has_table(_tenders.name):
        return False
    return any(column["name"] == "run_id" for column in inspector.get_columns(_tenders.name))


def stored_tenders_query(run_ids: Sequence[int] | None = None) -> Any:
    """How many tenders each of ``run_ids`` stored (its current incarnation's): one indexed
    count (``ix_tenders_run_id``), grouped by run. Without ``run_ids``: the statement with an
    expanding ``ids`` parameter, built once (it runs in every pre-scrape check)."""
    ids = bindparam("ids", expanding=True) if run_ids is None else run_ids
    floors = (
        select(_deleted.c.run_id, func.max(_deleted.c.last_tender_id).label("floor"))
        .where(_deleted.c.run_id.in_(ids))
        .group_by(_deleted.c.run_id)
        .subquery()
    )
    return (
        select(_tenders.c.run_id, func.count().label("stored"))
        .select_from(_tenders.outerjoin(floors, floors.c.run_id == _tenders.c.run_id))
        .where(_tenders.c.run_id.in_(ids), _tenders.c.id > func.coalesce(floors.c.floor, 0))
        .group_by(_tenders.c.run_id)
    )


_STORED_TENDERS = stored_tenders_query()


def stored_tender_counts(conn: Connection, run_ids: Sequence[int]) -> dict[int, int] | None:
    """Tenders stored per run (runs without any are left out), or ``None`` when the
    ``tenders`` table cannot link tenders to runs."""
    if not tenders_link_runs(conn):
        return None
    counts: dict[int, int] = {}
    for chunk in _chunks(run_ids):
        counts.update(conn.execute(_STORED_TENDERS, {"ids": list(chunk)}).all())
    return counts


# The two hot reads (every scan, every pre-scrape check), built once.
_RUNNING = select(*FACT_COLUMNS).where(_runs.c.status == RUNNING).order_by(_runs.c.id)
_RUNNING_OF_PORTAL = _RUNNING.where(_runs.c.portal_name == bindparam("portal"))


def running_facts(
    conn: Connection,
    *,
    portal_name: str | None = None,
    run_ids: Sequence[int] | None = None,
    lock: bool = False,
) -> list[RunFacts]:
    """Facts of ``running`` runs (optionally one portal's or some ids'), oldest first.

    ``lock`` takes row locks (PostgreSQL) so the rows cannot change before this transaction
    ends; on SQLite the write transaction already holds the database's write lock."""
    stmt = _RUNNING if portal_name is None else _RUNNING_OF_PORTAL
    if lock:
        stmt = stmt.with_for_update()
    params = {} if portal_name is None else {"portal": portal_name}
    if run_ids is None:
        return _facts(conn.execute(stmt, params))
    return [
        facts
        for chunk in _chunks(run_ids)
        for facts in _facts(conn.execute(stmt.where(_runs.c.id.in_(chunk)), params))
    ]


def _facts(result: CursorResult[Any]) -> list[RunFacts]:
    """Rows straight from the driver's cursor: no result processing is needed (the columns
    come back raw by design), and skipping it halves the cost of a scan."""
    try:
        return [RunFacts(*row) for row in result.cursor.fetchall()]
    finally:
        result.close()


@dataclass(frozen=True)
class RunStatus:
    id: int
    portal_name: str | None
    status: str | None
    completed_at: Any


def run_statuses(conn: Connection, run_ids: Sequence[int]) -> dict[int, RunStatus]:
    columns = (_runs.c.id, _runs.c.portal_name, _runs.c.status, _runs.c.completed_at)
    found: dict[int, RunStatus] = {}
    for chunk in _chunks(run_ids):
        for row in conn.execute(select(*columns).where(_runs.c.id.in_(chunk))):
            found[row.id] = RunStatus(*row)
    return found


def no_live_worker(heartbeat_cutoff: datetime) -> Any:
    """SQL: no heartbeat since ``heartbeat_cutoff``, or the worker released the run since."""
    heartbeat, released = _runs.c.last_heartbeat_at, _runs.c.released_at
    return or_(heartbeat.is_(None), heartbeat < heartbeat_cutoff, released >= heartbeat)


def _no_progress(counter: Any) -> Any:
    """SQL: the counter is 0, NULL or blank text (legacy SQLite rows), as ``classify`` reads it."""
    return or_(func.coalesce(counter, 0) == 0, func.trim(cast(counter, Text)) == "")


def mark_cleaned(
    conn: Connection,
    run_ids: Sequence[int],
    *,
    heartbeat_cutoff: datetime,
    completed_at: datetime,
    require_no_progress: bool = True,
) -> list[int]:
    """Compare-and-set clean-up: only rows that are still running, without a heartbeat newer
    than ``heartbeat_cutoff`` and (unless a person forces it) still without progress (counters,
    stored tenders) change. A live worker is never cut off, even when forced. Returns the ids
    that changed."""
    guards = [_runs.c.status == RUNNING, no_live_worker(heartbeat_cutoff)]
    if require_no_progress:
        guards += [
            _no_progress(_runs.c.extracted_total_tenders),
            _no_progress(_runs.c.skipped_existing_total),
        ]
        if tenders_link_runs(conn):
            guards.append(~exists().where(_current_tenders(_runs.c.id)))
    cleaned: list[int] = []
    for chunk in _chunks(run_ids):
        stmt = (
            update(_runs)
            .where(_runs.c.id.in_(chunk), *guards)
            .values(status=CLEANED, completed_at=completed_at)
            .returning(_runs.c.id)
        )
        cleaned.extend(conn.execute(stmt).scalars())
    return cleaned


def restore_status(
    conn: Connection, run_id: int, *, expected_status: str, status: str | None, completed_at: Any
) -> bool:
    """Set a run's status and ``completed_at`` back, if its status is still ``expected_status``."""
    stmt = (
        update(_runs)
        .where(_runs.c.id == run_id, _runs.c.status == expected_status)
        .values(status=status, completed_at=completed_at)
    )
    return conn.execute(stmt).rowcount == 1


def run_rows(conn: Connection, run_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Whole run rows (the columns the tool knows), as stored."""
    rows: list[dict[str, Any]] = []
    for chunk in _chunks(run_ids):
        result = conn.execute(select(_runs).where(_runs.c.id.in_(chunk)).order_by(_runs.c.id))
        rows.extend(dict(row._mapping) for row in result)
    return rows


def delete_finished_runs(conn: Connection, run_ids: Sequence[int]) -> int:
    """Delete run rows that are not running. Tenders are not touched."""
    deleted = 0
    for chunk in _chunks(run_ids):
        stmt = delete(_runs).where(_runs.c.id.in_(chunk), _runs.c.status.is_distinct_from(RUNNING))
        deleted += conn.execute(stmt).rowcount
    return deleted


def record_deletions(
    conn: Connection, portals: Mapping[int, str | None], *, deleted_at: datetime
) -> None:
    """After deleting the runs ``portals`` names (id -> portal) and writing their delete events:
    remember the highest event id (the delete event) and tender id each one owned, so a run that
    gets the id later inherits neither; and drop their demo marks (the demo never replaces a
    deleted run's rows)."""
    ids = list(portals)
    last_event: dict[int, int] = {}
    last_tender: dict[int, int] = {}
    link_tenders = tenders_link_runs(conn)
    for chunk in _chunks(ids):
        newest = select(_events.c.run_id, func.max(_events.c.id)).where(_events.c.run_id.in_(chunk))
        last_event.update(conn.execute(newest.group_by(_events.c.run_id)).all())
        if link_tenders:
            newest = select(_tenders.c.run_id, func.max(_tenders.c.id)).where(
                _tenders.c.run_id.in_(chunk)
            )
            last_tender.update(conn.execute(newest.group_by(_tenders.c.run_id)).all())
        conn.execute(delete(_demo).where(_demo.c.run_id.in_(chunk)))
    if ids:
        conn.execute(
            insert(_deleted),
            [
                {
                    "run_id": run_id,
                    "portal_name": portals[run_id],
                    "deleted_at": deleted_at,
                    "last_event_id": last_event.get(run_id),
                    "last_tender_id": last_tender.get(run_id),
                }
                for run_id in ids
            ],
        )


_EVENT_COLUMNS = (
    "run_id",
    "portal_name",
    "action",
    "actor",
    "from_status",
    "to_status",
    "created_at",
    "details",
)


_INSERT_EVENT = {  # keyed by "the driver wants qmark placeholders"; built from constants only
    qmark: f"INSERT INTO run_events ({', '.join(_EVENT_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join(['?' if qmark else '%s'] * len(_EVENT_COLUMNS))})"
    for qmark in (True, False)
}


def insert_events(conn: Connection, events: Iterable[dict[str, Any]]) -> None:
    """Append audit events. A bulk clean-up writes thousands at once, so the rows go to the
    driver's ``executemany`` directly, with ``created_at`` converted by its column type."""
    rows = list(events)
    if not rows:
        return
    to_db = _events.c.created_at.type.bind_processor(conn.dialect) or (lambda value: value)
    stored: dict[Any, Any] = {}
    values = []
    for row in rows:
        created = row["created_at"]
        if created not in stored:
            stored[created] = to_db(created)
        values.append(
            tuple(stored[created] if c == "created_at" else row.get(c) for c in _EVENT_COLUMNS)
        )
    conn.exec_driver_sql(_INSERT_EVENT[conn.dialect.paramstyle == "qmark"], values)


def latest_event(conn: Connection, run_id: int, actions: Sequence[str]) -> Any:
    """The newest of the run's events with one of ``actions`` (never a deleted run's)."""
    if not _storable(run_id):
        return None
    stmt = (
        select(_events)
        .where(_current_events(run_id), _events.c.action.in_(actions))
        .order_by(_events.c.id.desc())
        .limit(1)
    )
    return conn.execute(stmt).first()


def events_filter(
    *,
    portal_name: str | None = None,
    run_id: int | None = None,
    actions: Sequence[str] | None = None,
) -> Any:
    """SQL: the events of a portal, of the run that has ``run_id`` now, with these actions."""
    conditions = []
    if portal_name is not None:
        conditions.append(_events.c.portal_name == portal_name)
    if run_id is not None:
        conditions.append(_current_events(run_id))
    if actions:
        conditions.append(_events.c.action.in_(actions))
    return and_(true(), *conditions)


def events_page(
    conn: Connection,
    *,
    portal_name: str | None = None,
    run_id: int | None = None,
    actions: Sequence[str] | None = None,
    limit: int,
    offset: int = 0,
) -> tuple[list[Any], int]:
    """One page of the audit trail, newest first, and how many events match in all. Each row
    says whether its run was deleted since (``run_deleted``)."""
    if run_id is not None and not _storable(run_id):
        return [], 0
    where = events_filter(portal_name=portal_name, run_id=run_id, actions=actions)
    total = conn.execute(select(func.count()).select_from(_events).where(where)).scalar_one()
    stmt = (
        select(_events, _RUN_DELETED)
        .where(where)
        .order_by(_events.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(conn.execute(stmt)), total


def event_counts_by_action(conn: Connection) -> dict[str, int]:
    """How many audit events there are of each action, over the whole trail."""
    stmt = select(_events.c.action, func.count()).group_by(_events.c.action)
    return {action: count for action, count in conn.execute(stmt)}


# -- dashboard reads --

# The columns the runs page may sort by: a whitelist, never a name from the browser.
SORTABLE_RUN_COLUMNS = {
    "id": _runs.c.id,
    "portal_name": _runs.c.portal_name,
    "status": _runs.c.status,
    "started_at": _runs.c.started_at,
    "completed_at": _runs.c.completed_at,
    "extracted_total_tenders": _runs.c.extracted_total_tenders,
    "skipped_existing_total": _runs.c.skipped_existing_total,
    "last_heartbeat_at": _runs.c.last_heartbeat_at,
}


def runs_page(
    conn: Connection,
    *,
    statuses: Sequence[str] | None = None,
    portal_name: str | None = None,
    search: str | None = None,
    sort: str = "id",
    descending: bool = True,
    limit: int,
    offset: int = 0,
) -> tuple[list[Any], int]:
    """One page of runs (any status) with the total matching the filters."""
    conditions = []
    if statuses:
        conditions.append(_runs.c.status.in_(statuses))
    if portal_name is not None:
        conditions.append(_runs.c.portal_name == portal_name)
    if search:
        matches = [
            column.icontains(search, autoescape=True)
            for column in (_runs.c.portal_name, _runs.c.worker_id, _runs.c.status)
        ]
        if (run_id := whole_number(search)) is not None:
            matches.append(_runs.c.id == run_id)
        conditions.append(or_(*matches))
    where = and_(True, *conditions)
    total = conn.execute(select(func.count()).select_from(_runs).where(where)).scalar_one()
    column = SORTABLE_RUN_COLUMNS[sort]
    order = (column.desc(), _runs.c.id.desc()) if descending else (column.asc(), _runs.c.id.asc())
    stmt = select(_runs).where(where).order_by(*order).limit(limit).offset(offset)
    return list(conn.execute(stmt)), total


def status_counts_by_portal(conn: Connection) -> list[Any]:
    """(portal_name, status, count) for every portal and status."""
    stmt = select(_runs.c.portal_name, _runs.c.status, func.count().label("count")).group_by(
        _runs.c.portal_name, _runs.c.status
    )
    return list(conn.execute(stmt))


def latest_runs_by_portal(conn: Connection) -> list[Any]:
    """The newest run (highest id) of each portal."""
    newest = select(func.max(_runs.c.id).label("id")).group_by(_runs.c.portal_name).subquery()
    stmt = select(_runs).join(newest, _runs.c.id == newest.c.id).order_by(_runs.c.portal_name)
    return list(conn.execute(stmt))


def event_times(conn: Connection, action: str, since: datetime) -> list[Any]:
    """``created_at`` of every ``action`` event since ``since`` (raw values)."""
    stmt = select(_events.c.created_at).where(
        _events.c.action == action, _events.c.created_at >= since
    )
    return list(conn.execute(stmt).scalars())


# -- dashboard accounts --

_users = DashboardUser.__table__
_sessions = DashboardSession.__table__


def insert_user(conn: Connection, values: Mapping[str, Any]) -> int:
    return conn.execute(insert(_users).values(**values).returning(_users.c.id)).scalar_one()


def user_by_name(conn: Connection, username: str) -> Any:
    return conn.execute(select(_users).where(_users.c.username == username)).first()


def all_users(conn: Connection) -> list[Any]:
    return list(conn.execute(select(_users).order_by(_users.c.username)))


def set_password_hash(conn: Connection, username: str, password_hash: str) -> bool:
    stmt = update(_users).where(_users.c.username == username).values(password_hash=password_hash)
    return conn.execute(stmt).rowcount == 1


def delete_user_sessions(conn: Connection, user_id: int) -> None:
    conn.execute(delete(_sessions).where(_sessions.c.user_id == user_id))


def delete_user(conn: Connection, user_id: int) -> None:
    delete_user_sessions(conn, user_id)
    conn.execute(delete(_users).where(_users.c.id == user_id))


def insert_session(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(_sessions).values(**values))


def session_user(conn: Connection, token_hash: str, now: datetime) -> Any:
    """The user of an unexpired session, or ``None``."""
    stmt = (
        select(_users)
        .join(_sessions, _sessions.c.user_id == _users.c.id)
        .where(_sessions.c.token_hash == token_hash, _sessions.c.expires_at > now)
    )
    return conn.execute(stmt).first()


def delete_session(conn: Connection, token_hash: str) -> None:
    conn.execute(delete(_sessions).where(_sessions.c.token_hash == token_hash))


def delete_expired_sessions(conn: Connection, now: datetime) -> int:
    return conn.execute(delete(_sessions).where(_sessions.c.expires_at <= now)).rowcount


# -- login throttling --

_login_failures = LoginFailure.__table__


@dataclass(frozen=True)
class FailureCount:
    """Failed logins of one account or client (``kind``, ``name``)."""

    kind: str
    name: str
    failures: int
    last_failure_at: datetime | None
    blocked_until: datetime | None


def lock_login_failures(
    conn: Connection, keys: Sequence[tuple[str, str]], now: datetime
) -> list[FailureCount]:
    """The counters of ``keys`` ((kind, name) pairs), created at zero where missing and locked
    until the transaction ends (row locks on PostgreSQL, taken in key order so two logins never
    deadlock; SQLite's write transaction holds its only write lock)."""
    ordered = sorted(set(keys))
    for kind, name in ordered:
        _insert_ignoring_duplicates(
            conn,
            _login_failures,
            {"kind": kind, "name": name, "failures": 0, "last_failure_at": now},
        )
    table = _login_failures
    stmt = (
        select(table)
        .where(or_(*(and_(table.c.kind == kind, table.c.name == name) for kind, name in ordered)))
        .order_by(table.c.kind, table.c.name)
        .with_for_update()
    )
    return [
        FailureCount(
            row.kind,
            row.name,
            row.failures,
            parse_timestamp(row.last_failure_at, UTC),
            parse_timestamp(row.blocked_until, UTC),
        )
        for row in conn.execute(stmt)
    ]


def set_login_failures(
    conn: Connection,
    kind: str,
    name: str,
    *,
    failures: int,
    last_failure_at: datetime,
    blocked_until: datetime | None,
) -> None:
    table = _login_failures
    conn.execute(
        update(table)
        .where(table.c.kind == kind, table.c.name == name)
        .values(failures=failures, last_failure_at=last_failure_at, blocked_until=blocked_until)
    )


def clear_login_failures(conn: Connection, keys: Sequence[tuple[str, str]]) -> None:
    table = _login_failures
    for kind, name in keys:
        conn.execute(delete(table).where(table.c.kind == kind, table.c.name == name))


def prune_login_failures(conn: Connection, *, failed_before: datetime, now: datetime) -> None:
    """Forget counters whose last failure is older than ``failed_before`` and that block
    nothing any more."""
    table = _login_failures
    conn.execute(
        delete(table).where(
            table.c.last_failure_at < failed_before,
            or_(table.c.blocked_until.is_(None), table.c.blocked_until <= now),
        )
    )


# -- worker side (tracker) --

TENDER_COLUMNS = (
    "tender_id",
    "title",
    "organisation",
    "closing_date",
    "reference_number",
    "category",
    "value_inr",
    "published_date",
)


def portal_lock_key(portal_name: str) -> int:
    """The portal's PostgreSQL advisory-lock key: a signed 64-bit hash of its exact name, the
    same in every process and on every host."""
    digest = hashlib.sha256(b"cleanup_core.portal:" + portal_name.encode("utf-8", "surrogatepass"))
    return int.from_bytes(digest.digest()[:8], "big", signed=True)


def lock_portal(conn: Connection, portal_name: str) -> None:
    """Hold the portal's claim lock until this transaction ends, so two workers starting the same
    portal decide one after the other. PostgreSQL: a transaction-level advisory lock; SQLite: the
    write transaction (``BEGIN IMMEDIATE``) already holds the database's only write lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(portal_lock_key(portal_name))))


def _worker_clock(conn: Connection) -> Any:
    """What a worker writes into its heartbeat and progress times: the server's ``now()`` on
    PostgreSQL (a scraper host with a wrong clock cannot make a healthy run look dead), Python's
    clock on SQLite (local anyway)."""
    return func.now() if conn.dialect.name == "postgresql" else utc_now()


def insert_run(conn: Connection, values: Mapping[str, Any]) -> int:
    """A new run row; returns its id."""
    return conn.execute(insert(_runs).values(**values).returning(_runs.c.id)).scalar_one()


def take_over_run(
    conn: Connection,
    run_id: int,
    *,
    observed_attempt: Any,
    heartbeat_cutoff: datetime,
    worker_id: str,
    now: datetime,
) -> int | None:
    """Compare-and-set resume: give a running run without a live worker to ``worker_id`` with the
    next attempt number (the fencing token), if its attempt is still ``observed_attempt``.
    Returns the new attempt, or ``None`` when someone else changed the run first."""
    stmt = (
        update(_runs)
        .where(
            _runs.c.id == run_id,
            _runs.c.status == RUNNING,
            _runs.c.attempt.is_not_distinct_from(observed_attempt),
            no_live_worker(heartbeat_cutoff),
        )
        .values(
            attempt=func.coalesce(_runs.c.attempt, 0) + 1,
            worker_id=worker_id,
            last_heartbeat_at=now,
            released_at=None,
        )
        .returning(_runs.c.attempt)
    )
    return conn.execute(stmt).scalar_one_or_none()


def _fenced(run_id: int, attempt: int) -> tuple[Any, ...]:
    """Only the worker holding the run's current attempt may write to it."""
    return (_runs.c.id == run_id, _runs.c.status == RUNNING, _runs.c.attempt == attempt)


def record_heartbeat(conn: Connection, run_id: int, attempt: int) -> bool:
    """Fenced heartbeat; ``False`` when the run is no longer this attempt's."""
    stmt = (
        update(_runs).where(*_fenced(run_id, attempt)).values(last_heartbeat_at=_worker_clock(conn))
    )
    return conn.execute(stmt).rowcount == 1


def record_progress(
    conn: Connection, run_id: int, attempt: int, *, extracted: int, skipped: int
) -> bool:
    """Fenced: add to the run's counters and refresh its progress and heartbeat times."""
    clock = _worker_clock(conn)
    stmt = (
        update(_runs)
        .where(*_fenced(run_id, attempt))
        .values(
            extracted_total_tenders=func.coalesce(_runs.c.extracted_total_tenders, 0) + extracted,
            skipped_existing_total=func.coalesce(_runs.c.skipped_existing_total, 0) + skipped,
            last_progress_at=clock,
            last_heartbeat_at=clock,
        )
    )
    return conn.execute(stmt).rowcount == 1


def finish_run(
    conn: Connection, run_id: int, attempt: int, *, status: str, completed_at: datetime
) -> bool:
    """Fenced: end the run with ``status`` (completed or failed)."""
    stmt = (
        update(_runs)
        .where(*_fenced(run_id, attempt))
        .values(status=status, completed_at=completed_at)
    )
    return conn.execute(stmt).rowcount == 1


def release_run(conn: Connection, run_id: int, attempt: int, *, released_at: datetime) -> bool:
    """Fenced: the worker lets go of a run it could not finish; it stays ``running`` and, with
    progress or a checkpoint, is resumable at once."""
    stmt = update(_runs).where(*_fenced(run_id, attempt)).values(released_at=released_at)
    return conn.execute(stmt).rowcount == 1


def stored_tender_ids(conn: Connection, portal_name: str, tender_ids: Sequence[str]) -> set[str]:
    """Which of ``tender_ids`` the portal already has in ``tenders`` (from any run)."""
    found: set[str] = set()
    for start in range(0, len(tender_ids), CHUNK):
        chunk = tender_ids[start : start + CHUNK]
        stmt = select(_tenders.c.tender_id).where(
            _tenders.c.portal_name == portal_name, _tenders.c.tender_id.in_(chunk)
        )
        found.update(conn.execute(stmt).scalars())
    return found


def run_tenders(conn: Connection, run_id: int) -> list[dict[str, Any]]:
    """The tenders a run stored (not those of a deleted run that had its id), oldest first, as
    dicts of ``TENDER_COLUMNS``."""
    columns = [_tenders.c[name] for name in TENDER_COLUMNS]
    stmt = select(*columns).where(_current_tenders(run_id)).order_by(_tenders.c.id)
    return [dict(row._mapping) for row in conn.execute(stmt)]


def insert_tenders(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(insert(_tenders), list(rows))


# -- the demo fleet's own rows --


def count_runs(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(_runs)).scalar_one()


def demo_marks(conn: Connection) -> list[Any]:
    """Every demo mark with the run row that has its id now, if any (``run_portal``,
    ``run_started_at``; ``run_exists``), for the demo to tell its own runs from others'."""
    stmt = (
        select(
            _demo,
            (_runs.c.id.is_not(None)).label("run_exists"),
            _runs.c.portal_name.label("run_portal"),
            _runs.c.started_at.label("run_started_at"),
        )
        .select_from(_demo.outerjoin(_runs, _runs.c.id == _demo.c.run_id))
        .order_by(_demo.c.run_id)
    )
    return list(conn.execute(stmt))


def unmarked_runs_of_worker(conn: Connection, worker_prefix: str) -> list[Any]:
    """Runs written by workers whose id starts with ``worker_prefix`` that carry no demo mark
    and whose id no deleted run had (the demo's rows from before it marked them)."""
    stmt = select(_runs.c.id, _runs.c.portal_name, _runs.c.started_at).where(
        _runs.c.worker_id.startswith(worker_prefix, autoescape=True),
        ~exists().where(_demo.c.run_id == _runs.c.id),
        ~exists().where(_deleted.c.run_id == _runs.c.id),
    )
    return list(conn.execute(stmt.order_by(_runs.c.id)))


def mark_demo_run(
    conn: Connection, run_id: int, *, portal_name: str, started_at: datetime, fresh: bool = True
) -> None:
    """Mark ``run_id`` as the demo's. ``fresh``: the demo just inserted it, so the tenders and
    events already linked to the id are someone else's and stay below its floors; otherwise
    (a demo run written before the marks existed) everything linked to it is the demo's."""
    if fresh:
        tender_floor: Any = _floor_of(_tenders, run_id)
        event_floor: Any = _floor_of(_events, run_id)
    else:
        tender_floor = event_floor = 0
    conn.execute(
        insert(_demo).values(
            run_id=run_id,
            portal_name=portal_name,
            started_at=started_at,
            tender_floor=tender_floor,
            event_floor=event_floor,
        )
    )


def _floor_of(table: Any, run_id: int) -> Any:
    """SQL: the highest id among ``table``'s rows linked to ``run_id`` (0: none)."""
    return (
        select(func.coalesce(func.max(table.c.id), 0))
        .where(table.c.run_id == run_id)
        .scalar_subquery()
    )


def delete_demo_runs(conn: Connection, run_ids: Sequence[int]) -> None:
    """Remove the demo's own runs with the tenders and events each wrote: only rows above the
    run's demo floors and in its current incarnation. Only for runs the demo marked (and still
    are the ones it marked), which a person asked to replace; the tool never does this to real
    runs."""
    for chunk in _chunks(run_ids):
        for table, demo_floor, watermark in (
            (_tenders, _demo.c.tender_floor, _deleted.c.last_tender_id),
            (_events, _demo.c.event_floor, _deleted.c.last_event_id),
        ):
            own_floor = select(demo_floor).where(_demo.c.run_id == table.c.run_id)
            conn.execute(
                delete(table).where(
                    table.c.run_id.in_(chunk),
                    table.c.id > own_floor.scalar_subquery(),
                    table.c.id > _floor(watermark, table.c.run_id),
                )
            )
        conn.execute(delete(_runs).where(_runs.c.id.in_(chunk)))
        conn.execute(delete(_demo).where(_demo.c.run_id.in_(chunk)))


def forget_demo_marks(conn: Connection, run_ids: Sequence[int]) -> None:
    """Drop demo marks whose run is gone or is not the demo's any more; its rows stay."""
    for chunk in _chunks(run_ids):
        conn.execute(delete(_demo).where(_demo.c.run_id.in_(chunk)))


# -- monitor --

_cycles = MonitorCycle.__table__
_problems = MonitorProblem.__table__
_notices = MonitorNotice.__table__
_channels = MonitorChannel.__table__
_lease = MonitorLease.__table__


def _insert_ignoring_duplicates(conn: Connection, table: Any, values: Mapping[str, Any]) -> None:
    """INSERT that does nothing when the primary key exists (SQLite and PostgreSQL)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(table).values(**values).on_conflict_do_nothing())


def take_lease(conn: Connection, name: str, holder: str, now: datetime, until: datetime) -> bool:
    """Compare-and-set: take the lease if it is free, expired, or already ours."""
    _insert_ignoring_duplicates(conn, _lease, {"name": name, "holder": "", "expires_at": now})
    stmt = (
        update(_lease)
        .where(
            _lease.c.name == name,
            or_(_lease.c.holder == holder, _lease.c.holder == "", _lease.c.expires_at <= now),
        )
        .values(holder=holder, expires_at=until)
    )
    return conn.execute(stmt).rowcount == 1


def release_lease(conn: Connection, name: str, holder: str) -> None:
    conn.execute(
        update(_lease).where(_lease.c.name == name, _lease.c.holder == holder).values(holder="")
    )


def last_cycle(conn: Connection, *, finished_only: bool = False) -> Any:
    stmt = select(_cycles).order_by(_cycles.c.id.desc()).limit(1)
    if finished_only:
        stmt = stmt.where(_cycles.c.finished_at.is_not(None))
    return conn.execute(stmt).first()


def start_cycle(conn: Connection, now: datetime, holder: str) -> int:
    stmt = insert(_cycles).values(started_at=now, holder=holder).returning(_cycles.c.id)
    return conn.execute(stmt).scalar_one()


def finish_cycle(
    conn: Connection, cycle_id: int, now: datetime, outcome: str, detail: str, changes: int
) -> None:
    conn.execute(
        update(_cycles)
        .where(_cycles.c.id == cycle_id)
        .values(finished_at=now, outcome=outcome, detail=detail[:2000], changes=changes)
    )


def open_problems(conn: Connection) -> list[Any]:
    return list(conn.execute(select(_problems).where(_problems.c.resolved_at.is_(None))))


def open_problem(conn: Connection, problem: Mapping[str, Any], now: datetime) -> None:
    conn.execute(
        insert(_problems).values(
            run_id=problem["run_id"],
            kind=problem["kind"],
            portal_name=problem["portal_name"],
            summary=problem["summary"],
            first_seen_at=now,
            last_notified_at=now,
        )
    )


def touch_problem(conn: Connection, problem_id: int, now: datetime, summary: str) -> None:
    conn.execute(
        update(_problems)
        .where(_problems.c.id == problem_id)
        .values(last_notified_at=now, summary=summary)
    )


def resolve_problem(conn: Connection, problem_id: int, now: datetime) -> None:
    conn.execute(update(_problems).where(_problems.c.id == problem_id).values(resolved_at=now))


def insert_notice(conn: Connection, cycle_id: int, now: datetime, title: str, body: str) -> None:
    conn.execute(insert(_notices).values(cycle_id=cycle_id, created_at=now, title=title, body=body))


def channel_cursor(conn: Connection, key: str, cycle_id: int) -> int:
    """The last notice the channel received. A channel seen for the first time starts just
    before this cycle's notice, so a newly added channel is not sent the whole history."""
    before = select(func.coalesce(func.max(_notices.c.id), 0)).where(_notices.c.cycle_id < cycle_id)
    _insert_ignoring_duplicates(
        conn,
        _channels,
        {"channel_key": key, "delivered_notice_id": conn.execute(before).scalar_one()},
    )
    stmt = select(_channels.c.delivered_notice_id).where(_channels.c.channel_key == key)
    return conn.execute(stmt).scalar_one()


def notices_after(conn: Connection, notice_id: int, *, limit: int = 50) -> list[Any]:
    """Undelivered notices, oldest first (the newest ``limit`` of them)."""
    stmt = (
        select(_notices)
        .where(_notices.c.id > notice_id)
        .order_by(_notices.c.id.desc())
        .limit(limit)
    )
    return list(reversed(conn.execute(stmt).all()))


def record_delivery(conn: Connection, key: str, delivered_id: int | None, now: datetime) -> None:
    """After an attempt: advance the channel's cursor on success, count a failure otherwise."""
    if delivered_id is None:
        values: dict[str, Any] = {"last_attempt_at": now, "failures": _channels.c.failures + 1}
    else:
        values = {
            "last_attempt_at": now,
            "last_success_at": now,
            "failures": 0,
            "delivered_notice_id": delivered_id,
        }
    conn.execute(update(_channels).where(_channels.c.channel_key == key).values(**values))


def prune_monitor(conn: Connection, before: datetime) -> None:
    """Forget notices, resolved problems and cycles older than ``before``."""
    conn.execute(delete(_notices).where(_notices.c.created_at < before))
    conn.execute(
        delete(_problems).where(
            _problems.c.resolved_at.is_not(None), _problems.c.resolved_at < before
        )
    )
    conn.execute(delete(_cycles).where(_cycles.c.started_at < before))
