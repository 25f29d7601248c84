"""The record of which of the tool's additive schema steps a database has had
(``cleanup_schema``); ``db.adopt`` reads and writes it while it holds the adoption lock."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, inspect, select, update

from cleanup_core.models import SchemaVersion, table

_SCHEMA = table(SchemaVersion)


def schema_version(conn: Connection) -> int:
    """The version the database has (0: none yet, not even the table)."""
    if not inspect(conn).has_table(_SCHEMA.name):
        return 0
    version = conn.execute(select(_SCHEMA.c.version).where(_SCHEMA.c.id == 1)).scalar()
    return int(version or 0)


def create_version_table(conn: Connection) -> bool:
    """Create ``cleanup_schema`` where it is missing; whether it was."""
    missing = not inspect(conn).has_table(_SCHEMA.name)
    _SCHEMA.create(conn, checkfirst=True)
    return missing


def record_version(conn: Connection, version: int, *, previous: int, at: datetime) -> None:
    """Record that the schema is now at ``version`` (it was at ``previous``)."""
    values = {"version": version, "updated_at": at}
    if previous == 0:
        conn.execute(insert(_SCHEMA).values(id=1, **values))
    else:
        conn.execute(update(_SCHEMA).where(_SCHEMA.c.id == 1).values(**values))
