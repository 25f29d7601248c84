"""The Scrapy integration's components in-process, on a real database (SQLite file and
PostgreSQL): Scrapy's own crawler, settings, signals and stats, built from the settings as
Scrapy builds them; only the engine is a stand-in that records the close a component asks for.
Whole crawls run as real processes in test_scrapy.py."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta

import pytest
import scrapy
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, DropItem
from scrapy.extension import ExtensionManager
from scrapy.settings import Settings as ScrapySettings
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.misc import build_from_crawler
from sqlalchemy import text

from cleanup_core import COMPLETED, FAILED, RUNNING, Action, ConfigError, track_run
from cleanup_core.checkpoints import read_checkpoint
from cleanup_core.integrations.scrapy import RunTracker, TenderPipeline, cleanup_values
from tests.conftest import TZ


class Engine:
    """Stands in for Scrapy's engine: records the close requests the components make."""

    def __init__(self) -> None:
        self.close_reasons: list[str] = []

    async def close_spider_async(self, *, reason: str) -> None:
        self.close_reasons.append(reason)


class TenderSpider(scrapy.Spider):
    name = "assam_spider"
    portal_name = "Assam Tenders"


@pytest.fixture(autouse=True)
def no_cleanup_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("CLEANUP_"):
            monkeypatch.delenv(name)


def make_crawler(settings, extensions=True, **extra) -> Crawler:
    """A crawler with the project's settings, its extensions and pipeline built by Scrapy."""
    values = {
        "CLEANUP_DATABASE_URL": settings.database_url,
        "CLEANUP_CHECKPOINT_DIR": str(settings.checkpoint_dir),
        "CLEANUP_TIMEZONE": TZ,
        "EXTENSIONS_BASE": {},
        "EXTENSIONS": {RunTracker: 500} if extensions else {},
        **extra,
    }
    crawler = Crawler(TenderSpider, values)
    crawler.stats = MemoryStatsCollector(crawler)
    crawler.engine = Engine()
    crawler.extensions = build_from_crawler(ExtensionManager, crawler)
    crawler.spider = TenderSpider.from_crawler(crawler)
    return crawler


class Crawl:
    """The components of one crawl, called the way Scrapy calls them."""

    def __init__(self, settings, **extra):
        self.crawler = make_crawler(settings, **extra)
        self.spider = self.crawler.spider
        self.tracker = self.crawler.get_extension(RunTracker)
        self.pipeline = TenderPipeline.from_crawler(self.crawler)

    def open(self) -> None:
        self.pipeline.open_spider()
        self.tracker.spider_opened(self.spider)

    def item(self, item):
        """``process_item`` inside an event loop (Scrapy's), which then runs what it asked."""

        async def process():
            try:
                return self.pipeline.process_item(item)
            finally:
                await asyncio.sleep(0)

        return asyncio.run(process())

    def close(self, reason: str) -> None:
        self.tracker.spider_closed(self.spider, reason)

    @property
    def run(self):
        return self.tracker.run

    def stat(self, name: str):
        return self.crawler.stats.get_value(name)

    @property
    def close_reasons(self) -> list[str]:
        return self.crawler.engine.close_reasons


def tender(tender_id: str, **fields):
    return {"tender_id": tender_id, "title": f"Tender {tender_id}", **fields}


def counters(runs, run_id):
    row = runs.get(run_id)
    return row["extracted_total_tenders"], row["skipped_existing_total"]


def stored(service):
    with service.db.read() as conn:
        rows = conn.execute(text("SELECT run_id, tender_id FROM tenders ORDER BY id"))
        return [tuple(row) for row in rows]


def actions(service, run_id):
    return [e.action for e in reversed(service.history(run_id=run_id, limit=100).events)]


def test_each_tender_is_stored_once_and_a_repeat_is_dropped_as_skipped(settings, service, runs):
    with track_run("Assam Tenders", service=service) as earlier:
        earlier.add_tenders([tender("OLD-1")])
    crawl = Crawl(settings)
    crawl.open()
    assert crawl.spider.tracked_run is crawl.run
    run_id = crawl.run.run_id

    item = tender("T1", value_inr="125000.5")
    assert crawl.item(item) is item, "a stored tender goes on to the next pipeline"
    with pytest.raises(DropItem, match="'T1' is already stored for portal 'Assam Tenders'"):
        crawl.item(tender("T1"))
    with pytest.raises(DropItem, match="'OLD-1' is already stored"):
        crawl.item(tender("OLD-1"))
    page = {"url": "https://example.org/page/2"}
    assert crawl.item(page) is page, "an item without a tender id is not the pipeline's"

    assert counters(runs, run_id) == (1, 2)
    assert (crawl.stat("cleanup/tenders_stored"), crawl.stat("cleanup/tenders_skipped")) == (1, 2)
    assert stored(service) == [(earlier.run_id, "OLD-1"), (run_id, "T1")]
    assert crawl.close_reasons == []
    crawl.close("finished")
    assert runs.get(run_id)["status"] == COMPLETED


