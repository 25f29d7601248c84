"""What every use case shares: the settings, the database, and the clock to judge by."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection

from cleanup_core.config import Settings, validate_threshold_hours
from cleanup_core.db import Database
from cleanup_core.storage.common import database_now

DEFAULT_ACTOR = "api"


class ServiceBase:
    """One database and checkpoint folder, with the settings that go with them."""

    def __init__(self, settings: Settings | None = None, *, database: Database | None = None):
        self.settings = settings or Settings.load()
        self.db = database or Database(self.settings)

    def init_database(self, *, beside_other_tables: bool = False) -> list[str]:
        """Create this tool's schema in a missing or empty database, or adopt it where a
        ``runs`` table exists (``init``, the demo); what was done, nothing when it was there.
        Another application's database is refused unless ``beside_other_tables``."""
        return self.db.initialize(beside_other_tables=beside_other_tables)

    def close(self) -> None:
        """Close the database connections (a later call opens them again)."""
        self.db.dispose()

    def _now(self, conn: Connection, now: datetime | None) -> datetime:
        """``now`` if given (it must be aware), else the time to judge by: the database
        server's clock on PostgreSQL, this machine's on SQLite."""
        if now is None:
            return database_now(conn)
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware (e.g. datetime.now(timezone.utc))")
        return now

    @staticmethod
    def _threshold(age_threshold_hours: float | None) -> float | None:
        if age_threshold_hours is None:
            return None
        return validate_threshold_hours(age_threshold_hours)


def checked_ids(run_ids: Iterable[object]) -> list[int]:
    """Unique run ids in the order given; anything that is not a whole number is refused."""
    seen: dict[int, None] = {}
    for value in run_ids:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"a run id must be a whole number, got {value!r}")
        seen[value] = None
    return list(seen)


def is_whole_number(value: object) -> bool:
    """An ``int`` that is not a ``bool`` (a run id, a limit, an offset)."""
    return isinstance(value, int) and not isinstance(value, bool)
