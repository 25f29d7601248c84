"""Dashboard accounts: users, login sessions (only a hash of each token) and failed-login
counters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, update

from cleanup_core.models import DashboardSession, DashboardUser, LoginFailure, table
from cleanup_core.records import FailureCount, UserRecord
from cleanup_core.storage.common import insert_ignoring_duplicates
from cleanup_core.timestamps import parse_timestamp

_USERS = table(DashboardUser)
_SESSIONS = table(DashboardSession)
_FAILURES = table(LoginFailure)
_USER_COLUMNS = (_USERS.c.id, _USERS.c.username, _USERS.c.password_hash, _USERS.c.role)


def insert_user(conn: Connection, values: Mapping[str, Any]) -> int:
    user_id: int = conn.execute(insert(_USERS).values(**values).returning(_USERS.c.id)).scalar_one()
    return user_id


def user_by_name(conn: Connection, username: str) -> UserRecord | None:
    row = conn.execute(select(*_USER_COLUMNS).where(_USERS.c.username == username)).first()
    return None if row is None else UserRecord(*row)


def all_users(conn: Connection) -> list[UserRecord]:
    stmt = select(*_USER_COLUMNS).order_by(_USERS.c.username)
    return [UserRecord(*row) for row in conn.execute(stmt)]


def set_password_hash(conn: Connection, username: str, password_hash: str) -> bool:
    stmt = update(_USERS).where(_USERS.c.username == username).values(password_hash=password_hash)
    return conn.execute(stmt).rowcount == 1


def delete_user_sessions(conn: Connection, user_id: int) -> None:
    conn.execute(delete(_SESSIONS).where(_SESSIONS.c.user_id == user_id))


def delete_user(conn: Connection, user_id: int) -> None:
    delete_user_sessions(conn, user_id)
    conn.execute(delete(_USERS).where(_USERS.c.id == user_id))


def insert_session(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(_SESSIONS).values(**values))


def session_user(conn: Connection, token_hash: str, now: datetime) -> UserRecord | None:
    """The user of an unexpired session, or ``None``."""
    stmt = (
        select(*_USER_COLUMNS)
        .join(_SESSIONS, _SESSIONS.c.user_id == _USERS.c.id)
        .where(_SESSIONS.c.token_hash == token_hash, _SESSIONS.c.expires_at > now)
    )
    row = conn.execute(stmt).first()
    return None if row is None else UserRecord(*row)


def delete_session(conn: Connection, token_hash: str) -> None:
    conn.execute(delete(_SESSIONS).where(_SESSIONS.c.token_hash == token_hash))


def delete_expired_sessions(conn: Connection, now: datetime) -> int:
    return conn.execute(delete(_SESSIONS).where(_SESSIONS.c.expires_at <= now)).rowcount


# -- failed logins ----------------------------------------------------------------------------


def lock_login_failures(
    conn: Connection, keys: Sequence[tuple[str, str]], now: datetime
) -> list[FailureCount]:
    """The counters of ``keys`` ((kind, name) pairs), created at zero where missing and locked
    until the transaction ends (row locks on PostgreSQL, taken in key order so two logins never
    deadlock; SQLite's write transaction holds its only write lock)."""
    ordered = sorted(set(keys))
    for kind, name in ordered:
        insert_ignoring_duplicates(
            conn,
            _FAILURES,
            {"kind": kind, "name": name, "failures": 0, "last_failure_at": now},
        )
    stmt = (
        select(_FAILURES)
        .where(or_(*(and_(_FAILURES.c.kind == k, _FAILURES.c.name == n) for k, n in ordered)))
        .order_by(_FAILURES.c.kind, _FAILURES.c.name)
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
    conn.execute(
        update(_FAILURES)
        .where(_FAILURES.c.kind == kind, _FAILURES.c.name == name)
        .values(failures=failures, last_failure_at=last_failure_at, blocked_until=blocked_until)
    )


def clear_login_failures(conn: Connection, keys: Sequence[tuple[str, str]]) -> None:
    for kind, name in keys:
        conn.execute(delete(_FAILURES).where(_FAILURES.c.kind == kind, _FAILURES.c.name == name))


def prune_login_failures(conn: Connection, *, failed_before: datetime, now: datetime) -> None:
    """Forget counters whose last failure is older than ``failed_before`` and that block
    nothing any more."""
    conn.execute(
        delete(_FAILURES).where(
            _FAILURES.c.last_failure_at < failed_before,
            or_(_FAILURES.c.blocked_until.is_(None), _FAILURES.c.blocked_until <= now),
        )
    )
