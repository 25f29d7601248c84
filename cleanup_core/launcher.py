"""Starting a scraper process for an operator, detached, with its output in a log file.

The command comes from the settings (``resume_command`` / ``start_command``, globally or per
portal), e.g. ``{python} examples/demo_scraper.py --portal {portal} --resume {run_id}``, where
``{python}`` is this Python and ``{portal_slug}`` the portal's file-name form. The template is
split into arguments first and the placeholders are filled in per argument, and the process is
started without a shell, so a hostile portal name is always exactly one argument.
Relative paths in a command are relative to the launcher's working directory; the process gets
the launcher's database, checkpoint folder and config file through ``CLEANUP_*`` variables.

Only the process is started here; whether it may be (the run is resumable, the portal is not
busy) and the audit event are the service's (``CleanupService.launch_resume`` /
``launch_start``). The launched scraper claims its run through ``tracker.track_run`` like any
other worker, so two launches for one run still leave one worker on it.
"""

from __future__ import annotations

import logging
import os
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
class Spawned:
    """A scraper process started in the background."""

    argv: tuple[str, ...]
    pid: int
    log_path: Path


def spawn(
    settings: Settings, template: str, values: Mapping[str, str], *, what: str, log_name: str
) -> Spawned:
    """Start ``template`` with ``values`` filled in (and ``{python}``), detached from this
    process, its output appended to a new log file named after ``log_name`` in the launch log
    folder. ``what`` names the command in an error (``LaunchError``) when it cannot start."""
    argv = command_argv(template, {**values, "python": sys.executable})
    log_dir = settings.launch_log_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    log_path = log_dir / f"{log_name}-{stamp}.log"
    # The scraper uses the same database and checkpoint folder as the launcher, even when
    # those came from command-line flags rather than the environment.
    env = {
        **os.environ,
        "CLEANUP_DATABASE_URL": settings.database_url,
        "CLEANUP_CHECKPOINT_DIR": str(settings.checkpoint_dir),
    }
    if settings.config_file is not None:
        env["CLEANUP_CONFIG"] = str(settings.config_file)
    detach: dict[str, Any] = {"start_new_session": True}
    if sys.platform == "win32":
        detach = {
            "creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS
        }
    with log_path.open("ab") as output:
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                **detach,
            )
        except OSError as exc:
            raise LaunchError(f"Could not start the {what} ({' '.join(argv)}): {exc}") from exc
    # Reap the child when it ends, so a long-lived launcher (the dashboard) leaves no zombies.
    threading.Thread(target=process.wait, name=f"reap-{process.pid}", daemon=True).start()
    log.info("started process %d: %s", process.pid, " ".join(argv))
    return Spawned(tuple(argv), process.pid, log_path)
