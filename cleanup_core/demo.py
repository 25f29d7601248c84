"""A demo fleet: GePNIC-style tender portals, their tenders, and runs in every state.

``load_demo`` fills the configured database and checkpoint folder so an operator can see the
whole story on their own machine: completed and failed runs, a run that is alive right now, one
that may still be starting, runs to resume (by progress, by checkpoint only), dead runs to clean
up, a run whose checkpoint is corrupt, and a run cleaned up earlier (with its audit event).
``synthetic_portal`` is the deterministic portal that ``examples/demo_scraper.py`` scrapes; the
demo's partly scraped runs hold exactly its first pages, so resuming them ends with exactly the
tenders an uninterrupted scrape would have stored.

The demo plans its runs and files; the service writes them (``CleanupService.load_demo_fleet``)
and marks each run (``demo_runs``: the run's id, portal and start time, and the highest tender
and event ids already linked to that id). Loading the demo again replaces exactly
the runs that are still the ones it marked, with only the tenders and events they wrote; it
refuses a database holding other runs unless forced, and never touches them. Run ids are never
assumed fresh: a run that got a demo run's id, or a deleted run whose id the demo got, keeps its
rows. Every demo run's ``worker_id`` starts with ``demo:``.
"""

from __future__ import annotations

import json
import logging
import random
import shlex
import time as clock
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cleanup_core.checkpoints import checkpoint_path, read_checkpoint, write_checkpoint
from cleanup_core.config import Settings, beside_database_config
from cleanup_core.errors import RefusedError
from cleanup_core.service import CleanupService, PlannedRun
from cleanup_core.timestamps import utc_now
from cleanup_core.vocabulary import AuditAction, RunStatus

if TYPE_CHECKING:
    from cleanup_core.tracker import TrackedRun

log = logging.getLogger("cleanup_core.demo")

DEMO_PREFIX = "demo:"
# Organisations per portal, result pages per organisation, tenders per page.
ORGANISATIONS, PAGES, PER_PAGE = 4, 3, 10

# Department code, name, the office under it, and a kind of work it buys.
_DEPARTMENTS = (
    ("PWD", "Public Works Department", "Chief Engineer PWD (Roads)", "roads"),
    ("WRD", "Water Resources Department", "Chief Engineer (Irrigation)", "water"),
    ("PHED", "Public Health Engineering Department", "Chief Engineer PHE", "water"),
    ("HFW", "Health and Family Welfare Department", "Directorate of Health Services", "health"),
    ("RDD", "Rural Development Department", "Commissioner, Panchayat and RD", "roads"),
    ("UDD", "Urban Development Department", "Municipal Corporation", "buildings"),
    ("EDU", "School Education Department", "Directorate of Secondary Education", "buildings"),
    ("PDC", "Power Distribution Company Ltd", "Chief General Manager (Distribution)", "power"),
)
_CENTRAL = (
    ("CPWD", "Central Public Works Department", "Chief Engineer (Zone II)", "buildings"),
    ("NHAI", "National Highways Authority of India", "Regional Office", "roads"),
    ("RLY", "Ministry of Railways", "Divisional Railway Manager", "buildings"),
    ("MOD", "Ministry of Defence", "Military Engineer Services", "buildings"),
)


@dataclass(frozen=True)
class DemoPortal:
    name: str
    cities: tuple[str, ...]
    central: bool = False


PORTALS = (
    DemoPortal("Assam Tenders", ("Guwahati", "Dibrugarh", "Silchar", "Jorhat", "Tezpur")),
    DemoPortal("MP Tenders", ("Bhopal", "Indore", "Jabalpur", "Gwalior", "Ujjain")),
    DemoPortal("Maharashtra eTenders", ("Pune", "Nagpur", "Nashik", "Aurangabad", "Thane")),
    DemoPortal("CPPP Central", ("New Delhi", "Kolkata", "Chennai", "Mumbai"), central=True),
    DemoPortal("Kerala eTenders", ("Thiruvananthapuram", "Kochi", "Kozhikode", "Thrissur")),
    DemoPortal("Uttar Pradesh eTender", ("Lucknow", "Kanpur", "Varanasi", "Agra", "Prayagraj")),
    DemoPortal("West Bengal eTender", ("Kolkata", "Siliguri", "Durgapur", "Howrah")),
    DemoPortal("Haryana eProcurement", ("Gurugram", "Faridabad", "Hisar", "Panipat")),
    DemoPortal("Tamil Nadu Tenders", ("Chennai", "Coimbatore", "Madurai", "Salem")),
)
_BY_NAME = {portal.name: portal for portal in PORTALS}

