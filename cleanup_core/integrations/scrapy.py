"""Scrapy: every crawl of a spider becomes a tracked run, with no tracking code in the spider.

Enable both components in the project's ``settings.py``::

    EXTENSIONS = {"cleanup_core.integrations.scrapy.RunTracker": 500}
    ITEM_PIPELINES = {"cleanup_core.integrations.scrapy.TenderPipeline": 300}

``RunTracker`` claims the portal when the spider opens (start, resume the most advanced resumable
run, or clean up dead runs and start) and hands the claimed run to the spider as
``spider.tracked_run`` (its ``cursor`` and ``seen_tender_ids`` tell a resumed crawl what is done).
A busy portal closes the spider at once with the reason ``portal_busy``. While the crawl runs the
run heartbeats from a thread; when the spider closes the run is ended by Scrapy's close reason:
``finished`` completes it, ``shutdown`` (Ctrl-C, SIGTERM) releases it (resumable at once), any
other reason fails it, with the reason in the audit event.

``TenderPipeline`` stores each item that has a tender id (field ``tender_id``, or the setting
``CLEANUP_TENDER_ID_FIELD``) in the ``tenders`` table under the run, one transaction per item,
and drops the items whose tender the portal already has (counted as skipped). After a commit it
saves the checkpoint when the spider moved its cursor, and at the latest every
``CLEANUP_CHECKPOINT_EVERY`` stored tenders. A write refused because the run was resumed
elsewhere (fenced) closes the spider with ``run_fenced``; nothing more is written.

The spider sets ``self.tracked_run.cursor`` (JSON) at the START of a callback, to the position
of the response it handles: where a resume starts. Not after yielding the items: Scrapy reads a
callback's output ahead of the pipelines, so a cursor set after the items would be saved with
the first of them, and a crash just then would skip the others on resume. Set at the start, it
is saved with the first tender of its response, after every tender of the responses before it
was stored. That holds while no pipeline ahead of ``TenderPipeline`` waits (is async).

Settings are the usual ``CLEANUP_*`` ones. A Scrapy setting of the same name (``settings.py``,
``custom_settings``) is used when the environment does not set it; ``-s NAME=value`` on the
command line beats both.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from itemadapter import ItemAdapter
from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, DropItem
from scrapy.settings import SETTINGS_PRIORITIES, BaseSettings
from scrapy.utils.defer import deferred_from_coro
from twisted.python.failure import Failure

from cleanup_core.config import ENV_PREFIX, Settings
from cleanup_core.db import Database
from cleanup_core.errors import CleanupError, ConfigError, DatabaseError
from cleanup_core.service import CleanupService
from cleanup_core.tracker import PortalBusyError, RunFencedError, TrackedRun, track_run

log = logging.getLogger("cleanup_core.scrapy")

TENDER_ID_FIELD = "CLEANUP_TENDER_ID_FIELD"
CHECKPOINT_EVERY = "CLEANUP_CHECKPOINT_EVERY"
_NOT_SAVED = object()


class CloseReason(StrEnum):
    """Scrapy's close reasons this integration reads, and the ones it closes a spider with."""

    FINISHED = "finished"  # Scrapy: nothing left to crawl
    SHUTDOWN = "shutdown"  # Scrapy: Ctrl-C or SIGTERM (the first one)
    PORTAL_BUSY = "portal_busy"  # another run of the portal is alive, starting, or needs a person
    CLAIM_FAILED = "claim_failed"  # a bad setting, the database unreachable, a race lost
    RUN_FENCED = "run_fenced"  # the run was resumed elsewhere: this crawl no longer owns it
    DATABASE_ERROR = "database_error"  # a tender or the checkpoint could not be saved
    CHECKPOINT_ERROR = "checkpoint_error"  # the checkpoint folder cannot be written
    TRACKER_MISSING = "run_tracker_missing"  # TenderPipeline without the RunTracker extension


