"""Portals: each portal's newest run, its pre-scrape verdict, and the matching action."""

from __future__ import annotations

from typing import Any

import reflex as rx

from cleanup_core.display import safe_text
from cleanup_core.launcher import launch_resume, launch_start
from cleanup_core.reports import PortalRow, portal_rows
from cleanup_core.vocabulary import Action
from tender_dashboard_reflex.backend import service
from tender_dashboard_reflex.state.auth import AuthState, guarded, run_id_argument


class PortalsState(AuthState):
    rows: list[PortalRow] = []
    auto_refresh: bool = False

    def _fetch(self) -> None:
        self.rows = portal_rows(service())

    @rx.event
    @guarded("open the portals page", admin=False)
    def load(self) -> Any:
        self._fetch()

    @rx.event
    @guarded("refresh the portals page", admin=False)
    def refresh(self) -> Any:
        self._fetch()

    @rx.event
    def set_auto_refresh(self, enabled: bool) -> None:
        self.auto_refresh = bool(enabled)

    @rx.event
    @guarded("resume a run", admin=True)
    def resume(self, run_id: int) -> Any:
        launched = launch_resume(service(), run_id_argument(run_id), actor=self._actor())
        self._fetch()
        return rx.toast.success(launched.message, duration=10000)

    @rx.event
    @guarded("start a scrape", admin=True)
    def start(self, portal: str) -> Any:
        launched = launch_start(service(), str(portal), actor=self._actor())
        self._fetch()
        return rx.toast.success(launched.message, duration=10000)

    @rx.event
    @guarded("clean up and start", admin=True)
    def clean_up_and_start(self, portal: str) -> Any:
        """Clean the portal's dead runs (compare-and-set, audited), then start a scrape."""
        portal = str(portal)
        check = service().check_portal(portal)
        if check.action is not Action.CLEANUP:
            self._fetch()
            return rx.toast.warning(
                safe_text(f"{portal}: the verdict changed to {check.action.value}: {check.reason}")
            )
        result = service().cleanup_runs(list(check.run_ids), actor=self._actor())
        launched = launch_start(service(), portal, actor=self._actor())
        self._fetch()
        return rx.toast.success(f"{result.message}. {launched.message}", duration=10000)
