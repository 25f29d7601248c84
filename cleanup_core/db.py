"""Opening the database: engines, SQLite pragmas, transactions, errors, and schema adoption.

A database is the scrapers' when it has a ``runs`` table. Opening one that has none (another
application's database, an empty one, a typo in the path) is refused before anything is written
to it: no table, no WAL switch, and no file where none was. The schema is created only where the
caller may create it (``init``, the demo, a scraper's own tracker) and the database is empty or
missing, or holds only this tool's tables.

Adoption runs automatically the first time a process opens a scrapers' database. It is additive
only: it creates missing tables, adds missing nullable columns and indexes, and records its
version in ``cleanup_schema``; it never renames, retypes, rewrites or drops anything. Each step
checks what exists first, so it is idempotent and safe on every start, and it holds the
database's write lock (SQLite) or an advisory lock (PostgreSQL) so two processes starting
together do not race.

Connections (``db_pool``): ``queue`` keeps a small bounded pool per process (the dashboard, the
monitor, the CLI); ``none`` keeps none, so a scraper process holds at most one connection, only
while a transaction runs, and none between heartbeats. Nothing relies on session state: the time
zone and lock timeout are set in every transaction, and advisory locks are transaction-scoped,
so every process also works through a transaction pooler such as PgBouncer (``db_pooler``).
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Column, Connection, Engine, create_engine, event, inspect
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from cleanup_core.config import Pooler, PoolMode, Settings
from cleanup_core.errors import (
    ConfigError,
    DatabaseError,
    DatabaseLockedError,
    DatabaseUnavailableError,
    NoRunsTableError,
)
from cleanup_core.models import (
    DashboardSession,
    DashboardUser,
    DeletedRun,
    DemoRun,
    Launch,
    LoginFailure,
    MonitorChannel,
    MonitorCycle,
    MonitorLease,
    MonitorNotice,
    MonitorProblem,
    Run,
    RunCheckpoint,
    RunEvent,
    SchemaVersion,
    Tender,
    table,
)
from cleanup_core.storage.deletions import record_earlier_deletions
from cleanup_core.storage.schema import create_version_table, record_version, schema_version
from cleanup_core.timestamps import utc_now

log = logging.getLogger(__name__)

# Every table the tool reads or writes. Each schema change so far is additive (a table, a nullable
# column, an index), so one idempotent "add what is missing" brings any earlier version up to date.
ADOPTED_TABLES = tuple(
    table(model)
    for model in (
        Run,
        Tender,
        RunEvent,
        DashboardUser,
        DashboardSession,
        MonitorCycle,
        MonitorProblem,
        MonitorNotice,
        MonitorChannel,
        MonitorLease,
        LoginFailure,
        DeletedRun,
        DemoRun,
        RunCheckpoint,
        Launch,
    )
)
OWN_TABLE_NAMES = frozenset(
    [SchemaVersion.__tablename__, *(table.name for table in ADOPTED_TABLES)]
)
_ADOPTION_LOCK_KEY = zlib.crc32(b"cleanup_core.schema")
# How long a transaction waits for a free connection of its process's pool (db_pool = queue).
POOL_TIMEOUT_SECONDS = 30.0
_INIT = "`python -m cleanup_core init`"
_INIT_FORCE = "`python -m cleanup_core init --force`"

# 1: run-tracking columns, run_events, indexes; 2: dashboard accounts and sessions;
# 3: the monitor's cycles, problems, outbox, channels and lease; 4: login_failures (the
# dashboard's login throttling), deleted_runs (what a deleted run owned, so a reused run id
# never inherits it) and demo_runs; 5: launches (the scraper processes the tool started),
# ix_run_events_created and ix_run_events_portal_created (History ordered by time), and
# run_checkpoints (each tracked run's checkpoint in the database, so a resume on any host
# continues from its cursor), and ix_runs_status_completed and ix_runs_portal_completed (the
# completed runs that learned thresholds read; issue 15).
SCHEMA_VERSION = 5


def _add_missing(conn: Connection) -> list[str]:
    """Create missing tables, add missing nullable columns and missing indexes; say which."""
    existing = set(inspect(conn).get_table_names())
    ops = Operations(MigrationContext.configure(conn))
    done = []
    for adopted in ADOPTED_TABLES:
        if adopted.name not in existing:
            adopted.create(conn)
            done.append(f"created table {adopted.name}")
            continue
        present = {column["name"] for column in inspect(conn).get_columns(adopted.name)}
        if "id" in adopted.c and "id" not in present:
            raise DatabaseError(
                f"The existing table {adopted.name!r} has no 'id' column, so it is not a table "
                "this tool can adopt. Nothing was changed."
            )
        for column in adopted.columns:
            if column.name not in present:
                ops.add_column(adopted.name, Column(column.name, column.type, nullable=True))
                done.append(f"added column {adopted.name}.{column.name}")
        indexes = {index["name"] for index in inspect(conn).get_indexes(adopted.name)}
        for index in adopted.indexes:
            if index.name not in indexes:
                index.create(conn)
                done.append(f"added index {index.name}")
    for step in done:
        log.info("%s", step)
    return done


class Database:
    """One database: its engine, read and write transactions, and errors in the operator's words.

    ``create_missing`` lets this process create the schema where there is none yet: a missing
    SQLite file, an empty database, or one holding only this tool's tables (``init``, the demo,
    a scraper's own tracker, tests). Without it a database with no ``runs`` table is refused and
    nothing is created in it; with it, a database holding another application's tables is still
    refused (``initialize`` can be told otherwise)."""

    def __init__(self, settings: Settings, *, create_missing: bool = False):
        self.settings = settings
        self.url = make_url(settings.database_url)
        self.dialect = self.url.get_backend_name()
        self.create_missing = create_missing
        self._engine: Engine | None = None
        self._ready = False
        self._lock = threading.Lock()
        # db_pool = none: one transaction, so one connection, at a time in this process. It is
        # re-entrant so that a thread opening a transaction inside its own waits for nobody.
        self._one_at_a_time = threading.RLock() if settings.db_pool is PoolMode.NONE else None

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
                    self._open(create=self.create_missing, beside_other_tables=False)
        assert self._engine is not None
        return self._engine

    def initialize(self, *, beside_other_tables: bool = False) -> list[str]:
        """``init``: create the schema in a missing or empty database, or adopt it where a
        ``runs`` table exists; what was done (nothing, the second time). A database holding
        another application's tables but no ``runs`` table is refused unless
        ``beside_other_tables``."""
        with self._turn(), self._lock:
            if self._ready:
                assert self._engine is not None
                with self._translated():
                    return adopt(self._engine)
            return self._open(create=True, beside_other_tables=beside_other_tables)

    def _open(self, *, create: bool, beside_other_tables: bool) -> list[str]:
        missing = False
        if self.is_sqlite:
            path = Path(str(self.url.database))
            missing = not path.exists()
            if missing and not create:
                raise DatabaseUnavailableError(
                    f"The database file {path} does not exist. Check CLEANUP_DATABASE_URL "
                    f"(or --db); to start a new database there run {_INIT}, or load a demo "
                    "fleet with `python -m cleanup_core demo`."
                )
            if missing:
                path.parent.mkdir(parents=True, exist_ok=True)
        engine = _make_engine(self.settings)
        try:
            with self._translated():
                tables = set() if missing else self._table_names(engine)
                if "runs" not in tables:
                    self._check_may_create(tables, create, beside_other_tables)
                done = adopt(engine)
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine
        self._ready = True
        return done

    def _table_names(self, engine: Engine) -> set[str]:
        """The tables there are, read without changing anything: on SQLite through a plain
        connection, so a file that is refused is not switched to WAL."""
        if not self.is_sqlite:
            with engine.connect() as conn:
                return set(inspect(conn).get_table_names())
        probe = create_engine(
            self.url,
            poolclass=NullPool,
            connect_args={"timeout": self.settings.busy_timeout_seconds},
        )
        try:
            with probe.connect() as conn:
                return set(inspect(conn).get_table_names())
        finally:
            probe.dispose()

    def _check_may_create(self, tables: set[str], create: bool, beside_other_tables: bool) -> None:
        """Refuse a database without a ``runs`` table unless this caller may create the schema
        there (and, if it holds another application's tables, was told to)."""
        others = tables - OWN_TABLE_NAMES
        if create and (beside_other_tables or not others):
            return
        names = sorted(tables)
        more = f" and {len(names) - 5} more" if names[5:] else ""
        what = f"it holds: {', '.join(names[:5])}{more}" if names else "it is empty"
        todo = (
            f"to add this tool's tables next to those anyway, run {_INIT_FORCE}"
            if others
            else f"to set up a new database there, run {_INIT}"
        )
        raise NoRunsTableError(
            f"no runs table in {self.label}; is this the scrapers' database? ({what}). Nothing "
            f"was changed. Check CLEANUP_DATABASE_URL (or --db); {todo}."
        )

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot."""
        with self._connection() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction. On SQLite it takes the write lock up front (``BEGIN IMMEDIATE``),
        so it waits its turn instead of failing half-way when it upgrades from reading."""
        with self._connection() as conn:
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A connection for one transaction, closed (``none``) or returned to the pool
        (``queue``) when it ends. With ``db_pool = none`` it waits until this process's other
        thread (a scraper's heartbeat, say) has finished its transaction: one connection at most.
        """
        with self._turn(), self._translated(), self.engine.connect() as conn:
            yield conn

    def _turn(self) -> AbstractContextManager[Any]:
        return self._one_at_a_time if self._one_at_a_time is not None else nullcontext()

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except sa_exc.TimeoutError as exc:
            size = self.settings.db_pool_size
            raise DatabaseError(
                f"All {size} connections of this process to {self.label} stayed busy for "
                f"{POOL_TIMEOUT_SECONDS:g} s. Raise CLEANUP_DB_POOL_SIZE, or look for slow "
                "queries."
            ) from exc
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
        engine = create_engine(
            url,
            connect_args={"timeout": settings.busy_timeout_seconds},
            **_pool_arguments(settings),
        )
        _configure_sqlite(engine, busy_ms=int(settings.busy_timeout_seconds * 1000))
    elif backend == "postgresql":
        connect_args: dict[str, Any] = {"connect_timeout": 10}
        if settings.db_pooler is Pooler.TRANSACTION:
            if "options" in url.query:
                raise ConfigError(
                    "CLEANUP_DATABASE_URL has options=... but CLEANUP_DB_POOLER is "
                    "'transaction': a transaction pooler refuses startup options (PgBouncer: "
                    "'unsupported startup parameter: options'). Set them on the role instead, "
                    "e.g. ALTER ROLE scraper SET search_path = tenders, and remove them from the "
                    "URL."
                )
            # psycopg prepares a statement run five times on its server connection; behind a
            # transaction pooler the next transaction may get another server connection, where
            # it does not exist (PgBouncer before 1.21).
            connect_args["prepare_threshold"] = None
        pre_ping = {"pool_pre_ping": True} if settings.db_pool is PoolMode.QUEUE else {}
        engine = create_engine(
            url, connect_args=connect_args, **_pool_arguments(settings), **pre_ping
        )
        _set_per_transaction(engine, settings)
        _load_odd_timestamps_raw(engine)
    else:
        raise DatabaseError(
            f"Unsupported database {backend!r}: use an sqlite:/// file or postgresql+psycopg://"
        )
    engine.dialect.cleanup_timezone = settings.timezone  # type: ignore[attr-defined]
    return engine


def _pool_arguments(settings: Settings) -> dict[str, Any]:
    """``none``: no pool, a connection per transaction. ``queue``: at most ``db_pool_size``
    connections, kept open between transactions; one more waits for a free one."""
    if settings.db_pool is PoolMode.NONE:
        return {"poolclass": NullPool}
    return {
        "pool_size": settings.db_pool_size,
        "max_overflow": 0,
        "pool_timeout": POOL_TIMEOUT_SECONDS,
    }


def _set_per_transaction(engine: Engine, settings: Settings) -> None:
    """The time zone naive timestamps are read and written in, and how long to wait for a lock,
    set in every transaction (``set_config(..., true)`` is ``SET LOCAL``), never on the session:
    a transaction pooler hands each transaction whichever server connection is free, and
    refuses startup ``options``. SQLAlchemy's begin sends them with the ``BEGIN``, in one round
    trip: behind a pooler a transaction holds a server connection from its first statement to
    its last, so every round trip less lets it serve more scrapers."""
    zone = getattr(settings.timezone, "key", None) or "UTC"
    lock_ms = int(settings.busy_timeout_seconds * 1000)
    begin = (
        f"BEGIN; SELECT set_config('TimeZone', {_quoted(zone)}, true), "
        f"set_config('lock_timeout', '{lock_ms}ms', true)"
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN (below) start transactions, not psycopg; its commit() and
        # rollback() still end them.
        dbapi_connection.autocommit = True

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)


def _quoted(text: str) -> str:
    """An SQL string literal (the statement above has no parameters, so that both commands go
    in one simple query)."""
    return "'" + text.replace("'", "''") + "'"


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


def adopt(engine: Engine) -> list[str]:
    """Bring the schema up to ``SCHEMA_VERSION``, additively; what was done (nothing when it
    already is)."""
    with engine.connect() as conn, conn.begin():
        if schema_version(conn) >= SCHEMA_VERSION:
            return []
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ADOPTION_LOCK_KEY})")
            created = create_version_table(conn)
            version = schema_version(conn)
            if version >= SCHEMA_VERSION:
                return []  # another process adopted it while we waited for the lock
            done = _add_missing(conn)
            if created:
                done.append(f"created table {SchemaVersion.__tablename__}")
            if version < 4:
                record_earlier_deletions(conn)
            record_version(conn, SCHEMA_VERSION, previous=version, at=utc_now())
            log.info("database schema adopted: version %d -> %d", version, SCHEMA_VERSION)
            return done