_WORKS = {
    "roads": (
        "Improvement of {city}-{town} road from km {a}/0 to km {b}/0",
        "Construction of RCC bridge No. {a}/{n} on {city}-{town} road",
        "Strengthening and widening of {town} bypass (length {n}.{a} km)",
    ),
    "water": (
        "Construction of {n} lakh litre overhead tank at {town}",
        "Laying of DI pipeline for piped water supply scheme, {town}",
        "Desilting and lining of {town} distributary canal, km {a} to km {b}",
    ),
    "health": (
        "Construction of 30-bedded community health centre at {town}",
        "Renovation of operation theatre, District Hospital {city}",
    ),
    "buildings": (
        "Construction of G+{n} office building at {city}",
        "Repair and renovation of {town} Higher Secondary School",
        "Construction of boundary wall and approach road at {town}",
    ),
    "power": (
        "Erection of 33/11 kV substation at {town}",
        "Replacement of LT lines with aerial bunched cable in {town} feeder",
    ),
}
_GOODS = (
    "Supply of {n} Nos. desktop computers for {office}",
    "Supply of medicines and consumables for {office}",
    "Procurement of {n} Nos. distribution transformers (100 kVA)",
    "Supply of ductile iron pipes (DN 150) for {town} scheme",
)
_SERVICES = (
    "Annual maintenance contract for lifts at {office}",
    "Hiring of {n} vehicles on monthly basis for {office}",
    "Engagement of security and housekeeping staff at {office}",
    "Consultancy for detailed project report of {town} sewerage scheme",
)
_TOWNS = ("Rampur", "Sonapur", "Barpeta", "Kalyani", "Hojai", "Pathsala", "Shivpur", "Narsinghpur")
_VALUE_RANGE = {"Works": (5e5, 2.5e8), "Goods": (5e4, 2e7), "Services": (1e5, 5e6)}


@dataclass(frozen=True)
class SyntheticOrganisation:
    chain: str  # GePNIC's "Department||Office||Division"
    pages: tuple[tuple[dict[str, Any], ...], ...]


@dataclass(frozen=True)
class SyntheticPortal:
    """A portal as the demo scraper sees it: organisations, each with result pages of tenders."""

    name: str
    as_of: date
    organisations: tuple[SyntheticOrganisation, ...]

    def tenders(self) -> list[dict[str, Any]]:
        return [t for org in self.organisations for page in org.pages for t in page]

    def pages_before(self, organisation: int, page: int) -> list[dict[str, Any]]:
        """The tenders of every page before (``organisation``, ``page``), in scraping order."""
        done: list[dict[str, Any]] = []
        for o, org in enumerate(self.organisations):
            for p, tenders in enumerate(org.pages):
                if (o, p) >= (organisation, page):
                    return done
                done.extend(tenders)
        return done


def synthetic_portal(portal_name: str, *, as_of: date) -> SyntheticPortal:
    """The portal's organisations, pages and tenders: the same for the same name and date."""
    rng = random.Random(f"cleanup-demo:{portal_name}")  # noqa: S311 - demo data, seeded on purpose
    known = _BY_NAME.get(portal_name)
    cities = known.cities if known else ("Capital City", "North District", "South District")
    departments = list(_CENTRAL if known and known.central else _DEPARTMENTS)
    rng.shuffle(departments)
    fiscal = as_of.year if as_of.month >= 4 else as_of.year - 1
    organisations = []
    serial = rng.randint(11000, 39000)
    for code, department, office, kind in departments[:ORGANISATIONS]:
        city = rng.choice(cities)
        division = f"Executive Engineer, {city} Division"
        chain = f"{department}||{office}||{division}"
        pages = []
        for _ in range(PAGES):
            page = []
            for _ in range(PER_PAGE):
                serial += rng.randint(1, 40)
                page.append(_tender(rng, code, chain, city, kind, serial, as_of, fiscal))
            pages.append(tuple(page))
        organisations.append(SyntheticOrganisation(chain, tuple(pages)))
    return SyntheticPortal(portal_name, as_of, tuple(organisations))


