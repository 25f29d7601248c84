"""Settings of the example project: one spider for a GePNIC-style portal, served locally."""

from pathlib import Path

BOT_NAME = "tender_portal"
SPIDER_MODULES = ["tender_portal.spiders"]
NEWSPIDER_MODULE = "tender_portal.spiders"

# Every crawl is a tracked run: claimed, heartbeating, its tenders stored, resumable.
EXTENSIONS = {"cleanup_core.integrations.scrapy.RunTracker": 500}
ITEM_PIPELINES = {"cleanup_core.integrations.scrapy.TenderPipeline": 300}
# The checkout's database and checkpoint folder, which the dashboard and the command line use
# by default. CLEANUP_DATABASE_URL / CLEANUP_CHECKPOINT_DIR in the environment win over these,
# and `scrapy crawl ... -s NAME=value` wins over both.
checkout = Path(__file__).resolve().parents[3]
CLEANUP_DATABASE_URL = f"sqlite:///{checkout / 'data' / 'tenders.db'}"
CLEANUP_CHECKPOINT_DIR = str(checkout / "checkpoints")

# The bundled portal server (portal_server.py); `-s PORTAL_URL=...` for another port.
PORTAL_URL = "http://127.0.0.1:8765"

# A spider error ends the crawl, so the run is marked failed instead of completed with pages
# missing (Scrapy itself carries on after an error and closes with "finished").
CLOSESPIDER_ERRORCOUNT = 1

LOG_LEVEL = "INFO"
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
