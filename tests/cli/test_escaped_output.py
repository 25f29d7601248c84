"""Hostile stored text through the real program: ``python -m cleanup_core`` never writes a
terminal escape sequence, a bidi control or a forged line break from the database to the
operator's terminal, in any output mode; ``--json`` keeps the exact text."""

from __future__ import annotations

import json
import subprocess
import sys

import pexpect
import pytest

from tests.cli.test_cli import child_env, real_ago

CLEAR_SCREEN = "Clear\x1b[2J Tenders"
RETITLE = "Retitle\x1b]0;owned\x07 Tenders"
REVERSED = "Assam\u202egpj.exe"
HOSTILE_NAMES = (CLEAR_SCREEN, RETITLE, REVERSED)
# What must never reach stdout or stderr: ESC, BEL, and U+202E in UTF-8.
RAW = (b"\x1b", b"\x07", "\u202e".encode())
SHOWN = ("Clear\\x1b[2J Tenders", "Retitle\\x1b]0;owned\\x07 Tenders", "Assam\\u202egpj.exe")


@pytest.fixture
def hostile(runs, service, backend):
    """For each name: a dead run, a resumable one, and one needing attention (on SQLite for a
    start time that is itself hostile text); and a clean-up in the audit trail by an actor whose
    name is hostile too."""
    unreadable_start = "soon\x1b[5m" if backend == "sqlite" else None
    for name in HOSTILE_NAMES:
        runs.add(name, started_at=real_ago(hours=30))
        runs.add(name, started_at=real_ago(hours=40), extracted_total_tenders=7)
        runs.add(name, started_at=unreadable_start)
    old = runs.add(REVERSED, started_at=real_ago(hours=50))
    assert service.cleanup_run(old, actor="dash:\x1b]0;x\x07eve\u202e")


@pytest.fixture
def command(db_url, checkpoint_dir):
    """The argv of ``python -m cleanup_core`` against the test database."""

    def argv(*args: str) -> list[str]:
        common = ["--db", db_url, "--checkpoint-dir", str(checkpoint_dir)]
        return [sys.executable, "-m", "cleanup_core", *args, *common]

    return argv


def run_cli(command, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(*args), capture_output=True, env=env or child_env(), timeout=60, check=False
    )


def assert_nothing_raw(proc: subprocess.CompletedProcess) -> None:
    for stream, data in (("stdout", proc.stdout), ("stderr", proc.stderr)):
        for raw in RAW:
            assert raw not in data, f"{raw!r} reached {stream}: {data[:2000]!r}"


@pytest.mark.parametrize(
    "args",
    [
        ("scan", "-v"),
        ("check", CLEAR_SCREEN, "-v"),
        ("check", REVERSED, "-v"),
        ("clean", "--dry-run", "-v"),
        ("history", "-v"),
        ("status", "-v"),
    ],
    ids=lambda args: " ".join(a.encode("unicode_escape").decode() for a in args),
)
def test_hostile_names_are_shown_escaped(command, hostile, backend, args):
    proc = run_cli(command, *args)
    assert proc.returncode == 0, proc.stderr
    assert_nothing_raw(proc)
    out = proc.stdout.decode()
    if args[0] in ("scan", "clean"):
        for shown in SHOWN:
            assert shown in out  # shown, not dropped: the operator can tell the runs apart
        if backend == "sqlite":
            assert "'soon\\x1b[5m'" in out  # the unreadable start time, in the reasons
    if args[0] == "history":
        assert "Assam\\u202egpj.exe" in out and "dash:\\x1b]0;x\\x07eve\\u202e" in out


def test_log_lines_and_the_clean_up_result_are_escaped(command, hostile):
    proc = run_cli(command, "clean", "--auto", "-v")
    assert proc.returncode == 0, proc.stderr
    assert_nothing_raw(proc)
    err = proc.stderr.decode()
    logged = [line for line in err.splitlines() if line.startswith("20")]
    # one line per record: a newline in a name cannot start a forged one
    assert any(f"({CLEAR_SCREEN})".replace("\x1b", "\\x1b") in line for line in logged), err


def test_error_lines_are_escaped(command, hostile):
    env = {**child_env(), "CLEANUP_START_COMMAND": "/nonexistent/scraper --portal {portal}"}
    proc = run_cli(command, "start", "Fresh\x1b]0;owned\x07\u202e Portal", env=env)
    assert proc.returncode == 1
    assert_nothing_raw(proc)
    err = proc.stderr.decode()
    assert err.startswith("error: Could not start the start_command") and err.count("\n") == 1
    # the command line in the message holds the name as given (not a repr): escaped here
    assert "--portal Fresh\\x1b]0;owned\\x07\\u202e Portal" in err


def test_an_unknown_command_named_with_escapes_is_an_escaped_usage_error(command, hostile):
    proc = run_cli(command, "\x1b[2J\u202e")
    assert proc.returncode == 2
    assert_nothing_raw(proc)
    assert proc.stderr.decode().startswith("error: No such command")


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("scan", "--json"), HOSTILE_NAMES),
        (("clean", "--dry-run", "--json"), HOSTILE_NAMES),
        (("history", "--json"), (REVERSED, "dash:\x1b]0;x\x07eve\u202e")),
    ],
)
def test_json_keeps_the_exact_text_as_ascii_escapes(command, hostile, args, names):
    proc = run_cli(command, *args)
    assert proc.returncode == 0, proc.stderr
    assert_nothing_raw(proc)
    text = json.dumps(json.loads(proc.stdout))
    for name in names:
        assert json.dumps(name) in text  # the exact stored text, escaped by JSON itself
    proc.stdout.decode("ascii")  # nothing but ASCII on stdout


def test_the_interactive_prompt_shows_names_escaped(command, hostile):
    """On a terminal (where colours are ESC sequences of the tool's own): the table before
    the prompt carries the names escaped."""
    argv = command("clean")
    child = pexpect.spawn(argv[0], argv[1:], env=child_env(), timeout=60)
    try:
        child.expect("Choice")
        before = child.before
        child.sendline("3")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert b"Clear\\x1b[2J" in before
    for raw in (b"\x1b[2J", b"\x1b]0;owned", "\u202e".encode()):
        assert raw not in before + (child.before or b"")
