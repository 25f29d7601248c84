"""The login form. The password goes from the form straight to the check; it is never stored in
the state, so it is never sent back to the browser or written to Redis."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import reflex as rx

from cleanup_core.accounts import client_address
from cleanup_core.errors import CleanupError, LoginThrottledError
from tender_dashboard_reflex import routes
from tender_dashboard_reflex.backend import accounts, service
from tender_dashboard_reflex.state.auth import AuthState, Work, background

log = logging.getLogger("tender_dashboard_reflex")


def _safe_next(target: str) -> str:
    """Only a path of this app, never another site (no open redirect). Browsers read a
    backslash as a slash, so ``/\\host`` would name another host."""
    if (
        target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and target.isprintable()
        and target != routes.LOGIN
    ):
        return target
    return routes.OVERVIEW


class LoginState(AuthState):
    error: rx.Field[str] = rx.field("")

    @background("open the login page", admin=None)
    def open_page(self) -> Work:
        """Already signed in: go where the user was heading."""
        self.error = ""
        token = self.session_token
        try:
            user = yield lambda: accounts().user_for(token)
        except CleanupError as exc:  # database locked or down: say so on the form
            self.error = str(exc)
            return None
        if user is not None:
            return rx.redirect(_safe_next(self.router.url.query_parameters.get("next", "/")))
        self._forget_tab()  # whatever a session that is gone had loaded into this tab
        return None

    def _client(self, trusted_proxies: Any) -> str | None:
        """The address this browser's socket comes from; ``X-Forwarded-For`` counts only when
        the socket's peer is one of the configured ``trusted_proxies``."""
        router = self.router
        return client_address(
            router.session.client_ip,
            router.headers.raw_headers.get("x-forwarded-for"),
            trusted_proxies,
        )

    @background("log in", admin=None, busy=True)
    def log_in(self, form: dict[str, Any]) -> Work:
        """Check the password (scrypt, in a worker thread); a second submit while it runs is
        ignored."""
        fields: Mapping[str, Any] = form if isinstance(form, Mapping) else {}  # a forged event
        username = str(fields.get("username", "")).strip()
        password = str(fields.get("password", ""))
        try:
            trusted = yield lambda: service().settings.trusted_proxies
            client = self._client(trusted)
            login = yield lambda: accounts().log_in(username, password, client=client)
        except LoginThrottledError as exc:  # refused unchecked (and logged) after failures
            self.error = str(exc)
            return None
        except CleanupError as exc:  # database locked or down: say so, keep the form
            log.warning("dashboard login could not be checked: %s", exc)
            self.error = str(exc)
            return None
        if login is None:
            self.error = "Wrong user name or password."
            return None
        self.error = ""
        self.session_token = login.token
        self.username, self.role = login.user.username, login.user.role
        return rx.redirect(_safe_next(self.router.url.query_parameters.get("next", "/")))
