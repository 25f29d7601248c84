"""``python -m cleanup_core``: scan, clean, status, check, revert, history and delete stuck runs.

For people (tables, colour on a terminal, prompts) and for schedulers (``--json`` on stdout, logs
on stderr, no prompts without a terminal, exit codes to alert on). Every command calls the same
service functions as the dashboard.

Exit codes: 0 done; 1 the operation failed (database, unknown run, refused); 2 usage (bad flag,
bad setting, a prompt needed but no terminal); 3 ``status --fail-if-dead`` found dead runs;
130 interrupted.
"""

from __future__ import annotations

import getpass
import json
import logging
import shlex
import socket
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, wraps
from typing import Any, NoReturn

import click
from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cleanup_core.accounts import ADMIN, ROLES, Accounts
from cleanup_core.alerts import CycleReport, Monitor, run_forever
from cleanup_core.classify import Verdict
from cleanup_core.config import MIN_SAFE_THRESHOLD_HOURS, Settings, validate_threshold_hours
from cleanup_core.db import SCHEMA_VERSION
from cleanup_core.demo import load_demo
from cleanup_core.display import SafeLogFormatter, counter_text, safe_lines, safe_text
from cleanup_core.errors import CleanupError, ConfigError
from cleanup_core.metrics import render, serve
from cleanup_core.numbers import run_id_from_text
from cleanup_core.service import (
    BATCH_SIZE,
    CleanupInterrupted,
    CleanupResult,
    CleanupService,
    LaunchResult,
    StuckRunSummary,
)
from cleanup_core.vocabulary import Action, AuditAction, CheckpointSource, CycleOutcome

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DEAD_RUNS = 3
EXIT_INTERRUPTED = 130

log = logging.getLogger("cleanup_core.cli")

ACTION_COLOURS = {
    Action.START: "green",
    Action.RESUME: "yellow",
    Action.CLEANUP: "red",
    Action.WAIT: "cyan",
}


class UsageProblem(click.UsageError):
    """A problem with how the command was called; exit code 2."""


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


@dataclass
class App:
    """What every command needs: settings, the service, and where output goes."""

    settings: Settings
    as_json: bool
    verbose: bool
    age_hours: float | None
    force: bool = False
    out: Console = field(init=False)
    err: Console = field(init=False)

    def __post_init__(self) -> None:
        stdout, stderr = sys.stdout, sys.stderr
        # Piped output (cron mail, log files) gets wide lines instead of 80-column folding.
        width = None if stdout.isatty() else 160
        self.out = Console(file=stdout, highlight=False, soft_wrap=False, width=width)
        self.err = Console(file=stderr, highlight=False, width=None if stderr.isatty() else 160)

    @cached_property
    def service(self) -> CleanupService:
        return CleanupService(self.settings)

    def close(self) -> None:
        if "service" in self.__dict__:  # only if a command opened the database
            self.service.close()

    @property
    def actor(self) -> str:
        return _actor()

    def emit_json(self, payload: Any) -> None:
        click.echo(json.dumps(payload, indent=2, default=str))

    @property
    def interactive(self) -> bool:
        return sys.stdin.isatty() and not self.as_json


def _parse_age_hours(value: str | None, force: bool) -> float | None:
    if value is None:
        return None
    try:
        hours = validate_threshold_hours(value, "--age-hours")
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    if hours < MIN_SAFE_THRESHOLD_HOURS and not force:
        raise UsageProblem(
            f"--age-hours {value} is below {MIN_SAFE_THRESHOLD_HOURS:g} hours: large portals "
            "often run that long without a heartbeat, so healthy runs could be judged dead "
            "(false positives). Add --force if you are sure."
        )
    return hours


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeLogFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("cleanup_core")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    root.propagate = False


