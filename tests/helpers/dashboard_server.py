"""Serve the real dashboard the way an operator does (`reflex run --env prod`), for browser tests,
the scale-out tests and the benchmarks; stop it by its process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
STARTUP_SECONDS = 240
CHROMIUM = "/usr/bin/chromium"
# Without these, Debian's Chromium keeps reaching for Google's services on this closed network.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class ServerError(RuntimeError):
    """The app did not start; the message carries its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own app)
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def app_env(cleanup_env: Mapping[str, str], **extra: str) -> dict[str, str]:
    """This process's environment without its CLEANUP_* settings, plus the given ones, the
    venv's bin first on PATH (Reflex needs its bun and node) and no phoning home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEANUP_")}
    env.update(cleanup_env)
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        REFLEX_TELEMETRY_ENABLED="false",
        REFLEX_CHECK_LATEST_VERSION="false",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass(frozen=True)
class Server:
    url: str
    log_path: Path
    pid: int

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def serve(env: Mapping[str, str], log_path: Path) -> Iterator[Server]:
    """`reflex run --env prod --single-port` on a free port, with ``env``; yields once it
    answers ``/ping``; stops the whole process group afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(VENV_BIN / "reflex"),
        "run",
        "--env",
        "prod",
        "--single-port",
        "--frontend-port",
        str(port),
        "--backend-port",
        str(port),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not answers(f"{url}/ping"):
            if process.poll() is not None:
                raise ServerError(f"reflex exited ({process.returncode}):\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                raise ServerError(f"no answer in {STARTUP_SECONDS} s:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield Server(url, log_path, process.pid)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)


def log_problems(text: str) -> list[str]:
    """Lines of an app log that show something went wrong."""
    return [
        line
        for line in text.splitlines()
        if "ERROR" in line or "Traceback" in line or "Frontend Exception" in line
    ]
