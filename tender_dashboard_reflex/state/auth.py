"""Sessions and the check every event handler makes.

Every public state method can be called from a browser, with any arguments, by anyone who can
reach the backend - a confirmation dialog is not protection. So each handler that reads data
checks for a valid session, and each handler that changes anything also checks for the admin
role, on the server, against the database (``guarded``). A refused call changes nothing and is
logged.

Reflex keeps each tab's state on the server and sends all of it to any socket that hydrates with
the tab's token, so a tab whose session is gone (logged out, expired, ended elsewhere) is emptied:
no page keeps the runs or history it showed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar, TypeVarTuple, cast
from urllib.parse import quote

import reflex as rx
from reflex.event import EventCallback

from cleanup_core.accounts import ADMIN, User
from cleanup_core.errors import CleanupError
from cleanup_core.numbers import whole_number
from tender_dashboard_reflex import routes
from tender_dashboard_reflex.backend import accounts

log = logging.getLogger("tender_dashboard_reflex")

State = TypeVar("State", bound=rx.State)
Args = TypeVarTuple("Args")


def event(handler: Callable[[State, *Args], Any]) -> EventCallback[*Args]:
    """``rx.event``, typed so that mypy sees what a page gets, ``SomeState.handler(value)``
    with the value checked (mypy reads ``rx.event`` as its class: its ``__new__`` returns
    something else, which only pyright follows)."""
    return cast("EventCallback[*Args]", rx.event(handler))


class AuthState(rx.State):
    """The browser's session token (a cookie) and who it belongs to."""

    # The cookie outlives no session: the server refuses an expired token anyway.
    session_token: str = rx.Cookie("", name="cleanup_session", same_site="strict")
    username: rx.Field[str] = rx.field("")
    role: rx.Field[str] = rx.field("")

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

    def _forget_tab(self) -> None:
        """Empty this tab's state: the session, and every page's rows, filters and dialogs.

        Reset from the ``AuthState`` of the tab, as every page state is one of its substates
        (an event of ``AuthState`` has all of them loaded, also from Redis)."""
        tab: Any = self
        while type(tab) is not AuthState:
            tab = tab.parent_state
        tab.reset()

    @event
    def log_out(self) -> Any:
        accounts().log_out(self.session_token)
        if self.username:
            log.info("dashboard logout: %s", self.username)
        self._forget_tab()
        return rx.redirect(routes.LOGIN)


Guarded = TypeVar("Guarded", bound="AuthState")


def guarded(
    action: str, *, admin: bool
) -> Callable[[Callable[[Guarded, *Args], Any]], Callable[[Guarded, *Args], Any]]:
    """Run the handler only for a valid session (and the admin role when ``admin``); turn the
    errors an operator can act on into a toast instead of a stack trace. (The handler's
    arguments keep their types, so ``SomeState.handler(value)`` in a page is checked.)"""

    def decorate(handler: Callable[[Guarded, *Args], Any]) -> Callable[[Guarded, *Args], Any]:
        @functools.wraps(handler)
        def checked(self: Guarded, *args: *Args, **kwargs: Any) -> Any:
            # The session check reads the database too: a locked or unreachable database is an
            # error toast there as well, and the next event tries again (no restart needed).
            try:
                if self._authorize(action, admin=admin) is None:
                    if self.username:  # signed in, but a viewer
                        return rx.toast.error(
                            "Your account can only view; ask an admin to do this."
                        )
                    self._forget_tab()
                    return rx.redirect(f"{routes.LOGIN}?next={quote(self._here(), safe='/')}")
                # Reflex passes the event's payload by name: the same arguments, as keywords.
                return cast("Callable[..., Any]", handler)(self, *args, **kwargs)
            except (CleanupError, ValueError, TypeError) as exc:  # TypeError: a forged argument
                log.warning("%s failed: %s", action, exc)
                return rx.toast.error(str(exc), duration=10000)

        return checked

    return decorate


# -- event arguments ----------------------------------------------------------------------------
# A forged event can carry any JSON value where the page sends a number. Each one is checked where
# it enters: a clear error toast (``ValueError``, see ``guarded``), never an overflow further in.

_INT64 = 2**63


def whole_argument(value: object) -> int | None:
    """``value`` as a 64-bit whole number (an integer, a whole float or a string of digits);
    ``None`` for anything else: text, fractions, infinities, NaN, booleans, huge numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not value.is_integer():
            return None
        value = int(value)
    elif isinstance(value, str):
        value = whole_number(value)
    if not isinstance(value, int) or not -_INT64 <= value < _INT64:
        return None
    return value


def _shown(value: object) -> str:
    return repr(value)[:40]


def run_id_argument(value: object) -> int:
    run_id = whole_argument(value)
    if run_id is None:
        raise ValueError(f"Not a run id: {_shown(value)}.")
    return run_id


def page_argument(value: object, page_count: int) -> int:
    """A page to show: a whole number, brought within 1..``page_count`` (the list may have
    shrunk since the button was drawn)."""
    page = whole_argument(value)
    if page is None:
        raise ValueError(f"No page {_shown(value)}.")
    return min(max(1, page), page_count)