def common_options() -> Callable[[Callable[..., Any]], Any]:
    """The options every command takes; the command receives an ``App`` as its first argument."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @click.option(
            "--db",
            "database_url",
            metavar="URL",
            help="Database URL "
            "(sqlite:///path or postgresql+psycopg://...); default CLEANUP_DATABASE_URL.",
        )
        @click.option(
            "--checkpoint-dir",
            metavar="DIR",
            help="Checkpoint folder; default CLEANUP_CHECKPOINT_DIR.",
        )
        @click.option(
            "--config",
            "config_file",
            metavar="FILE",
            help="TOML settings file; default CLEANUP_CONFIG.",
        )
        @click.option(
            "--age-hours",
            metavar="N",
            help="Age threshold in hours (default from settings, 24). Below 12 needs --force.",
        )
        @click.option(
            "--force",
            is_flag=True,
            help="Allow an --age-hours below 12 (init and demo: set up a database that holds "
            "another application's tables; demo: load into one that holds other runs).",
        )
        @click.option(
            "--json",
            "as_json",
            is_flag=True,
            help="Machine-readable output on stdout (logs go to stderr).",
        )
        @click.option("-v", "--verbose", is_flag=True, help="Log each action; show tracebacks.")
        @wraps(command)
        def wrapper(
            database_url: str | None,
            checkpoint_dir: str | None,
            config_file: str | None,
            age_hours: str | None,
            force: bool,
            as_json: bool,
            verbose: bool,
            **kwargs: Any,
        ) -> Any:
            _configure_logging(verbose)
            hours = _parse_age_hours(age_hours, force)
            try:
                settings = Settings.load(
                    config_file=config_file,
                    database_url=database_url,
                    checkpoint_dir=checkpoint_dir,
                )
            except ConfigError as exc:
                raise UsageProblem(str(exc)) from None
            app = App(settings, as_json, verbose, hours, force)
            try:
                return command(app, **kwargs)
            finally:
                app.close()

        return wrapper

    return decorate


class CleanupCLI(click.Group):
    """Turns every error into one line on stderr and an exit code (tracebacks with -v)."""

    def main(self, args: Sequence[str] | None = None, *pargs: Any, **kwargs: Any) -> NoReturn:
        argv = list(sys.argv[1:] if args is None else args)
        verbose = "-v" in argv or "--verbose" in argv
        kwargs["standalone_mode"] = False
        try:
            code = super().main(argv, *pargs, **kwargs)
        except click.UsageError as exc:
            hint = f" (see --help of {exc.ctx.command_path})" if exc.ctx else ""
            _fail(f"{exc.format_message()}{hint}", EXIT_USAGE, verbose)
        except click.Abort:
            _fail("interrupted; nothing was changed by the unanswered prompt", EXIT_INTERRUPTED)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code, verbose)
        except KeyboardInterrupt:
            _fail("interrupted", EXIT_INTERRUPTED)
        except (CleanupError, ValueError) as exc:
            _fail(str(exc), EXIT_FAILED, verbose)
        sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int, verbose: bool = False) -> NoReturn:
    if verbose:
        click.echo(safe_lines(traceback.format_exc()), err=True, nl=False)
    click.echo(f"error: {safe_text(message)}", err=True)
    sys.exit(code)


@click.group(cls=CleanupCLI, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Find, resume and safely clean up tender-scraper runs stuck in 'running'.

    Runs are judged alive (fresh heartbeat), young (may still be starting), resumable (progress
    or a checkpoint with tenders), dead (none of that, older than the threshold) or attention
    (cannot be judged safely). Only dead runs are ever cleaned automatically, and a clean-up only
    marks them 'Timeout - Auto-cleaned' - nothing is deleted unless you ask.
    """


# -- output ---------------------------------------------------------------------------------


def _shown(text: str) -> str:
    """Stored text (portal names, reasons, actors) for a Rich line or table cell: control and
    bidi characters shown as escapes, and Rich's own markup taken literally."""
    return escape(safe_text(text))


def _checkpoint_cell(verdict: Verdict) -> str:
    info = verdict.checkpoint
    if info.status.is_problem:
        return f"[red]{info.status.value}[/red]"
    if verdict.checkpoint_tenders:
        where = " (db)" if info.source is CheckpointSource.DATABASE else ""
        return f"{verdict.checkpoint_tenders} tenders{where}"
    if info.names_other_run(verdict.run_id):
        return f"run {info.run_id}'s"
    return "-"


def _age_cell(verdict: Verdict) -> str:
    return "?" if verdict.age_hours is None else f"{verdict.age_hours:.1f} h"


def _counter_cell(recorded: bool, value: int | None) -> str:
    return counter_text(recorded, value)  # the dashboard shows counters the same way


