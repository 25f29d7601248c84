"""Runs: every run, paged, sorted and filtered on the server; and one run's detail."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import reflex as rx

from cleanup_core.display import safe_text
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
from cleanup_core.vocabulary import FINISHED, RunState, RunStatus
from tender_dashboard_reflex.backend import service
from tender_dashboard_reflex.state.auth import (
    AuthState,
    event,
    guarded,
    page_argument,
)

ALL = "all"
STATUS_CHOICES = [ALL, *(status.value for status in RunStatus)]
# How a run is judged now: a running run's state (the service's scan), or "finished".
STATE_CHOICES = [ALL, *(state.value for state in RunState), FINISHED]


class RunsState(AuthState):
    rows: rx.Field[list[RunRow]] = rx.field(default_factory=list[RunRow])
    total: rx.Field[int] = rx.field(0)
    page: rx.Field[int] = rx.field(1)
    page_size: rx.Field[int] = rx.field(25)
    sort: rx.Field[str] = rx.field("id")
    descending: rx.Field[bool] = rx.field(True)
    status_filter: rx.Field[str] = rx.field(ALL)
    state_filter: rx.Field[str] = rx.field(ALL)
    portal_filter: rx.Field[str] = rx.field(ALL)
    search: rx.Field[str] = rx.field("")
    back_query: rx.Field[str] = rx.field("")  # the filters, for run pages' way back
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
                state=None if self.state_filter == ALL else self.state_filter,
            )

        result = page(self.page)
        if not result.rows and self.page > 1 and result.total:  # the page emptied meanwhile
            self.page = result.page_count
            result = page(self.page)
        self.rows, self.total = result.rows, result.total
        self.back_query = self._query()

    def _query(self) -> str:
        """The list's filters as a query string, for a run page's way back to this list."""
        values = {
            "state": self.state_filter,
            "status": self.status_filter,
            "portal": self.portal_filter,
            "q": self.search,
        }
        return urlencode({k: v for k, v in values.items() if v not in (ALL, "")})

    def _read_query(self) -> None:
        """Filters given in the address (a run page's "back to Runs" link)."""
        query = self.router.url.query_parameters
        state, status = query.get("state", ALL), query.get("status", ALL)
        self.state_filter = state if state in STATE_CHOICES else ALL
        self.status_filter = status if status in STATUS_CHOICES else ALL
        portal = query.get("portal", ALL)[:500]
        self.portal_filter = portal if portal in self._portal_names else ALL
        self.search = query.get("q", "")[:200]

    @event
    @guarded("open the runs page", admin=False)
    def load(self) -> Any:
        self._portal_names = portal_names(service())
        self.portals = [ALL, *self._portal_names]
        if self.router.url.query_parameters:
            self._read_query()
            self.page = 1
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
    def set_state_filter(self, value: str) -> Any:
        self.state_filter = value if value in STATE_CHOICES else ALL
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
    stalled: rx.Field[str] = rx.field("")  # an alive run stuck in one department: where, how long
    launch: rx.Field[LaunchRow] = rx.field(default_factory=LaunchRow)  # its latest launch
    # What the page offers (an admin's buttons), from the run's judged state and its events.
    resume_command_set: rx.Field[bool] = rx.field(False)
    revertible: rx.Field[bool] = rx.field(False)
    resumable_by_hand: rx.Field[bool] = rx.field(False)
    force_dialog_open: rx.Field[bool] = rx.field(False)
    force_run_id: rx.Field[int] = rx.field(0)
    force_typed: rx.Field[str] = rx.field("")
    revert_dialog_open: rx.Field[bool] = rx.field(False)

    def _open(self, run_id: int | None, raw: str) -> Any:
        detail = run_detail(service(), run_id) if run_id is not None else None
        self.found = detail is not None
        if detail is None:
            self.events, self.reasons, self.launch = [], [], LaunchRow()
            self.stalled = ""
            self.resume_command_set = self.revertible = self.resumable_by_hand = False
            return rx.toast.error(f"No run with id {raw[:20]!r}.")
        self._show(detail)
        return None

    def _show(self, detail: RunDetail) -> None:
        self.run, self.attempt = detail.run, detail.attempt
        self.last_progress, self.checkpoint = detail.last_progress, detail.checkpoint
        self.reasons, self.events = detail.reasons, detail.events
        self.launch, self.stalled = detail.launch, detail.stalled
        self.resume_command_set, self.revertible = detail.resume_command_set, detail.revertible
        self.resumable_by_hand = detail.resumable_by_hand

    def _reload(self) -> None:
        """Show the run again after an action changed it."""
        self._open(self.run.id, str(self.run.id))

    def _shown_run(self) -> int:
        """The run this page shows: actions act on it (never on an id the browser sends)."""
        if not self.found or self.run.id <= 0:
            raise ValueError("Open a run first.")
        return self.run.id

    @event
    @guarded("open a run", admin=False)
    def load(self) -> Any:
        raw = self.router.url.query_parameters.get("id", "")
        self.force_dialog_open = self.revert_dialog_open = False
        return self._open(whole_number(raw), raw)

    @event
    @guarded("resume a run", admin=True)
    def resume(self) -> Any:
        launched = service().launch_resume(self._shown_run(), actor=self._actor())
        self._reload()
        return rx.toast.success(launched.message, duration=10000)

    @event
    @guarded("clean up a run", admin=True)
    def cleanup(self) -> Any:
        run_id = self._shown_run()
        result = service().cleanup_runs([run_id], actor=self._actor())
        self._reload()
        if result.cleaned:
            return rx.toast.success(f"Cleaned up run {run_id}; revert it here or in History.")
        return rx.toast.warning(f"Run {run_id} was left alone: {result.left_alone[run_id]}")

    @event
    @guarded("force a clean-up", admin=True)
    def open_force_dialog(self) -> Any:
        self.force_run_id = self._shown_run()
        self.force_typed = ""
        self.force_dialog_open = True

    @event
    def close_force_dialog(self) -> None:
        self.force_dialog_open = False
        self.force_typed = ""

    @event
    def set_force_typed(self, value: str) -> None:
        self.force_typed = str(value)[:20]

    @event
    @guarded("force a clean-up", admin=True)
    def confirm_force(self) -> Any:
        run_id = self.force_run_id
        if run_id <= 0 or run_id != self.run.id:
            raise ValueError("Open the force clean-up dialog of this run first.")
        if self.force_typed.strip() != str(run_id):
            return rx.toast.error(f"Type the run id {run_id} to confirm the forced clean-up.")
        self.force_dialog_open = False
        self.force_typed = ""
        result = service().cleanup_runs([run_id], actor=self._actor(), force=True)
        self._reload()
        if result.cleaned:
            return rx.toast.success(f"Run {run_id} was cleaned up (forced); revert it here.")
        return rx.toast.warning(f"Run {run_id} was left alone: {result.left_alone[run_id]}")

    @event
    @guarded("revert a clean-up", admin=True)
    def ask_revert(self) -> Any:
        self._shown_run()
        self.revert_dialog_open = True

    @event
    def close_revert_dialog(self) -> None:
        self.revert_dialog_open = False

    @event
    @guarded("revert a clean-up", admin=True)
    def confirm_revert(self) -> Any:
        if not self.revert_dialog_open:
            raise ValueError("Open the revert dialog of this run first.")
        self.revert_dialog_open = False
        result = service().revert(self._shown_run(), actor=self._actor())
        self._reload()
        if result.reverted:
            return rx.toast.success(result.message)
        return rx.toast.error(safe_text(result.message))

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