def test_a_bad_tender_is_dropped_and_nothing_is_written(settings, service, runs):
    crawl = Crawl(settings)
    crawl.open()
    with pytest.raises(DropItem, match="value_inr must be a finite number"):
        crawl.item(tender("T1", value_inr="twelve lakh"))
    with pytest.raises(DropItem, match="needs a non-empty 'tender_id'"):
        crawl.item(tender("   "))
    assert counters(runs, crawl.run.run_id) == (0, 0)
    assert crawl.stat("cleanup/tenders_invalid") == 2
    assert stored(service) == []
    assert crawl.close_reasons == [], "a bad item is the spider's problem, not a reason to stop"
    crawl.close("finished")


def test_the_tender_id_field_is_a_setting(settings, service):
    crawl = Crawl(settings, CLEANUP_TENDER_ID_FIELD="nit_number")
    crawl.open()
    crawl.item({"nit_number": "2026_PWD_1", "title": "Road"})
    assert crawl.item({"tender_id": "not one", "title": "x"})["title"] == "x"
    crawl.close("finished")
    assert stored(service) == [(crawl.run.run_id, "2026_PWD_1")]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CLEANUP_CHECKPOINT_EVERY", "often", "must be a whole number >= 1, got 'often'"),
        ("CLEANUP_CHECKPOINT_EVERY", "0", "must be a whole number >= 1, got '0'"),
        ("CLEANUP_TENDER_ID_FIELD", " ", "must name the item field holding tender ids"),
    ],
)
def test_a_bad_pipeline_setting_stops_the_crawl_at_startup(name, value, message, settings, runs):
    with pytest.raises(ConfigError, match=f"{name} {message}"):
        TenderPipeline.from_crawler(make_crawler(settings, **{name: value}))
    assert runs.count() == 0


def test_a_checkpoint_follows_the_cursor_and_at_least_every_n_tenders(settings, service):
    crawl = Crawl(settings, CLEANUP_CHECKPOINT_EVERY=2)
    crawl.open()

    def saved():
        found = read_checkpoint(settings.checkpoint_dir, "Assam Tenders", max_bytes=10**6)
        return [t["tender_id"] for t in found.tenders], found.cursor

    crawl.item(tender("T1"))
    assert saved() == (["T1"], None), "the first commit leaves a checkpoint"
    crawl.item(tender("T2"))
    assert saved() == (["T1"], None), "one tender since, the cursor where it was"
    crawl.item(tender("T3"))
    assert saved() == (["T1", "T2", "T3"], None), "every second tender"
    crawl.run.cursor = {"organisation": "PWD", "page": 2}
    with pytest.raises(DropItem):
        crawl.item(tender("T3"))
    assert saved() == (["T1", "T2", "T3"], {"organisation": "PWD", "page": 2}), "cursor moved"
    crawl.run.cursor["page"] = 3  # changed in place
    crawl.item(tender("T4"))
    assert saved() == (["T1", "T2", "T3", "T4"], {"organisation": "PWD", "page": 3})
    crawl.close("finished")


def test_scrapy_settings_the_environment_and_the_command_line_in_that_order(monkeypatch):
    scrapy_settings = ScrapySettings()
    scrapy_settings.setdict(
        {
            "CLEANUP_DATABASE_URL": "sqlite:///project.db",
            "CLEANUP_CHECKPOINT_DIR": "project-checkpoints",
            "CLEANUP_HEARTBEAT_INTERVAL_SECONDS": 5,
            "CLEANUP_MONITOR_AUTO_CLEAN": False,
            "CLEANUP_NOTIFY_URLS": ["json://a.example", "json://b.example"],
            "DOWNLOAD_DELAY": 3,
        },
        priority="project",
    )
    scrapy_settings.set("CLEANUP_CHECKPOINT_DIR", "cmdline-checkpoints", priority="cmdline")
    environment = {
        "CLEANUP_DATABASE_URL": "sqlite:///env.db",
        "CLEANUP_CHECKPOINT_DIR": "env-checkpoints",
        "HOME": "/root",
    }
    assert cleanup_values(scrapy_settings, environment) == {
        "CLEANUP_DATABASE_URL": "sqlite:///env.db",
        "CLEANUP_CHECKPOINT_DIR": "cmdline-checkpoints",
        "CLEANUP_HEARTBEAT_INTERVAL_SECONDS": "5",
        "CLEANUP_MONITOR_AUTO_CLEAN": "false",
        "CLEANUP_NOTIFY_URLS": "json://a.example,json://b.example",
    }


