"""Sessions and the check every event handler makes.

Every public state method can be called from a browser, with any arguments, by anyone who can
reach the backend - a confirmation dialog is not protection. So each handler that reads data
checks for a valid session, and each handler that changes anything also checks for the admin
role, on the server, against the database (``guarded``). A refused call changes nothing and is
logged.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import reflex as rx

from cleanup_core.accounts import ADMIN, User
from cleanup_core.errors import CleanupError
from tender_dashboard_reflex import routes
from tender_dashboard_reflex.backend import accounts

log = logging.getLogger("tender_dashboard_reflex")


class AuthState(rx.State):
    """The browser's session token (a cookie) and who it belongs to."""

    # The cookie outlives no session: the server refuses an expired token anyway.
    session_token: str = rx.Cookie("", name="cleanup_session", same_site="strict")
    username: str = ""
    role: str = ""

    @rx.var
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @rx.var
    def signed_in(self) -> bool:
        return self.username != ""

    def _authorize(self, action: str, *, admin: bool) -> User | None:
        """The session's user if it may do ``action``; ``None`` (logged) otherwise."""
        user = accounts().user_for(self.session_token)
        if user is None:
            if self.session_token or admin:
                log.warning("refused %s: no valid session", action)
            self.username, self.role = "", ""
            return None
        self.username, self.role = user.username, user.role
        if admin and not user.is_admin:
            log.warning(
                "refused %s for %s: the viewer role cannot change anything", action, user.username
            )
            return None
        return user

    def _here(self) -> str:
        """This page with its query (e.g. ``/run?id=7``), to come back to after logging in."""
        url = self.router.url
        return (url.path or "/") + (f"?{url.query}" if url.query else "")

    def _actor(self) -> str:
        """Who the audit trail names for this browser's actions."""
        return f"dashboard:{self.username}"

    @rx.event
    def log_out(self) -> Any:
        accounts().log_out(self.session_token)
        if self.username:
            log.info("dashboard logout: %s", self.username)
        self.session_token, self.username, self.role = "", "", ""
        return rx.redirect(routes.LOGIN)


def guarded(action: str, *, admin: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run the handler only for a valid session (and the admin role when ``admin``); turn the
    errors an operator can act on into a toast instead of a stack trace."""

    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def checked(self: AuthState, *args: Any, **kwargs: Any) -> Any:
            # The session check reads the database too: a locked or unreachable database is an
            # error toast there as well, and the next event tries again (no restart needed).
            try:
                if self._authorize(action, admin=admin) is None:
                    if self.username:  # signed in, but a viewer
                        return rx.toast.error(
                            "Your account can only view; ask an admin to do this."
                        )
                    return rx.redirect(f"{routes.LOGIN}?next={quote(self._here(), safe='/')}")
                return handler(self, *args, **kwargs)
            except (CleanupError, ValueError, TypeError) as exc:  # TypeError: a forged argument
                log.warning("%s failed: %s", action, exc)
                return rx.toast.error(str(exc), duration=10000)

        return checked

    return decorate
