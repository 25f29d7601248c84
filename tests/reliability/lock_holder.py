"""Another process that holds the database's write lock on command, outside the tool.

    python -m tests.reliability.lock_holder DB_URL

It reads one command per line on stdin and answers on stdout when it is done:

- ``lock`` -> ``locked``. SQLite: ``BEGIN IMMEDIATE`` and a write, as any other program using the
  file might do. PostgreSQL: the tool's tables locked in ``EXCLUSIVE`` mode, which, like SQLite's
  WAL, still lets readers through but makes every writer wait (up to its ``lock_timeout``).
- ``release`` -> ``released``: rolls back, so the write never happened.

Plain ``sqlite3`` / ``psycopg`` connections: nothing of ``cleanup_core`` runs in this process.
"""

from __future__ import annotations

import sys
from typing import Any

from sqlalchemy.engine import make_url

TABLES = (
    "runs",
    "run_events",
    "tenders",
    "monitor_lease",
    "monitor_cycles",
    "monitor_problems",
    "monitor_notices",
    "monitor_channels",
)


def connect(db_url: str) -> Any:
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        import sqlite3

        return sqlite3.connect(url.database, isolation_level=None)
    import psycopg

    return psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        dbname=url.database,
        options=url.query.get("options", ""),
    )


def main(db_url: str) -> None:
    sqlite = make_url(db_url).get_backend_name() == "sqlite"
    conn = connect(db_url)
    for line in sys.stdin:
        command = line.strip()
        if command == "lock":
            if sqlite:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("UPDATE runs SET worker_id = worker_id")
            else:
                conn.execute(f"LOCK TABLE {', '.join(TABLES)} IN EXCLUSIVE MODE")
            answer = "locked"
        elif command == "release":
            if sqlite:
                conn.execute("ROLLBACK")
            else:
                conn.rollback()
            answer = "released"
        else:
            answer = f"unknown command {command!r}"
        print(answer, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
