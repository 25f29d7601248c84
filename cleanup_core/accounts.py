"""Dashboard accounts and login sessions.

Accounts are created from the command line (``python -m cleanup_core admin create NAME``); there is
no registration page. Passwords are hashed with scrypt (memory-hard, from the standard library)
and a per-user salt. A login gives the browser a random token; the database keeps only its
SHA-256, with an expiry, so sessions work across several dashboard workers and a stolen copy of
the database lets nobody in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from cleanup_core import repository
from cleanup_core.db import Database
from cleanup_core.errors import CleanupError
from cleanup_core.timestamps import utc_now

log = logging.getLogger("cleanup_core.accounts")

ADMIN = "admin"
VIEWER = "viewer"
ROLES = (ADMIN, VIEWER)
MIN_PASSWORD_LENGTH = 8
_USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")

# scrypt cost: 2**15 * 8 * 128 bytes = 32 MiB and ~50-100 ms per hash on a small server.
_N, _R, _P = 2**15, 8, 1
_MAXMEM = 64 * 1024 * 1024


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64), for storing."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM)
    encode = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${encode(salt).decode()}${encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time; ``False`` for a malformed hash)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


@cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a failed login takes the same time
    whether or not the name exists."""
    return hash_password(secrets.token_urlsafe(16))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


@dataclass(frozen=True)
class Login:
    """A new session: ``token`` goes to the browser once and is never stored."""

    token: str
    user: User
    expires_at: datetime


def _user(row: object) -> User:
    return User(id=row.id, username=row.username, role=row.role)  # type: ignore[attr-defined]


def validate_username(username: str) -> str:
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise CleanupError(
            "A user name is 1-64 letters, digits or . _ @ - (no spaces), got "
            f"{str(username)[:80]!r}."
        )
    return username


def validate_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise CleanupError(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    return password


class Accounts:
    """Create accounts, log in and out, and check sessions."""

    def __init__(self, database: Database, *, session_ttl: timedelta = timedelta(hours=12)):
        self.db = database
        self.session_ttl = session_ttl

    def create_user(self, username: str, password: str, *, role: str = ADMIN) -> User:
        validate_username(username)
        validate_password(password)
        if role not in ROLES:
            raise CleanupError(f"A role is one of {', '.join(ROLES)}, got {role!r}.")
        password_hash = hash_password(password)
        with self.db.write() as conn:
            if repository.user_by_name(conn, username) is not None:
                raise CleanupError(
                    f"User {username!r} already exists; use `admin set-password` to change "
                    "the password."
                )
            user_id = repository.insert_user(
                conn,
                {
                    "username": username,
                    "password_hash": password_hash,
                    "role": role,
                    "created_at": utc_now(),
                },
            )
        log.info("created dashboard user %s (%s)", username, role)
        return User(user_id, username, role)

    def set_password(self, username: str, password: str) -> None:
        validate_password(password)
        password_hash = hash_password(password)
        with self.db.write() as conn:
            if not repository.set_password_hash(conn, username, password_hash):
                raise CleanupError(f"No user {username!r}.")
            user = repository.user_by_name(conn, username)
            repository.delete_user_sessions(conn, user.id)
        log.info("changed the password of %s (their sessions were ended)", username)

    def users(self) -> list[User]:
        with self.db.read() as conn:
            return [_user(row) for row in repository.all_users(conn)]

    def remove_user(self, username: str) -> None:
        with self.db.write() as conn:
            row = repository.user_by_name(conn, username)
            if row is None:
                raise CleanupError(f"No user {username!r}.")
            repository.delete_user(conn, row.id)
        log.info("removed dashboard user %s", username)

    def log_in(self, username: str, password: str, *, now: datetime | None = None) -> Login | None:
        """A new session for the right password; ``None`` (and a log line) otherwise."""
        now = now or utc_now()
        with self.db.read() as conn:
            row = repository.user_by_name(conn, username) if _USERNAME.match(username) else None
        if row is None:
            verify_password(password, _dummy_hash())
            log.warning("failed dashboard login for unknown user %r", username[:64])
            return None
        if not verify_password(password, row.password_hash):
            log.warning("failed dashboard login for user %r (wrong password)", username)
            return None
        token = secrets.token_urlsafe(32)
        expires_at = now + self.session_ttl
        with self.db.write() as conn:
            repository.delete_expired_sessions(conn, now)
            repository.insert_session(
                conn,
                {
                    "token_hash": _token_hash(token),
                    "user_id": row.id,
                    "created_at": now,
                    "expires_at": expires_at,
                },
            )
        log.info("dashboard login: %s", username)
        return Login(token, _user(row), expires_at)

    def user_for(self, token: str, *, now: datetime | None = None) -> User | None:
        """The user of a valid, unexpired session token, else ``None``."""
        if not isinstance(token, str) or not token or len(token) > 200:
            return None
        with self.db.read() as conn:
            row = repository.session_user(conn, _token_hash(token), now or utc_now())
        return None if row is None else _user(row)

    def log_out(self, token: str) -> None:
        if isinstance(token, str) and token:
            with self.db.write() as conn:
                repository.delete_session(conn, _token_hash(token))
