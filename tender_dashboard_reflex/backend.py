"""The dashboard's handles on the core: one service and one account store per process, built
from the CLEANUP_* settings on first use (never at import, so importing the app for a build
does not open the database)."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

from cleanup_core import CleanupService, Settings
from cleanup_core.accounts import Accounts, LoginThrottle


@cache
def service() -> CleanupService:
    return CleanupService(Settings.load())


@cache
def accounts() -> Accounts:
    settings = service().settings
    return Accounts(
        service().db,
        session_ttl=timedelta(hours=settings.session_hours),
        throttle=LoginThrottle.from_settings(settings),
    )