def _tender(
    rng: random.Random,
    code: str,
    chain: str,
    city: str,
    kind: str,
    serial: int,
    as_of: date,
    fiscal: int,
) -> dict[str, Any]:
    category = rng.choices(("Works", "Goods", "Services"), weights=(6, 2, 2))[0]
    templates = {"Works": _WORKS[kind], "Goods": _GOODS, "Services": _SERVICES}[category]
    a = rng.randint(1, 60)
    title = rng.choice(templates).format(
        city=city,
        town=rng.choice(_TOWNS),
        office=chain.split("||")[1],
        a=a,
        b=a + rng.randint(2, 15),
        n=rng.randint(2, 12),
    )
    low, high = _VALUE_RANGE[category]
    published = as_of - timedelta(days=rng.randint(1, 20))
    closing = datetime.combine(
        published + timedelta(days=rng.randint(14, 35)), time(rng.choice((11, 15, 17)))
    )
    return {
        "tender_id": f"{as_of.year}_{code}_{serial}_1",
        "reference_number": (
            f"{code}/{city[:3].upper()}/{fiscal}-{(fiscal + 1) % 100:02d}/{rng.randint(1, 400)}"
        ),
        "title": title,
        "organisation": chain,
        "category": category,
        "value_inr": round(rng.uniform(low, high), -3),
        "published_date": published.isoformat(),
        "closing_date": closing.isoformat(sep=" "),
    }


def scrape_synthetic_portal(
    run: TrackedRun, *, delay: float = 0.0, as_of: date | None = None
) -> int:
    """Scrape the run's synthetic portal page by page, from the checkpoint's cursor on, storing
    each page's tenders and saving a checkpoint after it; ``delay`` seconds per page stand in
    for the network. A resumed run keeps the date it started with (it is in the cursor).
    Returns how many tenders this call added."""
    organisation, page, as_of = _position(run.cursor, as_of or _today(run))
    portal = synthetic_portal(run.portal_name, as_of=as_of)
    added = 0
    for o, org in enumerate(portal.organisations):
        for p, tenders in enumerate(org.pages):
            if (o, p) < (organisation, page):
                continue
            clock.sleep(delay)
            result = run.add_tenders(tenders)
            added += result.added
            following = (o, p + 1) if p + 1 < len(org.pages) else (o + 1, 0)
            cursor = {"organisation": following[0], "page": following[1], "as_of": str(as_of)}
            run.save_checkpoint(cursor=cursor)
            log.info(
                "%s: organisation %d/%d page %d/%d: %d added, %d skipped",
                run.portal_name,
                o + 1,
                len(portal.organisations),
                p + 1,
                len(org.pages),
                result.added,
                result.skipped,
            )
    return added


def _today(run: TrackedRun) -> date:
    return utc_now().astimezone(run.service.settings.timezone).date()


def _position(cursor: Any, default_as_of: date) -> tuple[int, int, date]:
    """Where a scrape continues: (organisation, page, as_of) from a demo cursor, else the start."""
    if not isinstance(cursor, dict):
        return 0, 0, default_as_of
    organisation, page = cursor.get("organisation"), cursor.get("page")
    if not (isinstance(organisation, int) and isinstance(page, int)):
        return 0, 0, default_as_of
    try:
        as_of = date.fromisoformat(str(cursor.get("as_of")))
    except ValueError:
        as_of = default_as_of
    return organisation, page, as_of


# -- loading the demo fleet ---------------------------------------------------------------

# A checkpoint cut off mid-write by an old, non-atomic scraper: the demo's "attention" case.
CORRUPT_CHECKPOINT = (
    b'{"portal_name": "West Bengal eTender", "cursor": {"organisation": 1, "page": 0}, '
    b'"tenders": [{"tender_id": "2026_PHED_2'
)
_CORRUPT_PORTAL = "West Bengal eTender"
_CHECKPOINT_ONLY_PORTAL = "Uttar Pradesh eTender"
_PROGRESS_PORTAL = "MP Tenders"


