"""Starting a scraper process for an operator, detached, with its output in a log file.

The command comes from the settings (``resume_command`` / ``start_command``, globally or per
portal), e.g. ``{python} examples/demo_scraper.py --portal {portal} --resume {run_id}``, where
``{python}`` is this Python and ``{portal_slug}`` the portal's file-name form. The template is
split into arguments first and the placeholders are filled in per argument, and the process is
started without a shell, so a hostile portal name is always exactly one argument.
Relative paths in a command are relative to the launcher's working directory; the process gets
the launcher's database, checkpoint folder and config file through ``CLEANUP_*`` variables.

Only the process is started here; whether it may be (the run is resumable, the portal is not
busy, no earlier launch of it is still starting), its ``launches`` row and the audit event are
the service's (``CleanupService.launch_resume`` / ``launch_start``). The command runs under
``cleanup_core.launch_wrapper``, which waits for it and records its exit code, so the launching
process (a dashboard request, a monitor cycle, a CLI call) need not live as long as it.
The launched scraper claims its run through ``tracker.track_run`` like any other worker, so two
launches for one run still leave one worker on it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cleanup_core.config import Settings, command_argv
from cleanup_core.errors import LaunchError

log = logging.getLogger("cleanup_core.launcher")


@dataclass(frozen=True)
class Prepared:
    """A command ready to start: its arguments and the log file it will write."""

    argv: tuple[str, ...]
    log_path: Path


@dataclass(frozen=True)
class Spawned:
    """A scraper process started in the background (``pid``: the wrapper that waits for it)."""

    argv: tuple[str, ...]
    pid: int
    log_path: Path


# The package's parent folder, so the wrapper (``python -m cleanup_core.launch_wrapper``) is
# found whatever the launcher's working directory.
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def prepare(
    settings: Settings, template: str, values: Mapping[str, str], *, log_name: str
) -> Prepared:
    """The arguments of ``template`` with ``values`` (and ``{python}``) filled in, and a new log
    file named after ``log_name`` in the launch log folder."""
    argv = command_argv(template, {**values, "python": sys.executable})
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return Prepared(tuple(argv), settings.launch_log_dir / f"{log_name}-{stamp}.log")


def missing_program(argv: tuple[str, ...]) -> str | None:
    """Why the program of ``argv`` cannot be run (not found, not executable), or ``None``."""
    program = argv[0]
    if shutil.which(program) is not None:
        return None
    if os.sep in program or (os.altsep and os.altsep in program):
        if not Path(program).exists():
            return f"{program}: no such file"
        return f"{program}: not executable"
    return f"{program}: command not found on PATH"


def spawn(settings: Settings, prepared: Prepared, *, launch_id: int, what: str) -> Spawned:
    """Start the prepared command detached from this process, through
    ``cleanup_core.launch_wrapper``, which waits for it and records its exit code as launch
    ``launch_id``; its output goes to the prepared log file. ``what`` names the command in an
    error (``LaunchError``) when it cannot start."""
    argv = prepared.argv
    log_path = prepared.log_path
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # The scraper uses the same database and checkpoint folder as the launcher, even when
    # those came from command-line flags rather than the environment.
    python_path = os.environ.get("PYTHONPATH", "")
    env = {
        **os.environ,
        "CLEANUP_DATABASE_URL": settings.database_url,
        "CLEANUP_CHECKPOINT_DIR": str(settings.checkpoint_dir),
        "PYTHONPATH": os.pathsep.join(p for p in (_PACKAGE_ROOT, python_path) if p),
    }
    if settings.config_file is not None:
        env["CLEANUP_CONFIG"] = str(settings.config_file)
    detach: dict[str, Any] = {"start_new_session": True}
    if sys.platform == "win32":
        detach = {
            "creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS
        }
    wrapper = [sys.executable, "-m", "cleanup_core.launch_wrapper", str(launch_id), "--", *argv]
    with log_path.open("ab") as output:
        try:
            process = subprocess.Popen(
                wrapper,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                **detach,
            )
        except OSError as exc:
            raise LaunchError(f"Could not start the {what} ({' '.join(argv)}): {exc}") from exc
    # Reap the wrapper when it ends, so a long-lived launcher (the dashboard) leaves no zombies.
    threading.Thread(target=process.wait, name=f"reap-{process.pid}", daemon=True).start()
    log.info("started process %d: %s", process.pid, " ".join(argv))
    return Spawned(argv, process.pid, log_path)


def log_tail(
    path: str | os.PathLike[str] | None, lines: int = 10, max_bytes: int = 16384
) -> list[str]:
    """The last ``lines`` lines of a launch's log file (at most its last ``max_bytes``), or
    ``[]`` when there is none or it cannot be read. Not escaped: the caller displays them
    through ``display``."""
    if not path:
        return []
    try:
        with Path(path).open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(size - max_bytes, 0))
            data = handle.read(max_bytes)
    except OSError:
        return []
    text = data.decode("utf-8", "replace")
    kept = text.splitlines()
    if len(data) == max_bytes and size > max_bytes and kept:
        kept = kept[1:]  # the first line was cut
    return kept[-lines:]
