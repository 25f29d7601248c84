"""The login form's handler against guessing: growing delays, a lockout, a reset on success, and
the client address taken from the Reflex session (``X-Forwarded-For`` only from a trusted
proxy). Delays are minutes long here, so no test depends on how fast it runs."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from reflex.istate.data import HeaderData, SessionData

from tender_dashboard_reflex import backend
from tender_dashboard_reflex.state.login import LoginState
from tests.dashboard.support import ADMIN_NAME, PASSWORD, VIEWER_NAME, Dash, make_state

ATTACKER, OTHER = "203.0.113.7", "198.51.100.2"
WRONG_LOGIN = "Wrong user name or password."


@pytest.fixture
def settings(dash: Dash, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set login settings for the dashboard under test (before its first use)."""

    def apply(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"CLEANUP_{name.upper()}", value)
        backend.service.cache_clear()
        backend.accounts.cache_clear()

    return apply


def attempt(
    password: str,
    username: str = ADMIN_NAME,
    *,
    peer: str = ATTACKER,
    forwarded_for: str | None = None,
) -> LoginState:
    """Submit the login form from a fresh tab whose socket comes from ``peer``."""
    state = make_state(LoginState, path="/login")
    root = state._get_root_state()
    root.rx_router_session = SessionData(client_token="tab", client_ip=peer)
    headers = {"host": "tenders.example.org"}
    if forwarded_for is not None:
        headers["x-forwarded-for"] = forwarded_for
    root.rx_router_headers = HeaderData.from_router_data({"headers": headers})
    state.log_in({"username": username, "password": password})
    return state


def signed_in(state: LoginState) -> bool:
    return state.session_token != "" and state.error == ""


def failed_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "dashboard login" in r.getMessage()
    ]


def test_after_a_few_wrong_passwords_the_next_attempt_must_wait(dash: Dash, settings) -> None:
    settings(login_delay_after="2", login_delay_seconds="60")
    assert attempt("wrong one").error == WRONG_LOGIN
    assert attempt("wrong two").error == WRONG_LOGIN

    state = attempt(PASSWORD)

    assert state.error == "Too many failed logins; try again in 60 s."
    assert state.session_token == "" and state.username == ""
    assert dash.session_count() == 0


def test_more_wrong_passwords_lock_the_account_even_for_the_right_one(
    dash: Dash, settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings(login_delay_after="3", login_lockout_after="3", login_lockout_minutes="15")
    for _ in range(3):
        assert attempt("a wrong guess").error == WRONG_LOGIN

    from_elsewhere = attempt(PASSWORD, peer=OTHER)  # the account is locked, wherever from

    assert from_elsewhere.error == "Too many failed logins; try again in 900 s."
    assert not from_elsewhere.session_token and dash.session_count() == 0
    assert (
        f"dashboard login lockout from {ATTACKER} for user '{ADMIN_NAME}': the account is "
        "locked for 900 s after 3 failed logins"
    ) in failed_lines(caplog)


def test_a_successful_login_resets_the_count(dash: Dash, settings) -> None:
    settings(login_delay_after="2", login_delay_seconds="60")
    assert attempt("wrong one").error == WRONG_LOGIN
    assert signed_in(attempt(PASSWORD))
    assert attempt("wrong two").error == WRONG_LOGIN  # one failure since the login: no wait
    assert attempt("wrong three").error == WRONG_LOGIN
    assert attempt(PASSWORD).error.startswith("Too many failed logins")


def test_the_client_address_comes_from_the_session(
    dash: Dash, settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings(login_delay_after="2", login_delay_seconds="60")
    attempt("guess", "root")
    attempt("guess", VIEWER_NAME)
    assert failed_lines(caplog) == [
        f"failed dashboard login from {ATTACKER} for user 'root': unknown user",
        f"failed dashboard login from {ATTACKER} for user '{VIEWER_NAME}': wrong password",
    ]
    # That client tried two names: it waits, for every name; another client does not.
    assert attempt(PASSWORD).error.startswith("Too many failed logins")
    assert signed_in(attempt(PASSWORD, peer=OTHER))


def test_x_forwarded_for_is_ignored_without_trusted_proxies(
    dash: Dash, caplog: pytest.LogCaptureFixture
) -> None:
    attempt("guess", peer="127.0.0.1", forwarded_for="198.51.100.9")
    assert failed_lines(caplog) == [
        f"failed dashboard login from 127.0.0.1 for user '{ADMIN_NAME}': wrong password"
    ]


def test_x_forwarded_for_names_the_client_behind_a_trusted_proxy(
    dash: Dash, settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings(trusted_proxies="127.0.0.1", login_delay_after="2", login_delay_seconds="60")
    attempt("guess", peer="127.0.0.1", forwarded_for="6.6.6.6, 198.51.100.9")
    attempt("guess", peer=ATTACKER, forwarded_for="198.51.100.9")  # not the proxy
    assert failed_lines(caplog) == [
        f"failed dashboard login from 198.51.100.9 for user '{ADMIN_NAME}': wrong password",
        f"failed dashboard login from {ATTACKER} for user '{ADMIN_NAME}': wrong password",
    ]
    # Behind the proxy each client has its own count: one guesser locks nobody else out.
    attempt("guess", VIEWER_NAME, peer="127.0.0.1", forwarded_for="198.51.100.9")
    blocked = attempt(PASSWORD, VIEWER_NAME, peer="127.0.0.1", forwarded_for="198.51.100.9")
    assert blocked.error.startswith("Too many failed logins")
    assert signed_in(attempt(PASSWORD, VIEWER_NAME, peer="127.0.0.1", forwarded_for=OTHER))