@dataclass(frozen=True)
class DemoReport:
    """What ``load_demo`` wrote: run ids by the state they were made to show."""

    runs: dict[str, tuple[int, ...]]
    portals: tuple[str, ...]
    tenders: int
    checkpoints: tuple[Path, ...]
    replaced_runs: int = 0
    loaded_at: datetime | None = None
    commands: DemoCommands | None = None

    @property
    def settings_file(self) -> Path | None:
        """The file the demo wrote its scraper commands to, if any."""
        return self.commands.path if self.commands else None

    @property
    def message(self) -> str:
        total = sum(len(ids) for ids in self.runs.values())
        replaced = (
            f" (replacing {self.replaced_runs} earlier demo runs)" if self.replaced_runs else ""
        )
        commands = f". {self.commands.message}" if self.commands else ""
        return (
            f"Loaded the demo fleet{replaced}: {total} runs on {len(self.portals)} portals, "
            f"{self.tenders} tenders, {len(self.checkpoints)} checkpoint files{commands}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": {label: list(ids) for label, ids in self.runs.items()},
            "portals": list(self.portals),
            "tenders": self.tenders,
            "checkpoints": [str(path) for path in self.checkpoints],
            "replaced_runs": self.replaced_runs,
            "loaded_at": self.loaded_at.isoformat() if self.loaded_at else None,
            "settings_file": str(self.settings_file) if self.settings_file else None,
            "message": self.message,
        }


@dataclass(frozen=True)
class _PlannedCheckpoint:
    """The checkpoint a partly scraped demo run left: the one ``scrape_synthetic_portal``
    saves after the last page it finished (``cursor`` is where it would go on)."""

    label: str  # the run's
    portal_name: str
    tenders: Sequence[dict[str, Any]]
    cursor: dict[str, Any]
    updated_at: datetime


@dataclass
class _Fleet:
    """The demo's plan for the service (``service.demo.DemoPlan``): the runs as of a moment,
    and the checkpoint files that go with them."""

    settings: Settings
    worker_prefix: str = DEMO_PREFIX
    checkpoints: list[_PlannedCheckpoint] = field(default_factory=list)

    def runs(self, now: datetime) -> list[PlannedRun]:
        as_of = now.astimezone(self.settings.timezone).date()
        planned, self.checkpoints = _plan_fleet(self.settings, now, as_of)
        return planned

    def refuse_foreign_files(self, demo_run_ids: set[int]) -> None:
        _refuse_foreign_checkpoints(self.settings, demo_run_ids)

    def write_files(self, run_ids: Mapping[str, Sequence[int]], now: datetime) -> tuple[Path, ...]:
        written = [
            write_checkpoint(
                self.settings.checkpoint_dir,
                planned.portal_name,
                tenders=list(planned.tenders),
                run_id=run_ids[planned.label][0],
                cursor=planned.cursor,
                updated_at=planned.updated_at.isoformat(),
            )
            for planned in self.checkpoints
        ]
        return (*written, _write_corrupt_checkpoint(self.settings.checkpoint_dir))


# The bundled scraper the demo's Resume, Start and "Clean up & start" buttons run.
DEMO_SCRAPER = Path(__file__).resolve().parent.parent / "examples" / "demo_scraper.py"
# Seconds per result page: a resumed demo run takes about half a minute, long enough to watch.
DEMO_PAGE_DELAY = 2
# Not one of the fleet's portals: the one the README's tour crashes and resumes, with a heartbeat
# timeout of seconds so that takes seconds.
CRASH_TEST_PORTAL = "Goa eProcurement"
CRASH_TEST_TIMEOUT_SECONDS = 12
# The first line of the settings file the demo writes; a file without it is never rewritten.
DEMO_CONFIG_MARKER = "# Written by `python -m cleanup_core demo`; loading the demo rewrites it."


@dataclass(frozen=True)
class DemoCommands:
    """Where the demo put its scraper commands (``path``; ``None``: nowhere) and what to say."""

    path: Path | None
    message: str


def demo_commands() -> dict[str, str]:
    """``resume_command`` and ``start_command`` running the bundled demo scraper with this
    Python; it gets the database and checkpoint folder from the launcher, and marks its runs as
    the demo's (``--demo-fleet``), so loading the demo again replaces them too."""
    script = shlex.quote(str(DEMO_SCRAPER)).replace("{", "{{").replace("}", "}}")
    common = f"--delay {DEMO_PAGE_DELAY} --demo-fleet"
    return {
        "resume_command": f"{{python}} {script} --portal {{portal}} --resume {{run_id}} {common}",
        "start_command": f"{{python}} {script} --portal {{portal}} {common}",
    }