def cleanup_values(
    scrapy_settings: BaseSettings, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The ``CLEANUP_*`` values in effect: Scrapy's settings, overridden by the environment,
    overridden by Scrapy settings given on the command line (``-s``)."""
    env = os.environ if env is None else env
    project: dict[str, str] = {}
    command_line: dict[str, str] = {}
    for name in scrapy_settings:
        value = scrapy_settings[name]
        if not name.startswith(ENV_PREFIX) or value is None:
            continue
        priority = scrapy_settings.getpriority(name) or 0
        target = command_line if priority >= SETTINGS_PRIORITIES["cmdline"] else project
        target[name] = _as_text(value)
    environment = {name: value for name, value in env.items() if name.startswith(ENV_PREFIX)}
    return {**project, **environment, **command_line}


def _as_text(value: Any) -> str:
    """A setting as the environment would spell it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def portal_name_of(spider: Spider) -> str:
    """The portal a spider scrapes: its ``portal_name`` attribute, else its ``name``."""
    return getattr(spider, "portal_name", None) or spider.name


class RunTracker:
    """Extension: claims the spider's portal when it opens; ends the run when it closes."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self.run: TrackedRun | None = None
        self._service: CleanupService | None = None
        self._close_requested = False
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(self.response_received, signal=signals.response_received)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunTracker:
        return cls(crawler)

    def spider_opened(self, spider: Spider) -> None:
        """The pre-scrape claim. Raises ``CloseSpider`` when nothing was claimed, so the
        spider closes before it crawls anything."""
        portal = portal_name_of(spider)
        service = None
        try:
            settings = Settings.load(cleanup_values(self.crawler.settings))
            # A scraper creates its database if needed (the tools that only read it do not).
            service = CleanupService(settings, database=Database(settings, create_missing=True))
            run = track_run(portal, service=service, handle_sigterm=False).claim()
        except PortalBusyError as busy:
            log.warning("%s", busy)
            self._dispose(service)
            raise CloseSpider(CloseReason.PORTAL_BUSY.value) from None
        except (CleanupError, ValueError) as exc:
            log.error("portal %r: no run was claimed, not crawling: %s", portal, exc)
            self._dispose(service)
            raise CloseSpider(CloseReason.CLAIM_FAILED.value) from None
        self.run, self._service = run, service
        spider.tracked_run = run  # type: ignore[attr-defined]  # an attribute the spider reads
        log.info(
            "portal %r: %s run %d (attempt %d); %d tenders seen already, cursor %r",
            portal,
            "resuming" if run.resumed else "started",
            run.run_id,
            run.attempt,
            len(run.seen_tender_ids),
            run.cursor,
        )

    def response_received(self) -> None:
        """A run fenced by its heartbeat stops the crawl at the next response."""
        if self.run is not None and self.run.fenced is not None:
            self.close_spider(CloseReason.RUN_FENCED)

    def close_spider(self, reason: CloseReason) -> None:
        """Ask Scrapy (once) to close the spider, after the requests and items in progress."""
        if self._close_requested:
            return
        self._close_requested = True
        closing = deferred_from_coro(self.crawler.engine.close_spider_async(reason=reason.value))

        def report(failure: Failure) -> None:
            log.error("could not close the spider (%s): %s", reason, failure.getErrorMessage())

        closing.addErrback(report)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        """End the run by Scrapy's close reason (nothing to do if none was claimed)."""
        run = self.run
        if run is None:
            return
        try:
            if reason == CloseReason.FINISHED:
                run.complete()
            elif reason == CloseReason.SHUTDOWN:
                run.release(reason)
            else:
                run.fail(reason)
        except RunFencedError as fenced:
            log.warning("portal %r: nothing written at the end: %s", run.portal_name, fenced)
        except (CleanupError, OSError) as exc:
            log.error(
                "portal %r: run %d could not be ended (%s); it stays running and becomes "
                "resumable when its heartbeat times out",
                run.portal_name,
                run.run_id,
                exc,
            )
        finally:
            self._dispose(self._service)

    @staticmethod
    def _dispose(service: CleanupService | None) -> None:
        if service is not None:
            service.close()


class TenderPipeline:
    """Item pipeline: stores tenders under the spider's tracked run, drops those already stored."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        values = cleanup_values(crawler.settings)
        self.tender_id_field = values.get(TENDER_ID_FIELD, "tender_id").strip()
        if not self.tender_id_field:
            raise ConfigError(f"{TENDER_ID_FIELD} must name the item field holding tender ids")
        self.checkpoint_every = _whole_number(values.get(CHECKPOINT_EVERY, "100"))
        self._tracker: RunTracker | None = None
        self._saved_cursor: Any = _NOT_SAVED
        self._stored_since_checkpoint = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> TenderPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        """Find the run tracker; without it the spider closes before crawling anything."""
        self._tracker = self.crawler.get_extension(RunTracker)
        if self._tracker is None:
            log.error(
                "TenderPipeline needs the RunTracker extension: add "
                '"cleanup_core.integrations.scrapy.RunTracker": 500 to EXTENSIONS'
            )
            raise CloseSpider(CloseReason.TRACKER_MISSING.value)

    def process_item(self, item: Any) -> Any:
        """Store a tender item, or drop it when the portal has it already; other items pass."""
        adapter = ItemAdapter(item)
        tender_id = adapter.get(self.tender_id_field)
        if tender_id is None:
            return item
        assert self._tracker is not None and self._tracker.run is not None, "claimed at open"
        run = self._tracker.run
        try:
            result = run.add_tenders([{**adapter.asdict(), "tender_id": tender_id}])
        except ValueError as exc:
            self.crawler.stats.inc_value("cleanup/tenders_invalid")
            raise DropItem(f"not stored: {exc}", log_level="ERROR") from None
        except RunFencedError as fenced:
            raise self._stop(CloseReason.RUN_FENCED, f"not stored: {fenced}") from None
        except DatabaseError as exc:
            raise self._stop(CloseReason.DATABASE_ERROR, f"not stored: {exc}") from None
        try:
            self._checkpoint(run, result.added)
        except RunFencedError as fenced:
            raise self._stop(CloseReason.RUN_FENCED, str(fenced)) from None
        except DatabaseError as exc:
            raise self._stop(CloseReason.DATABASE_ERROR, str(exc)) from None
        except OSError as exc:
            message = f"the checkpoint could not be written: {exc}"
            raise self._stop(CloseReason.CHECKPOINT_ERROR, message) from None
        if result.skipped:
            self.crawler.stats.inc_value("cleanup/tenders_skipped")
            raise DropItem(
                f"tender {tender_id!r} is already stored for portal {run.portal_name!r}",
                log_level="DEBUG",
            )
        self.crawler.stats.inc_value("cleanup/tenders_stored")
        return item

    def _checkpoint(self, run: TrackedRun, added: int) -> None:
        """Save the checkpoint after a commit when the cursor moved, or every so many tenders
        (the tenders table holds them all; the file is for the cursor and older tools)."""
        self._stored_since_checkpoint += added
        moved = self._saved_cursor is _NOT_SAVED or run.cursor != self._saved_cursor
        if moved or self._stored_since_checkpoint >= self.checkpoint_every:
            run.save_checkpoint(cursor=run.cursor)
            self._saved_cursor = copy.deepcopy(run.cursor)
            self._stored_since_checkpoint = 0

    def _stop(self, reason: CloseReason, message: str) -> DropItem:
        """Close the spider: nothing more can (or may) be stored under this run."""
        assert self._tracker is not None
        self._tracker.close_spider(reason)
        level = "WARNING" if reason is CloseReason.RUN_FENCED else "ERROR"
        return DropItem(f"{message}; stopping the crawl ({reason})", log_level=level)


def _whole_number(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(f"{CHECKPOINT_EVERY} must be a whole number >= 1, got {text!r}")
    return number
