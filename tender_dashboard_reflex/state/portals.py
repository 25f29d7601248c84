"""Portals: each portal's newest run, its pre-scrape verdict, and the matching action."""

from __future__ import annotations

from typing import Any

import reflex as rx

from cleanup_core.display import safe_text
from cleanup_core.reports import PortalRow, portal_rows
from tender_dashboard_reflex.backend import service
from tender_dashboard_reflex.state.auth import AuthState, event, guarded, run_id_argument


class PortalsState(AuthState):
    rows: rx.Field[list[PortalRow]] = rx.field(default_factory=list[PortalRow])
    auto_refresh: rx.Field[bool] = rx.field(False)

    def _fetch(self) -> None:
        self.rows = portal_rows(service())

    @event
    @guarded("open the portals page", admin=False)
    def load(self) -> Any:
        self._fetch()

    @event
    @guarded("refresh the portals page", admin=False)
    def refresh(self) -> Any:
        self._fetch()

    @event
    def set_auto_refresh(self, enabled: bool) -> None:
        self.auto_refresh = bool(enabled)

    @event
    @guarded("resume a run", admin=True)
    def resume(self, run_id: int) -> Any:
        launched = service().launch_resume(run_id_argument(run_id), actor=self._actor())
        self._fetch()
        return rx.toast.success(launched.message, duration=10000)

    @event
    @guarded("start a scrape", admin=True)
    def start(self, portal: str) -> Any:
        launched = service().launch_start(str(portal), actor=self._actor())
        self._fetch()
        return rx.toast.success(launched.message, duration=10000)

    @event
    @guarded("clean up and start", admin=True)
    def clean_up_and_start(self, portal: str, run_ids: list[int]) -> Any:
        """Clean the portal's dead runs the row showed (compare-and-set, audited), then start a
        scrape; nothing is started when one of them changed since."""
        if not isinstance(run_ids, list):
            raise ValueError(f"Not a list of run ids: {str(run_ids)[:40]!r}.")
        ids = [run_id_argument(run_id) for run_id in run_ids]
        done = service().clean_up_and_start(str(portal), ids, actor=self._actor())
        self._fetch()
        if done.launched is None:
            return rx.toast.warning(safe_text(done.message), duration=15000)
        return rx.toast.success(safe_text(done.message), duration=10000)
