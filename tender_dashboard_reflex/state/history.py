"""History: the audit trail, filtered and paged on the server, with Revert on clean-ups."""

from __future__ import annotations

import reflex as rx

from cleanup_core.display import safe_text
from cleanup_core.numbers import whole_number
from cleanup_core.reports import EventRow, event_rows, portal_names
from cleanup_core.vocabulary import AUDIT_ACTION_LABELS, AuditAction
from tender_dashboard_reflex.backend import changing, service, shared_status_counts
from tender_dashboard_reflex.state.auth import (
    AuthState,
    Work,
    background,
    event,
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

    def _fetch(self) -> Work:
        run = self.run_filter.strip()
        portal = (
            None
            if self.portal_filter == ALL
            else self._portal_names.get(self.portal_filter, self.portal_filter)
        )
        actions = None if self.action_filter == ALL else [self.action_filter]
        offset = (self.page - 1) * PAGE_SIZE

        def read() -> tuple[list[EventRow], int]:
            result = service().history(
                portal_name=portal,
                run_id=whole_number(run),
                actions=actions,
                limit=PAGE_SIZE,
                offset=offset,
            )
            return event_rows(service(), list(result.events)), result.total

        self.events, self.total = yield read

    @background("open the history", admin=False)
    def load(self) -> Work:
        self._portal_names = yield lambda: portal_names(service(), shared_status_counts())
        self.portals = [ALL, *self._portal_names]
        yield from self._fetch()

    @background("filter the history", admin=False)
    def set_portal_filter(self, value: str) -> Work:
        self.portal_filter, self.page = str(value)[:500], 1
        yield from self._fetch()

    @background("filter the history", admin=False)
    def set_action_filter(self, value: str) -> Work:
        self.action_filter, self.page = (value if value in ACTIONS else ALL), 1
        yield from self._fetch()

    @background("filter the history", admin=False)
    def set_run_filter(self, value: str) -> Work:
        self.run_filter, self.page = str(value)[:19], 1
        yield from self._fetch()

    @background("page through the history", admin=False)
    def go_to_page(self, page: int) -> Work:
        self.page = page_argument(page, self.page_count)
        yield from self._fetch()

    @background("revert a clean-up", admin=True)
    def ask_revert(self, run_id: int) -> Work:
        self.revert_run_id = run_id_argument(run_id)
        self.revert_dialog_open = True
        yield from ()

    @event
    def close_revert_dialog(self) -> None:
        self.revert_dialog_open = False

    @background("revert a clean-up", admin=True, busy=True)
    def confirm_revert(self) -> Work:
        run_id, actor = self.revert_run_id, self._actor()
        self.revert_dialog_open = False
        result = yield changing(lambda: service().revert(run_id, actor=actor))
        yield from self._fetch()
        if result.reverted:
            return rx.toast.success(result.message)
        return rx.toast.error(safe_text(result.message))
