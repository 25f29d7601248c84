"""Opening the database: engines, SQLite pragmas, transactions, errors, and schema adoption.

Adoption runs automatically the first time a process opens a database. It is additive only: it
creates missing tables, adds missing nullable columns and indexes, and records its version in
``cleanup_schema``; it never renames, retypes, rewrites or drops anything. Each step checks what
exists first, so it is idempotent and safe on every start, and it holds the database's write lock
(SQLite) or an advisory lock (PostgreSQL) so two processes starting together do not race.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    case,
    create_engine,
    event,
    exists,
    func,
    inspect,
    select,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from cleanup_core.config import Settings
from cleanup_core.errors import (
    DatabaseError,
    DatabaseLockedError,
    DatabaseUnavailableError,
)
from cleanup_core.models import (
    DashboardSession,
    DashboardUser,
    DeletedRun,
    DemoRun,
    MonitorChannel,
    MonitorCycle,
    MonitorLease,
    MonitorNotice,
    MonitorProblem,
    Run,
    RunEvent,
    SchemaVersion,
    Tender,
)
from cleanup_core.timestamps import utc_now

log = logging.getLogger(__name__)

# Every table the tool reads or writes. Each schema change so far is additive (a table, a nullable
# column, an index), so one idempotent "add what is missing" brings any earlier version up to date.
ADOPTED_TABLES = (
    Run.__table__,
    Tender.__table__,
    RunEvent.__table__,
    DashboardUser.__table__,
    DashboardSession.__table__,
    MonitorCycle.__table__,
    MonitorProblem.__table__,
    MonitorNotice.__table__,
    MonitorChannel.__table__,
    MonitorLease.__table__,
    DeletedRun.__table__,
    DemoRun.__table__,
)
_ADOPTION_LOCK_KEY = zlib.crc32(b"cleanup_core.schema")

# 1: run-tracking columns, run_events, indexes; 2: dashboard accounts and sessions;
# 3: the monitor's cycles, problems, outbox, channels and lease;
# 4: deleted_runs (what a deleted run owned, so a reused run id never inherits it), demo_runs.
SCHEMA_VERSION = 4


def _add_missing(conn: Connection) -> None:
    """Create missing tables, add missing nullable columns and missing indexes."""
    existing = set(inspect(conn).get_table_names())
    ops = Operations(MigrationContext.configure(conn))
    for table in ADOPTED_TABLES:
        if table.name not in existing:
            table.create(conn)
            log.info("created table %s", table.name)
            continue
        present = {column["name"] for column in inspect(conn).get_columns(table.name)}
        if "id" in table.c and "id" not in present:
            raise DatabaseError(
                f"The existing table {table.name!r} has no 'id' column, so it is not a table "
                "this tool can adopt. Nothing was changed."
            )
        for column in table.columns:
            if column.name not in present:
                ops.add_column(table.name, Column(column.name, column.type, nullable=True))
                log.info("added nullable column %s.%s", table.name, column.name)
    for table in ADOPTED_TABLES:
        for index in table.indexes:
            index.create(conn, checkfirst=True)


class Database:
    """One database: its engine, read and write transactions, and errors in the operator's words."""

    def __init__(self, settings: Settings, *, create_missing: bool | None = None):
        self.settings = settings
        self.url = make_url(settings.database_url)
        self.dialect = self.url.get_backend_name()
        self.create_missing = (
            settings.database_is_default if create_missing is None else create_missing
        )
        self._engine: Engine | None = None
        self._ready = False
        self._lock = threading.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def label(self) -> str:
        """Where the database is, for messages (no password)."""
        if self.is_sqlite:
            return str(self.url.database)
        return self.url.render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        """The engine, with the schema adopted; opened on first use."""
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self._open()
        assert self._engine is not None
        return self._engine

    def _open(self) -> None:
        if self.is_sqlite:
            path = Path(str(self.url.database))
            if not path.exists():
                if not self.create_missing:
                    raise DatabaseUnavailableError(
                        f"The database file {path} does not exist. Check CLEANUP_DATABASE_URL "
                        "(or --db), or create a demo database with `python -m cleanup_core demo`."
                    )
                path.parent.mkdir(parents=True, exist_ok=True)
        engine = _make_engine(self.settings)
        try:
            with self._translated():
                adopt(engine)
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine
        self._ready = True

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot."""
        with self._translated(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction. On SQLite it takes the write lock up front (``BEGIN IMMEDIATE``),
        so it waits its turn instead of failing half-way when it upgrades from reading."""
        with self._translated(), self.engine.connect() as conn:
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            raise _translate(exc, self) from exc
        except sa_exc.DataError as exc:
            # A value the server refuses (a NUL in text, an id beyond the column's range).
            message = str(exc.orig) if exc.orig is not None else str(exc)
            first_line = message.strip().splitlines()[0] if message.strip() else message
            raise DatabaseError(f"The database {self.label} refused a value: {first_line}") from exc
        except sa_exc.DatabaseError as exc:
            message = str(exc.orig) if exc.orig is not None else str(exc)
            if "not a database" in message or "malformed" in message:
                raise DatabaseError(
                    f"{self.label} is not a usable SQLite database: {message}"
                ) from exc
            raise


