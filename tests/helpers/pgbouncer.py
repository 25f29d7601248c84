"""A real PgBouncer in transaction mode in front of the test PostgreSQL server, for tests and
benchmarks: a free port, its own temporary folder, stopped (and the folder removed) on exit.

    with running_pgbouncer(default_pool_size=2) as bouncer:
        url = bouncer.url("my_database")   # any database of the server, through the pooler

Debian's ``pgbouncer`` refuses to run as root, so as root it is started as ``pgbouncer -u
postgres`` with its files in a folder the ``postgres`` user owns. ``INI`` is the configuration
the README's "Many hosts" section shows.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

INI = """\
[databases]
* = host={server_host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/users.txt
pool_mode = transaction
log_connections = 0
log_disconnections = 0
default_pool_size = {default_pool_size}
max_client_conn = {max_client_conn}
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
"""


@dataclass(frozen=True)
class PgBouncer:
    """A running PgBouncer; ``server`` is the PostgreSQL URL it forwards to."""

    port: int
    folder: Path
    server: URL

    def url(self, database: str) -> str:
        """The URL of ``database`` through the pooler (same user as ``server``)."""
        return (
            self.server.set(host="127.0.0.1", port=self.port, database=database, query={})
        ).render_as_string(hide_password=False)

    @property
    def log(self) -> str:
        path = self.folder / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_pgbouncer(
    server_url: str,
    *,
    default_pool_size: int = 2,
    max_client_conn: int = 200,
) -> Iterator[PgBouncer]:
    """Start PgBouncer in transaction mode in front of ``server_url``'s server; stop it on
    exit. ``default_pool_size`` server connections per database and user, at most
    ``max_client_conn`` clients."""
    program = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(program).exists():
        raise RuntimeError("pgbouncer is not installed (apt-get install -y pgbouncer)")
    server = make_url(server_url)
    folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    as_root = os.geteuid() == 0
    port = free_port()
    (folder / "users.txt").write_text(f'"{server.username or "postgres"}" ""\n')
    ini = folder / "pgbouncer.ini"
    ini.write_text(
        INI.format(
            server_host=server.host or "127.0.0.1",
            server_port=server.port or 5432,
            port=port,
            folder=folder,
            default_pool_size=default_pool_size,
            max_client_conn=max_client_conn,
        )
    )
    if as_root:
        owner = pwd.getpwnam("postgres")
        for path in (folder, *folder.iterdir()):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    argv = [program, "-u", "postgres", str(ini)] if as_root else [program, str(ini)]
    # Its output goes to a file: a pipe nobody reads fills up and then blocks PgBouncer.
    with (folder / "stderr.txt").open("wb") as stderr:
        process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
        )
    bouncer = PgBouncer(port=port, folder=folder, server=server)
    try:
        _wait_until_listening(process, bouncer)
        yield bouncer
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_until_listening(process: subprocess.Popen[bytes], bouncer: PgBouncer) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = (bouncer.folder / "stderr.txt").read_text(errors="replace")
            raise RuntimeError(f"pgbouncer exited ({process.returncode}): {stderr}{bouncer.log}")
        try:
            with socket.create_connection(("127.0.0.1", bouncer.port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on port {bouncer.port}: {bouncer.log}")


@contextmanager
def fresh_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the server, dropped afterwards: tests behind PgBouncer need one
    each, because a transaction pooler passes no startup options, so no schema per test."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{os.getpid()}_{os.urandom(4).hex()}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
