"""Portals: each portal's newest run, its pre-scrape verdict, and the matching action."""

from __future__ import annotations

import reflex as rx

from cleanup_core.display import safe_text
from cleanup_core.reports import PortalRow, portal_rows
from tender_dashboard_reflex.backend import changing, service, shared_scan
from tender_dashboard_reflex.state.auth import AuthState, Work, background, event, run_id_argument


def _read_rows() -> list[PortalRow]:
    return portal_rows(service(), summary=shared_scan())


class PortalsState(AuthState):
    rows: rx.Field[list[PortalRow]] = rx.field(default_factory=list[PortalRow])
    auto_refresh: rx.Field[bool] = rx.field(True)

    def _fetch(self) -> Work:
        self.rows = yield _read_rows

    @background("open the portals page", admin=False)
    def load(self) -> Work:
        yield from self._fetch()

    @background("refresh the portals page", admin=False)
    def refresh(self) -> Work:
        yield from self._fetch()

    @event
    def set_auto_refresh(self, enabled: bool) -> None:
        self.auto_refresh = bool(enabled)

    @background("resume a run", admin=True, busy=True)
    def resume(self, run_id: int) -> Work:
        run_id, actor = run_id_argument(run_id), self._actor()
        launched = yield changing(lambda: service().launch_resume(run_id, actor=actor))
        yield from self._fetch()
        return rx.toast.success(launched.message, duration=10000)

    @background("start a scrape", admin=True, busy=True)
    def start(self, portal: str) -> Work:
        name, actor = str(portal), self._actor()
        launched = yield changing(lambda: service().launch_start(name, actor=actor))
        yield from self._fetch()
        return rx.toast.success(launched.message, duration=10000)

    @background("clean up and start", admin=True, busy=True)
    def clean_up_and_start(self, portal: str, run_ids: list[int]) -> Work:
        """Clean the portal's dead runs the row showed (compare-and-set, audited), then start a
        scrape; nothing is cleaned when the portal cannot be started, and nothing is started
        when one of them changed since."""
        if not isinstance(run_ids, list):
            raise ValueError(f"Not a list of run ids: {str(run_ids)[:40]!r}.")
        ids = [run_id_argument(run_id) for run_id in run_ids]
        name, actor = str(portal), self._actor()
        done = yield changing(lambda: service().clean_up_and_start(name, ids, actor=actor))
        yield from self._fetch()
        if done.launched is None:
            return rx.toast.warning(safe_text(done.message), duration=15000)
        return rx.toast.success(safe_text(done.message), duration=10000)
