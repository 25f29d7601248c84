"""A stand-in scraper for the launcher tests: records how it was started.

    python record_argv.py OUT.json ARG...

writes ``{"argv": [ARG...], "sid": ..., "stdin": ..., "database_url": ...}`` to OUT.json
(atomically, so the test never reads half a file) and prints a line for the launch log. An OUT
ending in ``.jsonl`` gets one line appended per start instead, so a test counts the processes
that really ran.
"""

import json
import os
import sys
from pathlib import Path

out = Path(sys.argv[1])
record = {
    "argv": sys.argv[2:],
    "sid": os.getsid(0),
    "stdin": sys.stdin.read(),
    "database_url": os.environ.get("CLEANUP_DATABASE_URL"),
    "checkpoint_dir": os.environ.get("CLEANUP_CHECKPOINT_DIR"),
}
if out.suffix == ".jsonl":
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
    finally:
        os.close(fd)
else:
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps(record))
    partial.replace(out)
print(f"recorded {len(sys.argv) - 2} arguments")
