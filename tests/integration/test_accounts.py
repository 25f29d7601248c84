"""Dashboard logins against a real database: growing delays and a lockout per account and per
client, kept in the database (so every dashboard worker and a restart see them), and log lines
that name the client. Every call passes ``now``: no test sleeps."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from functools import cache
from typing import Any

import pytest
from sqlalchemy import func, select

from cleanup_core import CleanupService
from cleanup_core import accounts as accounts_module
from cleanup_core.accounts import ADMIN, Accounts, LoginThrottle, hash_password
from cleanup_core.errors import LoginThrottledError
from cleanup_core.models import LoginFailure
from cleanup_core.storage import accounts as stored_accounts
from tests.conftest import NOW

PASSWORD = "correct horse battery staple"
WRONG = "not the password"
ATTACKER, OTHER_CLIENT = "203.0.113.7", "198.51.100.2"
# Small numbers, so a test reaches every stage in a few attempts.
THROTTLE = LoginThrottle(
    delay_after=3,
    delay=timedelta(seconds=2),
    lockout_after=6,
    lockout=timedelta(minutes=15),
    forget_after=timedelta(hours=24),
)


@cache
def _hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def accounts(service: CleanupService) -> Accounts:
    with service.db.write() as conn:
        for name in ("alice", "bob"):
            stored_accounts.insert_user(
                conn,
                {"username": name, "password_hash": _hash(), "role": ADMIN, "created_at": NOW},
            )
    return Accounts(service.db, throttle=THROTTLE)


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The password hashes each login attempt was verified against, in order."""
    seen: list[str] = []
    real = accounts_module.verify_password

    def spy(password: str, stored: str) -> bool:
        seen.append(stored)
        return real(password, stored)

    monkeypatch.setattr(accounts_module, "verify_password", spy)
    return seen


def at(seconds: float) -> Any:
    return NOW + timedelta(seconds=seconds)


def fail(accounts: Accounts, username: str = "alice", *, client: str = ATTACKER, t: float = 0):
    assert accounts.log_in(username, WRONG, client=client, now=at(t)) is None


def refused(
    accounts: Accounts,
    username: str = "alice",
    password: str = WRONG,
    *,
    client: str = ATTACKER,
    t: float = 0,
) -> int:
    """Assert the attempt is refused without a check; returns the seconds it was told to wait."""
    with pytest.raises(LoginThrottledError) as caught:
        accounts.log_in(username, password, client=client, now=at(t))
    wait = caught.value.retry_after
    assert str(caught.value) == f"Too many failed logins; try again in {wait} s."
    return wait


def lock_out(accounts: Accounts, username: str = "alice", *, client: str = ATTACKER) -> None:
    """Six failures, each as soon as it is allowed: locked from ``LOCKED_AT`` to ``UNLOCKED_AT``."""
    for t in (0, 0, 0, 2, 6, LOCKED_AT):
        fail(accounts, username, client=client, t=t)


LOCKED_AT, UNLOCKED_AT = 14, 14 + 900


def test_delays_grow_after_a_few_failures_then_the_account_is_locked(
    accounts: Accounts, checked: list[str]
) -> None:
    for _ in range(3):  # the first few failures cost nothing
        fail(accounts)
    assert refused(accounts, t=0) == 2
    assert refused(accounts, password=PASSWORD, t=1.5) == 1  # even the right password waits
    fail(accounts, t=2)  # 4th failure: the next attempt waits 4 s
    assert refused(accounts, t=5) == 1
    fail(accounts, t=6)  # 5th: 8 s
    assert refused(accounts, t=6) == 8
    assert refused(accounts, t=13.2) == 1  # rounded up: never "try again in 0 s"
    fail(accounts, t=14)  # 6th: locked for 15 minutes
    assert refused(accounts, t=14) == 900
    assert refused(accounts, password=PASSWORD, t=14 + 899) == 1
    assert len(checked) == 6  # a refused attempt never checked a password

    login = accounts.log_in("alice", PASSWORD, client=ATTACKER, now=at(14 + 900))

    assert login is not None and login.user.username == "alice"


def test_refused_attempts_do_not_extend_the_lockout(accounts: Accounts) -> None:
    lock_out(accounts)
    for t in range(LOCKED_AT, UNLOCKED_AT, 60):
        refused(accounts, t=t)
    assert accounts.log_in("alice", PASSWORD, client=ATTACKER, now=at(UNLOCKED_AT)) is not None


def test_after_a_lockout_one_more_failure_locks_again(accounts: Accounts) -> None:
    lock_out(accounts)
    fail(accounts, t=UNLOCKED_AT)
    assert refused(accounts, password=PASSWORD, t=UNLOCKED_AT + 1) == 899


def test_a_successful_login_resets_the_account_and_the_client(accounts: Accounts) -> None:
    fail(accounts)
    fail(accounts)
    fail(accounts, "mallory")  # the client's third failure
    assert accounts.log_in("alice", PASSWORD, client=ATTACKER, now=at(10)) is not None
    for _ in range(3):  # counting starts again for both
        fail(accounts, t=10)
    assert refused(accounts, t=10) == 2
    assert refused(accounts, "bob", PASSWORD, t=10) == 2  # the client's count, too


def test_one_client_trying_many_names_is_throttled_for_every_name(
    accounts: Accounts, checked: list[str]
) -> None:
    for name in ("root", "admin", "bob"):
        fail(accounts, name)
    assert refused(accounts, "alice", PASSWORD) == 2  # alice's own count is 0: the client's
    assert accounts.log_in("alice", PASSWORD, client=OTHER_CLIENT, now=at(0)) is not None
    assert len(checked) == 4