def _runs_table(title: str, verdicts: Sequence[Verdict], style: str) -> Table:
    table = Table(title=f"{title} ({len(verdicts)})", title_style=style, title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("id", "right"),
        ("portal", "left"),
        ("age", "right"),
        ("extracted", "right"),
        ("skipped", "right"),
        ("checkpoint", "left"),
        ("reasons", "left"),
    )
    for column, justify in columns:
        table.add_column(column, justify=justify, overflow="fold")
    for v in verdicts:
        table.add_row(
            str(v.run_id),
            _shown(v.portal_name or ""),
            _age_cell(v),
            _counter_cell(v.extracted_recorded, v.extracted),
            _counter_cell(v.skipped_recorded, v.skipped),
            _checkpoint_cell(v),
            _shown(v.summary),
        )
    return table


def _print_notes(app: App, summary: StuckRunSummary) -> None:
    for note in summary.notes:
        app.out.print(f"[yellow]{escape(note)}[/yellow]")


def _print_summary(app: App, summary: StuckRunSummary) -> None:
    out = app.out
    for title, verdicts, style in (
        ("Resumable runs - kept; resume them", summary.resumable, "bold yellow"),
        ("Dead runs - a clean-up marks these 'Timeout - Auto-cleaned'", summary.dead, "bold red"),
        ("Needs attention - never cleaned automatically", summary.attention, "bold magenta"),
    ):
        if verdicts:
            out.print(_runs_table(title, verdicts, style))
        else:
            out.print(f"[{style}]{title}: none[/{style}]")
        out.print()
    stalled = summary.stalled
    if stalled:
        out.print(f"[bold yellow]Stalled - alive but not getting anywhere ({len(stalled)})[/]")
        for v in stalled:
            assert v.stall is not None
            out.print(
                f"  run {v.run_id} ({_shown(v.portal_name or '')}): {_shown(v.stall.message)}"
            )
        out.print()
    counts = summary.to_dict()
    out.print(
        f"Running: {counts['running_count']}  alive: {counts['alive_count']}  "
        f"young: {counts['young_count']}  resumable: {counts['resumable_count']}  "
        f"dead: {counts['dead_count']}  attention: {counts['attention_count']}  "
        f"(total stuck: {counts['total_stuck']}; {_threshold_note(summary)})"
    )
    _print_notes(app, summary)


def _threshold_note(summary: StuckRunSummary) -> str:
    """The threshold the runs were judged by, or that it differs per portal (learned or
    configured: each run's reasons say which)."""
    used = {(v.policy.age_threshold_hours, v.policy.threshold_source) for v in summary.verdicts}
    if len(used) <= 1:
        hours = next(iter(used))[0] if used else summary.age_threshold_hours
        return f"threshold {f'{hours:.2f}'.rstrip('0').rstrip('.')} h"
    return "thresholds differ per portal: see each run's reasons"


def _print_result(app: App, result: CleanupResult) -> None:
    style = "green" if len(result.cleaned) == len(result.requested) else "yellow"
    app.out.print(f"[{style}]{result.message}[/{style}]")
    for run_id, why in result.left_alone.items():
        app.out.print(f"  left run {run_id} alone: {_shown(why)}")


# -- commands -------------------------------------------------------------------------------


@cli.command()
@common_options()
def scan(app: App) -> None:
    """Show resumable and dead runs (read-only; the same as 'clean --dry-run', whose --json
    adds "dry_run": true)."""
    summary = app.service.scan(app.age_hours)
    if app.as_json:
        app.emit_json(summary.to_dict())
    else:
        _print_summary(app, summary)


