"""Dashboard accounts and login sessions.

Accounts are created from the command line (``python -m cleanup_core admin create NAME``); there is
no registration page. Passwords are hashed with scrypt (memory-hard, from the standard library)
and a per-user salt. A login gives the browser a random token; the database keeps only its
SHA-256, with an expiry, so sessions work across several dashboard workers and a stolen copy of
the database lets nobody in.

Guessing is slowed down per account and per client address (``LoginThrottle``): after a few
failures each further attempt waits a growing delay, after more a lockout; the attempt is refused
before any password is checked. The counts are in the database, so they hold across dashboard
workers and restarts, and every failure is logged with the client's address for fail2ban.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from ipaddress import IPv4Address, IPv6Address, ip_address

from sqlalchemy import Connection

from cleanup_core.config import Network, Settings
from cleanup_core.db import Database
from cleanup_core.errors import CleanupError, LoginThrottledError
from cleanup_core.records import UserRecord
from cleanup_core.storage import accounts as stored
from cleanup_core.timestamps import utc_now
from cleanup_core.vocabulary import Role

log = logging.getLogger("cleanup_core.accounts")

ADMIN = Role.ADMIN
VIEWER = Role.VIEWER
ROLES = tuple(role.value for role in Role)
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


class Counted(StrEnum):
    """What a failed-login counter belongs to."""

    ACCOUNT = "account"
    CLIENT = "client"


@dataclass(frozen=True)
class LoginThrottle:
    """How failed logins slow down the next attempt, for an account and for a client alike.

    After ``delay_after`` failures the next attempt must wait ``delay``, doubling with each
    further failure; from ``lockout_after`` failures every failure locks for ``lockout``. A
    successful login resets both counts; a count ``forget_after`` past its last failure
    starts again from zero."""

    delay_after: int = 3
    delay: timedelta = timedelta(seconds=1)
    lockout_after: int = 10
    lockout: timedelta = timedelta(minutes=15)
    forget_after: timedelta = timedelta(hours=24)

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginThrottle:
        return cls(
            delay_after=settings.login_delay_after,
            delay=timedelta(seconds=settings.login_delay_seconds),
            lockout_after=settings.login_lockout_after,
            lockout=timedelta(minutes=settings.login_lockout_minutes),
            forget_after=timedelta(hours=settings.login_forget_after_hours),
        )

    def wait_after(self, failures: int) -> timedelta | None:
        """How long the next attempt must wait after ``failures`` failures in a row."""
        if failures >= self.lockout_after:
            return self.lockout
        if failures >= self.delay_after:
            doublings = min(failures - self.delay_after, 40)  # far past any lockout already
            return min(self.delay * 2**doublings, self.lockout)
        return None


def client_address(
    peer: str, forwarded_for: str | None, trusted_proxies: Sequence[Network]
) -> str | None:
    """The address a request came from, written one way (so one client is one counter and one
    fail2ban ban); ``None`` when unknown.

    ``X-Forwarded-For`` is believed only when ``peer`` (the socket's other end) is one of the
    ``trusted_proxies``: then the client is the rightmost address in it that is not a trusted
    proxy. Anything left of that was sent by the client itself and could be forged."""
    client = _address(peer)
    if client is None or client.is_unspecified:
        return None
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    while hops and _trusted(client, trusted_proxies):
        hop = _address(hops.pop())
        if hop is None:  # the proxy passed on something that is not an address: stop at it
            break
        client = hop
    return str(client)


def _address(text: str) -> IPv4Address | IPv6Address | None:
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPv4Address | IPv6Address, trusted_proxies: Sequence[Network]) -> bool:
    return any(address in network for network in trusted_proxies)


def _user(row: UserRecord) -> User:
    return User(id=row.id, username=row.username, role=row.role)


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

    def __init__(
        self,
        database: Database,
        *,
        session_ttl: timedelta = timedelta(hours=12),
        throttle: LoginThrottle | None = None,
    ):
        self.db = database
        self.session_ttl = session_ttl
        self.throttle = throttle or LoginThrottle()

    def create_user(self, username: str, password: str, *, role: str = ADMIN) -> User:
        validate_username(username)
        validate_password(password)
        if role not in ROLES:
            raise CleanupError(f"A role is one of {', '.join(ROLES)}, got {role!r}.")
        password_hash = hash_password(password)
        with self.db.write() as conn:
            if stored.user_by_name(conn, username) is not None:
                raise CleanupError(
                    f"User {username!r} already exists; use `admin set-password` to change "
                    "the password."
                )
            user_id = stored.insert_user(
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
            if not stored.set_password_hash(conn, username, password_hash):
                raise CleanupError(f"No user {username!r}.")
            user = stored.user_by_name(conn, username)
            if user is not None:
                stored.delete_user_sessions(conn, user.id)
        log.info("changed the password of %s (their sessions were ended)", username)

    def users(self) -> list[User]:
        with self.db.read() as conn:
            return [_user(row) for row in stored.all_users(conn)]

    def remove_user(self, username: str) -> None:
        with self.db.write() as conn:
            row = stored.user_by_name(conn, username)
            if row is None:
                raise CleanupError(f"No user {username!r}.")
            stored.delete_user(conn, row.id)
        log.info("removed dashboard user %s", username)

    def unlock(self, username: str) -> None:
        """Forget the account's failed logins, lifting a delay or lockout (its clients' counts
        stay)."""
        with self.db.write() as conn:
            if stored.user_by_name(conn, username) is None:
                raise CleanupError(f"No user {username!r}.")
            stored.clear_login_failures(conn, [(Counted.ACCOUNT, username)])
        log.info("cleared the failed logins of %s", username)

    def log_in(
        self,
        username: str,
        password: str,
        *,
        client: str | None = None,
        now: datetime | None = None,
    ) -> Login | None:
        """A new session for the right password; ``None`` (and a log line) otherwise.

        ``client`` is the address the attempt came from (see ``client_address``). Raises
        ``LoginThrottledError``, without checking the password, while the account or the
        client must wait after earlier failures."""
        now = now or utc_now()
        where = client or "unknown"
        keys = [(Counted.ACCOUNT, username[:64])]
        if client:
            keys.append((Counted.CLIENT, client))
        # The attempt is counted as a failure before the password is checked, in the same
        # transaction as the check for a wait: parallel guesses cannot all slip past it. A
        # right password then resets the counts.
        with self.db.write() as conn:
            waits, counts = self._count_attempt(conn, keys, now)
            row = stored.user_by_name(conn, username) if _USERNAME.match(username) else None
        if waits:
            retry_after = max(1, math.ceil(max(waits).total_seconds()))
            log.warning(
                "failed dashboard login from %s for user %r: refused, too many failed logins "
                "(try again in %d s)",
                where,
                username[:64],
                retry_after,
            )
            raise LoginThrottledError(retry_after)
        if row is None:
            verify_password(password, _dummy_hash())
            self._log_failure(where, username, "unknown user", counts)
            return None
        if not verify_password(password, row.password_hash):
            self._log_failure(where, username, "wrong password", counts)
            return None
        token = secrets.token_urlsafe(32)
        expires_at = now + self.session_ttl
        with self.db.write() as conn:
            stored.clear_login_failures(conn, keys)
            stored.delete_expired_sessions(conn, now)
            stored.insert_session(
                conn,
                {
                    "token_hash": _token_hash(token),
                    "user_id": row.id,
                    "created_at": now,
                    "expires_at": expires_at,
                },
            )
        log.info("dashboard login from %s: %s", where, username)
        return Login(token, _user(row), expires_at)

    def _count_attempt(
        self, conn: Connection, keys: list[tuple[Counted, str]], now: datetime
    ) -> tuple[list[timedelta], dict[Counted, int]]:
        """The waits still running for ``keys``; when there are none, the attempt is counted
        (and the next one's wait set) and the new counts are returned."""
        throttle = self.throttle
        stored.prune_login_failures(conn, failed_before=now - throttle.forget_after, now=now)
        counters = stored.lock_login_failures(conn, keys, now)
        waits = [
            c.blocked_until - now for c in counters if c.blocked_until and c.blocked_until > now
        ]
        if waits:
            return waits, {}
        counts: dict[Counted, int] = {}
        for counter in counters:
            forgotten = (
                counter.last_failure_at is None
                or counter.last_failure_at <= now - throttle.forget_after
            )
            failures = (0 if forgotten else counter.failures) + 1
            wait = throttle.wait_after(failures)
            stored.set_login_failures(
                conn,
                counter.kind,
                counter.name,
                failures=failures,
                last_failure_at=now,
                blocked_until=None if wait is None else now + wait,
            )
            counts[Counted(counter.kind)] = failures
        return [], counts

    def _log_failure(self, where: str, username: str, why: str, counts: dict[Counted, int]) -> None:
        """One line per failure, and one per lockout it starts, each naming the client first
        (the user name is the attacker's text, so it comes after the address fail2ban reads)."""
        name = username[:64]
        log.warning("failed dashboard login from %s for user %r: %s", where, name, why)
        for counted, failures in counts.items():
            if failures >= self.throttle.lockout_after:
                log.warning(
                    "dashboard login lockout from %s for user %r: the %s is locked for %d s "
                    "after %d failed logins",
                    where,
                    name,
                    counted.value,
                    round(self.throttle.lockout.total_seconds()),
                    failures,
                )

    def user_for(self, token: str, *, now: datetime | None = None) -> User | None:
        """The user of a valid, unexpired session token, else ``None``."""
        if not isinstance(token, str) or not token or len(token) > 200:
            return None
        with self.db.read() as conn:
            row = stored.session_user(conn, _token_hash(token), now or utc_now())
        return None if row is None else _user(row)

    def log_out(self, token: str) -> None:
        if isinstance(token, str) and token:
            with self.db.write() as conn:
                stored.delete_session(conn, _token_hash(token))
