"""Starting a scraper for an operator: resume a run, or start a portal, in a detached process.

The command comes from the settings (``resume_command`` / ``start_command``, globally or per
portal), e.g. ``{python} examples/demo_scraper.py --portal {portal} --resume {run_id}``, where
``{python}`` is this Python and ``{portal_slug}`` the portal's file-name form. The template is
split into arguments first and the placeholders are filled in per argument, and the process is
started without a shell, so a hostile portal name is always exactly one argument.
Relative paths in a command are relative to the launcher's working directory; the process gets
the launcher's database, checkpoint folder and config file through ``CLEANUP_*`` variables.
The launched scraper claims its run through ``tracker.track_run`` like any other worker, so two
launches for one run still leave one worker on it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cleanup_core import repository
from cleanup_core.checkpoints import portal_slug
from cleanup_core.classify import Action, RunState
from cleanup_core.config import command_argv
from cleanup_core.errors import CleanupError, RefusedError, RunNotFoundError
from cleanup_core.service import CleanupService
from cleanup_core.vocabulary import AuditAction, RunStatus

log = logging.getLogger("cleanup_core.launcher")

# ``run_events.run_id`` of a launch that has no run yet (a start); its portal names it.
NO_RUN = 0
LAUNCHED = {Action.RESUME: AuditAction.RESUME_LAUNCHED, Action.START: AuditAction.START_LAUNCHED}


class LaunchError(CleanupError):
    """The configured command could not be started (e.g. the program does not exist)."""


@dataclass(frozen=True)
class LaunchResult:
    """A scraper process started in the background."""

    action: Action  # resume or start
    portal_name: str
    run_id: int | None
    argv: tuple[str, ...]
    pid: int
    log_path: Path

    @property
    def message(self) -> str:
        what = f"resume run {self.run_id}" if self.run_id else "start a scrape"
        return (
            f"Started process {self.pid} to {what} of {self.portal_name!r}; "
            f"its output goes to {self.log_path}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "portal_name": self.portal_name,
            "run_id": self.run_id,
            "argv": list(self.argv),
            "pid": self.pid,
            "log_path": str(self.log_path),
            "message": self.message,
        }


def launch_resume(
    service: CleanupService, run_id: int, *, actor: str, now: datetime | None = None
) -> LaunchResult:
    """Start the portal's ``resume_command`` for a resumable run. Refused (nothing started)
    when the run is unknown (``RunNotFoundError``), not running, alive, or otherwise not
    resumable right now, or when no command is configured."""
    if isinstance(run_id, bool) or not isinstance(run_id, int):
        raise ValueError(f"a run id must be a whole number, got {run_id!r}")
    with service.db.read() as conn:
        found = repository.run_statuses(conn, [run_id])
    if run_id not in found:
        raise RunNotFoundError([run_id])
    status = found[run_id]
    if status.status != RunStatus.RUNNING:
        raise RefusedError(
            f"Run {run_id} is not running (status {status.status!r}); nothing to resume."
        )
    if not status.portal_name:
        raise RefusedError(f"Run {run_id} has no portal name, so no scraper can resume it.")
    portal_name = status.portal_name
    verdict = next(
        (v for v in service.scan(portal_name=portal_name, now=now).verdicts if v.run_id == run_id),
        None,
    )
    if verdict is None:
        raise RefusedError(f"Run {run_id} stopped running just now; nothing to resume.")
    if verdict.state is not RunState.RESUMABLE:
        hint = " a worker is on it" if verdict.state is RunState.ALIVE else ""
        raise RefusedError(
            f"Run {run_id} is {verdict.state.value}, not resumable:{hint} {verdict.summary}"
        )
    template = service.settings.resume_command_for(portal_name)
    if template is None:
        raise RefusedError(
            f"No resume_command is configured for portal {portal_name!r}: set resume_command "
            '(or [portals."..."] resume_command) in the config file or CLEANUP_RESUME_COMMAND.'
        )
    values = {"portal": portal_name, "portal_slug": portal_slug(portal_name), "run_id": str(run_id)}
    return _launch(service, Action.RESUME, portal_name, run_id, template, values, actor)


def launch_start(
    service: CleanupService, portal_name: str, *, actor: str, now: datetime | None = None
) -> LaunchResult:
    """Start the portal's ``start_command``. Refused when the pre-scrape check says wait (a run
    is alive, may still be starting, or needs attention) or no command is configured; otherwise
    the started scraper's own claim starts, resumes or cleans up as the check says."""
    check = service.check_portal(portal_name, now=now)
    if check.action is Action.WAIT:
        raise RefusedError(f"Portal {portal_name!r} is busy: {check.reason}. Nothing was started.")
    template = service.settings.start_command_for(portal_name)
    if template is None:
        raise RefusedError(
            f"No start_command is configured for portal {portal_name!r}: set start_command "
            '(or [portals."..."] start_command) in the config file or CLEANUP_START_COMMAND.'
        )
    values = {"portal": portal_name, "portal_slug": portal_slug(portal_name)}
    return _launch(service, Action.START, portal_name, None, template, values, actor)


def _launch(
    service: CleanupService,
    action: Action,
    portal_name: str,
    run_id: int | None,
    template: str,
    values: dict[str, str],
    actor: str,
) -> LaunchResult:
    settings = service.settings
    argv = command_argv(template, {**values, "python": sys.executable})
    log_dir = settings.launch_log_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    log_path = log_dir / f"{values['portal_slug']}-{run_id or action}-{stamp}.log"
    # The scraper uses the same database and checkpoint folder as the launcher, even when
    # those came from command-line flags rather than the environment.
    env = {
        **os.environ,
        "CLEANUP_DATABASE_URL": settings.database_url,
        "CLEANUP_CHECKPOINT_DIR": str(settings.checkpoint_dir),
    }
    if settings.config_file is not None:
        env["CLEANUP_CONFIG"] = str(settings.config_file)
    detach: dict[str, Any] = (
        {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS}
        if os.name == "nt"
        else {"start_new_session": True}
    )
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
            raise LaunchError(
                f"Could not start the {action}_command for portal {portal_name!r} "
                f"({' '.join(argv)}): {exc}"
            ) from exc
    # Reap the child when it ends, so a long-lived launcher (the dashboard) leaves no zombies.
    threading.Thread(target=process.wait, name=f"reap-{process.pid}", daemon=True).start()
    with service.db.write() as conn:
        repository.insert_events(
            conn,
            [
                {
                    "run_id": run_id or NO_RUN,
                    "portal_name": portal_name,
                    "action": LAUNCHED[action],
                    "actor": actor,
                    "from_status": RunStatus.RUNNING if run_id else None,
                    "to_status": RunStatus.RUNNING if run_id else None,
                    "created_at": repository.database_now(conn),
                    "details": json.dumps(
                        {"argv": argv, "pid": process.pid, "log_path": str(log_path)}
                    ),
                }
            ],
        )
    result = LaunchResult(action, portal_name, run_id, tuple(argv), process.pid, log_path)
    log.info("%s (by %s): %s", result.message, actor, " ".join(argv))
    return result
