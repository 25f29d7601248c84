"""The alert-only monitor: tell operators when runs die, stall, run overdue, need attention or
recover.

One cycle classifies every running run, compares the problems with those already reported (kept
in the database, so any process can run the next cycle), and queues one notice listing what
changed. Each notification channel (an apprise URL: email, Slack, Teams, Telegram, a JSON
webhook, ...) then gets one message with everything it has not received yet, so a channel that
failed gets the missed changes on the next cycle, and one failing channel never blocks another.

The monitor changes no run unless ``monitor_auto_clean`` is enabled. With ``auto_resume`` (globally
or per portal) it launches the portal's resume_command for each resumable run: at most once per
``resume_backoff_minutes`` per run, never while an earlier launch of it is starting (decided by
the service under the launch lock), and after ``max_resume_attempts`` launches the rules send
the run to a person (``resume_attempts_exhausted``). Cycles take a database lease,
so several dashboard workers, hosts and a cron job together run each cycle once. Every cycle's
time and outcome are recorded, so the dashboard and ``status`` can tell when the monitor is late.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import socket
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cleanup_core.classify import Verdict
from cleanup_core.errors import CleanupError, LaunchError, RefusedError
from cleanup_core.service import Change, CleanupService, MonitorStatus, Problem
from cleanup_core.stalls import cursor_location, judge_stall
from cleanup_core.vocabulary import CycleOutcome, ProblemChange, ProblemKind, Rule, RunState

__all__ = [
    "Change",
    "CycleReport",
    "Delivery",
    "Monitor",
    "MonitorStatus",
    "Problem",
    "channel_key",
    "channel_label",
    "current_problems",
    "cursor_location",
    "format_notice",
    "overdue_reason",
    "run_forever",
    "send_apprise",
    "stalled_reason",
]

log = logging.getLogger("cleanup_core.alerts")


@dataclass(frozen=True)
class Delivery:
    """How one configured channel (one URL) fared in a cycle, by its label, never its URL."""

    channel: str
    ok: bool


@dataclass
class CycleReport:
    """What one cycle saw and did."""

    outcome: CycleOutcome
    detail: str = ""
    changes: list[Change] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)  # one per URL that had news
    cleaned: list[int] = field(default_factory=list)
    auto_resumed: list[int] = field(default_factory=list)  # runs whose launch started
    launch_failures: list[int] = field(default_factory=list)  # runs whose launch failed
    started_at: datetime | None = None

    @property
    def delivery_failed(self) -> bool:
        return any(not delivery.ok for delivery in self.deliveries)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "detail": self.detail,
            "changes": [c.__dict__ for c in self.changes],
            "deliveries": [d.__dict__ for d in self.deliveries],
            "cleaned": self.cleaned,
            "auto_resumed": self.auto_resumed,
            "launch_failures": self.launch_failures,
            "started_at": self.started_at.isoformat() if self.started_at else None,
        }


def stalled_reason(verdict: Verdict, stall_after: timedelta, now: datetime) -> str | None:
    """Why an alive run counts as stalled, or ``None``: its database checkpoint cursor has not
    moved for longer than ``stall_after`` (stalled in that department), or, without one, no
    progress for that long (``stalls.judge_stall``, the judgement the scan attaches)."""
    stall = judge_stall(verdict, stall_after, now)
    return None if stall is None else stall.message


def current_problems(
    service: CleanupService, verdicts: Sequence[Verdict], now: datetime
) -> list[Problem]:
    """The problems among the running runs right now."""
    settings = service.settings
    problems = []
    for verdict in verdicts:
        portal = verdict.portal_name or ""
        if verdict.state in (RunState.DEAD, RunState.RESUMABLE, RunState.ATTENTION):
            kind = ProblemKind(verdict.state.value)
            problems.append(Problem(verdict.run_id, portal, kind, verdict.summary))
            continue
        stall = verdict.stall  # judged by the service's scan with the portal's stall_after
        if stall is None and verdict.state is RunState.ALIVE:
            stall_after = timedelta(minutes=settings.stall_after_minutes_for(portal))
            stall = judge_stall(verdict, stall_after, now)
        if stall is not None:
            problems.append(Problem(verdict.run_id, portal, ProblemKind.STALLED, stall.message))
        overdue = overdue_reason(verdict)
        if overdue:
            problems.append(Problem(verdict.run_id, portal, ProblemKind.OVERDUE, overdue))
    return problems


def overdue_reason(verdict: Verdict) -> str | None:
    """Why a run that is not (yet) a problem otherwise is overdue (running longer than its
    portal's p99 x overdue_factor), or ``None``. Dead, resumable and attention runs are
    reported as such already."""
    if not verdict.overdue:
        return None
    message = next(r.message for r in verdict.reasons if r.rule == Rule.OVERDUE)
    return f"{verdict.state.value}, {message}"


def format_notice(changes: Sequence[Change], dashboard_url: str | None) -> tuple[str, str]:
    """The title and body of one message: every change, grouped per portal."""
    counts: dict[str, int] = defaultdict(int)
    for change in changes:
        single = change.what in (ProblemChange.RECOVERED, ProblemChange.AUTO_RESUMED)
        key = change.what.value if single else f"{change.what} {change.kind}"
        counts[key] += 1
    title = "Tender runs: " + ", ".join(
        f"{n} {key.replace('_', '-')}" for key, n in sorted(counts.items())
    )
    by_portal: dict[str, list[Change]] = defaultdict(list)
    for change in changes:
        by_portal[change.portal_name or "(no portal)"].append(change)
    lines = []
    for portal in sorted(by_portal, key=str.lower):
        lines.append(portal)
        lines.extend(change.line() for change in by_portal[portal])
        lines.append("")
    if dashboard_url:
        lines.append(f"Stuck runs: {dashboard_url.rstrip('/')}/stuck")
    return title, "\n".join(lines).rstrip() + "\n"


def channel_key(url: str) -> str:
    """A stable id for a channel that does not store its secrets (tokens, passwords)."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def channel_label(url: str) -> str:
    """A channel as it may appear in output and logs, never with credentials or tokens: its
    scheme, its host where that is a network address, and a short hash of the whole URL, so two
    URLs of one service (two webhooks on one host) are told apart, e.g.
    ``json://hooks.example.com:8443 [1f0c9a2e]`` or ``tgram [5b7d01c3]``.

    For many apprise services the "host" of the URL is a token (``tgram://<bot token>``,
    ``slack://TokenA/...``, ``pbul://<access token>``), and apprise's own privacy masking
    (``url(privacy=True)``) still shows the first and last character of each token, user names,
    e-mail recipients and paths. So the host is shown only when the service's apprise URL
    templates name a ``{host}`` and the value looks like a network address (an IP address,
    ``localhost`` or a dotted name); user, password, path and query are never shown."""
    digest = channel_key(url)[:8]
    match = _SCHEME.match(url.strip())
    if match is None:
        return f"[{digest}]"
    scheme = match.group(1).lower()
    address = _network_address(scheme, url.strip())
    return f"{scheme}://{address} [{digest}]" if address else f"{scheme} [{digest}]"


_SCHEME = re.compile(r"([a-z][a-z0-9+.-]{0,30})://", re.IGNORECASE)
_DNS_NAME = re.compile(r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}")


def _network_address(scheme: str, url: str) -> str | None:
    """``host[:port]`` of a URL when that is safe to show (see ``channel_label``), else ``None``."""
    import apprise

    plugins = apprise.NotificationManager()
    if scheme not in plugins or "host" not in plugins[scheme].template_tokens:
        return None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # "host:token" (the port is not a number) or a broken IPv6 literal
        return None
    if not host or len(host) > 253:
        return None
    try:
        shown = ipaddress.ip_address(host).compressed
    except ValueError:
        if host != "localhost" and not _DNS_NAME.fullmatch(host):
            return None
        shown = host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"{shown}:{port}" if port is not None else shown


def send_apprise(url: str, title: str, body: str) -> bool:
    """Deliver one message through one apprise URL; ``False`` (logged) when it fails."""
    import apprise

    notifier = apprise.Apprise()
    if not notifier.add(url):
        log.error("notification channel %s is not a valid apprise URL", channel_label(url))
        return False
    return bool(notifier.notify(title=title, body=body))


class Monitor:
    """Runs monitoring cycles against one database with one set of channels."""

    def __init__(
        self,
        service: CleanupService,
        *,
        holder: str | None = None,
        send: Callable[[str, str, str], bool] = send_apprise,
    ):
        self.service = service
        self.settings = service.settings
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.send = send
        # Who the audit trail and the launches say started an automatic resume.
        self.actor = f"monitor:{socket.gethostname()}"

    def check_settings(self) -> None:
        """``ConfigError`` naming the portal when auto_resume is on for a stored or configured
        portal without a resume_command (``watch`` calls this before its first cycle)."""
        self.service.check_auto_resume_settings()

    def run_cycle(self, *, now: datetime | None = None, force: bool = False) -> CycleReport:
        """One cycle, unless another process holds the lease or ran one less than an interval
        ago (``force`` ignores the latter)."""
        start = self.service.begin_cycle(self.holder, now=now, force=force)
        now = start.started_at
        if start.cycle_id is None:
            return CycleReport(CycleOutcome.SKIPPED, start.skipped, started_at=now)
        report = CycleReport(CycleOutcome.OK, started_at=now)
        try:
            self._cycle(start.cycle_id, now, report)
        except CleanupError as exc:
            report.outcome, report.detail = CycleOutcome.ERROR, str(exc)
            log.error("monitor cycle failed: %s", exc)
        finally:
            self.service.end_cycle(
                start.cycle_id,
                self.holder,
                outcome=report.outcome,
                detail=report.detail,
                changes=len(report.changes),
                started_at=now,
            )
        return report

    def _cycle(self, cycle_id: int, now: datetime, report: CycleReport) -> None:
        summary = self.service.scan(now=now)
        auto_cleaned: dict[int, str] = {}
        if self.settings.monitor_auto_clean and summary.dead:
            result = self.service.cleanup_runs(
                [v.run_id for v in summary.dead], actor="monitor:auto-clean", now=now
            )
            report.cleaned = list(result.cleaned)
            portals = {v.run_id: v.portal_name or "" for v in summary.dead}
            auto_cleaned = {run_id: portals[run_id] for run_id in result.cleaned}
            summary = self.service.scan(now=now)
        launched = self._auto_resume(summary.resumable, now, report)
        problems = current_problems(self.service, summary.verdicts, now)
        dashboard_url = self.settings.dashboard_url
        report.changes = self.service.record_problems(
            cycle_id,
            problems,
            now=now,
            remind_after=timedelta(hours=self.settings.monitor_reminder_hours),
            cleaned_by_monitor=auto_cleaned,
            notice=lambda changes: format_notice(changes, dashboard_url),
            launched=launched,
        )
        report.deliveries = self._deliver(cycle_id, now)
        delivered = sum(delivery.ok for delivery in report.deliveries)
        launches = (
            f", {len(report.auto_resumed)} auto-resumed"
            + (
                f" ({len(report.launch_failures)} launches failed)"
                if report.launch_failures
                else ""
            )
            if launched
            else ""
        )
        report.detail = (
            f"{len(problems)} open problems, {len(report.changes)} changes{launches}, "
            f"delivered to {delivered}/{len(report.deliveries)} channels"
        )
        log.info("monitor cycle: %s", report.detail)

    def _auto_resume(
        self, resumable: Sequence[Verdict], now: datetime, report: CycleReport
    ) -> list[Change]:
        """Launch the resume_command of each resumable run of a portal with auto_resume on,
        as the service allows (not within the backoff, not while a launch is starting). A
        launch that fails (a missing program) is recorded as failed and the cycle goes on."""
        settings = self.settings
        lines = []
        for verdict in resumable:
            portal = verdict.portal_name or ""
            if not portal or not settings.auto_resume_for(portal):
                continue
            if not settings.resume_command_for(portal):
                # Refused when the settings are read or ``watch`` starts; a monitor inside the
                # dashboard meets a portal stored since then here.
                log.error(
                    "auto_resume is on for portal %r but it has no resume_command; run %d "
                    "is not launched",
                    portal,
                    verdict.run_id,
                )
                continue
            attempt = (verdict.facts.auto_resumes or 0) + 1
            of = f"attempt {attempt} of {settings.max_resume_attempts_for(portal)}"
            try:
                result = self.service.launch_resume(
                    verdict.run_id, actor=self.actor, now=now, automatic=True
                )
            except RefusedError as exc:
                log.info("auto-resume of run %d not launched: %s", verdict.run_id, exc)
                continue
            except LaunchError as exc:
                log.error("auto-resume of run %d failed: %s", verdict.run_id, exc)
                report.launch_failures.append(verdict.run_id)
                summary = f"launch FAILED ({of}): {exc}"
            else:
                report.auto_resumed.append(verdict.run_id)
                summary = (
                    f"launched process {result.pid} ({of}, launch {result.launch_id}); "
                    f"log {result.log_path}"
                )
            lines.append(
                Change(
                    ProblemChange.AUTO_RESUMED,
                    verdict.run_id,
                    portal,
                    ProblemKind.RESUMABLE,
                    summary,
                )
            )
        return lines

    def _deliver(self, cycle_id: int, now: datetime) -> list[Delivery]:
        """Send each channel (each distinct URL) everything it has not received, as one
        message."""
        deliveries = []
        for url in dict.fromkeys(self.settings.notify_urls):
            key, label = channel_key(url), channel_label(url)
            notices = self.service.undelivered_notices(key, cycle_id)
            if not notices:
                continue
            if len(notices) == 1:
                title, body = notices[0].title, notices[0].body
            else:
                title = f"{notices[-1].title} (+{len(notices) - 1} earlier undelivered)"
                body = "\n".join(n.body for n in notices)
            try:
                ok = self.send(url, title, body)
            except Exception as exc:  # noqa: BLE001 - a channel's failure must not stop others
                log.error("notification channel %s failed: %s", label, exc)
                ok = False
            if not ok:
                log.error("notification to %s failed; it will be retried next cycle", label)
            self.service.record_delivery(key, notices[-1].id if ok else None, now)
            deliveries.append(Delivery(label, ok))
        return deliveries

    def seconds_until_due(self, *, now: datetime | None = None) -> float:
        """How long to sleep before the next cycle is due (by the last cycle of any process,
        so every process converges on one schedule)."""
        return self.service.seconds_until_due(now=now)

    def status(self, *, now: datetime | None = None) -> MonitorStatus:
        """The last cycle, when the next is due, and whether the monitor is late."""
        return self.service.monitor_status(now=now)


RETRY_AFTER_ERROR = 60.0


def run_forever(
    monitor: Monitor,
    *,
    on_cycle: Callable[[CycleReport], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run cycles until ``stop`` is set. A database that is down or locked is logged and
    retried; it never ends the loop."""
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            report = monitor.run_cycle()
            if on_cycle is not None and report.outcome is not CycleOutcome.SKIPPED:
                on_cycle(report)
            wait = monitor.seconds_until_due()
        except CleanupError as exc:
            log.error(
                "monitor cycle could not run: %s (retrying in %.0f s)", exc, RETRY_AFTER_ERROR
            )
            wait = RETRY_AFTER_ERROR
        stop.wait(wait)