def configure_demo_commands(settings: Settings, *, other_runs: int = 0) -> DemoCommands:
    """Write the demo's scraper commands into ``cleanup.toml`` beside the SQLite database,
    where every entry point on that database reads them when no ``CLEANUP_CONFIG`` is given.
    Never touches a file the demo did not write, nor writes one beside a database that holds
    other runs (the demo scraper would then be offered for those portals too)."""
    path = beside_database_config(settings.database_url)
    if path is None:
        return DemoCommands(None, _set_them_yourself("the database is not an SQLite file"))
    if settings.config_file is not None and settings.config_file != path.absolute():
        return DemoCommands(
            None,
            _set_them_yourself(f"the settings come from {settings.config_file}, left as it is"),
        )
    if not DEMO_SCRAPER.is_file():
        return DemoCommands(None, f"No scraper commands configured: {DEMO_SCRAPER} is missing.")
    ours = _is_demo_config(path)
    if (path.exists() or path.is_symlink()) and not ours:
        return DemoCommands(
            None, _set_them_yourself(f"{path} is not the demo's and was left as it is")
        )
    if other_runs and not ours:
        return DemoCommands(
            None,
            _set_them_yourself(
                f"the database holds {other_runs} runs that are not the demo's, and the demo "
                "scraper must not be offered for their portals"
            ),
        )
    lines = [
        DEMO_CONFIG_MARKER,
        "# Settings for the demo fleet in this folder's database. Every entry point (the CLI, the",
        "# dashboard, the monitor) reads this file when it opens that database and no",
        "# CLEANUP_CONFIG is given. Delete it when you put real runs into the database.",
        f"checkpoint_dir = {_toml_string(str(settings.checkpoint_dir))}",
        *(f"{name} = {_toml_string(value)}" for name, value in demo_commands().items()),
        "# The README's crash test: a demo scraper of this portal killed with kill -9 is",
        f"# resumable {CRASH_TEST_TIMEOUT_SECONDS} s later, not after 30 minutes.",
        "heartbeat_interval_seconds = 2",
        f"[portals.{_toml_string(CRASH_TEST_PORTAL)}]",
        f"heartbeat_timeout_minutes = {CRASH_TEST_TIMEOUT_SECONDS / 60:g}",
    ]
    temporary = path.with_name(f".{path.name}.demo.tmp")
    try:
        temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
        temporary.replace(path)
    except OSError as exc:
        return DemoCommands(None, _set_them_yourself(f"{path} could not be written: {exc}"))
    return DemoCommands(
        path,
        f"Resume, Start and Clean up & start run examples/demo_scraper.py (settings in {path})",
    )


def _set_them_yourself(why: str) -> str:
    commands = demo_commands()
    return (
        f"No scraper commands configured ({why}). To resume and start the demo's runs, set "
        f"resume_command = {commands['resume_command']!r} and start_command = "
        f"{commands['start_command']!r}."
    )


