"""Reflex configuration of the dashboard. The database, checkpoints and thresholds come from the
same CLEANUP_* settings as the library and CLI (cleanup_core.config), not from here."""

import os

import reflex as rx
from reflex_base.plugins.sitemap import SitemapPlugin

config = rx.Config(
    app_name="tender_dashboard_reflex",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo"))],
    disable_plugins=[SitemapPlugin],
    # Several backend workers or hosts share UI state through Redis (scale-out); unset, each
    # worker keeps it in memory, which is right for the embedded single-process default.
    redis_url=os.environ.get("REDIS_URL") or None,
)
