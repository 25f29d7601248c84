"""Runs: every run, paged, sorted and filtered on the server; and one run's detail."""

from __future__ import annotations

import reflex as rx

from cleanup_core.numbers import whole_number
from cleanup_core.reports import (
    PAGE_SIZES,
    EventRow,
    LaunchRow,
    RunRow,
    RunsPage,
    portal_names,
    run_detail,
    runs_page,
)
from cleanup_core.vocabulary import RunStatus
from tender_dashboard_reflex.backend import service, shared_status_counts
from tender_dashboard_reflex.state.auth import AuthState, Work, background, event, page_argument

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

    def _fetch(self) -> Work:
        portal = (
            None
            if self.portal_filter == ALL
            else self._portal_names.get(self.portal_filter, self.portal_filter)
        )
        page_size, sort, descending = self.page_size, self.sort, self.descending
        status = None if self.status_filter == ALL else self.status_filter
        search, number = self.search, self.page

        def page(number: int) -> RunsPage:
            return runs_page(
                service(),
                page=number,
                page_size=page_size,
                sort=sort,
                descending=descending,
                status=status,
                portal=portal,
                search=search,
            )

        def read() -> RunsPage:
            result = page(number)
            if not result.rows and number > 1 and result.total:  # the page emptied meanwhile
                result = page(result.page_count)
            return result

        result: RunsPage = yield read
        self.page, self.rows, self.total = result.page, result.rows, result.total

    @background("open the runs page", admin=False)
    def load(self) -> Work:
        self._portal_names = yield lambda: portal_names(service(), shared_status_counts())
        self.portals = [ALL, *self._portal_names]
        yield from self._fetch()

    @background("refresh the runs page", admin=False)
    def refresh(self) -> Work:
        yield from self._fetch()

    @background("sort runs", admin=False)
    def sort_by(self, column: str) -> Work:
        previous = (self.sort, self.descending, self.page)
        if column == self.sort:
            self.descending = not self.descending
        else:
            self.sort, self.descending = column, column in ("id", "started_at", "completed_at")
        self.page = 1
        try:
            yield from self._fetch()
        except ValueError:  # not a sortable column: keep the last good order
            self.sort, self.descending, self.page = previous
            raise

    @background("filter runs", admin=False)
    def set_status_filter(self, value: str) -> Work:
        self.status_filter = value if value in STATUS_CHOICES else ALL
        self.page = 1
        yield from self._fetch()

    @background("filter runs", admin=False)
    def set_portal_filter(self, value: str) -> Work:
        self.portal_filter = str(value)[:500]
        self.page = 1
        yield from self._fetch()

    @background("search runs", admin=False)
    def set_search(self, value: str) -> Work:
        self.search = str(value)[:200]
        self.page = 1
        yield from self._fetch()

    @background("page through runs", admin=False)
    def set_page_size(self, value: str) -> Work:
        size = whole_number(str(value)) or 25
        self.page_size = size if size in PAGE_SIZES else 25
        self.page = 1
        yield from self._fetch()

    @background("page through runs", admin=False)
    def go_to_page(self, page: int) -> Work:
        self.page = page_argument(page, self.page_count)
        yield from self._fetch()

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

    @background("open a run", admin=False)
    def load(self) -> Work:
        raw = self.router.url.query_parameters.get("id", "")
        run_id = whole_number(raw)
        detail = None
        if run_id is not None:
            detail = yield lambda: run_detail(service(), run_id)
        self.found = detail is not None
        if detail is None:
            self.events, self.reasons, self.launch = [], [], LaunchRow()
            return rx.toast.error(f"No run with id {raw[:20]!r}.")
        self.run, self.attempt = detail.run, detail.attempt
        self.last_progress, self.checkpoint = detail.last_progress, detail.checkpoint
        self.reasons, self.events = detail.reasons, detail.events
        self.launch = detail.launch
        return None
