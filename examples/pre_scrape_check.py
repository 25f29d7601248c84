"""The seed's pre-scrape check in one call: start, resume, clean up dead runs then start, or wait.

    python examples/pre_scrape_check.py "Assam Tenders" [--db URL] [--checkpoint-dir DIR]

``start_portal`` runs the check and acts on it atomically (no other worker can start the portal
in between), then calls the scrape function inside the run tracker. Here the scrape function is
the demo's synthetic portal; put your own scraper in its place.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

# Run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cleanup_core import CleanupError, CleanupService, Settings
from cleanup_core.db import Database
from cleanup_core.demo import scrape_synthetic_portal
from cleanup_core.tracker import TrackedRun, start_portal


def scrape(run: TrackedRun) -> int:
    """Your scraper: continue from ``run.cursor``, skip ``run.seen_tender_ids``, report tenders
    with ``run.add_tenders`` and save ``run.save_checkpoint(cursor=...)`` as you go."""
    return scrape_synthetic_portal(run, delay=0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("portal", help='portal name, e.g. "Assam Tenders"')
    parser.add_argument("--db", help="database URL (default: CLEANUP_DATABASE_URL)")
    parser.add_argument(
        "--checkpoint-dir", help="checkpoint folder (default: CLEANUP_CHECKPOINT_DIR)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = Settings.load(database_url=args.db, checkpoint_dir=args.checkpoint_dir)
        service = CleanupService(settings, database=Database(settings, create_missing=True))
        outcome = start_portal(args.portal, scrape, service=service)
    except CleanupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not outcome.scraped:
        print(f"{args.portal}: not scraped now: {outcome.reason}")
        return 3
    cleaned = (
        f" after cleaning up runs {list(outcome.cleaned_run_ids)}"
        if outcome.cleaned_run_ids
        else ""
    )
    print(
        f"{args.portal}: {outcome.action.value} run {outcome.run_id}{cleaned}: "
        f"{outcome.status}, {outcome.result} tenders added"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
