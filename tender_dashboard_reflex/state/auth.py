"""Sessions and the check every event handler makes.

Every public state method can be called from a browser, with any arguments, by anyone who can
reach the backend - a confirmation dialog is not protection. So each handler that reads data
checks for a valid session, and each handler that changes anything also checks for the admin
role, on the server, against the database (``guarded``). A refused call changes nothing and is
logged.

Reflex keeps each tab's state on the server and sends all of it to any socket that hydrates with
the tab's token, so a tab whose session is gone (logged out, expired, ended elsewhere) is emptied:
no page keeps the runs or history it showed.

How a handler runs (``background``): never on the backend's event loop, as everything there is
shared by every tab of the worker. A handler is a Reflex background event; the session check, the
database, the file system and scrypt run in a worker thread, and the state is touched only in short
``async with self`` blocks between them. So one admin's long clean-up, a scrypt login or a SQLite
write lock held by a scraper delays only the page that asked for it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import weakref
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, TypeVarTuple, cast
from urllib.parse import quote

import reflex as rx
from reflex.event import Event, EventCallback, get_hydrate_event
from reflex.middleware import Middleware
from reflex.state import BaseState
from reflex_base.constants.state import FIELD_MARKER

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


# -- how every handler that reads or changes data runs ------------------------------------------

Step = Callable[[], Any]  # a blocking call (database, files, scrypt, a launch), run in a thread
Work = Generator[Step, Any, Any]
Tab = TypeVar("Tab", bound="AuthState")
Done = TypeVar("Done")

# One lock per tab and page state: that page's handlers run one after another, in the order they
# came (as Reflex runs ordinary handlers), while other pages and other tabs go on.
_page_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
    weakref.WeakValueDictionary()
)


# The worker threads of the blocking calls. More than the event loop's default (cpu + 4): a
# clean-up waiting for a SQLite write lock holds its thread meanwhile, and the other tabs' reads
# must still find one.
_threads = ThreadPoolExecutor(max_workers=24, thread_name_prefix="dashboard")


async def in_thread(call: Callable[[], Done]) -> Done:
    """``call()`` in a worker thread (with this task's context variables), awaited."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_threads, context.run, call)


def _page_lock(state: AuthState) -> asyncio.Lock:
    key = (state.router.session.client_token, state.get_full_name())
    lock = _page_locks.get(key)
    if lock is None:
        lock = _page_locks[key] = asyncio.Lock()
    return lock


def background(
    action: str, *, admin: bool | None, busy: bool = False
) -> Callable[[Callable[[Tab, *Args], Any]], EventCallback[*Args]]:
    """Make ``work`` an event handler that never blocks the backend's event loop.

    A Reflex background event (``@rx.event(background=True)``) that:

    1. with ``busy``, ignores the call if the same action of this tab is still running (a double
       click), and otherwise lists it in ``busy`` at once (the page shows a spinner);
    2. checks the session in a worker thread and, under ``async with self``, refuses as
       ``guarded`` did: a tab without a valid session is emptied and sent to log in, a viewer
       is told so when ``admin`` (``admin=None``: no check, for the login form and log out);
    3. runs ``work``. Written as a generator, ``work`` yields each blocking call as a function
       without arguments (``rows = yield lambda: service().scan(hours)``): the call runs in a
       worker thread, its result (or its exception) comes back at the ``yield``, and the code
       between the yields runs under ``async with self``, so it only touches the state. A plain
       function runs whole in a worker thread while holding this tab's state (as an ordinary
       handler would, but without stopping other tabs): a handler converted by a one-line change;
    4. turns the errors an operator can act on (``CleanupError``, ``ValueError``, ``TypeError``
       for a forged argument) into an error toast, as ``guarded`` did.

    The handlers of one page of one tab run one at a time, in order (``_page_lock``)."""

    def decorate(work: Callable[[Tab, *Args], Any]) -> EventCallback[*Args]:
        key = work.__qualname__
        steps = inspect.isgeneratorfunction(work)

        @functools.wraps(work)
        async def handler(self: Tab, *args: Any, **kwargs: Any) -> Any:
            if busy:
                async with self:
                    if key in self.busy:
                        log.info("ignored %s: still running in this tab", action)
                        return None
                    self.busy = [*self.busy, key]
            try:
                async with _page_lock(self):
                    return await _run(self, work, steps, action, admin, args, kwargs)
            finally:
                if busy:
                    async with self:
                        self.busy = [name for name in self.busy if name != key]

        return cast("EventCallback[*Args]", rx.event(handler, background=True))

    return decorate


async def _run(
    self: AuthState,
    work: Callable[..., Any],
    steps: bool,
    action: str,
    admin: bool | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Check the session, then run ``work`` as ``background`` says."""
    try:
        user: User | None = None
        if admin is not None:
            token = self.session_token
            user = await in_thread(functools.partial(accounts().user_for, token))
        if not steps:
            async with self:
                refused = None if admin is None else self._refusal(user, action, admin=admin)
                if refused is not None:
                    return refused
                try:
                    return await in_thread(functools.partial(work, self, *args, **kwargs))
                except (CleanupError, ValueError, TypeError) as exc:
                    return _failed(action, exc)
        async with self:
            refused = None if admin is None else self._refusal(user, action, admin=admin)
            if refused is not None:
                return refused
            running: Work = work(self, *args, **kwargs)
            done, result, step = _advance(running, action)
        while not done:
            try:
                value, error = await in_thread(step), None
            except Exception as exc:  # noqa: BLE001 - handed to the handler at its ``yield``
                value, error = None, exc
            async with self:
                done, result, step = _advance(running, action, value, error)
        return result
    except (CleanupError, ValueError, TypeError) as exc:  # the session check failed
        return _failed(action, exc)


def _advance(
    running: Work, action: str, value: Any = None, error: Exception | None = None
) -> tuple[bool, Any, Step]:
    """Run the handler to its next blocking call, handing it ``value`` (or raising ``error``)
    where it waits: ``(finished, what it returned, the next call)``."""
    try:
        step: object = running.send(value) if error is None else running.throw(error)
    except StopIteration as finished:
        return True, finished.value, _nothing
    except (CleanupError, ValueError, TypeError) as exc:
        return True, _failed(action, exc), _nothing
    if not callable(step):
        running.close()
        raise TypeError(f"{action}: a handler must yield a function to run, not {step!r}")
    return False, None, step


def _nothing() -> None:
    return None


def _failed(action: str, exc: Exception) -> Any:
    # A locked or unreachable database is an error toast too, and the next event tries again
    # (no restart needed).
    log.warning("%s failed: %s", action, exc)
    return rx.toast.error(str(exc), duration=10000)


class AuthState(rx.State):
    """The browser's session token (a cookie) and who it belongs to."""

    # The cookie outlives no session: the server refuses an expired token anyway.
    session_token: str = rx.Cookie("", name="cleanup_session", same_site="strict")
    username: rx.Field[str] = rx.field("")
    role: rx.Field[str] = rx.field("")
    # The actions of this tab that are running (``State.handler``, see ``background``): their
    # buttons show a spinner, and a second click while one runs is ignored on the server.
    busy: rx.Field[list[str]] = rx.field(default_factory=list[str])

    @rx.var
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @rx.var
    def signed_in(self) -> bool:
        return self.username != ""

    def _authorize(self, action: str, *, admin: bool) -> User | None:
        """The session's user if it may do ``action``; ``None`` (logged) otherwise."""
        return self._admit(accounts().user_for(self.session_token), action, admin=admin)

    def _admit(self, user: User | None, action: str, *, admin: bool) -> User | None:
        """``user`` (the session's, as read from the database) if it may do ``action``;
        ``None`` (logged) otherwise."""
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
        # (By name: in a background event ``self`` is a proxy, whose type is the proxy's.)
        while tab.get_full_name() != AuthState.get_full_name():
            tab = tab.parent_state
        tab.reset()

    def _refusal(self, user: User | None, action: str, *, admin: bool) -> Any:
        """What the browser gets when ``user`` may not do ``action`` (``None`` if it may): a
        viewer is told so; a tab without a valid session is emptied and sent to log in."""
        if self._admit(user, action, admin=admin) is not None:
            return None
        if self.username:  # signed in, but a viewer
            return rx.toast.error("Your account can only view; ask an admin to do this.")
        self._forget_tab()
        return rx.redirect(f"{routes.LOGIN}?next={quote(self._here(), safe='/')}")

    @background("log out", admin=None)
    def log_out(self) -> Any:
        token = self.session_token
        yield lambda: accounts().log_out(token)
        if self.username:
            log.info("dashboard logout: %s", self.username)
        self._forget_tab()
        return rx.redirect(routes.LOGIN)


class ForgetEndedSessions(Middleware):
    """On a tab's hydrate (a reload, a reconnect) Reflex sends the socket everything the tab's
    state holds. Before that, this checks the session the tab last had (in a worker thread) and
    empties the tab if it is gone (logged out, expired, ended elsewhere) or cannot be checked:
    no page's runs or history reach a browser without a valid session. Added first, before
    Reflex's own hydrate middleware."""

    async def preprocess(self, app: Any, state: BaseState, event: Event) -> None:
        if event.name not in _hydrate_events(state):
            return
        tab = await state.get_state(AuthState)
        # The token the browser holds now (its cookie, sent with the hydrate), else the tab's.
        token = _cookie_token(event.payload.get("vars")) or tab.session_token
        try:
            user = await in_thread(functools.partial(accounts().user_for, token))
        except CleanupError as exc:  # cannot vouch for the session: show nothing
            log.warning("emptied a tab on reload: the session could not be checked: %s", exc)
            user = None
        if user is None:
            if tab.username:
                log.info("emptied a tab on reload: its session ended (%s)", tab.username)
            for page in _page_states(AuthState):  # loaded, so reset() reaches each
                await state.get_state(page)
            tab.reset()


def _hydrate_events(state: BaseState) -> set[str]:
    """The events that send a tab its whole state: ``hydrate``, and ``hydrate_and_load``
    (sent on every socket (re)connect)."""
    hydrate = get_hydrate_event(state)
    return {hydrate, hydrate.rpartition(".")[0] + ".hydrate_and_load"}


def _cookie_token(client_vars: object) -> str:
    """The session cookie among the browser's storage values a hydrate carries, or ""."""
    if not isinstance(client_vars, dict):
        return ""
    for name, value in client_vars.items():
        state_name, _, var_name = str(name).rpartition(".")
        if (
            state_name == AuthState.get_full_name()
            and var_name.removesuffix(FIELD_MARKER) == "session_token"
            and isinstance(value, str)
        ):
            return value
    return ""


def _page_states(cls: type[BaseState]) -> list[type[BaseState]]:
    found: list[type[BaseState]] = []
    for sub in cls.get_substates():
        found += [sub, *_page_states(sub)]
    return found


Guarded = TypeVar("Guarded", bound="AuthState")


def guarded(
    action: str, *, admin: bool
) -> Callable[[Callable[[Guarded, *Args], Any]], Callable[[Guarded, *Args], Any]]:
    """The older spelling, ``@event @guarded(action, admin=...)`` over a plain handler: the same
    as ``@background(action, admin=admin, busy=admin)``, so such a handler also runs off the
    event loop (whole, in a worker thread, holding its tab's state), and an admin action ignores
    a second click while it runs. Write new handlers with ``background`` and ``yield`` their
    blocking calls."""

    def decorate(handler: Callable[[Guarded, *Args], Any]) -> Callable[[Guarded, *Args], Any]:
        made = background(action, admin=admin, busy=admin)(handler)
        return cast("Callable[[Guarded, *Args], Any]", made)

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