@cli.command()
@common_options()
def thresholds(app: App) -> None:
    """Each portal's completed runs in the last history_days (count, p50 / p95 / p99 and
    longest duration), its learned threshold and the threshold in effect now, with its source
    (default, config or learned). Read-only."""
    if app.age_hours is not None:
        raise UsageProblem(
            "thresholds shows the thresholds in effect without a request; --age-hours does not "
            "apply"
        )
    rows = app.service.thresholds()
    if app.as_json:
        app.emit_json([row.to_dict() for row in rows])
        return
    settings = app.settings
    table = Table(
        title=(
            f"Thresholds (completed runs of the last {settings.history_days} days; learned "
            f"with at least {settings.min_history_runs}; adaptive_thresholds "
            f"{'on' if settings.adaptive_thresholds else 'off'})"
        ),
        title_justify="left",
    )
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("portal", "left"),
        ("completed", "right"),
        ("p50 min", "right"),
        ("p95 min", "right"),
        ("p99 min", "right"),
        ("longest min", "right"),
        ("learned h", "right"),
        ("threshold h", "right"),
        ("source", "left"),
    )
    for column, justify in columns:
        table.add_column(column, justify=justify, overflow="fold")
    for row in rows:
        data = row.to_dict()
        table.add_row(
            _shown(row.portal_name),
            str(data["completed_runs"]),
            *(_number_cell(data[key]) for key in _STAT_KEYS),
            _number_cell(data["learned_threshold_hours"]),
            _number_cell(data["threshold_hours"]),
            data["source"] + ("" if row.adaptive else " (adaptive off)"),
        )
    app.out.print(table)
    if not rows:
        app.out.print("No runs stored yet.")


_STAT_KEYS = ("p50_minutes", "p95_minutes", "p99_minutes", "longest_minutes")


