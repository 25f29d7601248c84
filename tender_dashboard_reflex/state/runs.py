"""Runs: every run, paged, sorted and filtered on the server; and one run's detail."""

from __future__ import annotations

from typing import Any

import reflex as rx

from cleanup_core.numbers import whole_number
from cleanup_core.reports import (
    PAGE_SIZES,
    EventRow,
    LaunchRow,
    RunDetail,
    RunRow,
    RunsPage,
    portal_names,
    run_detail,
    runs_page,
)
from cleanup_core.vocabulary import RunStatus
from tender_dashboard_reflex.backend import service
from tender_dashboard_reflex.state.auth import AuthState, event, guarded, page_argument

ALL = "all"
STATUS_CHOICES = [ALL, *(status.value for status in RunStatus)]


class RunsState(AuthState):
    rows: rx.Field[list[RunRow]] = rx.field(default_factory=list[RunRow])
    total: rx.Field[int] = rx.field(0)
    page: rx.Field[int] = rx.field(1)
    page_size: rx.Field[int] = rx.field(25)
    sort: rx.Field[str] = rx.field("id")
    descending: rx.Field[bool] = rx.field(True)
    status_filter: rx.Field[str] = rx.field(ALL)
    portal_filter: rx.Field[str] = rx.field(ALL)
    search: rx.Field[str] = rx.field("")
    portals: rx.Field[list[str]] = rx.field(default_factory=list[str])
    _portal_names: dict[str, str] = {}  # as shown in the filter -> as stored
    auto_refresh: rx.Field[bool] = rx.field(False)

    @rx.var
    def page_count(self) -> int:
        return max(1, -(-self.total // self.page_size))

    def _fetch(self) -> None:
        portal = (
            None
            if self.portal_filter == ALL
            else self._portal_names.get(self.portal_filter, self.portal_filter)
        )

        def page(number: int) -> RunsPage:
            return runs_page(
                service(),
                page=number,
                page_size=self.page_size,
                sort=self.sort,
                descending=self.descending,
                status=None if self.status_filter == ALL else self.status_filter,
                portal=portal,
                search=self.search,
            )

        result = page(self.page)
        if not result.rows and self.page > 1 and result.total:  # the page emptied meanwhile
            self.page = result.page_count
            result = page(self.page)
        self.rows, self.total = result.rows, result.total

    @event
    @guarded("open the runs page", admin=False)
    def load(self) -> Any:
        self._portal_names = portal_names(service())
        self.portals = [ALL, *self._portal_names]
        self._fetch()

    @event
    @guarded("refresh the runs page", admin=False)
    def refresh(self) -> Any:
        self._fetch()

    @event
    @guarded("sort runs", admin=False)
    def sort_by(self, column: str) -> Any:
        previous = (self.sort, self.descending, self.page)
        if column == self.sort:
            self.descending = not self.descending
        else:
            self.sort, self.descending = column, column in ("id", "started_at", "completed_at")
        self.page = 1
        try:
            self._fetch()
        except ValueError:  # not a sortable column: keep the last good order
            self.sort, self.descending, self.page = previous
            raise

    @event
    @guarded("filter runs", admin=False)
    def set_status_filter(self, value: str) -> Any:
        self.status_filter = value if value in STATUS_CHOICES else ALL
        self.page = 1
        self._fetch()

    @event
    @guarded("filter runs", admin=False)
    def set_portal_filter(self, value: str) -> Any:
        self.portal_filter = str(value)[:500]
        self.page = 1
        self._fetch()

    @event
    @guarded("search runs", admin=False)
    def set_search(self, value: str) -> Any:
        self.search = str(value)[:200]
        self.page = 1
        self._fetch()

    @event
    @guarded("page through runs", admin=False)
    def set_page_size(self, value: str) -> Any:
        size = whole_number(str(value)) or 25
        self.page_size = size if size in PAGE_SIZES else 25
        self.page = 1
        self._fetch()

    @event
    @guarded("page through runs", admin=False)
    def go_to_page(self, page: int) -> Any:
        self.page = page_argument(page, self.page_count)
        self._fetch()

    @event
    def set_auto_refresh(self, enabled: bool) -> None:
        self.auto_refresh = bool(enabled)


def _no_run() -> RunRow:
    """What the run detail holds before a run is loaded."""
    return RunRow(0, "", "", "", "", "", "", "", "", "")


class RunDetailState(AuthState):
    found: rx.Field[bool] = rx.field(False)
    run: rx.Field[RunRow] = rx.field(default_factory=_no_run)
    attempt: rx.Field[str] = rx.field("")
    last_progress: rx.Field[str] = rx.field("")
    checkpoint: rx.Field[str] = rx.field("")
    reasons: rx.Field[list[str]] = rx.field(default_factory=list[str])
    events: rx.Field[list[EventRow]] = rx.field(default_factory=list[EventRow])
    launch: rx.Field[LaunchRow] = rx.field(default_factory=LaunchRow)  # its latest launch

    @event
    @guarded("open a run", admin=False)
    def load(self) -> Any:
        raw = self.router.url.query_parameters.get("id", "")
        run_id = whole_number(raw)
        detail = run_detail(service(), run_id) if run_id is not None else None
        self.found = detail is not None
        if detail is None:
            self.events, self.reasons, self.launch = [], [], LaunchRow()
            return rx.toast.error(f"No run with id {raw[:20]!r}.")
        self._show(detail)
        return None

    @event
    @guarded("open a run", admin=False)
    def follow(self) -> None:
        """Every few seconds while the page shows a running run: read it again, quietly.
        Nothing when the page has moved on to another run (its ``load`` reads that one)."""
        run_id = whole_number(self.router.url.query_parameters.get("id", ""))
        if not self.found or run_id is None or run_id != self.run.id:
            return
        detail = run_detail(service(), run_id)
        if detail is not None:
            self._show(detail)

    def _show(self, detail: RunDetail) -> None:
        self.run, self.attempt = detail.run, detail.attempt
        self.last_progress, self.checkpoint = detail.last_progress, detail.checkpoint
        self.reasons, self.events = detail.reasons, detail.events
        self.launch = detail.launch
