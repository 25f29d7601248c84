"""Every dashboard handler that touches the database, the file system or scrypt runs off the
backend's event loop (a Reflex background event, see ``state/auth.background``), so one tab's
slow call never freezes the others. Read from the state classes: a new synchronous handler that
reaches the core fails here."""

from __future__ import annotations

import inspect
import re

from reflex.event import EventHandler

from tender_dashboard_reflex.state.auth import AuthState
from tests.dashboard.test_state_handlers import BUILT_IN, event_handlers

# What an ordinary (synchronous, on the event loop) handler may do: change this tab's own vars.
ON_THE_LOOP = {
    ("OverviewState", "set_auto_refresh"),
    ("RunsState", "set_auto_refresh"),
    ("StuckState", "set_auto_refresh"),
    ("PortalsState", "set_auto_refresh"),
    ("StuckState", "close_clean_dialog"),
    ("StuckState", "close_force_dialog"),
    ("StuckState", "set_force_typed"),
    ("HistoryState", "close_revert_dialog"),
    ("StuckState", "dismiss_result"),
    ("RunDetailState", "close_force_dialog"),
    ("RunDetailState", "set_force_typed"),
    ("RunDetailState", "close_revert_dialog"),
}
# Calls that block: the core's service and accounts, files, processes, sleeping.
BLOCKING = re.compile(r"\b(service|accounts|open|spawn|sleep|subprocess|Path)\s*\(|\._scan\(")


def handler(cls: type, name: str) -> EventHandler:
    found = cls.event_handlers[name]
    assert isinstance(found, EventHandler)
    return found


def test_every_handler_that_reaches_the_core_is_a_background_event() -> None:
    handlers = event_handlers()
    assert len(handlers) > 30  # the walk found the dashboard's states
    on_the_loop = {
        (cls.__name__, name) for cls, name in handlers if not handler(cls, name).is_background
    }
    assert on_the_loop == ON_THE_LOOP, (
        "make these handlers background events (state/auth.background): "
        f"{sorted(on_the_loop - ON_THE_LOOP)}"
    )


def test_the_handlers_left_on_the_loop_call_nothing_that_blocks() -> None:
    """The short list above is honest: their code only sets this tab's vars."""
    for cls, name in event_handlers():
        if (cls.__name__, name) in ON_THE_LOOP:
            source = inspect.getsource(handler(cls, name).fn)
            assert not BLOCKING.search(source), f"{cls.__name__}.{name} blocks: {source}"


def test_background_handlers_are_async_and_keep_their_arguments() -> None:
    """Reflex needs ``async`` for a background event, and reads the arguments' names and types
    from the function (the decorator keeps the handler's own signature)."""
    for cls, name in event_handlers():
        found = handler(cls, name)
        if found.is_background:
            assert inspect.iscoroutinefunction(found.fn), f"{cls.__name__}.{name}"
            assert (
                inspect.signature(found.fn).parameters.keys()
                == inspect.signature(found.fn.__wrapped__).parameters.keys()
            )
    assert "setvar" in BUILT_IN and AuthState.event_handlers["log_out"].is_background