def test_a_busy_portal_closes_the_spider_before_it_crawls_and_changes_nothing(
    settings, service, runs
):
    alive = runs.add("Assam Tenders", last_heartbeat_at=datetime.now(UTC))
    crawl = Crawl(settings)
    crawl.pipeline.open_spider()
    with pytest.raises(CloseSpider) as closed:
        crawl.tracker.spider_opened(crawl.spider)
    assert closed.value.reason == "portal_busy"
    assert not hasattr(crawl.spider, "tracked_run")
    crawl.close("portal_busy")
    assert runs.count() == 1
    assert runs.get(alive)["status"] == RUNNING
    assert runs.count("run_events") == 0


def test_a_setting_that_cannot_work_closes_the_spider_with_claim_failed(settings, runs, caplog):
    crawl = Crawl(settings, CLEANUP_HEARTBEAT_INTERVAL_SECONDS=3600)
    with pytest.raises(CloseSpider) as closed:
        crawl.tracker.spider_opened(crawl.spider)
    assert closed.value.reason == "claim_failed"
    assert "heartbeat_interval_seconds (3600 s) must be at most half" in caplog.text
    assert runs.count() == 0


def test_the_pipeline_without_the_tracker_closes_the_spider_before_it_crawls(settings, caplog):
    crawler = make_crawler(settings, extensions=False)
    with pytest.raises(CloseSpider) as closed:
        TenderPipeline.from_crawler(crawler).open_spider()
    assert closed.value.reason == "run_tracker_missing"
    assert '"cleanup_core.integrations.scrapy.RunTracker": 500 to EXTENSIONS' in caplog.text


@pytest.mark.parametrize(
    ("reason", "status", "action"),
    [
        ("finished", COMPLETED, "complete"),
        ("shutdown", RUNNING, "release"),
        ("closespider_errorcount", FAILED, "fail"),
        ("cancelled", FAILED, "fail"),
    ],
)
def test_the_close_reason_ends_the_run(reason, status, action, settings, service, runs):
    crawl = Crawl(settings)
    crawl.open()
    crawl.item(tender("T1"))
    crawl.close(reason)
    row = runs.get(crawl.run.run_id)
    assert row["status"] == status
    assert (row["completed_at"] is None) == (status == RUNNING)
    assert actions(service, crawl.run.run_id) == ["start", action]
    last = service.history(run_id=crawl.run.run_id, limit=1).events[0]
    if action != "complete":
        assert last.details["reason"] == reason
    if action == "release":
        assert service.check_portal("Assam Tenders").action is Action.RESUME


def test_a_fenced_write_stops_the_crawl_and_nothing_more_is_written(settings, service, runs):
    crawl = Crawl(settings)
    crawl.open()
    crawl.item(tender("A1"))
    run_id = crawl.run.run_id
    runs.update(run_id, last_heartbeat_at=datetime.now(UTC) - timedelta(hours=1))
    with track_run("Assam Tenders", service=service, worker_id="host-b:2") as other:
        assert (other.run_id, other.attempt) == (run_id, 2)
        with pytest.raises(DropItem, match=r"taken over by attempt 2.*stopping the crawl"):
            crawl.item(tender("A2"))
        assert crawl.close_reasons == ["run_fenced"]
        crawl.tracker.response_received()
        assert crawl.close_reasons == ["run_fenced"], "asked once"
        crawl.close("run_fenced")
        other.add_tenders([tender("B1")])
    assert stored(service) == [(run_id, "A1"), (run_id, "B1")]
    row = runs.get(run_id)
    assert (row["status"], row["attempt"], row["worker_id"]) == (COMPLETED, 2, "host-b:2")
    assert counters(runs, run_id) == (2, 0)
    assert actions(service, run_id) == ["start", "resume", "complete"]


def test_a_run_fenced_by_its_heartbeat_stops_the_crawl_at_the_next_response(
    settings, service, runs
):
    crawl = Crawl(settings, CLEANUP_HEARTBEAT_INTERVAL_SECONDS=0.1)
    crawl.open()
    runs.update(crawl.run.run_id, status="Timeout - Auto-cleaned")
    deadline = time.monotonic() + 10
    while crawl.run.fenced is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert crawl.run.fenced is not None, "the heartbeat found the run no longer running"

    async def respond():
        crawl.tracker.response_received()
        await asyncio.sleep(0)

    asyncio.run(respond())
    assert crawl.close_reasons == ["run_fenced"]
    crawl.close("run_fenced")
    assert actions(service, crawl.run.run_id) == ["start"]


def test_a_spider_without_portal_name_scrapes_the_portal_of_its_name(settings, runs):
    class NamedSpider(scrapy.Spider):
        name = "kerala_etenders"

    crawler = Crawler(
        NamedSpider,
        {
            "CLEANUP_DATABASE_URL": settings.database_url,
            "CLEANUP_CHECKPOINT_DIR": str(settings.checkpoint_dir),
        },
    )
    spider = NamedSpider.from_crawler(crawler)
    tracker = RunTracker.from_crawler(crawler)
    tracker.spider_opened(spider)
    tracker.spider_closed(spider, "finished")
    assert runs.get(tracker.run.run_id)["portal_name"] == "kerala_etenders"
