"""The dashboard app: pages, routes and their load events.

Starting the app never changes a run: pages only read until a signed-in admin acts, and the
optional monitor task only alerts (unless ``monitor_auto_clean`` is set). The backend also serves
Prometheus metrics at ``/metrics`` when ``metrics_enabled`` is set (see ``api``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading

import reflex as rx

from cleanup_core.alerts import Monitor, run_forever
from tender_dashboard_reflex import routes
from tender_dashboard_reflex.api import api
from tender_dashboard_reflex.backend import service
from tender_dashboard_reflex.pages.help import settings_help_page
from tender_dashboard_reflex.pages.history import history_page
from tender_dashboard_reflex.pages.login import login_page
from tender_dashboard_reflex.pages.overview import overview_page
from tender_dashboard_reflex.pages.portals import portals_page
from tender_dashboard_reflex.pages.runs import run_detail_page, runs_page_view
from tender_dashboard_reflex.pages.stuck import stuck_page
from tender_dashboard_reflex.state.history import HistoryState
from tender_dashboard_reflex.state.login import LoginState
from tender_dashboard_reflex.state.overview import OverviewState
from tender_dashboard_reflex.state.portals import PortalsState
from tender_dashboard_reflex.state.runs import RunDetailState, RunsState
from tender_dashboard_reflex.state.stuck import StuckState


def log_to_stderr() -> None:
    """Timestamped lines on stderr (the journal under systemd), as the CLI writes them: every
    warning, plus logins and logouts. The README's fail2ban filter reads the failed logins."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("cleanup_core", "tender_dashboard_reflex"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
    logging.getLogger("cleanup_core").setLevel(logging.WARNING)
    logging.getLogger("cleanup_core.accounts").setLevel(logging.INFO)
    logging.getLogger("tender_dashboard_reflex").setLevel(logging.INFO)


async def monitor_in_dashboard() -> None:
    """The alert-only monitor as a background task of the backend, when
    ``monitor_in_dashboard`` is on. With several workers each runs this loop; the database lease
    lets one of them run each cycle."""
    if not service().settings.monitor_in_dashboard:
        return
    stop = threading.Event()
    try:
        await asyncio.to_thread(run_forever, Monitor(service()), stop=stop)
    finally:
        stop.set()


# Toasts go where no button is, and can be closed; they go by themselves after a few seconds
# unless a handler asks for longer. On a laptop: top centre, under the header, over the middle
# columns of a table (data, no links or buttons). On a phone (sonner's own limit, 600 px) a table's
# action column is on the right and a page's own buttons at its top, so: bottom left, kept clear of
# the action column (assets/dashboard.css), with room under each page to scroll past it. Chosen
# once, when the page loads.
TOAST_POSITION: rx.Var[str] = rx.Var(
    _js_expr='(typeof window !== "undefined" && window.matchMedia("(max-width: 600px)").matches)'
    ' ? "bottom-left" : "top-center"',
    _var_type=str,
)

log_to_stderr()
app = rx.App(
    api_transformer=api,  # /metrics, when metrics_enabled
    stylesheets=["/dashboard.css"],
    # A plain <script> in the page's HTML: rx.script would add it later through react-helmet,
    # which does not always run it.
    head_components=[rx.el.script(src="/dashboard.js")],
    toaster=rx.toast.provider(
        position=TOAST_POSITION,
        offset="64px",  # from the top: under the header
        close_button=True,
        toast_options=rx.toast.options(duration=5000),
        custom_attrs={"mobileOffset": {"left": "8px", "right": "10em", "bottom": "8px"}},
    ),
)
app.register_lifespan_task(monitor_in_dashboard)
app.add_page(login_page, route=routes.LOGIN, title="Log in", on_load=LoginState.open_page)
app.add_page(overview_page, route=routes.OVERVIEW, title="Overview", on_load=OverviewState.load)
app.add_page(runs_page_view, route=routes.RUNS, title="Runs", on_load=RunsState.load)
app.add_page(run_detail_page, route=routes.RUN, title="Run", on_load=RunDetailState.load)
app.add_page(stuck_page, route=routes.STUCK, title="Stuck runs", on_load=StuckState.load)
app.add_page(portals_page, route=routes.PORTALS, title="Portals", on_load=PortalsState.load)
app.add_page(history_page, route=routes.HISTORY, title="History", on_load=HistoryState.load)
app.add_page(settings_help_page, route=routes.SETTINGS_HELP, title="Settings help")
