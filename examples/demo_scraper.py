"""Scrape a synthetic GePNIC-style portal through the run tracker: the crash-and-resume demo.

    python examples/demo_scraper.py --portal "Assam Tenders" --delay 0.5
    kill -9 <its pid>                    # the run stays 'running'; its heartbeat stops
    python -m cleanup_core check "Assam Tenders"    # after the heartbeat timeout: resume
    python examples/demo_scraper.py --portal "Assam Tenders"    # resumes from the checkpoint

The portal has organisations, result pages and tenders, the same every time for one portal name
and date, so a crashed and resumed scrape ends with exactly the tenders of an uninterrupted one.
Exit status: 0 done, 3 the portal is busy, 4 the run was taken over (fenced), 2 refused or a
setting is wrong, 130 on Ctrl-C and 143 on SIGTERM (the run is then released: resumable at once).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from datetime import date
from pathlib import Path

# Run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cleanup_core import CleanupError, CleanupService, Settings
from cleanup_core.db import Database
from cleanup_core.demo import DEMO_PREFIX, scrape_synthetic_portal
from cleanup_core.tracker import PortalBusyError, RunFencedError, default_worker_id, track_run

log = logging.getLogger("demo_scraper")


def seconds(text: str) -> float:
    """A page delay: a number of seconds from 0 to an hour (``time.sleep`` overflows on 1e20)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 3600:  # also refuses nan
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds from 0 to 3600, got {text!r}"
        )
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portal", required=True, help='portal name, e.g. "Assam Tenders"')
    parser.add_argument(
        "--resume",
        type=int,
        metavar="RUN_ID",
        help="insist on resuming this run (without it, the claim resumes when it should)",
    )
    parser.add_argument("--db", help="database URL (default: CLEANUP_DATABASE_URL)")
    parser.add_argument(
        "--checkpoint-dir", help="checkpoint folder (default: CLEANUP_CHECKPOINT_DIR)"
    )
    parser.add_argument("--delay", type=seconds, default=0.5, help="seconds per result page")
    parser.add_argument(
        "--demo-fleet",
        action="store_true",
        help="mark the run as the demo fleet's (worker id demo:host:pid), so loading the demo "
        "again replaces it; the demo's own resume and start commands pass it",
    )
    parser.add_argument(
        "--as-of",
        type=date.fromisoformat,
        help="the portal's date, YYYY-MM-DD (default: today; a resumed run keeps its own)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = Settings.load(database_url=args.db, checkpoint_dir=args.checkpoint_dir)
        # A scraper creates its database if needed (the tools that only read it do not).
        service = CleanupService(settings, database=Database(settings, create_missing=True))
        worker_id = f"{DEMO_PREFIX}{default_worker_id()}" if args.demo_fleet else None
        with track_run(
            args.portal, service=service, resume_run_id=args.resume, worker_id=worker_id
        ) as run:
            log.info(
                "%s run %d (attempt %d); %d tenders seen already",
                "resuming" if run.resumed else "starting",
                run.run_id,
                run.attempt,
                len(run.seen_tender_ids),
            )
            added = scrape_synthetic_portal(run, delay=args.delay, as_of=args.as_of)
        log.info(
            "run %d completed: %d tenders added now, %d extracted and %d skipped in all",
            run.run_id,
            added,
            run.extracted_total,
            run.skipped_total,
        )
        return 0
    except PortalBusyError as busy:
        log.warning("%s", busy)
        return 3
    except RunFencedError as fenced:
        log.error("%s", fenced)
        return 4
    except CleanupError as error:
        log.error("%s", error)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
