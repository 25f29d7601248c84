"""The alert-only monitor against real receivers on loopback: an SMTP server (aiosmtpd) and an
HTTP server taking apprise's JSON webhook; on SQLite and PostgreSQL, with an explicit clock."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from cleanup_core import CLEANED, CleanupService, Settings
from cleanup_core.alerts import (
    Delivery,
    Monitor,
    channel_label,
    current_problems,
    cursor_location,
    stalled_reason,
)
from cleanup_core.checkpoints import write_checkpoint
from cleanup_core.db import Database
from tests.conftest import NOW, TZ, ago

ROOT = Path(__file__).resolve().parents[2]
# Channels that cannot deliver here (no internet), configured with secrets in their "host".
TELEGRAM = "tgram://123456789:SECRETTOKEN/987654"
SLACK = "slack://TokenA/TokenB/TokenC"
SECRETS = ("SECRETTOKEN", "123456789", "TokenA", "TokenB", "TokenC")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    """An SMTP server on loopback that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    @property
    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=monitor@example.com&to=ops@example.com"

    def bodies(self) -> list[str]:
        texts = []
        for message in self.messages:
            part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
            texts.append(part.get_payload(decode=True).decode())
        return texts


class Webhook:
    """An HTTP server on loopback that records JSON posts; posts to ``failing_path`` get a 500."""

    def __init__(self, port: int | None = None, failing_path: str | None = None) -> None:
        self.posts: list[dict] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                if self.path == failing_path:
                    self.send_response(500)
                else:
                    received.append(body)
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.handler = Handler
        self.port = port or free_port()  # nothing listens until start(): connections refused

    @property
    def url(self) -> str:
        return self.url_for("/hooks/tender-runs")

    def url_for(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def start(self) -> Webhook:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mailbox():
    box = Mailbox()
    box.controller.start()
    yield box
    box.controller.stop()


@pytest.fixture
def webhook():
    hook = Webhook().start()
    yield hook
    hook.stop()


@pytest.fixture
def make_monitor(settings):
    services = []

    def make(*urls: str, **overrides) -> Monitor:
        configured = settings.with_overrides(
            notify_urls=list(urls),
            dashboard_url="http://dashboard.example:3000",
            **overrides,
        )
        service = CleanupService(configured, database=Database(configured, create_missing=True))
        services.append(service)
        return Monitor(service)

    yield make
    for service in services:
        service.db.dispose()


def cycle(monitor: Monitor, minutes: float = 0, **kwargs):
    return monitor.run_cycle(now=NOW + timedelta(minutes=minutes), **kwargs)


def test_email_lists_the_runs_that_need_attention(runs, mailbox, make_monitor):
    dead = runs.add("Assam Tenders", started_at=ago(hours=30))
    resumable = runs.add("MP Tenders", started_at=ago(hours=40), extracted_total_tenders=5)
    runs.add("Kerala", started_at=ago(hours=1))  # young: nothing to say
    monitor = make_monitor(mailbox.url)

    report = cycle(monitor)

    assert report.outcome == "ok"
    assert report.deliveries == [Delivery(channel_label(mailbox.url), True)]
    assert channel_label(mailbox.url).startswith(f"mailto://127.0.0.1:{mailbox.port} [")
    [message] = mailbox.messages
    assert message["To"] == "ops@example.com"
    assert "1 new dead" in message["Subject"] and "1 new resumable" in message["Subject"]
    [body] = mailbox.bodies()
    assert f"NEW DEAD run {dead}: no progress" in body
    assert f"NEW RESUMABLE run {resumable}: made progress: 5 extracted" in body
    assert body.index("Assam Tenders") < body.index(f"run {dead}")
    assert "Stuck runs: http://dashboard.example:3000/stuck" in body
    assert "Kerala" not in body


def test_json_webhook_receives_the_same_changes(runs, webhook, make_monitor):
    dead = runs.add("Assam Tenders", started_at=ago(hours=30))
    cycle(make_monitor(webhook.url))
    [post] = webhook.posts
    assert post["title"].startswith("Tender runs: 1 new dead")
    assert f"NEW DEAD run {dead}" in post["message"]


def test_nothing_new_sends_nothing_and_a_new_dead_run_sends_again(runs, webhook, make_monitor):
    runs.add("Assam Tenders", started_at=ago(hours=30))
    monitor = make_monitor(webhook.url)
    cycle(monitor)
    second = cycle(monitor, minutes=31)
    assert second.outcome == "ok"
    assert second.changes == []
    assert len(webhook.posts) == 1, "a cycle with nothing new sends nothing"
    new = runs.add("CPPP", started_at=ago(hours=50))
    cycle(monitor, minutes=62)
    assert len(webhook.posts) == 2
    assert f"NEW DEAD run {new}" in webhook.posts[1]["message"]
    assert "Assam Tenders" not in webhook.posts[1]["message"], "old news is not repeated"


def test_still_open_problems_are_reminded_after_the_interval(runs, webhook, make_monitor):
    dead = runs.add("Assam Tenders", started_at=ago(hours=30))
    monitor = make_monitor(webhook.url, monitor_reminder_hours=6)
    cycle(monitor)
    cycle(monitor, minutes=5 * 60)
    assert len(webhook.posts) == 1
    cycle(monitor, minutes=6 * 60 + 1)
    assert len(webhook.posts) == 2
    assert f"STILL DEAD run {dead}" in webhook.posts[1]["message"]


def test_recovered_runs_are_reported_once(service, runs, webhook, make_monitor):
    dead = runs.add("Assam Tenders", started_at=ago(hours=30))
    monitor = make_monitor(webhook.url)
    cycle(monitor)
    assert service.cleanup_run(dead, now=NOW)
    report = cycle(monitor, minutes=31)
    assert [(c.what, c.run_id) for c in report.changes] == [("recovered", dead)]
    assert (
        f"RECOVERED run {dead} (was dead): status is now '{CLEANED}'"
        in (webhook.posts[1]["message"])
    )
    cycle(monitor, minutes=62)
    assert len(webhook.posts) == 2


def test_two_monitors_at_once_notify_once(runs, webhook, make_monitor):
    runs.add("Assam Tenders", started_at=ago(hours=30))
    monitors = [make_monitor(webhook.url), make_monitor(webhook.url)]
    barrier = threading.Barrier(2)
    reports = []

    def run(monitor):
        barrier.wait()
        reports.append(cycle(monitor))

    threads = [threading.Thread(target=run, args=(m,)) for m in monitors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.outcome for r in reports) == ["ok", "skipped"]
    assert len(webhook.posts) == 1
    # the next cycle is due for whichever process asks first; still one message
    runs.add("CPPP", started_at=ago(hours=50))
    later = [cycle(monitors[1], minutes=31), cycle(monitors[0], minutes=32)]
    assert [r.outcome for r in later] == ["ok", "skipped"]
    assert len(webhook.posts) == 2


def test_a_broken_channel_is_logged_and_retried_without_blocking_others(
    runs, mailbox, make_monitor, caplog
):
    caplog.set_level(logging.ERROR, logger="cleanup_core.alerts")
    dead = runs.add("Assam Tenders", started_at=ago(hours=30))
    down = Webhook(port=free_port())  # nothing listens there yet: connection refused
    monitor = make_monitor(down.url, mailbox.url)

    report = cycle(monitor)

    assert report.deliveries == [
        Delivery(channel_label(down.url), False),
        Delivery(channel_label(mailbox.url), True),
    ]
    assert len(mailbox.messages) == 1
    assert f"notification to json://127.0.0.1:{down.port} [" in caplog.text
    assert "ops@example.com" not in caplog.text or "mailto" not in caplog.text

    down.start()  # the receiver is back: the next cycle delivers what it missed
    try:
        retry = cycle(monitor, minutes=31)
    finally:
        down.stop()
    assert retry.changes == []
    assert retry.deliveries == [Delivery(channel_label(down.url), True)]
    assert len(down.posts) == 1
    assert f"NEW DEAD run {dead}" in down.posts[0]["message"]
    assert len(mailbox.messages) == 1, "the working channel is not sent the same news twice"


def test_a_monitor_never_changes_a_run_unless_auto_clean_is_on(runs, webhook, make_monitor):
    dead = runs.add("Assam Tenders", started_at=ago(hours=30))
    before = runs.get(dead)
    cycle(make_monitor(webhook.url))
    assert runs.get(dead) == before
    assert runs.count("run_events") == 0

    report = cycle(make_monitor(webhook.url, monitor_auto_clean=True), minutes=31)
    assert report.cleaned == [dead]
    assert runs.get(dead)["status"] == CLEANED
    assert runs.count("run_events", "actor = 'monitor:auto-clean'") == 1
    assert f"RECOVERED run {dead} (was dead)" in webhook.posts[-1]["message"]


def test_stalled_runs_name_the_organisation_from_the_cursor(service, runs, webhook, make_monitor):
    stalled = runs.add(
        "Assam Tenders",
        started_at=ago(hours=5),
        extracted_total_tenders=40,
        last_heartbeat_at=ago(minutes=1),
        last_progress_at=ago(minutes=150),
    )
    runs.add(  # alive and progressing: fine
        "MP Tenders",
        started_at=ago(hours=5),
        last_heartbeat_at=ago(minutes=1),
        last_progress_at=ago(minutes=3),
    )
    write_checkpoint(
        service.settings.checkpoint_dir,
        "Assam Tenders",
        tenders=[{"tender_id": "t"}],
        run_id=stalled,
        cursor={"organisation": "Public Works Department", "page": 7},
    )
    report = cycle(make_monitor(webhook.url, stall_after_minutes=120))
    assert [(c.kind, c.run_id) for c in report.changes] == [("stalled", stalled)]
    message = webhook.posts[0]["message"]
    assert f"NEW STALLED run {stalled}" in message
    assert "no progress for 150 min at organisation Public Works Department, page 7" in message
    assert "MP Tenders" not in message


def test_stall_after_is_per_portal(settings, runs, tmp_path):
    config = tmp_path / "cleanup.toml"
    config.write_text(
        'stall_after_minutes = 60\n[portals."Slow Portal"]\nstall_after_minutes = 240\n'
    )
    configured = Settings.load(
        {},
        config_file=config,
        database_url=settings.database_url,
        checkpoint_dir=str(settings.checkpoint_dir),
        timezone=TZ,
    )
    idle = {
        "started_at": ago(hours=5),
        "last_heartbeat_at": ago(minutes=1),
        "last_progress_at": ago(minutes=90),
    }
    slow, fast = runs.add("Slow Portal", **idle), runs.add("Fast Portal", **idle)
    service = CleanupService(configured, database=Database(configured, create_missing=True))
    try:
        verdicts = service.scan(now=NOW).verdicts
        problems = current_problems(service, verdicts, NOW)
    finally:
        service.db.dispose()
    assert [(p.run_id, p.kind) for p in problems] == [(fast, "stalled")]
    by_id = {v.run_id: v for v in verdicts}
    assert stalled_reason(by_id[slow], timedelta(minutes=60), NOW) is not None


def test_cursor_location():
    assert cursor_location({"organisation": "PWD", "department": "Roads", "page": 3}) == (
        "organisation PWD, department Roads, page 3"
    )
    assert cursor_location(["not", "a", "dict"]) == ""
    assert cursor_location({"organisation": {"nested": 1}}) == ""


def test_each_cycle_is_recorded_for_the_watchdog(runs, make_monitor):
    monitor = make_monitor()
    assert monitor.status(now=NOW).never_ran
    cycle(monitor)
    status = monitor.status(now=NOW + timedelta(minutes=10))
    assert (status.last_check, status.next_check) == (NOW, NOW + timedelta(minutes=30))
    assert status.outcome == "ok"
    assert not status.late
    late = monitor.status(now=NOW + timedelta(minutes=61))
    assert late.late
    assert "LATE" in late.describe(monitor.settings.timezone)


def test_an_expired_lease_is_taken_over(runs, webhook, make_monitor):
    from cleanup_core.storage import monitor

    runs.add("Assam Tenders", started_at=ago(hours=30))
    crashed, healthy = make_monitor(webhook.url), make_monitor(webhook.url)
    with crashed.service.db.write() as conn:  # a monitor that died holding the lease
        assert monitor.take_lease(conn, "monitor", crashed.holder, NOW, NOW + timedelta(minutes=30))
    assert cycle(healthy, minutes=5).outcome == "skipped"
    assert cycle(healthy, minutes=31).outcome == "ok"
    assert len(webhook.posts) == 1


def test_each_configured_url_is_one_channel_even_on_the_same_host(runs, mailbox, make_monitor):
    hook = Webhook(failing_path="/hooks/broken").start()
    try:
        ok, broken = hook.url_for("/hooks/ops"), hook.url_for("/hooks/broken")
        dead = runs.add("Assam Tenders", started_at=ago(hours=30))
        report = cycle(make_monitor(ok, broken, mailbox.url))
    finally:
        hook.stop()
    assert [d.ok for d in report.deliveries] == [True, False, True]
    assert len({d.channel for d in report.deliveries}) == 3, "same scheme and host, two channels"
    assert report.detail.endswith("delivered to 2/3 channels")
    assert [f"NEW DEAD run {dead}" in post["message"] for post in hook.posts] == [True]
    assert len(mailbox.messages) == 1


@pytest.mark.parametrize(
    ("url", "shown", "hidden"),
    [
        (TELEGRAM, "tgram [", (*SECRETS[:2], "987654")),
        (SLACK, "slack [", SECRETS[2:]),
        ("pbul://o.SecretAccessToken", "pbul [", ("SecretAccessToken",)),
        ("ntfy://my-private-topic", "ntfy [", ("my-private-topic",)),
        (
            "json://bob:hunter2@hooks.example.com:8443/SECRETPATH?token=SECRETQUERY",
            "json://hooks.example.com:8443 [",
            ("bob", "hunter2", "SECRETPATH", "SECRETQUERY"),
        ),
        (
            "mailtos://alerts:app-password@smtp.example.com?to=ops@example.com",
            "mailtos://smtp.example.com [",
            ("alerts", "app-password", "ops@example.com"),
        ),
        ("https://hooks.slack.com/services/TA1/TB2/TC3", "https [", ("TA1", "TB2", "TC3")),
        ("json://[not-an-address/x", "json [", ("not-an-address",)),
    ],
)
def test_a_channel_label_names_no_secret(url, shown, hidden):
    label = channel_label(url)
    assert label.startswith(shown)
    assert not [secret for secret in hidden if secret in label]
    assert channel_label(url + "2") != label, "a short hash of the whole URL tells URLs apart"


def test_watch_once_counts_urls_exits_1_on_any_failure_and_prints_no_token(
    settings, runs, mailbox, tmp_path
):
    hook = Webhook(failing_path="/hooks/broken").start()
    ok, broken = hook.url_for("/hooks/ops"), hook.url_for("/hooks/broken")
    runs.add("Assam Tenders", started_at=datetime.now(UTC) - timedelta(hours=30))
    env = {name: value for name, value in os.environ.items() if not name.startswith("CLEANUP_")}
    env.update(
        PYTHONPATH=str(ROOT),
        CLEANUP_TIMEZONE=TZ,
        CLEANUP_DATABASE_URL=settings.database_url,
        CLEANUP_CHECKPOINT_DIR=str(settings.checkpoint_dir),
        CLEANUP_NOTIFY_URLS=",".join([ok, broken, mailbox.url, TELEGRAM, SLACK]),
    )

    def watch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cleanup_core", "watch", "--once", "-v", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )

    try:
        first = watch()
        again = watch("--now", "--json")
    finally:
        hook.stop()
    assert first.returncode == 1, first.stderr
    assert "delivered to 2/5 channels" in first.stdout
    assert first.stdout.count(": delivered") == 2
    assert first.stdout.count("FAILED (retried next cycle)") == 3
    assert again.returncode == 1, again.stderr
    report = json.loads(again.stdout)
    assert [d["ok"] for d in report["deliveries"]] == [False, False, False]
    assert report["detail"].endswith("delivered to 0/3 channels")
    for output in (first.stdout, first.stderr, again.stdout, again.stderr):
        assert not [secret for secret in SECRETS if secret in output], output
        assert "/hooks/" not in output, "no URL is printed"
