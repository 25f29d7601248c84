"""Runs one launched scraper and records how it ended.

    python -m cleanup_core.launch_wrapper LAUNCH_ID -- PROGRAM ARG...

``launcher.spawn`` starts this, detached, with the launch's log file as its output: it starts
the command (without a shell; stdout and stderr go to the same log), waits for it, and writes
the exit code and end time to launch LAUNCH_ID through the service. So the exit code is known
whichever process launched it (a dashboard request, a monitor cycle, a CLI call that returned
long ago). A program that cannot be started is recorded as exit code 127 with the reason.
SIGTERM, SIGINT and SIGHUP are passed on to the scraper, so stopping the wrapper's process group
stops both. A negative exit code means the scraper was ended by that signal (``-9``: SIGKILL).

The database settings come from the environment the launcher passed on (``CLEANUP_*``).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

EXIT_NOT_STARTED = 127
_RETRIES = 5


def main(args: Sequence[str]) -> int:
    if len(args) < 3 or args[1] != "--" or not args[0].isdigit():
        print("usage: python -m cleanup_core.launch_wrapper LAUNCH_ID -- PROGRAM ARG...")
        return 2
    launch_id, command = int(args[0]), list(args[2:])
    error = None
    try:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    except OSError as exc:
        code, error = EXIT_NOT_STARTED, f"could not start {command[0]}: {exc.strerror or exc}"
        print(f"[launch {launch_id}] {error}", flush=True)
    else:

        def forward(signum: int, frame: FrameType | None) -> None:
            child.send_signal(signum)

        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, forward)
        code = child.wait()
        print(f"[launch {launch_id}] the process exited with code {code}", flush=True)
    _record(launch_id, code, error)
    return code if 0 <= code < 256 else 1


def _record(launch_id: int, code: int, error: str | None) -> None:
    """Write the end to the database; a database that is down or locked is retried a few
    times, then said in the log (the launch then expires after resume_backoff_minutes)."""
    from cleanup_core.errors import CleanupError
    from cleanup_core.service import CleanupService

    try:
        service = CleanupService()
    except CleanupError as exc:
        print(f"[launch {launch_id}] cannot record the exit code: {exc}", flush=True)
        return
    try:
        for attempt in range(_RETRIES):
            try:
                service.finish_launch(launch_id, exit_code=code, error=error)
                return
            except CleanupError as exc:
                if attempt == _RETRIES - 1:
                    print(f"[launch {launch_id}] cannot record the exit code: {exc}", flush=True)
                    return
                time.sleep(2.0 * (attempt + 1))
    finally:
        service.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
