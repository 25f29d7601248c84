"""History: the audit trail, filtered and paged on the server, with Revert on clean-ups."""

from __future__ import annotations

from typing import Any

import reflex as rx

from cleanup_core.display import safe_text
from cleanup_core.numbers import whole_number
from cleanup_core.reports import EventRow, event_rows, portal_names
from cleanup_core.vocabulary import AUDIT_ACTION_LABELS, AuditAction
from tender_dashboard_reflex.backend import service
from tender_dashboard_reflex.state.auth import (
    AuthState,
    event,
    guarded,
    page_argument,
    run_id_argument,
)

ALL = "all"
ACTIONS = [ALL, *(action.value for action in AuditAction)]
# The Action filter's choices, (value, label), from the vocabulary: every audit action in words.
ACTION_CHOICES = [(ALL, "All actions"), *((a.value, AUDIT_ACTION_LABELS[a]) for a in AuditAction)]
PAGE_SIZE = 50


class HistoryState(AuthState):
    events: rx.Field[list[EventRow]] = rx.field(default_factory=list[EventRow])
    total: rx.Field[int] = rx.field(0)
    page: rx.Field[int] = rx.field(1)
    portal_filter: rx.Field[str] = rx.field(ALL)
    action_filter: rx.Field[str] = rx.field(ALL)
    run_filter: rx.Field[str] = rx.field("")
    portals: rx.Field[list[str]] = rx.field(default_factory=list[str])
    _portal_names: dict[str, str] = {}  # as shown in the filter -> as stored
    revert_run_id: rx.Field[int] = rx.field(0)
    revert_dialog_open: rx.Field[bool] = rx.field(False)

    @rx.var
    def page_count(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))

    def _fetch(self) -> None:
        run = self.run_filter.strip()
        result = service().history(
            portal_name=None
            if self.portal_filter == ALL
            else self._portal_names.get(self.portal_filter, self.portal_filter),
            run_id=whole_number(run),
            actions=None if self.action_filter == ALL else [self.action_filter],
            limit=PAGE_SIZE,
            offset=(self.page - 1) * PAGE_SIZE,
        )
        self.events, self.total = event_rows(service(), list(result.events)), result.total

    @event
    @guarded("open the history", admin=False)
    def load(self) -> Any:
        self._portal_names = portal_names(service())
        self.portals = [ALL, *self._portal_names]
        self._fetch()

    @event
    @guarded("filter the history", admin=False)
    def set_portal_filter(self, value: str) -> Any:
        self.portal_filter, self.page = str(value)[:500], 1
        self._fetch()

    @event
    @guarded("filter the history", admin=False)
    def set_action_filter(self, value: str) -> Any:
        self.action_filter, self.page = (value if value in ACTIONS else ALL), 1
        self._fetch()

    @event
    @guarded("filter the history", admin=False)
    def set_run_filter(self, value: str) -> Any:
        self.run_filter, self.page = str(value)[:19], 1
        self._fetch()

    @event
    @guarded("page through the history", admin=False)
    def go_to_page(self, page: int) -> Any:
        self.page = page_argument(page, self.page_count)
        self._fetch()

    @event
    @guarded("revert a clean-up", admin=True)
    def ask_revert(self, run_id: int) -> Any:
        self.revert_run_id = run_id_argument(run_id)
        self.revert_dialog_open = True

    @event
    def close_revert_dialog(self) -> None:
        self.revert_dialog_open = False

    @event
    @guarded("revert a clean-up", admin=True)
    def confirm_revert(self) -> Any:
        run_id = self.revert_run_id
        self.revert_dialog_open = False
        result = service().revert(run_id, actor=self._actor())
        self._fetch()
        if result.reverted:
            return rx.toast.success(result.message)
        return rx.toast.error(safe_text(result.message))
