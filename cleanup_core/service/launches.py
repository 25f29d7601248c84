"""Launching scrapers for an operator or the monitor: resume a run, start a portal, or clean up
its dead runs and start it. Each is refused (nothing started) when the runs say so, or while an
earlier launch of the same run (of the same portal, for a start) is still *starting*: decided
under the portal's launch lock in the transaction that inserts the ``launches`` row, so a double
click, two admins or two monitors launch once. Each launch is a row (its state, exit code and
log are shown) and an audit event."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from cleanup_core.checkpoints import portal_slug
from cleanup_core.errors import LaunchError, RefusedError, RunNotFoundError
from cleanup_core.launcher import Prepared, log_tail, missing_program, prepare, spawn
from cleanup_core.records import LaunchRecord, RunFacts
from cleanup_core.service.audit import launch_event
from cleanup_core.service.base import checked_ids, is_whole_number
from cleanup_core.service.cleaning import CleanupResult
from cleanup_core.service.judging import shared_checkpoints
from cleanup_core.service.worker import WorkerWrites
from cleanup_core.storage import events, launches, runs
from cleanup_core.timestamps import duration, parse_timestamp
from cleanup_core.vocabulary import Action, LaunchState, RunState

log = logging.getLogger("cleanup_core.launcher")

# The exit code a launch is recorded with when its program could not be started (as a shell).
EXIT_NOT_STARTED = 127


@dataclass(frozen=True)
class LaunchResult:
    """A scraper process started in the background."""

    action: Action  # resume or start
    portal_name: str
    run_id: int | None
    argv: tuple[str, ...]
    pid: int
    log_path: Path
    launch_id: int = 0
    actor: str = ""

    @property
    def message(self) -> str:
        what = f"resume run {self.run_id}" if self.run_id else "start a scrape"
        return (
            f"Launch {self.launch_id}: started process {self.pid} to {what} of "
            f"{self.portal_name!r}; its output goes to {self.log_path}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "launch_id": self.launch_id,
            "actor": self.actor,
            "action": self.action.value,
            "portal_name": self.portal_name,
            "run_id": self.run_id,
            "argv": list(self.argv),
            "pid": self.pid,
            "log_path": str(self.log_path),
            "message": self.message,
        }


@dataclass(frozen=True)
class LaunchView:
    """A launch as the operator sees it: the row, its state now, and why."""

    id: int
    run_id: int | None
    portal_name: str
    action: str
    actor: str
    automatic: bool
    launched_at: datetime | None
    argv: tuple[str, ...]
    pid: int | None
    host: str | None
    log_path: str | None
    exit_code: int | None
    ended_at: datetime | None
    error: str | None
    state: LaunchState
    note: str  # why it is in that state
    log_tail: tuple[str, ...] = ()

    @property
    def what(self) -> str:
        return f"resume run {self.run_id}" if self.run_id else "start"

    def summary(self, tz: tzinfo) -> str:
        """One line: launch 5 (resume run 7) by alice at 2026-11-28 14:02, pid 1234: state."""
        when = (
            self.launched_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if self.launched_at else "?"
        )
        pid = f", pid {self.pid}" if self.pid is not None else ""
        host = f" on {self.host}" if self.host else ""
        return (
            f"launch {self.id} ({self.what}) by {self.actor} at {when}{pid}{host}: "
            f"{self.state.value} - {self.note}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run_id": self.run_id,
            "portal_name": self.portal_name,
            "action": self.action,
            "actor": self.actor,
            "automatic": self.automatic,
            "launched_at": self.launched_at.isoformat() if self.launched_at else None,
            "argv": list(self.argv),
            "pid": self.pid,
            "host": self.host,
            "log_path": self.log_path,
            "exit_code": self.exit_code,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "error": self.error,
            "state": self.state.value,
            "note": self.note,
            "log_tail": list(self.log_tail),
        }


def _time(raw: object, tz: tzinfo) -> datetime | None:
    try:
        return parse_timestamp(raw, tz)
    except ValueError:
        return None


def _argv(raw: str | None) -> tuple[str, ...]:
    try:
        value = json.loads(raw or "[]")
    except ValueError:
        return ()
    return tuple(str(arg) for arg in value) if isinstance(value, list) else ()


def launch_state(
    record: LaunchRecord,
    worked_since: datetime | None,
    *,
    now: datetime,
    backoff: timedelta,
    tz: tzinfo,
) -> tuple[LaunchState, str]:
    """A launch's state and why. ``worked_since``: the latest heartbeat or progress of its
    run (of any running run of its portal, for a start). Its exit code decides once known
    (0: succeeded; anything else: failed); before that it is *running* once its run
    heartbeated or progressed after the launch, *expired* when ``backoff`` passed without
    that, else *starting*."""
    launched = _time(record.launched_at, tz)
    if record.exit_code is not None:
        code = record.exit_code
        if code == 0:
            return LaunchState.SUCCEEDED, "the process exited with code 0"
        why = f": {record.error}" if record.error else ""
        worked = worked_since is not None and launched is not None and worked_since > launched
        after = " after its run worked" if worked else " without its run making progress"
        return LaunchState.FAILED, f"exit code {code}{why}{after if not record.error else ''}"
    if launched is None:
        return LaunchState.EXPIRED, "its launch time cannot be read"
    if worked_since is not None and worked_since > launched:
        return LaunchState.RUNNING, "its run heartbeated or made progress since the launch"
    if now - launched >= backoff:
        return (
            LaunchState.EXPIRED,
            f"no heartbeat, progress or exit within {duration(backoff)} of the launch",
        )
    return LaunchState.STARTING, "waiting for its run to heartbeat"


def _worked_since(facts: Sequence[RunFacts], tz: tzinfo) -> datetime | None:
    moments = [
        moment
        for run in facts
        for moment in (_time(run.last_heartbeat_at, tz), _time(run.last_progress_at, tz))
        if moment is not None
    ]
    return max(moments, default=None)


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
        self,
        run_id: int,
        *,
        actor: str,
        now: datetime | None = None,
        automatic: bool = False,
    ) -> LaunchResult:
        """Start the portal's ``resume_command`` for a resumable run. Refused (nothing started)
        when the run is unknown (``RunNotFoundError``), not running, alive, or otherwise not
        resumable right now, when no command is configured, or while an earlier launch of it
        is still starting. ``automatic`` (the monitor): also refused within
        ``resume_backoff_minutes`` of its previous launch and once its automatic attempts are
        used up (a person may still resume it)."""
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
        by_hand_ok = not automatic and verdict.resumable_by_hand
        if verdict.state is not RunState.RESUMABLE and not by_hand_ok:
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
        return self._launch(
            Action.RESUME, portal_name, run_id, template, values, actor, now, automatic
        )

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
            Action.START, portal_name, None, template, {"portal": portal_name}, actor, now
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
        now: datetime | None,
        automatic: bool = False,
    ) -> LaunchResult:
        """Record the launch (unless one is starting), start the process, record its pid;
        a program that cannot start is recorded as failed and raised as ``LaunchError``."""
        slug = portal_slug(portal_name)
        what = f"{action.value}_command for portal {portal_name!r}"
        prepared = prepare(
            self.settings,
            template,
            {**values, "portal_slug": slug},
            log_name=f"{slug}-{run_id or action.value}",
        )
        host = socket.gethostname()
        with self.db.write() as conn:
            launches.lock_launches(conn, slug)
            moment = self._now(conn, now)
            refusal = self._launch_refusal(conn, action, portal_name, run_id, moment, automatic)
            if refusal:
                raise RefusedError(refusal)
            launch_id = launches.insert_launch(
                conn,
                {
                    "run_id": run_id,
                    "portal_name": portal_name,
                    "action": action.value,
                    "actor": actor,
                    "automatic": automatic,
                    "launched_at": moment,
                    "argv": json.dumps(list(prepared.argv)),
                    "host": host,
                    "log_path": str(prepared.log_path),
                },
            )
        problem = missing_program(prepared.argv)
        if problem is not None:
            self._not_started(
                action, portal_name, run_id, actor, prepared, launch_id, automatic, problem
            )
            raise LaunchError(
                f"Could not start the {what} ({' '.join(prepared.argv)}): {problem} "
                f"(recorded as failed launch {launch_id})"
            )
        try:
            spawned = spawn(self.settings, prepared, launch_id=launch_id, what=what)
        except LaunchError as exc:
            self._not_started(
                action, portal_name, run_id, actor, prepared, launch_id, automatic, str(exc)
            )
            raise
        with self.db.write() as conn:
            launches.record_spawned(conn, launch_id, spawned.pid)
            event = launch_event(
                action,
                run_id=run_id,
                portal_name=portal_name,
                actor=actor,
                now=self._now(conn, now),
                argv=spawned.argv,
                pid=spawned.pid,
                log_path=spawned.log_path,
                launch_id=launch_id,
                automatic=automatic,
            )
            events.insert_events(conn, [event])
        result = LaunchResult(
            action,
            portal_name,
            run_id,
            spawned.argv,
            spawned.pid,
            spawned.log_path,
            launch_id,
            actor,
        )
        log.info("%s (by %s): %s", result.message, actor, " ".join(spawned.argv))
        return result

    def _not_started(
        self,
        action: Action,
        portal_name: str,
        run_id: int | None,
        actor: str,
        prepared: Prepared,
        launch_id: int,
        automatic: bool,
        problem: str,
    ) -> None:
        """A launch whose program could not start: failed, exit code 127, with the reason in
        its log file, its row and its audit event."""
        try:
            prepared.log_path.parent.mkdir(parents=True, exist_ok=True)
            with prepared.log_path.open("a", encoding="utf-8") as output:
                output.write(f"[launch {launch_id}] could not start: {problem}\n")
        except OSError:
            pass  # the row and the audit event say it
        with self.db.write() as conn:
            moment = self._now(conn, None)
            launches.record_end(
                conn, launch_id, exit_code=EXIT_NOT_STARTED, ended_at=moment, error=problem
            )
            event = launch_event(
                action,
                run_id=run_id,
                portal_name=portal_name,
                actor=actor,
                now=moment,
                argv=prepared.argv,
                pid=None,
                log_path=prepared.log_path,
                launch_id=launch_id,
                automatic=automatic,
                error=problem,
            )
            events.insert_events(conn, [event])
        # The caller reports the LaunchError raised next (the CLI's error line, the dashboard's
        # toast, the monitor's log and notice); an error line here would say it twice.
        log.info("launch %d of %r could not start: %s", launch_id, portal_name, problem)

    def _launch_refusal(
        self,
        conn: Connection,
        action: Action,
        portal_name: str,
        run_id: int | None,
        now: datetime,
        automatic: bool,
    ) -> str | None:
        """Why a launch must not happen now (inside the launch lock), or ``None``: an earlier
        launch of the run (a start: of the portal) is still starting; for the monitor, also a
        launch of the run less than ``resume_backoff_minutes`` ago."""
        if run_id is not None:
            found = launches.latest_launches(conn, run_id=run_id, limit=1)
        else:
            found = launches.latest_launches(
                conn, portal_name=portal_name, action=Action.START, limit=1
            )
        if not found:
            return None
        view = self._view(conn, found[0], now)
        backoff = self.settings.resume_backoff_for(portal_name)
        tz = self.settings.timezone
        since = view.launched_at.astimezone(tz).strftime("%H:%M") if view.launched_at else "?"
        who = "resumed" if run_id is not None else "started"
        subject = f"Run {run_id}" if run_id is not None else f"Portal {portal_name!r}"
        if view.state is LaunchState.STARTING:
            pid = f"pid {view.pid}" if view.pid is not None else "its process is starting"
            wait = "it heartbeats" if run_id is not None else "its run heartbeats"
            return (
                f"{subject} is already being {who} by {view.actor} since {since} ({pid}); "
                f"wait until {wait} or {duration(backoff)} pass (launch {view.id})."
            )
        if automatic and view.launched_at is not None and now - view.launched_at < backoff:
            return (
                f"{subject} was launched at {since} by {view.actor} (launch {view.id}, "
                f"{view.state.value}); the monitor waits resume_backoff_minutes "
                f"({duration(backoff)}) between launches of one run."
            )
        return None

    def _view(
        self, conn: Connection, record: LaunchRecord, now: datetime, *, tail: bool = False
    ) -> LaunchView:
        tz = self.settings.timezone
        if record.run_id is not None:
            facts = list(runs.runs_by_id(conn, [record.run_id]).values())
        else:
            facts = runs.running_facts(conn, portal_name=record.portal_name)
        state, note = launch_state(
            record,
            _worked_since(facts, tz),
            now=now,
            backoff=self.settings.resume_backoff_for(record.portal_name),
            tz=tz,
        )
        return LaunchView(
            id=record.id,
            run_id=record.run_id,
            portal_name=record.portal_name,
            action=record.action,
            actor=record.actor,
            automatic=bool(record.automatic),
            launched_at=_time(record.launched_at, tz),
            argv=_argv(record.argv),
            pid=record.pid,
            host=record.host,
            log_path=record.log_path,
            exit_code=record.exit_code,
            ended_at=_time(record.ended_at, tz),
            error=record.error,
            state=state,
            note=note,
            log_tail=tuple(log_tail(record.log_path)) if tail else (),
        )

    def check_auto_resume_settings(self) -> None:
        """``ConfigError`` naming the portal when auto_resume is on for a stored or configured
        portal that has no resume_command."""
        with self.db.read() as conn:
            names = runs.portal_names(conn)
        self.settings.check_auto_resume(names)

    def finish_launch(self, launch_id: int, *, exit_code: int, error: str | None = None) -> bool:
        """The launched process ended with ``exit_code`` (``launch_wrapper`` calls this).
        ``False`` when the launch is unknown or its end was recorded already."""
        if not is_whole_number(launch_id) or not is_whole_number(exit_code):
            raise ValueError("a launch id and an exit code must be whole numbers")
        with self.db.write() as conn:
            return launches.record_end(
                conn,
                launch_id,
                exit_code=exit_code,
                ended_at=self._now(conn, None),
                error=error,
            )

    def list_launches(
        self,
        *,
        run_id: int | None = None,
        portal_name: str | None = None,
        limit: int = 50,
        now: datetime | None = None,
        tail: bool = False,
    ) -> list[LaunchView]:
        """Recent launches, newest first (of one run or portal), each with its state now;
        ``tail``: with the last lines of its log file."""
        if run_id is not None and not is_whole_number(run_id):
            raise ValueError(f"a run id must be a whole number, got {run_id!r}")
        if not is_whole_number(limit) or not 1 <= limit <= 1000:
            raise ValueError(f"limit must be a whole number from 1 to 1000, got {limit!r}")
        with self.db.read() as conn:
            moment = self._now(conn, now)
            found = launches.latest_launches(
                conn, run_id=run_id, portal_name=portal_name, limit=limit
            )
            return [self._view(conn, record, moment, tail=tail) for record in found]

    def latest_launch(
        self,
        *,
        run_id: int | None = None,
        portal_name: str | None = None,
        now: datetime | None = None,
    ) -> LaunchView | None:
        """The latest launch of a run or portal, with the last lines of its log."""
        found = self.list_launches(
            run_id=run_id, portal_name=portal_name, limit=1, now=now, tail=True
        )
        return found[0] if found else None

    def latest_launches_by_portal(
        self, portal_names: Sequence[str], *, now: datetime | None = None
    ) -> dict[str, LaunchView]:
        """The latest launch of each portal that has one, with the last lines of its log."""
        names = [name for name in dict.fromkeys(portal_names) if isinstance(name, str)]
        with self.db.read() as conn:
            moment = self._now(conn, now)
            found = launches.latest_per_portal(conn, names)
            return {
                name: self._view(conn, record, moment, tail=True) for name, record in found.items()
            }


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
