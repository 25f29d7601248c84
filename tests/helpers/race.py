"""Worker processes for the race tests (importable by multiprocessing's spawn start method)."""

from __future__ import annotations

from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier, Event

from cleanup_core import CleanupService, PortalBusyError, Settings, track_run
from cleanup_core.db import Database


def claim_and_hold(
    db_url: str,
    checkpoint_dir: str,
    portal: str,
    barrier: Barrier,
    results: Queue,
    release: Event,
) -> None:
    """Open the database, wait for every racer, then try to claim ``portal``; the winner holds
    its run until ``release`` is set, so every loser meets it running."""
    settings = Settings.load(
        {},
        database_url=db_url,
        checkpoint_dir=checkpoint_dir,
        busy_timeout_seconds=20,
        heartbeat_interval_seconds=1,
    )
    service = CleanupService(settings, database=Database(settings))
    service.scan()  # connected and adopted before the race starts
    barrier.wait()
    try:
        with track_run(portal, service=service) as run:
            results.put(("claimed", run.run_id, run.worker_id))
            release.wait(60)
    except PortalBusyError as busy:
        results.put(("busy", busy.run_id, str(busy)))
    except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
        results.put(("error", None, repr(exc)))
    finally:
        service.db.dispose()