def _translate(exc: sa_exc.DBAPIError, db: Database) -> DatabaseError:
    message = str(exc.orig) if exc.orig is not None else str(exc)
    lowered = message.lower()
    wait = db.settings.busy_timeout_seconds
    if "locked" in lowered or "lock timeout" in lowered:
        return DatabaseLockedError(
            f"The database {db.label} is locked: another process held its write lock for more "
            f"than {wait:g} s. Nothing was changed. Try again, or raise "
            "CLEANUP_BUSY_TIMEOUT_SECONDS."
        )
    if "unable to open database file" in lowered:
        return DatabaseUnavailableError(f"Cannot open the database file {db.label}: {message}")
    if "not a database" in lowered or "malformed" in lowered:
        return DatabaseError(f"{db.label} is not a usable SQLite database: {message}")
    if not db.is_sqlite and (
        "connect" in lowered or "connection" in lowered or "server" in lowered
    ):
        first_line = message.strip().splitlines()[0] if message.strip() else message
        return DatabaseUnavailableError(
            f"Cannot reach the database server {db.label}: {first_line}"
        )
    return DatabaseError(f"Database error on {db.label}: {message.strip().splitlines()[0]}")


def _make_engine(settings: Settings) -> Engine:
    url = make_url(settings.database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"timeout": settings.busy_timeout_seconds})
        _configure_sqlite(engine, busy_ms=int(settings.busy_timeout_seconds * 1000))
    elif backend == "postgresql":
        zone = getattr(settings.timezone, "key", None) or "UTC"
        lock_ms = int(settings.busy_timeout_seconds * 1000)
        options = f"-c timezone={zone} -c lock_timeout={lock_ms}"
        if "options" in url.query:  # keep the operator's own (e.g. search_path)
            options = f"{url.query['options']} {options}"
        engine = create_engine(
            url.difference_update_query(["options"]),
            pool_pre_ping=True,
            connect_args={"connect_timeout": 10, "options": options},
        )
        _load_odd_timestamps_raw(engine)
    else:
        raise DatabaseError(
            f"Unsupported database {backend!r}: use an sqlite:/// file or postgresql+psycopg://"
        )
    engine.dialect.cleanup_timezone = settings.timezone  # type: ignore[attr-defined]
    return engine


def _load_odd_timestamps_raw(engine: Engine) -> None:
    """Read PostgreSQL timestamps Python cannot hold (``infinity``, years after 9999 or BC) as
    their text, which ``parse_timestamp`` refuses: that run needs attention, while psycopg's
    default (an error) would break every query that reads any of the runs."""
    import psycopg
    from psycopg.adapt import Loader

    class _RawWhenOutOfRange(Loader):
        base: type[Loader]

        def __init__(self, oid: int, context: Any = None):
            super().__init__(oid, context)
            self._inner = self.base(oid, context)

        def load(self, data: Any) -> Any:
            try:
                return self._inner.load(data)
            except psycopg.DataError:
                return bytes(data).decode("utf-8", "replace")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        adapters = dbapi_connection.adapters
        for name in ("timestamptz", "timestamp"):
            oid = adapters.types[name].oid
            base = adapters.get_loader(oid, psycopg.pq.Format.TEXT)
            loader = type(f"Raw{base.__name__}", (_RawWhenOutOfRange,), {"base": base})
            adapters.register_loader(oid, loader)


def _configure_sqlite(engine: Engine, *, busy_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN (below) start transactions, not the sqlite3 module.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _record_earlier_deletions(conn: Connection) -> None:
    """Version 4: watermarks for the runs deleted before the tool kept them, from their delete
    events. Every event up to a delete event is the deleted run's; its tenders are known only
    while no run has that id again (then every tender linked to the id is the deleted runs'),
    otherwise they stay with the run that has the id now."""
    deleted, events = DeletedRun.__table__, RunEvent.__table__
    runs, tenders = Run.__table__, Tender.__table__
    id_is_free = ~exists().where(runs.c.id == events.c.run_id)
    highest_tender = (
        select(func.max(tenders.c.id)).where(tenders.c.run_id == events.c.run_id).scalar_subquery()
    )
    rows = select(
        events.c.run_id,
        events.c.portal_name,
        events.c.created_at,
        events.c.id,
        case((id_is_free, highest_tender)),
    ).where(events.c.action == "delete")
    columns = ["run_id", "portal_name", "deleted_at", "last_event_id", "last_tender_id"]
    conn.execute(deleted.insert().from_select(columns, rows))


def schema_version(conn: Connection) -> int:
    if not inspect(conn).has_table(SchemaVersion.__tablename__):
        return 0
    version = conn.execute(select(SchemaVersion.version).where(SchemaVersion.id == 1)).scalar()
    return int(version or 0)


def adopt(engine: Engine) -> None:
    """Bring the schema up to ``SCHEMA_VERSION``, additively; a no-op when it already is."""
    with engine.connect() as conn, conn.begin():
        if schema_version(conn) >= SCHEMA_VERSION:
            return
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ADOPTION_LOCK_KEY})")
            SchemaVersion.__table__.create(conn, checkfirst=True)
            version = schema_version(conn)
            if version >= SCHEMA_VERSION:
                return  # another process adopted it while we waited for the lock
            _add_missing(conn)
            if version < 4:
                _record_earlier_deletions(conn)
            table = SchemaVersion.__table__
            values = {"version": SCHEMA_VERSION, "updated_at": utc_now()}
            if version == 0:
                conn.execute(table.insert().values(id=1, **values))
            else:
                conn.execute(table.update().where(table.c.id == 1).values(**values))
            log.info("database schema adopted: version %d -> %d", version, SCHEMA_VERSION)
