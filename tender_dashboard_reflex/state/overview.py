"""The overview: counts, runs by status per portal, clean-ups per day."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

import reflex as rx

from cleanup_core.reports import STATUS_GROUPS, Overview, overview
from cleanup_core.service import MonitorStatus
from tender_dashboard_reflex.backend import service, shared_scan, shared_status_counts
from tender_dashboard_reflex.state.auth import AuthState, Work, background, event


def _read_overview() -> tuple[Overview, MonitorStatus, tzinfo]:
    return (
        overview(service(), summary=shared_scan(), counts=shared_status_counts()),
        service().monitor_status(),
        service().settings.timezone,
    )


class OverviewState(AuthState):
    running: rx.Field[int] = rx.field(0)
    alive: rx.Field[int] = rx.field(0)
    young: rx.Field[int] = rx.field(0)
    resumable: rx.Field[int] = rx.field(0)
    dead: rx.Field[int] = rx.field(0)
    attention: rx.Field[int] = rx.field(0)
    cleaned_last_7_days: rx.Field[int] = rx.field(0)
    by_portal: rx.Field[list[dict[str, Any]]] = rx.field(default_factory=list[dict[str, Any]])
    cleanups_by_day: rx.Field[list[dict[str, Any]]] = rx.field(default_factory=list[dict[str, Any]])
    checked_at: rx.Field[str] = rx.field("")
    monitor: rx.Field[str] = rx.field("")
    monitor_late: rx.Field[bool] = rx.field(False)
    loaded: rx.Field[bool] = rx.field(False)
    auto_refresh: rx.Field[bool] = rx.field(True)

    @background("open the overview", admin=False)
    def load(self) -> Work:
        data, status, timezone = yield _read_overview
        self.running, self.alive, self.young = data.running, data.alive, data.young
        self.resumable, self.dead, self.attention = data.resumable, data.dead, data.attention
        self.cleaned_last_7_days = data.cleaned_last_7_days
        self.by_portal = [
            {"portal": p.portal, **{group: getattr(p, group) for group in STATUS_GROUPS}}
            for p in data.by_portal
        ]
        self.cleanups_by_day = [{"day": d.day, "cleanups": d.count} for d in data.cleanups_by_day]
        self.checked_at = data.checked_at
        self.monitor = status.describe(timezone)
        self.monitor_late = status.late
        self.loaded = True

    @event
    def set_auto_refresh(self, enabled: bool) -> None:
        self.auto_refresh = bool(enabled)