def _is_demo_config(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as handle:
            return handle.readline().rstrip("\n") == DEMO_CONFIG_MARKER
    except (OSError, UnicodeDecodeError):
        return False


def _toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def load_demo(
    service: CleanupService, *, force: bool = False, now: datetime | None = None
) -> DemoReport:
    """Fill the configured database and checkpoint folder with the demo fleet, as of ``now``
    (default: the database's clock). Earlier demo runs are replaced. Refused when the database
    holds runs that are not the demo's, unless ``force`` (they are kept, never changed), and
    always when a checkpoint file the demo writes exists and is not the demo's own. Sets the
    database up first, as ``init`` does (next to another application's tables only if
    ``force``)."""
    loaded = service.load_demo_fleet(_Fleet(service.settings), force=force, now=now)
    commands = configure_demo_commands(service.settings, other_runs=loaded.other_runs)
    return DemoReport(
        runs=loaded.runs,
        portals=tuple(portal.name for portal in PORTALS),
        tenders=loaded.tenders,
        checkpoints=loaded.files,
        replaced_runs=loaded.replaced_runs,
        loaded_at=loaded.loaded_at,
        commands=commands,
    )


def _refuse_foreign_checkpoints(settings: Settings, demo_run_ids: set[int]) -> None:
    for portal in (_PROGRESS_PORTAL, _CHECKPOINT_ONLY_PORTAL, _CORRUPT_PORTAL):
        path = checkpoint_path(settings.checkpoint_dir, portal)
        assert path is not None
        if not path.exists() and not path.is_symlink():
            continue
        found = read_checkpoint(
            settings.checkpoint_dir, portal, max_bytes=settings.max_checkpoint_bytes
        )
        own = found.info.run_id in demo_run_ids or _is_demo_corrupt(path)
        if not own:
            raise RefusedError(
                f"The checkpoint {path} exists and is not the demo's; the demo would replace "
                "it. Move it away or use another checkpoint folder. Nothing was changed."
            )


def _is_demo_corrupt(path: Path) -> bool:
    try:
        return path.stat().st_size == len(CORRUPT_CHECKPOINT) and (
            path.read_bytes() == CORRUPT_CHECKPOINT
        )
    except OSError:
        return False


def _write_corrupt_checkpoint(checkpoint_dir: Path) -> Path:
    path = checkpoint_path(checkpoint_dir, _CORRUPT_PORTAL)
    assert path is not None
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.demo.tmp")
    temporary.write_bytes(CORRUPT_CHECKPOINT)
    temporary.replace(path)
    return path


def _plan_fleet(
    settings: Settings, now: datetime, as_of: date
) -> tuple[list[PlannedRun], list[_PlannedCheckpoint]]:
    """Every demo run, and the checkpoints the partly scraped ones left."""
    planned: list[PlannedRun] = []
    checkpoints: list[_PlannedCheckpoint] = []
    hours = timedelta(hours=1)
    days = timedelta(days=1)

    def policy(portal: str) -> tuple[timedelta, timedelta]:
        chosen = settings.policy_for(portal)
        return chosen.age_threshold, chosen.heartbeat_timeout

    def run(
        label: str,
        portal: str,
        *,
        worker: str,
        started_at: datetime,
        tenders: Sequence[dict[str, Any]] = (),
        tracked: bool = True,
        events: Sequence[tuple[AuditAction, datetime, dict[str, Any]]] = (),
        cleaned_at: datetime | None = None,
        **values: Any,
    ) -> None:
        """One run with its tenders; a tracked worker also leaves a heartbeat and an attempt."""
        row: dict[str, Any] = {
            "status": RunStatus.RUNNING,
            "started_at": started_at,
            "worker_id": f"{DEMO_PREFIX}{worker}",
            "extracted_total_tenders": len(tenders),
            "skipped_existing_total": 0,
        }
        if tracked:
            row |= {"attempt": 1, "last_heartbeat_at": started_at}
            if tenders:
                row["last_progress_at"] = started_at
        row |= values
        planned.append(
            PlannedRun(
                label,
                portal,
                row,
                tenders=tuple(tenders),
                tracked=tracked,
                events=tuple(events),
                cleaned_at=cleaned_at,
                cleaned_by=f"{DEMO_PREFIX}nightly-cleanup",
            )
        )

    def portal(name: str) -> SyntheticPortal:
        return synthetic_portal(name, as_of=as_of)

    def finished(
        name: str,
        worker: str,
        start: datetime,
        took: timedelta,
        *,
        tenders: Sequence[dict[str, Any]] | None = None,
        skipped: int = 0,
        error: tuple[str, str] | None = None,
    ) -> None:
        end = start + took
        stored = portal(name).tenders() if tenders is None else tenders
        details: dict[str, Any] = {
            "extracted_total_tenders": len(stored),
            "skipped_existing_total": skipped,
        }
        if error is not None:
            details |= {"error_type": error[0], "error": error[1]}
        run(
            "completed" if error is None else "failed",
            name,
            worker=worker,
            started_at=start,
            tenders=stored,
            status=RunStatus.COMPLETED if error is None else RunStatus.FAILED,
            completed_at=end,
            last_heartbeat_at=end,
            skipped_existing_total=skipped,
            events=[(AuditAction.COMPLETE if error is None else AuditAction.FAIL, end, details)],
        )

    # Finished runs, the history every portal has.
    for name, ago, worker in (
        ("Assam Tenders", 2 * days, "scraper-01:4211"),
        ("Kerala eTenders", 3 * days, "scraper-02:3877"),
        ("CPPP Central", 4 * days, "scraper-02:3902"),
        ("Tamil Nadu Tenders", 1 * days, "scraper-03:5120"),
    ):
        finished(name, worker, now - ago, 2 * hours)
    maharashtra = portal("Maharashtra eTenders").tenders()
    finished(
        "Maharashtra eTenders",
        "scraper-01:3310",
        now - 3 * days,
        40 * timedelta(minutes=1),
        tenders=maharashtra[:24],
        error=("ConnectionError", "portal returned HTTP 503 on the organisation list"),
    )
    finished(
        "Maharashtra eTenders",
        "scraper-01:4020",
        now - 1 * days,
        3 * hours,
        tenders=maharashtra[24:],
        skipped=24,
    )
    finished(
        _CORRUPT_PORTAL,
        "scraper-03:2210",
        now - 2 * days,
        5 * timedelta(minutes=1),
        tenders=[],
        error=("TimeoutError", "captcha page did not load within 60 s"),
    )

    # Cleaned up three days ago by the nightly job, then scraped again.
    cleaned_at = now - 3 * days
    threshold, _ = policy("Haryana eProcurement")
    run(
        "cleaned",
        "Haryana eProcurement",
        worker="legacy-cron",
        started_at=cleaned_at - threshold - 1 * hours,
        tracked=False,
        cleaned_at=cleaned_at,
    )
    finished("Haryana eProcurement", "scraper-02:4471", now - 2 * days, 2 * hours)

    # Alive: a worker on it right now, skipping tenders it already has.
    _, timeout = policy("Assam Tenders")
    beat = now - timeout / 10
    run(
        "alive",
        "Assam Tenders",
        worker="scraper-01:5872",
        started_at=now - 2 * hours,
        last_heartbeat_at=beat,
        last_progress_at=beat,
        skipped_existing_total=60,
    )

    # Young: an untracked scraper started a few minutes ago; it may still be starting.
    threshold, _ = policy("Kerala eTenders")
    run(
        "young",
        "Kerala eTenders",
        worker="legacy-cron",
        started_at=now - min(threshold / 8, 45 * timedelta(minutes=1)),
        tracked=False,
    )

    # Resumable by progress: the demo scraper died (kill -9) after five of its twelve pages:
    # its counters, stored tenders and checkpoint are what it had written by then.
    _, timeout = policy(_PROGRESS_PORTAL)
    last_beat = now - timeout - 90 * timedelta(minutes=1)
    done = portal(_PROGRESS_PORTAL).pages_before(1, 2)
    run(
        "resumable_progress",
        _PROGRESS_PORTAL,
        worker="scraper-03:6113",
        started_at=last_beat - 3 * hours,
        tenders=done,
        last_heartbeat_at=last_beat,
        last_progress_at=last_beat,
    )
    checkpoints.append(
        _PlannedCheckpoint(
            "resumable_progress",
            _PROGRESS_PORTAL,
            done,
            {"organisation": 1, "page": 2, "as_of": as_of.isoformat()},
            last_beat,
        )
    )

    # Resumable by checkpoint only: an old scraper that never updated its counters.
    threshold, _ = policy(_CHECKPOINT_ONLY_PORTAL)
    saved = portal(_CHECKPOINT_ONLY_PORTAL).pages_before(1, 1)
    run(
        "resumable_checkpoint",
        _CHECKPOINT_ONLY_PORTAL,
        worker="legacy-cron",
        started_at=now - threshold - 2 * hours,
        tenders=saved,
        tracked=False,
        extracted_total_tenders=None,
        skipped_existing_total=None,
    )
    checkpoints.append(
        _PlannedCheckpoint(
            "resumable_checkpoint",
            _CHECKPOINT_ONLY_PORTAL,
            saved,
            {"organisation": 1, "page": 1, "as_of": as_of.isoformat()},
            now - 1 * hours,
        )
    )

    # Dead: crashed before scraping anything, long ago, no checkpoint.
    threshold, _ = policy("CPPP Central")
    for age in (6 * hours, 30 * hours):
        run(
            "dead",
            "CPPP Central",
            worker="legacy-cron",
            started_at=now - threshold - age,
            tracked=False,
        )

    # Attention: would be dead, but its checkpoint is unreadable.
    threshold, _ = policy(_CORRUPT_PORTAL)
    run(
        "attention",
        _CORRUPT_PORTAL,
        worker="legacy-cron",
        started_at=now - threshold - 3 * hours,
        tracked=False,
    )
    return planned, checkpoints
