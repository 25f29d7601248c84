"""Helpers for the dashboard's state handler tests: seeding, inspecting the database, building
a state tree as Reflex does, and reading what a handler returned (a redirect or a toast).

What a handler returns is an ``EventSpec`` for the browser; what it means is read where the
handler made it: ``watch_effects`` records every ``rx.toast.<level>(message)`` and
``rx.redirect(path)`` call (Reflex's public API) with the spec it returned, and ``toast`` /
``redirect_target`` find a returned spec among them by identity."""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import reflex as rx
from reflex.event import EventHandler
from reflex.istate.data import ReflexURL, SessionData, URLData
from sqlalchemy import func, select

from cleanup_core import CleanupService
from cleanup_core.accounts import hash_password
from cleanup_core.models import DashboardSession, Run, RunEvent
from cleanup_core.service import AuditEvent
from tender_dashboard_reflex import backend
from tests.conftest import Runs
from tests.helpers.live_fleet import hours_ago

RECORD_ARGV = Path(__file__).parents[1] / "helpers" / "record_argv.py"
PASSWORD = "correct horse battery staple"
ADMIN_NAME = "alice"
VIEWER_NAME = "victor"
TIMEZONE = "Asia/Kolkata"  # not the machine's zone, so a zone mix-up would show


@cache
def password_hash() -> str:
    """One real scrypt hash for every test's accounts (hashing costs ~0.1 s)."""
    return hash_password(PASSWORD)


class LiveRuns(Runs):
    """Run rows written as a scraper would, aged against the real clock."""

    def add(self, portal_name: str = "Assam Tenders", *, age_hours: float = 48, **values: Any):
        values.setdefault("started_at", hours_ago(age_hours))
        return super().add(portal_name, **values)


@dataclass
class Dash:
    """The database the dashboard under test reads, and handles to inspect it."""

    service: CleanupService
    runs: LiveRuns
    checkpoint_dir: Path
    launch_record: Path

    def token(self, username: str = ADMIN_NAME, *, expired: bool = False) -> str:
        """A real session token from a real login (``expired``: one that ran out an hour ago)."""
        accounts = backend.accounts()
        now = None
        if expired:
            now = datetime.now(UTC) - accounts.session_ttl - timedelta(hours=1)
        login = accounts.log_in(username, PASSWORD, now=now)
        assert login is not None
        return login.token

    def events(self, run_id: int | None = None, action: str | None = None) -> list[AuditEvent]:
        found = self.service.history(run_id=run_id, limit=1000).events
        return [e for e in found if action is None or e.action == action]

    def status(self, run_id: int) -> str | None:
        row = self.runs.get(run_id)
        return None if row is None else row["status"]

    def session_count(self) -> int:
        with self.service.db.read() as conn:
            return conn.execute(select(func.count()).select_from(DashboardSession)).scalar_one()

    def snapshot(self) -> dict[str, Any]:
        """Every run row and audit event: equal before and after means nothing changed."""
        with self.service.db.read() as conn:
            runs = [dict(r._mapping) for r in conn.execute(select(Run).order_by(Run.id))]
            events = [
                dict(r._mapping) for r in conn.execute(select(RunEvent).order_by(RunEvent.id))
            ]
        return {"runs": runs, "events": events}

    def launched(self, timeout: float = 20.0) -> dict[str, Any]:
        """What the launched test command recorded (it runs in the background)."""
        deadline = time.monotonic() + timeout
        while not self.launch_record.exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"the launched command wrote no {self.launch_record}")
            time.sleep(0.05)
        return json.loads(self.launch_record.read_text())


def make_state(cls: type[rx.State], token: str = "", path: str = "/") -> Any:
    """``cls`` inside a whole state tree, as Reflex builds it for one browser tab on ``path``,
    its handlers callable as the backend calls them (see ``Handlers``)."""
    root = rx.State(_reflex_internal_init=True)
    root.rx_router_url = URLData.from_url(ReflexURL(f"http://localhost:3000{path}"))
    root.rx_router_session = SessionData(client_token=secrets.token_hex(8))  # its own tab
    state = root.get_substate(cls.get_full_name().split("."))
    state.session_token = token
    return Handlers(state)


def run_handler(state: rx.State, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call the handler ``name`` of ``state`` as the Reflex backend does and return what it
    returned: an ordinary handler directly; a background one (``async``) to its end on an event
    loop, its worker-thread calls in real threads (a plain state's ``async with self`` is a
    no-op, as nothing else touches this tree meanwhile)."""
    handler = getattr(type(state), name)
    if not isinstance(handler, EventHandler):
        raise AttributeError(f"{type(state).__name__}.{name} is not an event handler")
    if not handler.is_background:
        return getattr(state, name)(*args, **kwargs)
    return asyncio.run(handler.fn(state, *args, **kwargs))


class Handlers:
    """A state whose event handlers are called as the backend calls them (``run_handler``);
    every other attribute is the state's own (read and written through)."""

    def __init__(self, state: rx.State):
        object.__setattr__(self, "state", state)

    def __getattr__(self, name: str) -> Any:
        state = object.__getattribute__(self, "state")
        if name in type(state).event_handlers or name in _inherited_handlers(type(state)):
            return functools.partial(run_handler, state, name)
        return getattr(state, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "state"), name, value)


def _inherited_handlers(cls: type[rx.State]) -> set[str]:
    names: set[str] = set()
    for base in cls.__mro__:
        names |= set(getattr(base, "event_handlers", {}) or {})
    return names


def forged_token() -> str:
    return secrets.token_urlsafe(32)


TOAST_LEVELS = ("success", "info", "warning", "error")
# (the spec a call returned, what it means): toasts as (level, message), redirects as the path
_toasts: list[tuple[Any, tuple[str, str]]] = []
_redirects: list[tuple[Any, str]] = []


def watch_effects(monkeypatch: Any) -> None:
    """Record every toast and redirect the handlers make, through Reflex's public API."""
    _toasts.clear()
    _redirects.clear()
    for level in TOAST_LEVELS:
        monkeypatch.setattr(rx.toast, level, _recording_toast(level, getattr(rx.toast, level)))
    real_redirect = rx.redirect

    def redirect(path: str, *args: Any, **kwargs: Any) -> Any:
        spec = real_redirect(path, *args, **kwargs)
        _redirects.append((spec, path))
        return spec

    monkeypatch.setattr(rx, "redirect", redirect)


def _recording_toast(level: str, real: Callable[..., Any]) -> Callable[..., Any]:
    def show(message: str = "", **kwargs: Any) -> Any:
        spec = real(message, **kwargs)
        _toasts.append((spec, (level, message)))
        return spec

    return show


def redirect_target(spec: Any) -> str | None:
    """Where an ``rx.redirect`` returned by a handler goes (``None`` if it is not one)."""
    return next((path for made, path in _redirects if made is spec), None)


def toast(spec: Any) -> tuple[str, str] | None:
    """``(level, message)`` of an ``rx.toast`` returned by a handler (``None`` if not one)."""
    return next((shown for made, shown in _toasts if made is spec), None)
