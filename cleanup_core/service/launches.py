"""Launching scrapers for an operator: resume a run, start a portal, or clean up its dead runs
and start it. Each is refused (nothing started) when the runs say so; each launch is audited."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cleanup_core.checkpoints import portal_slug
from cleanup_core.errors import RefusedError, RunNotFoundError
from cleanup_core.launcher import spawn
from cleanup_core.service.audit import launch_event
from cleanup_core.service.base import checked_ids, is_whole_number
from cleanup_core.service.cleaning import CleanupResult
from cleanup_core.service.judging import shared_checkpoints
from cleanup_core.service.worker import WorkerWrites
from cleanup_core.storage import events, runs
from cleanup_core.vocabulary import Action, RunState

log = logging.getLogger("cleanup_core.launcher")


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
            "action": self.action.value,
            "portal_name": self.portal_name,
            "run_id": self.run_id,
            "argv": list(self.argv),
            "pid": self.pid,
            "log_path": str(self.log_path),
            "message": self.message,
        }


@dataclass(frozen=True)
class CleanUpAndStart:
    """What "clean up & start" did: the clean-up, and the launch unless something was left
    alone (``launched`` is then ``None``) or the verdict is no longer ``cleanup``."""

    portal_name: str
    verdict: Action
    reason: str
    cleanup: CleanupResult = field(default_factory=lambda: CleanupResult((), ()))
    launched: LaunchResult | None = None

    @property
    def message(self) -> str:
        if self.verdict is not Action.CLEANUP:
            return (
                f"{self.portal_name}: the verdict changed to {self.verdict.value}: "
                f"{self.reason}. Nothing was cleaned or started."
            )
        if self.launched is None:
            alone = "; ".join(f"run {i}: {why}" for i, why in self.cleanup.left_alone.items())
            why = f" Left alone: {alone}." if alone else ""
            return f"{self.cleanup.message}.{why} Nothing was started."
        return f"{self.cleanup.message}. {self.launched.message}"


@dataclass(frozen=True)
class LaunchCommands:
    """Which launches are configured for a portal: the dashboard disables the others and says
    which setting is missing."""

    resume: bool
    start: bool


class Launching(WorkerWrites):
    """Resume, start, and clean up & start."""

    def launch_commands(self, portal_name: object) -> LaunchCommands:
        """Whether a ``resume_command`` and a ``start_command`` are set for ``portal_name``
        (its own ``[portals."..."]`` ones, else the global ones). Reads settings only."""
        name = portal_name if isinstance(portal_name, str) else ""
        return LaunchCommands(
            resume=self.settings.resume_command_for(name) is not None,
            start=self.settings.start_command_for(name) is not None,
        )

    def launch_resume(
        self, run_id: int, *, actor: str, now: datetime | None = None
    ) -> LaunchResult:
        """Start the portal's ``resume_command`` for a resumable run. Refused (nothing started)
        when the run is unknown (``RunNotFoundError``), not running, alive, or otherwise not
        resumable right now, or when no command is configured."""
        if not is_whole_number(run_id):
            raise ValueError(f"a run id must be a whole number, got {run_id!r}")
        with self.db.read() as conn:
            run = runs.runs_by_id(conn, [run_id]).get(run_id)
        if run is None:
            raise RunNotFoundError([run_id])
        if not run.is_running:
            raise RefusedError(
                f"Run {run_id} is not running (status {run.status!r}); nothing to resume."
            )
        if not isinstance(run.portal_name, str) or not run.portal_name:
            raise RefusedError(f"Run {run_id} has no portal name, so no scraper can resume it.")
        portal_name = run.portal_name
        verdict = next(
            (v for v in self.scan(portal_name=portal_name, now=now).verdicts if v.run_id == run_id),
            None,
        )
        if verdict is None:
            raise RefusedError(f"Run {run_id} stopped running just now; nothing to resume.")
        if verdict.state is not RunState.RESUMABLE:
            hint = " a worker is on it" if verdict.state is RunState.ALIVE else ""
            raise RefusedError(
                f"Run {run_id} is {verdict.state.value}, not resumable:{hint} {verdict.summary}"
            )
        self._refuse_shared_checkpoint(portal_name)
        template = self.settings.resume_command_for(portal_name)
        if template is None:
            raise RefusedError(
                f"No resume_command is configured for portal {portal_name!r}: set resume_command "
                '(or [portals."..."] resume_command) in the config file or CLEANUP_RESUME_COMMAND.'
            )
        values = {"portal": portal_name, "run_id": str(run_id)}
        return self._launch(Action.RESUME, portal_name, run_id, template, values, actor)

    def launch_start(
        self, portal_name: str, *, actor: str, now: datetime | None = None
    ) -> LaunchResult:
        """Start the ``start_command`` of the stored portal ``portal_name`` means (see
        ``match_portal``). Refused when the pre-scrape check says wait (a run is alive, may
        still be starting, or needs attention) or no command is configured; otherwise the
        started scraper's own claim starts, resumes or cleans up as the check says."""
        check = self.check_portal(portal_name, now=now)
        if check.action is Action.WAIT:
            raise RefusedError(
                f"Portal {check.portal_name!r} is busy: {check.reason}. Nothing was started."
            )
        portal_name = check.portal_name
        self._refuse_shared_checkpoint(portal_name)
        template = self.settings.start_command_for(portal_name)
        if template is None:
            raise RefusedError(
                f"No start_command is configured for portal {portal_name!r}: set start_command "
                '(or [portals."..."] start_command) in the config file or CLEANUP_START_COMMAND.'
            )
        return self._launch(
            Action.START, portal_name, None, template, {"portal": portal_name}, actor
        )

    def clean_up_and_start(
        self, portal_name: str, run_ids: Sequence[int] | None = None, *, actor: str
    ) -> CleanUpAndStart:
        """Clean the portal's dead runs ``run_ids`` (those a person saw; default: every dead
        run of it), then start it. Only while the pre-scrape check still says ``cleanup``; a
        requested run that is not one of its dead runs now (it changed since, or belongs to
        another portal) is left alone, and then nothing is started."""
        check = self.check_portal(portal_name)
        if check.action is not Action.CLEANUP:
            return CleanUpAndStart(check.portal_name, check.action, check.reason)
        requested = checked_ids(check.run_ids if run_ids is None else run_ids)
        dead = [i for i in requested if i in check.run_ids]
        result = self.cleanup_runs(dead, actor=actor)
        left_alone = {
            **{
                i: f"not a dead run of {check.portal_name!r} now"
                for i in requested
                if i not in dead
            },
            **result.left_alone,
        }
        cleanup = CleanupResult(tuple(requested), result.cleaned, left_alone)
        if left_alone or not requested:
            return CleanUpAndStart(check.portal_name, check.action, check.reason, cleanup)
        launched = self.launch_start(portal_name, actor=actor)
        return CleanUpAndStart(check.portal_name, check.action, check.reason, cleanup, launched)

    def _refuse_shared_checkpoint(self, portal_name: str) -> None:
        """A scraper of a portal that shares its checkpoint file with another stored portal
        would overwrite that one's checkpoint: nothing is started until a person renames one."""
        with self.db.read() as conn:
            names = runs.portal_names(conn)
        for group in shared_checkpoints(names):
            if portal_name in group:
                others = ", ".join(repr(name) for name in group if name != portal_name)
                raise RefusedError(
                    f"Portal {portal_name!r} shares the checkpoint file "
                    f"{portal_slug(portal_name)}.json with {others}: a scraper of one would "
                    "overwrite the other's checkpoint. Rename one of them first; nothing was "
                    "started."
                )

    def _launch(
        self,
        action: Action,
        portal_name: str,
        run_id: int | None,
        template: str,
        values: dict[str, str],
        actor: str,
    ) -> LaunchResult:
        slug = portal_slug(portal_name)
        spawned = spawn(
            self.settings,
            template,
            {**values, "portal_slug": slug},
            what=f"{action.value}_command for portal {portal_name!r}",
            log_name=f"{slug}-{run_id or action.value}",
        )
        with self.db.write() as conn:
            event = launch_event(
                action,
                run_id=run_id,
                portal_name=portal_name,
                actor=actor,
                now=self._now(conn, None),
                argv=spawned.argv,
                pid=spawned.pid,
                log_path=spawned.log_path,
            )
            events.insert_events(conn, [event])
        result = LaunchResult(
            action, portal_name, run_id, spawned.argv, spawned.pid, spawned.log_path
        )
        log.info("%s (by %s): %s", result.message, actor, " ".join(spawned.argv))
        return result


def launch_resume(
    service: Launching, run_id: int, *, actor: str, now: datetime | None = None
) -> LaunchResult:
    """The public API's name for ``CleanupService.launch_resume``."""
    return service.launch_resume(run_id, actor=actor, now=now)


def launch_start(
    service: Launching, portal_name: str, *, actor: str, now: datetime | None = None
) -> LaunchResult:
    """The public API's name for ``CleanupService.launch_start``."""
    return service.launch_start(portal_name, actor=actor, now=now)