def test_guesses_at_one_account_from_many_clients_throttle_the_account(
    accounts: Accounts,
) -> None:
    for i in range(3):
        fail(accounts, client=f"203.0.113.{10 + i}")
    assert refused(accounts, password=PASSWORD, client=OTHER_CLIENT) == 2
    # A refused attempt is not counted against its client.
    assert accounts.log_in("bob", PASSWORD, client=OTHER_CLIENT, now=at(0)) is not None


def test_an_unknown_user_is_throttled_exactly_like_a_known_one(
    accounts: Accounts, checked: list[str]
) -> None:
    """Nothing in the answers tells an attacker whether the name exists: both check a scrypt
    hash (the unknown name a dummy one), both count and both are refused alike."""
    outcomes: dict[str, list[Any]] = {}
    for name, client in (("alice", ATTACKER), ("nobody", OTHER_CLIENT)):
        seen: list[Any] = []
        for t in (0, 0, 0, 0, 2, 3, 6):
            try:
                seen.append(accounts.log_in(name, WRONG, client=client, now=at(t)))
            except LoginThrottledError as exc:
                seen.append(exc.retry_after)
        outcomes[name] = seen
    assert outcomes["alice"] == outcomes["nobody"] == [None, None, None, 2, None, 3, None]
    assert len(checked) == 10 and all(stored.startswith("scrypt$") for stored in checked)
    assert checked[5] != checked[0]  # the dummy hash, not alice's


def test_failures_are_forgotten_after_a_quiet_day(accounts: Accounts) -> None:
    day = 24 * 3600
    for who, client in (("alice", ATTACKER), ("bob", OTHER_CLIENT)):
        for t in (0, 0, 0, 2, 6):
            fail(accounts, who, client=client, t=t)
    fail(accounts, "bob", client=OTHER_CLIENT, t=6 + day - 1)  # still remembered: the 6th
    assert refused(accounts, "bob", PASSWORD, client=OTHER_CLIENT, t=6 + day) == 899
    for _ in range(3):  # a day after the last: counted from one again
        fail(accounts, t=6 + day)
    assert refused(accounts, t=6 + day) == 2


def test_the_counters_live_in_the_database_for_every_worker_and_a_restart(
    service: CleanupService, accounts: Accounts
) -> None:
    lock_out(accounts)
    other_worker = Accounts(service.db, throttle=THROTTLE)
    assert refused(other_worker, password=PASSWORD, t=LOCKED_AT + 60) == 840
    with service.db.read() as conn:
        rows = {
            (row.kind, row.name): row.failures
            for row in conn.execute(select(LoginFailure.__table__))
        }
    assert rows == {("account", "alice"): 6, ("client", ATTACKER): 6}


def test_old_counters_are_pruned(service: CleanupService, accounts: Accounts) -> None:
    for i in range(20):
        fail(accounts, f"sprayed-{i}", client=f"203.0.113.{i}")
    fail(accounts, "bob", client=OTHER_CLIENT, t=2 * 24 * 3600)
    with service.db.read() as conn:
        count = conn.execute(select(func.count()).select_from(LoginFailure)).scalar_one()
    assert count == 2  # bob's and the other client's


def test_parallel_guesses_cannot_slip_past_the_counter(
    accounts: Accounts, checked: list[str]
) -> None:
    """Twelve guesses at the same instant from one client, as over twelve sockets: the count
    is taken in the same transaction as the check, so only the first three reach a password."""
    racers = 12
    barrier = threading.Barrier(racers)
    outcomes: list[str] = []

    def guess(i: int) -> None:
        barrier.wait()
        try:
            result = accounts.log_in(f"user{i}", WRONG, client=ATTACKER, now=at(0))
            outcomes.append("failed" if result is None else "logged in")
        except LoginThrottledError:
            outcomes.append("refused")

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["failed"] * 3 + ["refused"] * 9
    assert len(checked) == 3


def test_every_failed_login_is_logged_with_the_client_address(
    accounts: Accounts, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cleanup_core.accounts")
    fail(accounts, "nobody\nfake line")
    fail(accounts)
    fail(accounts, client="2001:db8::7")
    fail(accounts)
    refused(accounts)
    for t in (2, 6, 14):
        fail(accounts, t=t)
    assert accounts.log_in("bob", WRONG, now=at(15)) is None  # no address known
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    prefix = "failed dashboard login from"
    assert lines == [
        f"{prefix} 203.0.113.7 for user 'nobody\\nfake line': unknown user",
        f"{prefix} 203.0.113.7 for user 'alice': wrong password",
        f"{prefix} 2001:db8::7 for user 'alice': wrong password",
        f"{prefix} 203.0.113.7 for user 'alice': wrong password",
        f"{prefix} 203.0.113.7 for user 'alice': refused, too many failed logins "
        "(try again in 2 s)",
        f"{prefix} 203.0.113.7 for user 'alice': wrong password",
        f"{prefix} 203.0.113.7 for user 'alice': wrong password",
        f"{prefix} 203.0.113.7 for user 'alice': wrong password",
        "dashboard login lockout from 203.0.113.7 for user 'alice': the account is locked "
        "for 900 s after 6 failed logins",
        "dashboard login lockout from 203.0.113.7 for user 'alice': the client is locked "
        "for 900 s after 6 failed logins",
        f"{prefix} unknown for user 'bob': wrong password",
    ]


def test_unlock_lifts_an_accounts_lockout(accounts: Accounts) -> None:
    lock_out(accounts)
    accounts.unlock("alice")
    assert accounts.log_in("alice", PASSWORD, client=OTHER_CLIENT, now=at(15)) is not None
    refused(accounts, "bob", PASSWORD, t=15)  # the client stays locked
