"""The overview: counts, runs by status per portal, clean-ups per day."""

from __future__ import annotations

from typing import Any

import reflex as rx

from cleanup_core.reports import STATUS_GROUPS, overview
from tender_dashboard_reflex.backend import service
from tender_dashboard_reflex.state.auth import AuthState, guarded


class OverviewState(AuthState):
    running: int = 0
    alive: int = 0
    young: int = 0
    resumable: int = 0
    dead: int = 0
    attention: int = 0
    cleaned_last_7_days: int = 0
    by_portal: list[dict[str, Any]] = []
    cleanups_by_day: list[dict[str, Any]] = []
    checked_at: str = ""
    monitor: str = ""
    monitor_late: bool = False
    loaded: bool = False
    auto_refresh: bool = False

    @rx.event
    @guarded("open the overview", admin=False)
    def load(self) -> Any:
        data = overview(service())
        self.running, self.alive, self.young = data.running, data.alive, data.young
        self.resumable, self.dead, self.attention = data.resumable, data.dead, data.attention
        self.cleaned_last_7_days = data.cleaned_last_7_days
        self.by_portal = [
            {"portal": p.portal, **{group: getattr(p, group) for group in STATUS_GROUPS}}
            for p in data.by_portal
        ]
        self.cleanups_by_day = [{"day": d.day, "cleanups": d.count} for d in data.cleanups_by_day]
        self.checked_at = data.checked_at
        status = service().monitor_status()
        self.monitor = status.describe(service().settings.timezone)
        self.monitor_late = status.late
        self.loaded = True

    @rx.event
    def set_auto_refresh(self, enabled: bool) -> None:
        self.auto_refresh = bool(enabled)