def _number_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _clean(app: App, run_ids: list[int]) -> CleanupResult:
    """Clean the runs (the service works in batches, each its own transaction), with a
    progress bar on a terminal when there is more than one batch."""
    show_bar = len(run_ids) > BATCH_SIZE and app.out.is_terminal and not app.as_json
    with Progress(
        TextColumn("cleaning"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=app.out,
        disable=not show_bar,
    ) as progress:
        task = progress.add_task("clean", total=len(run_ids))
        try:
            return app.service.cleanup_runs(
                run_ids,
                actor=app.actor,
                age_threshold_hours=app.age_hours,
                progress=lambda done, _: progress.update(task, completed=done),
            )
        except CleanupInterrupted as interrupted:
            app.err.print(str(interrupted))
            raise


def _delete_dead(app: App, run_ids: list[int]) -> None:
    """Delete dead run records: clean them (compare-and-set) first, then delete those."""
    cleaned = _clean(app, run_ids)
    deleted = app.service.delete_runs(cleaned.cleaned, confirm=True, actor=app.actor)
    app.out.print(
        f"[green]Deleted {deleted}/{len(run_ids)} dead run records[/green] (tenders kept)"
    )
    for run_id, why in cleaned.left_alone.items():
        app.out.print(f"  left run {run_id} alone: {_shown(why)}")


@cli.command()
@click.option("--auto", is_flag=True, help="Clean dead runs without asking (for schedulers).")
@click.option("--dry-run", is_flag=True, help="Show what would be cleaned; change nothing.")
@common_options()
def clean(app: App, auto: bool, dry_run: bool) -> None:
    """Clean dead runs: interactive by default, --auto for schedulers, --dry-run to preview.

    Only dead runs are cleaned; a run that changed since the scan is left alone.
    """
    if auto and dry_run:
        raise UsageProblem("--auto and --dry-run contradict each other; pick one")
    if not (auto or dry_run) and not app.interactive:
        raise UsageProblem(
            "no terminal to ask on: use --auto to clean dead runs without prompts, or "
            "--dry-run to only show them"
        )
    summary = app.service.scan(app.age_hours)
    dead = [v.run_id for v in summary.dead]
    if dry_run:
        if app.as_json:
            app.emit_json({**summary.to_dict(), "dry_run": True})
        else:
            _print_summary(app, summary)
            app.out.print(f"Dry run: {len(dead)} dead runs would be cleaned; nothing was changed.")
        return
    if auto:
        result = _clean(app, dead)
        if app.as_json:
            app.emit_json({"dry_run": False, **result.to_dict(), "notes": list(summary.notes)})
        else:
            _print_notes(app, summary)
            _print_result(app, result)
        return
    _print_summary(app, summary)
    if not dead:
        app.out.print("Nothing to clean.")
        return
    app.out.print()
    app.out.print(f"What should happen to the {len(dead)} dead runs?")
    app.out.print("  1) clean them up (mark 'Timeout - Auto-cleaned'; can be reverted)")
    app.out.print("  2) delete their run records (permanent; tenders are kept)")
    app.out.print("  3) cancel")
    choice = click.prompt("Choice", type=click.Choice(["1", "2", "3"]), default="3")
    if choice == "1":
        _print_result(app, _clean(app, dead))
    elif choice == "2":
        typed = click.prompt(
            f"Deleting is permanent. Type the number of runs to delete ({len(dead)}) to confirm",
            default="",
            show_default=False,
        )
        if typed.strip() != str(len(dead)):
            app.out.print("Not confirmed; nothing was deleted.")
            return
        _delete_dead(app, dead)
    else:
        app.out.print("Cancelled; nothing was changed.")


@cli.command()
@click.option("--fail-if-dead", is_flag=True, help="Exit with code 3 when dead runs exist.")
@common_options()
def status(app: App, fail_if_dead: bool) -> None:
    """Count dead and resumable runs (exit code 3 with --fail-if-dead when any are dead)."""
    scanned = app.service.scan(app.age_hours)
    summary = scanned.to_dict()
    counts = {
        key: summary[key]
        for key in (
            "dead_count",
            "resumable_count",
            "attention_count",
            "alive_count",
            "young_count",
            "running_count",
            "total_stuck",
            "age_threshold_hours",
            "notes",
        )
    }
    monitor = Monitor(app.service).status()
    if app.as_json:
        app.emit_json(
            {
                **counts,
                "monitor": {
                    "last_check": _iso(monitor.last_check),
                    "next_check": _iso(monitor.next_check),
                    "outcome": monitor.outcome,
                    "late": monitor.late,
                    "never_ran": monitor.never_ran,
                },
            }
        )
    else:
        style = "red" if counts["dead_count"] else "green"
        app.out.print(f"[{style}]Dead runs: {counts['dead_count']}[/{style}]")
        app.out.print(f"Resumable runs: {counts['resumable_count']}")
        app.out.print(f"Needing attention: {counts['attention_count']}")
        app.out.print(
            f"Running: {counts['running_count']} (alive {counts['alive_count']}, "
            f"young {counts['young_count']})"
        )
        line = monitor.describe(app.settings.timezone)
        app.out.print(f"[red]{_shown(line)}[/red]" if monitor.late else _shown(line))
        _print_notes(app, scanned)
    if fail_if_dead and counts["dead_count"]:
        sys.exit(EXIT_DEAD_RUNS)


@cli.command()
@click.argument("portal")
@common_options()
def check(app: App, portal: str) -> None:
    """The pre-scrape verdict for PORTAL: start, resume, cleanup or wait, with the reason.

    A name that differs from a stored portal only by case, spacing or punctuation is that
    portal (they share a checkpoint file); the output names the stored portal."""
    verdict = app.service.check_portal(portal, app.age_hours)
    if app.as_json:
        app.emit_json(verdict.to_dict())
        return
    action = verdict.action.value
    reason = _shown(verdict.reason)
    colour = ACTION_COLOURS[verdict.action]
    app.out.print(f"[bold {colour}]{action}[/bold {colour}]: {reason}")
    if verdict.requested_name is not None:
        asked = f"portal: {verdict.portal_name} (asked for {verdict.requested_name!r})"
        app.out.print(_shown(asked))
    if verdict.run_ids:
        app.out.print(f"runs: {', '.join(map(str, verdict.run_ids))}")


def _run_id(value: str) -> int:
    try:
        return run_id_from_text(value)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None


@cli.command()
@click.argument("run_id")
@common_options()
def revert(app: App, run_id: str) -> None:
    """Undo the latest clean-up of RUN_ID (previous status and completed_at come back)."""
    result = app.service.revert(_run_id(run_id), actor=app.actor)
    if app.as_json:
        app.emit_json(result.to_dict())
    elif result.reverted:
        app.out.print(f"[green]{escape(result.message)}[/green]")
    if not result.reverted:
        raise click.ClickException(result.message)


@cli.command()
@click.option("--portal", help="Only this portal's events.")
@click.option("--run", "run_id", help="Only this run's events.")
@click.option(
    "--action",
    "actions",
    multiple=True,
    type=click.Choice([action.value for action in AuditAction]),
    help="Only these actions (repeatable).",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@common_options()
def history(
    app: App, portal: str | None, run_id: str | None, actions: tuple[str, ...], limit: int
) -> None:
    """The audit trail, newest first. --run shows the events of the run that has that id now;
    a deleted run's events are listed as "N (deleted)"."""
    page = app.service.history(
        portal_name=portal,
        run_id=_run_id(run_id) if run_id else None,
        actions=list(actions) or None,
        limit=limit,
    )
    if app.as_json:
        app.emit_json({"total": page.total, "events": [e.to_dict() for e in page.events]})
        return
    table = Table(title=f"Audit trail ({len(page.events)} of {page.total})", title_justify="left")
    for column in ("event", "when", "run", "portal", "action", "by", "status change"):
        table.add_column(column, overflow="fold")
    for event in page.events:
        when = event.created_at.astimezone(app.settings.timezone) if event.created_at else None
        table.add_row(
            str(event.id),
            when.strftime("%Y-%m-%d %H:%M:%S") if when else "?",
            f"{event.run_id} (deleted)" if event.run_deleted else str(event.run_id),
            _shown(event.portal_name or ""),
            _shown(event.action),
            _shown(event.actor),
            _shown(f"{event.from_status} -> {event.to_status}"),
        )
    app.out.print(table)


@cli.command()
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@common_options()
def delete(app: App, run_ids: tuple[str, ...], yes: bool) -> None:
    """Delete the records of finished runs (permanent; tenders are kept; running runs refused)."""
    ids = [_run_id(value) for value in run_ids]
    if not yes:
        if not app.interactive:
            raise UsageProblem("no terminal to confirm on: add --yes to delete without asking")
        typed = click.prompt(
            f"Delete {len(ids)} run records permanently? Type the number of runs ({len(ids)}) "
            "to confirm",
            default="",
            show_default=False,
        )
        if typed.strip() != str(len(ids)):
            app.out.print("Not confirmed; nothing was deleted.")
            sys.exit(EXIT_FAILED)
    deleted = app.service.delete_runs(ids, confirm=True, actor=app.actor)
    if app.as_json:
        app.emit_json({"deleted": deleted, "run_ids": ids})
    else:
        app.out.print(f"[green]Deleted {deleted} run records[/green] (tenders kept).")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# -- scrapers: demo fleet, launching -----------------------------------------------------------


@cli.command()
@common_options()
def init(app: App) -> None:
    """Set up this tool's tables: create them in a new (missing or empty) database, or adopt a
    scrapers' database (one with a runs table) - additively. Safe to run again.

    Every other command refuses a database without a runs table and creates nothing in it.
    Another application's database is refused here too unless --force is given.
    """
    done = app.service.init_database(beside_other_tables=app.force)
    where = app.service.db.label
    if app.as_json:
        app.emit_json({"database": where, "schema_version": SCHEMA_VERSION, "changes": done})
    elif done:
        app.out.print(escape(f"Set up {where} (schema version {SCHEMA_VERSION}):"))
        for change in done:
            app.out.print(f"  {change}")
    else:
        app.out.print(
            escape(
                f"{where} already has this tool's schema (version {SCHEMA_VERSION}); nothing to do."
            )
        )


@cli.command()
@common_options()
def demo(app: App) -> None:
    """Fill the database and checkpoint folder with a demo fleet: runs in every state.

    Sets the database up first, as init does. Refuses a database that holds runs other than an
    earlier demo's unless --force is given (reloading replaces only earlier demo runs).
    """
    report = load_demo(app.service, force=app.force)
    if app.as_json:
        app.emit_json(report.to_dict())
    else:
        app.out.print(_shown(report.message))


@cli.command()
@click.argument("run_id")
@common_options()
def resume(app: App, run_id: str) -> None:
    """Start the configured resume_command for resumable run RUN_ID, in the background
    (refused while an earlier launch of it is still starting). Prints the launch."""
    launched = app.service.launch_resume(_run_id(run_id), actor=app.actor)
    _print_launched(app, launched)


@cli.command()
@click.argument("portal")
@common_options()
def start(app: App, portal: str) -> None:
    """Start the configured start_command for PORTAL, in the background (refused while the
    pre-scrape check says wait, or an earlier start of it is still starting)."""
    launched = app.service.launch_start(portal, actor=app.actor)
    _print_launched(app, launched)


def _print_launched(app: App, launched: LaunchResult) -> None:
    if app.as_json:
        app.emit_json(launched.to_dict())
        return
    which = (
        f"--run {launched.run_id}"
        if launched.run_id
        else f"--portal {shlex.quote(launched.portal_name)}"
    )
    app.out.print(_shown(launched.message))
    app.out.print(_shown(f"  command: {shlex.join(launched.argv)}"))
    app.out.print(_shown(f"  follow it: python -m cleanup_core launches {which} --tail"))


@cli.command()
@click.option("--run", "run_id", help="Only this run's launches.")
@click.option("--portal", help="Only this portal's launches.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--tail", is_flag=True, help="Also show the last lines of each launch's log.")
@common_options()
def launches(app: App, run_id: str | None, portal: str | None, limit: int, tail: bool) -> None:
    """The scraper processes this tool started (resume, start; by a person, the CLI or the
    monitor), newest first: state (starting, running, succeeded, failed, expired), who, when,
    pid, exit code and log file."""
    found = app.service.list_launches(
        run_id=_run_id(run_id) if run_id else None,
        portal_name=portal,
        limit=limit,
        tail=tail or app.as_json,
    )
    if app.as_json:
        app.emit_json({"launches": [launch.to_dict() for launch in found]})
        return
    if not found:
        app.out.print("No launches recorded.")
        return
    table = Table(title=f"Launches ({len(found)})", title_justify="left")
    for column in ("launch", "when", "what", "portal", "by", "pid", "state", "exit", "log"):
        table.add_column(column, overflow="fold")
    tz = app.settings.timezone
    for launch in found:
        when = launch.launched_at.astimezone(tz) if launch.launched_at else None
        table.add_row(
            str(launch.id),
            when.strftime("%Y-%m-%d %H:%M:%S") if when else "?",
            launch.what,
            _shown(launch.portal_name),
            _shown(launch.actor),
            "-" if launch.pid is None else str(launch.pid),
            _shown(f"{launch.state.value}: {launch.note}"),
            "-" if launch.exit_code is None else str(launch.exit_code),
            _shown(launch.log_path or "-"),
        )
    app.out.print(table)
    if tail:
        for launch in found:
            app.out.print(f"launch {launch.id} log (last {len(launch.log_tail)} lines):")
            for line in launch.log_tail:
                app.out.print("  " + _shown(line))


# -- monitoring ---------------------------------------------------------------------------------


@cli.command()
@click.option("--once", is_flag=True, help="Run one cycle and exit (for cron / Task Scheduler).")
@click.option(
    "--now",
    "force_cycle",
    is_flag=True,
    help="Run a cycle even if one ran less than an interval ago.",
)
@common_options()
def watch(app: App, once: bool, force_cycle: bool) -> None:
    """Alert-only monitoring: notify CLEANUP_NOTIFY_URLS about dead, stalled, resumable and
    recovered runs. Loops every monitor_interval_minutes, or --once. Changes no run unless
    monitor_auto_clean is enabled."""
    monitor = Monitor(app.service)
    monitor.check_settings()
    if not app.settings.notify_urls:
        app.err.print(
            "warning: no notification URLs (CLEANUP_NOTIFY_URLS): changes are only "
            "recorded and logged"
        )
    if once:
        report = monitor.run_cycle(force=force_cycle)
        _print_cycle(app, report)
        if report.outcome is CycleOutcome.ERROR or report.delivery_failed:
            sys.exit(EXIT_FAILED)
        return
    app.err.print(f"watching every {app.settings.monitor_interval_minutes:g} min; Ctrl-C stops")
    run_forever(monitor, on_cycle=lambda report: _print_cycle(app, report))


def _print_cycle(app: App, report: CycleReport) -> None:
    if app.as_json:
        app.emit_json(report.to_dict())
        return
    app.out.print(f"monitor cycle {report.outcome}: {_shown(report.detail)}")
    for change in report.changes:
        app.out.print(_shown(f"{change.portal_name}: {change.line().strip()}"))
    for delivery in report.deliveries:
        outcome = "delivered" if delivery.ok else "FAILED (retried next cycle)"
        app.out.print(f"  {_shown(delivery.channel)}: {outcome}")


# -- Prometheus ---------------------------------------------------------------------------------


def _listen_address(value: str) -> tuple[str, int]:
    """``HOST:PORT``; ``[::1]:9464`` for IPv6, ``0.0.0.0:9464`` for every interface."""
    host, colon, port_text = value.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not colon or not port_text.isdigit() or int(port_text) > 65535:
        raise UsageProblem(f"--listen wants HOST:PORT, e.g. 127.0.0.1:9464 (got {value!r})")
    return host, int(port_text)


@cli.command()
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Serve the metrics over HTTP (any path, e.g. /metrics) instead of printing them once; "
    "port 0 picks a free one.",
)
@common_options()
def metrics(app: App, listen: str | None) -> None:
    """Prometheus metrics: running runs by judged state per portal, the oldest running run's
    age, the monitor's last cycle, audit events by action.

    Printed once in Prometheus's text format (for node_exporter's textfile collector, from
    cron), or served with --listen, where every scrape reads the database anew and a database
    outage is reported as cleanup_up 0 instead of stopping the server.
    """
    if app.as_json:
        raise UsageProblem("metrics prints Prometheus's text format; --json does not apply")
    if listen is None:
        click.echo(render(app.service, age_threshold_hours=app.age_hours), nl=False)
        return
    host, port = _listen_address(listen)
    try:
        server, thread = serve(app.service, host, port, age_threshold_hours=app.age_hours)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    bound_host, shown_port = server.server_address[:2]
    shown_host = str(bound_host)  # an IP address: text from socket.getsockname, never bytes
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    app.err.print(
        escape(f"serving metrics on http://{shown_host}:{shown_port}/metrics; Ctrl-C stops")
    )
    try:
        thread.join()
    finally:
        server.shutdown()
        server.server_close()


# -- dashboard accounts -------------------------------------------------------------------------


@cli.group()
def admin() -> None:
    """Dashboard accounts: create, set-password, list, remove, unlock (there is no sign-up
    page)."""


def _read_password(app: App, password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise UsageProblem("no terminal to ask for the password on: use --password-stdin")
    return click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")


def _accounts(app: App) -> Accounts:
    return Accounts(app.service.db)


@admin.command("create")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default=ADMIN.value,
    show_default=True,
    help="admin may change runs; viewer may only look.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (one line).")
@common_options()
def admin_create(app: App, name: str, role: str, password_stdin: bool) -> None:
    """Create a dashboard account NAME (the password is asked for, or read from stdin)."""
    user = _accounts(app).create_user(name, _read_password(app, password_stdin), role=role)
    if app.as_json:
        app.emit_json({"username": user.username, "role": user.role})
    else:
        app.out.print(_shown(f"Created {user.role} account {user.username!r}."))


@admin.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (one line).")
@common_options()
def admin_set_password(app: App, name: str, password_stdin: bool) -> None:
    """Change NAME's password (and end their open sessions)."""
    _accounts(app).set_password(name, _read_password(app, password_stdin))
    app.out.print(_shown(f"Changed the password of {name!r}; their sessions were ended."))


@admin.command("list")
@common_options()
def admin_list(app: App) -> None:
    """List dashboard accounts."""
    users = _accounts(app).users()
    if app.as_json:
        app.emit_json([{"username": u.username, "role": u.role} for u in users])
        return
    for user in users:
        app.out.print(f"{_shown(user.username)}\t{_shown(user.role)}")
    if not users:
        app.out.print("No accounts yet: create one with `admin create NAME`.")


@admin.command("remove")
@click.argument("name")
@common_options()
def admin_remove(app: App, name: str) -> None:
    """Remove the dashboard account NAME (and end its sessions)."""
    _accounts(app).remove_user(name)
    app.out.print(_shown(f"Removed account {name!r}."))


@admin.command("unlock")
@click.argument("name")
@common_options()
def admin_unlock(app: App, name: str) -> None:
    """Lift the login delay or lockout of the account NAME after failed logins."""
    _accounts(app).unlock(name)
    app.out.print(escape(f"Cleared the failed logins of {name!r}; they can log in again."))


def main() -> None:
    cli()
