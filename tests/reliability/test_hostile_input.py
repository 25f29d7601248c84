"""Hostile input, end to end through the real service, tracker and command line on both backends.

Property-based (hypothesis): checkpoint files (random bytes, deep nesting, huge numbers, wrong
types, links out of the folder, FIFOs, directories), timestamps in every shape seen in the wild
and garbage, and portal names (path separators, ``..``, RTL and combining marks, very long, SQL
metacharacters, NUL). Whatever comes in:

- nothing raises but the documented ``CleanupError`` / ``ValueError``;
- nothing is opened, written, renamed or removed outside the checkpoint folder (every path the
  process touches is recorded), and a file outside it that looks like a checkpoint full of
  tenders is never read or changed;
- no run is judged dead without the evidence for it: zero progress, no checkpoint that might
  hold its tenders, a start time known to be older than the threshold, no fresh heartbeat. The
  oracles below decide that from what the test wrote, not from the tool's own parsing.
"""

from __future__ import annotations

import builtins
import email.utils
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from cleanup_core import (
    Action,
    CleanupService,
    DatabaseError,
    PortalBusyError,
    RunState,
    Settings,
    track_run,
)
from cleanup_core.alerts import Monitor
from cleanup_core.checkpoints import checkpoint_path, write_checkpoint
from cleanup_core.cli import cli
from cleanup_core.db import Database
from tests.conftest import BACKENDS, NOW, TZ
from tests.reliability.conftest import ROOT, child_env, claim, real_ago

PORTAL = "Assam Tenders"
LOCAL = ZoneInfo(TZ)
THRESHOLD = timedelta(hours=24)  # the default policy
HEARTBEAT_TIMEOUT = timedelta(minutes=30)
MAX_CHECKPOINT_MB = 0.5
EXAMPLES = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- the world outside the checkpoint folder ----------------------------------------------------


class FileAudit:
    """Every path this process opens, creates, renames or removes while it watches."""

    CALLS = (
        (os, "open"),
        (builtins, "open"),
        (io, "open"),
        (os, "replace"),
        (os, "rename"),
        (os, "unlink"),
        (os, "remove"),
        (os, "mkdir"),
        (os, "rmdir"),
        (os, "symlink"),
        (os, "link"),
    )

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.monkeypatch = monkeypatch
        self.paths: list[str] = []

    @contextmanager
    def watching(self) -> Iterator[FileAudit]:
        with self.monkeypatch.context() as patch:
            for module, name in self.CALLS:
                patch.setattr(module, name, self._audited(getattr(module, name), name))
            yield self

    def _audited(self, real: Callable[..., Any], name: str) -> Callable[..., Any]:
        two_paths = name in ("replace", "rename", "symlink", "link")

        def audited(*args: Any, **kwargs: Any) -> Any:
            for arg in args[: 2 if two_paths else 1]:
                if isinstance(arg, str | bytes | os.PathLike):
                    self.paths.append(os.fsdecode(arg))
            return real(*args, **kwargs)

        return audited

    def outside(self, folder: Path) -> list[str]:
        """The touched paths that are not in ``folder`` (the last component of each path is
        not followed: replacing a link replaces the link, not what it points to)."""
        root = os.path.realpath(folder)
        escaped = []
        for path in self.paths:
            if path.endswith((".py", ".pyc")):
                continue  # the interpreter reading its own modules
            absolute = os.path.abspath(path)
            where = os.path.join(
                os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute)
            )
            if where != root and not where.startswith(root + os.sep):
                escaped.append(path)
        return escaped


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the checkpoint folder, holding what an escape would find: a checkpoint
    full of tenders (evidence for any run, if it were ever read)."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "sentinel.json").write_text(json.dumps([{"tender_id": "LEAKED"}] * 3))
    return folder


def untouched(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def reset(service: Any, folder: Path) -> None:
    """A clean slate for the next example: no rows, an empty checkpoint folder."""
    with service.db.write() as conn:
        for table in ("run_events", "tenders", "runs"):
            conn.execute(text(f"DELETE FROM {table}"))
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


# -- checkpoint files ---------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
THIS, OTHER, THIS_TEXT, OTHER_TEXT = "this run", "another run", "this run as text", "other text"
RUN_IDS = st.one_of(
    st.sampled_from([THIS, OTHER, THIS_TEXT, OTHER_TEXT, None]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=8),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def checkpoint_recipes(draw: st.DrawFn) -> Callable[[int], bytes]:
    """The content of a checkpoint file, made once the run's id is known."""
    shape = draw(
        st.sampled_from(["checkpoint", "bare list", "any json", "bytes", "deep", "huge number"])
    )
    if shape == "bytes":
        raw = draw(st.binary(max_size=600))
        return lambda run_id: raw
    if shape == "any json":
        value = draw(JSON)
        return lambda run_id: json.dumps(value).encode()
    if shape == "bare list":
        tenders = draw(st.lists(JSON, max_size=3))
        return lambda run_id: json.dumps(tenders).encode()
    if shape == "deep":
        depth = draw(st.integers(min_value=1, max_value=100_000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"tenders":[', "]}"), ('{"a":', "}")]))
        balanced = draw(st.booleans())
        tail = closer * depth if balanced else ""
        return lambda run_id: (opener * depth + tail).encode()
    if shape == "huge number":
        digits = draw(st.integers(min_value=10, max_value=20_000))
        where = draw(st.sampled_from(["run_id", "tender", "count"]))
        number = "9" * digits
        body = {
            "run_id": f'{{"tenders": [{{"tender_id": "T"}}], "run_id": {number}}}',
            "tender": f'{{"tenders": [{number}]}}',
            "count": f'{{"tenders": [], "tender_count": {number}e{number}}}',
        }[where]
        return lambda run_id: body.encode()
    tenders = draw(
        st.one_of(
            st.lists(st.fixed_dictionaries({"tender_id": st.text(max_size=8)}), max_size=3),
            st.lists(JSON, max_size=3),
            JSON,
        )
    )
    run_value = draw(RUN_IDS)
    cursor = draw(JSON)
    bom = draw(st.booleans())

    def build(run_id: int) -> bytes:
        named = {
            THIS: run_id,
            OTHER: run_id + 1,
            THIS_TEXT: f" {run_id} ",
            OTHER_TEXT: str(run_id + 7),
        }
        content: dict[str, Any] = {"tenders": tenders, "cursor": cursor}
        if run_value is not None:
            is_marker = isinstance(run_value, str) and run_value in named
            content["run_id"] = named[run_value] if is_marker else run_value
        raw = json.dumps(content).encode()
        return b"\xef\xbb\xbf" + raw if bom else raw

    return build


FILE_KINDS = st.sampled_from(
    [
        "file",
        "file",
        "file",
        "absent",
        "link inside",
        "link outside",
        "link to the outside folder",
        "dangling link",
        "link loop",
        "fifo",
        "directory",
        "oversized",
    ]
)


def place(kind: str, content: bytes, path: Path, outside: Path) -> None:
    if kind == "file":
        path.write_bytes(content)
    elif kind == "link inside":
        target = path.with_name("elsewhere.json")
        target.write_bytes(content)
        path.symlink_to(target)
    elif kind == "link outside":
        path.symlink_to(outside / "sentinel.json")
    elif kind == "link to the outside folder":
        path.symlink_to(outside)
    elif kind == "dangling link":
        path.symlink_to(path.with_name("nowhere.json"))
    elif kind == "link loop":
        path.symlink_to(path)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
        (path / "tenders.json").write_bytes(content)
    elif kind == "oversized":
        path.write_bytes(b"[" + b" " * int(MAX_CHECKPOINT_MB * 1024 * 1024) + b"]")


def _json(content: bytes) -> tuple[bool, Any]:
    try:
        return True, json.loads(content.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        return False, None


def _names_other_run(value: Any, run_id: int) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,18}\s*", value):
        value = int(value)
    return isinstance(value, int) and value > 0 and value != run_id


def rules_out_evidence(kind: str, content: bytes, run_id: int) -> bool:
    """Whether the checkpoint provably holds no tenders of this run: the only case in which
    the run may be judged dead."""
    if kind == "absent":
        return True
    if kind not in ("file", "link inside"):
        return False
    ok, data = _json(content)
    if not ok:
        return False
    if isinstance(data, list):
        return data == []
    if isinstance(data, dict) and isinstance(data.get("tenders"), list):
        return data["tenders"] == [] or _names_other_run(data.get("run_id"), run_id)
    return False


def proves_evidence(kind: str, content: bytes, run_id: int) -> bool:
    """Whether the checkpoint plainly holds tenders of this run (so the run is resumable)."""
    if kind not in ("file", "link inside"):
        return False
    ok, data = _json(content)
    if isinstance(data, list):
        return ok and data != []
    if isinstance(data, dict) and isinstance(data.get("tenders"), list) and data["tenders"]:
        claimed = data.get("run_id")
        return claimed is None or (type(claimed) is int and claimed == run_id)
    return False


@EXAMPLES
@given(kind=FILE_KINDS, recipe=checkpoint_recipes())
def test_hostile_checkpoint_files(
    service, runs, checkpoint_dir, outside, monkeypatch, kind, recipe
):
    small = service.settings.with_overrides(max_checkpoint_mb=MAX_CHECKPOINT_MB)
    service = CleanupService(small, database=service.db)
    reset(service, checkpoint_dir)
    run_id = runs.add(PORTAL, started_at=real_ago(hours=30))
    content = recipe(run_id)
    path = checkpoint_path(checkpoint_dir, PORTAL)
    place(kind, content, path, outside)
    before = untouched(outside)

    with FileAudit(monkeypatch).watching() as audit:
        (verdict,) = service.scan().verdicts
        check = service.check_portal(PORTAL)
        cleaned = service.cleanup_if_needed().cleaned
        try:
            with track_run(PORTAL, service=service) as run:
                written = run.save_checkpoint(cursor={"page": 1})
        except PortalBusyError:
            written = None

    event(f"{kind}: {verdict.state.value}")
    assert audit.outside(checkpoint_dir) == [], "touched a path outside the checkpoint folder"
    assert untouched(outside) == before
    if verdict.state is RunState.DEAD:
        assert rules_out_evidence(kind, content, run_id), (kind, content[:200], verdict.summary)
        assert not verdict.checkpoint.status.is_problem
    if proves_evidence(kind, content, run_id):
        assert verdict.state is RunState.RESUMABLE, verdict.summary
    assert cleaned == ((run_id,) if verdict.state is RunState.DEAD else ())
    assert check.action is verdict.action
    if verdict.state is RunState.ATTENTION:
        assert written is None, "a portal that needs attention is not started"
    else:
        assert written == path and path.is_file() and not path.is_symlink()
        assert json.loads(path.read_text())["run_id"] == run.run_id


# -- timestamps -----------------------------------------------------------------------------------

SECOND, MINUTE, DAY = timedelta(seconds=1), timedelta(minutes=1), timedelta(days=1)
MICRO, MILLI = timedelta(microseconds=1), timedelta(milliseconds=1)


def _local(moment: datetime) -> datetime:
    return moment.astimezone(LOCAL)


# How legacy scrapers wrote a moment, and how much of it survives in the text. (A date alone
# is left out: see test_a_start_known_only_to_the_day_is_not_judged_dead_early.)
WILD_FORMATS: dict[str, tuple[Callable[[datetime], Any], timedelta]] = {
    "naive, space": (lambda m: _local(m).strftime("%Y-%m-%d %H:%M:%S"), SECOND),
    "naive, T, microseconds": (lambda m: _local(m).strftime("%Y-%m-%dT%H:%M:%S.%f"), MICRO),
    "naive, nanoseconds": (lambda m: _local(m).strftime("%Y-%m-%d %H:%M:%S.%f") + "789", MICRO),
    "naive, comma millis": (lambda m: _local(m).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3], MILLI),
    "+05:30": (lambda m: _local(m).isoformat(), MICRO),
    "-0700": (
        lambda m: m.astimezone(timezone(timedelta(hours=-7))).strftime("%Y-%m-%d %H:%M:%S%z"),
        SECOND,
    ),
    "Z": (lambda m: m.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), SECOND),
    "UTC word": (lambda m: m.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"), SECOND),
    "slashes, minutes": (lambda m: _local(m).strftime("%Y/%m/%d %H:%M"), MINUTE),
    "padded": (lambda m: _local(m).strftime("  %Y-%m-%d %H:%M:%S \t"), SECOND),
    "day first": (lambda m: _local(m).strftime("%d-%m-%Y %H:%M:%S"), SECOND),
    "day first, 12 h": (lambda m: _local(m).strftime("%d/%m/%Y %I:%M %p"), MINUTE),
    "RFC 2822": (lambda m: email.utils.format_datetime(_local(m)), SECOND),
    "epoch seconds": (lambda m: int(m.timestamp()), SECOND),
    "epoch float": (lambda m: m.timestamp(), MILLI),
    "epoch millis": (lambda m: int(m.timestamp() * 1000), MILLI),
    "epoch text": (lambda m: str(int(m.timestamp())), SECOND),
    "compact": (lambda m: _local(m).strftime("%Y%m%d%H%M%S"), SECOND),
    "compact integer": (lambda m: int(_local(m).strftime("%Y%m%d%H%M%S")), SECOND),
    "compact minutes": (lambda m: int(_local(m).strftime("%Y%m%d%H%M")), MINUTE),
    "BLOB": (lambda m: _local(m).strftime("%Y-%m-%d %H:%M:%S").encode(), SECOND),
}
# Ages that keep clear of the threshold by more than any format's rounding.
AGES = st.one_of(
    st.timedeltas(min_value=timedelta(minutes=-90), max_value=THRESHOLD - 2 * MINUTE),
    st.timedeltas(min_value=THRESHOLD + 2 * MINUTE, max_value=timedelta(days=400)),
)
# Text that holds no moment at all: no digits, not blank.
NOT_A_TIME = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Nd", "No", "Nl")), min_size=1, max_size=30
).filter(lambda s: s.strip() != "")
# Bare numbers that name no single moment: a compact date (any time that day), and numbers
# that are neither epoch time between 2000 and 2100 nor compact date and time.
NOT_ONE_MOMENT = st.one_of(
    st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(days=400)).flatmap(
        lambda age: st.sampled_from(
            [_local(NOW - age).strftime("%Y%m%d"), int(_local(NOW - age).strftime("%Y%m%d"))]
        )
    ),
    st.sampled_from(["1", "1.5", 1, 1.5, "0", 0, -1, "20261128.5"]),
    st.integers(min_value=-(2**63), max_value=946_684_799).filter(lambda n: len(str(n)) != 8),
    st.integers(min_value=4_102_444_800, max_value=10**11 - 1),
)


@dataclass(frozen=True)
class Start:
    """A stored ``started_at`` and what it really means: a ``moment`` (kept to ``precision``),
    no moment at all (``"none"``: never grounds for a dead verdict), or ``"any"``: whatever the
    tool reads in it (numbers, far dates), where only the verdict's own evidence is checked."""

    value: Any
    meaning: str = "moment"
    moment: datetime | None = None
    precision: timedelta = MICRO


@st.composite
def legacy_starts(draw: st.DrawFn) -> Start:
    kind = draw(
        st.sampled_from(["wild", "wild", "wild", "not a time", "no one moment", "anything", "far"])
    )
    if kind == "wild":
        moment = NOW - draw(AGES)
        render, precision = WILD_FORMATS[draw(st.sampled_from(sorted(WILD_FORMATS)))]
        return Start(render(moment), "moment", moment, precision)
    if kind == "not a time":
        return Start(draw(NOT_A_TIME), "none")
    if kind == "no one moment":
        return Start(draw(NOT_ONE_MOMENT), "none")
    if kind == "far":
        far = ["9999-12-31 23:59:59", "0001-01-01 00:00:00", "2999-01-01T00:00:00Z", "0", "-1"]
        return Start(draw(st.sampled_from(far)), "any")
    anything = st.one_of(
        st.none(),
        st.text(max_size=30),
        st.binary(max_size=12),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(),
    )
    return Start(draw(anything), "any")


HEARTBEATS = st.one_of(
    st.just(("none", None)),
    st.just(("none", None)),
    st.timedeltas(min_value=timedelta(0), max_value=HEARTBEAT_TIMEOUT - MINUTE).map(
        lambda age: ("fresh", NOW - age)
    ),
    st.timedeltas(min_value=HEARTBEAT_TIMEOUT + MINUTE, max_value=timedelta(days=3)).map(
        lambda age: ("lost", NOW - age)
    ),
)
KNOWN_ZERO = (None, 0, "0", "", " ", 0.0)  # NULL and blank text count as 0
# Mostly no progress, so that the start time and the heartbeat decide the verdict.
COUNTERS = st.one_of(
    st.sampled_from(KNOWN_ZERO),
    st.sampled_from(KNOWN_ZERO),
    st.sampled_from(["abc", -1, 3, "3", 2.5, "١٢", b"\x01"]),
)


def insert_raw(service: Any, values: dict[str, Any]) -> int:
    """A row as other code wrote it: values bound as they are, no type conversion."""
    columns = ", ".join(values)
    if service.db.is_sqlite:
        placeholders = ", ".join(f":{name}" for name in values)
    else:
        placeholders = ", ".join(
            f"CAST(:{name} AS timestamptz)" if name.endswith("_at") else f":{name}"
            for name in values
        )
    with service.db.write() as conn:
        return conn.execute(
            text(f"INSERT INTO runs ({columns}) VALUES ({placeholders}) RETURNING id"), values
        ).scalar_one()


def judge_everything(service: Any, run_id: int) -> Any:
    """Scan, pre-scrape check and clean-up, judged at the tests' fixed ``NOW``."""
    (verdict,) = service.scan(now=NOW).verdicts
    assert service.check_portal(PORTAL, now=NOW).action is verdict.action
    cleaned = service.cleanup_if_needed(now=NOW).cleaned
    assert cleaned == ((run_id,) if verdict.state is RunState.DEAD else ())
    return verdict


def assert_read_right_and_dead_only_with_evidence(
    verdict: Any, start: Start, heartbeat: str, counters: tuple[Any, ...]
) -> None:
    if start.moment is not None and start.moment <= NOW and verdict.age_hours is not None:
        error = abs(verdict.age_hours * 3600 - (NOW - start.moment).total_seconds())
        assert error <= start.precision.total_seconds() + 1e-3, f"{start.value!r}: {error} s off"
    if verdict.state is not RunState.DEAD:
        return
    # The verdict's own evidence ...
    assert verdict.age_hours >= THRESHOLD.total_seconds() / 3600, verdict.summary
    assert (verdict.extracted, verdict.skipped) == (0, 0), verdict.summary
    fresh = verdict.heartbeat_age_minutes is not None and verdict.heartbeat_age_minutes < 30
    assert not fresh, verdict.summary
    # ... and what the test wrote.
    assert start.meaning != "none", f"dead without a start time: {start.value!r}"
    if start.meaning == "moment":
        assert NOW - start.moment >= THRESHOLD, f"dead, but {start.value!r} was recently"
    assert heartbeat in ("none", "lost"), f"dead with a {heartbeat} heartbeat"
    assert all(c in KNOWN_ZERO for c in counters), f"dead with counters {counters}"


@pytest.fixture
def legacy(tmp_path: Path, checkpoint_dir: Path) -> Iterator[Any]:
    """A service on an SQLite file, where legacy code stored whatever it liked (SQLite keeps
    text, numbers and BLOBs in any column)."""
    legacy_settings = Settings.load(
        {},
        database_url=f"sqlite:///{tmp_path / 'legacy.db'}",
        checkpoint_dir=str(checkpoint_dir),
        timezone=TZ,
    )
    service = CleanupService(
        legacy_settings, database=Database(legacy_settings, create_missing=True)
    )
    yield service
    service.db.dispose()


@settings(EXAMPLES, max_examples=300)
@given(
    start=legacy_starts(),
    heartbeat=st.one_of(HEARTBEATS, NOT_A_TIME.map(lambda s: ("garbage", s))),
    extracted=COUNTERS,
    skipped=COUNTERS,
)
def test_hostile_timestamps_and_counters_in_legacy_sqlite_rows(
    legacy, checkpoint_dir, start, heartbeat, extracted, skipped
):
    reset(legacy, checkpoint_dir)
    kind, beat = heartbeat
    run_id = insert_raw(
        legacy,
        {
            "portal_name": PORTAL,
            "status": "running",
            "started_at": start.value,
            "last_heartbeat_at": beat.isoformat() if isinstance(beat, datetime) else beat,
            "extracted_total_tenders": extracted,
            "skipped_existing_total": skipped,
        },
    )
    verdict = judge_everything(legacy, run_id)
    event(f"{start.meaning}: {verdict.state.value}")
    assert_read_right_and_dead_only_with_evidence(verdict, start, kind, (extracted, skipped))


def test_a_start_known_only_to_the_day_is_not_judged_dead_early(legacy, checkpoint_dir):
    started = NOW - timedelta(hours=20)  # young: 4 h short of the threshold
    run_id = insert_raw(
        legacy,
        {
            "portal_name": PORTAL,
            "status": "running",
            "started_at": _local(started).strftime("%Y-%m-%d"),
        },
    )
    (verdict,) = legacy.scan(now=NOW).verdicts
    assert verdict.state is not RunState.DEAD, verdict.summary
    assert legacy.cleanup_run(run_id, now=NOW) is False


OUT_OF_PYTHONS_RANGE = ["infinity", "-infinity", "20000-01-01 00:00:00+00", "0044-03-15 BC"]
ZONES = st.sampled_from([UTC, LOCAL, timezone(timedelta(hours=-7)), timezone(timedelta(hours=14))])


@st.composite
def postgres_starts(draw: st.DrawFn) -> Start:
    kind = draw(st.sampled_from(["near", "near", "any", "out of range", "null"]))
    if kind == "near":
        moment = NOW - draw(AGES)
        return Start(moment.astimezone(draw(ZONES)), "moment", moment)
    if kind == "any":
        moment = draw(
            st.datetimes(
                timezones=ZONES, min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)
            )
        )
        return Start(moment, "moment", moment)
    if kind == "out of range":
        return Start(draw(st.sampled_from(OUT_OF_PYTHONS_RANGE)), "none")
    return Start(None, "none")


@pytest.mark.parametrize("db_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
@settings(EXAMPLES, max_examples=150)
@given(
    start=postgres_starts(),
    heartbeat=st.one_of(
        HEARTBEATS, st.sampled_from(OUT_OF_PYTHONS_RANGE).map(lambda s: ("garbage", s))
    ),
    extracted=st.sampled_from([None, 0, -1, 4, 2**31 - 1]),
)
def test_hostile_timestamps_on_postgresql(service, checkpoint_dir, start, heartbeat, extracted):
    reset(service, checkpoint_dir)
    kind, beat = heartbeat
    run_id = insert_raw(
        service,
        {
            "portal_name": PORTAL,
            "status": "running",
            "started_at": start.value,
            "last_heartbeat_at": beat,
            "extracted_total_tenders": extracted,
        },
    )
    verdict = judge_everything(service, run_id)
    event(f"{start.meaning}: {verdict.state.value}")
    assert_read_right_and_dead_only_with_evidence(verdict, start, kind, (extracted,))


# -- portal names -------------------------------------------------------------------------------

NASTY_NAMES = [
    "../../etc",
    "..",
    ".",
    "/",
    "a/../../b",
    "C:\\Windows\\System32",
    "/etc/passwd",
    "\u202eevil.json\u202c",  # RTL override
    "שלום עולם",
    "تنفيذ المناقصات",
    "e\u0301\u0301\u0301\u0301",  # combining marks
    "मध्य प्रदेश",
    "'; DROP TABLE runs; --",
    '"; DELETE FROM run_events; --',
    "%",
    "_",
    "\\",
    "a%b_c\\%",
    "Robert'); DROP TABLE tenders;--",
    " Assam Tenders ",
    "ASSAM_TENDERS",
    "x" * 5000,
    "nul\x00byte",
    "\x00",
    "tab\tnew\nline",
    "\ufeffbom",
    "😀 emoji portal",
]
PORTAL_NAMES = st.one_of(
    st.sampled_from(NASTY_NAMES),
    st.text(min_size=1, max_size=60),
    st.text(alphabet=st.sampled_from("./\\%_'\";-\x00 aZ\u202e\u0301"), min_size=1, max_size=20),
    st.text(min_size=300, max_size=2000),
)
DECOY = "Decoy Portal 0xC0FFEE"


@EXAMPLES
@given(name=PORTAL_NAMES, with_checkpoint=st.booleans())
def test_hostile_portal_names(
    service, runs, checkpoint_dir, outside, backend, monkeypatch, name, with_checkpoint
):
    reset(service, checkpoint_dir)
    if not name.strip():
        with pytest.raises(ValueError, match="portal_name must be a non-empty name"):
            service.check_portal(name)
        with pytest.raises(ValueError, match="portal_name must be a non-empty name"):
            track_run(name, service=service)
        return
    if backend == "postgresql" and "\x00" in name:  # PostgreSQL text cannot hold NUL
        with pytest.raises(DatabaseError, match=r"refused a value: .*NUL"):
            service.check_portal(name)
        with pytest.raises(DatabaseError, match=r"refused a value: .*NUL"):
            claim(name, service=service)
        return
    decoy = runs.add(DECOY, started_at=real_ago(hours=30))
    run_id = runs.add(name, started_at=real_ago(hours=30))
    if with_checkpoint:
        write_checkpoint(checkpoint_dir, name, tenders=[{"tender_id": "T0"}], run_id=run_id)
    before = untouched(outside)

    with FileAudit(monkeypatch).watching() as audit:
        check = service.check_portal(name)
        cleaned = service.cleanup_runs(check.run_ids).cleaned
        events = service.history(portal_name=name).events
        with track_run(name, service=service) as run:
            run.add_tenders([{"tender_id": "T1"}])
            written = run.save_checkpoint(cursor={"page": 2})

    assert check.run_ids == (run_id,), "exactly this portal's run, whatever its name"
    assert check.action is (Action.RESUME if with_checkpoint else Action.CLEANUP)
    assert cleaned == (() if with_checkpoint else (run_id,))
    assert [(e.run_id, e.portal_name) for e in events] == [(i, name) for i in cleaned]
    assert run.action is (Action.RESUME if with_checkpoint else Action.START)
    assert written == checkpoint_path(checkpoint_dir, name)
    assert written.parent == checkpoint_dir and written.is_file()
    assert audit.outside(checkpoint_dir) == []
    assert untouched(outside) == before
    assert runs.get(decoy)["status"] == "running", "another portal's run is untouched"
    assert runs.get(run.run_id)["portal_name"] == name
    assert runs.count("tenders") == 1


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture
def invoke(db_url, checkpoint_dir, service):
    """A command in-process, through the same entry point (``CleanupCLI.main``) as the real
    program: errors become one line on stderr and an exit code, anything else escapes."""
    service.scan()

    def run(*args: str) -> Any:
        argv = [*args, "--db", db_url, "--checkpoint-dir", str(checkpoint_dir)]
        runner = CliRunner(env={"CLEANUP_TIMEZONE": TZ})
        return runner.invoke(cli, argv, catch_exceptions=False)

    return run


def assert_clean_exit(result: Any, codes: tuple[int, ...] = (0, 1, 2)) -> None:
    assert result.exit_code in codes, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr
    if result.exit_code:
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr


@settings(EXAMPLES, max_examples=40)  # six runs of the command line per example
@given(name=PORTAL_NAMES)
def test_hostile_portal_names_as_arguments(invoke, service, runs, checkpoint_dir, backend, name):
    reset(service, checkpoint_dir)
    storable = name.strip() and not (backend == "postgresql" and "\x00" in name)
    if storable:  # a dead run of that portal, shown in tables, cleaned, in the history
        runs.add(name, started_at=real_ago(hours=30))
    assert_clean_exit(invoke("check", name))
    assert_clean_exit(invoke("check", "--json", "--", name))
    assert_clean_exit(invoke("scan"), codes=(0,))
    assert_clean_exit(invoke("clean", "--auto"), codes=(0,))
    assert_clean_exit(invoke("history", "--portal", name))
    assert_clean_exit(invoke("history"), codes=(0,))
    assert runs.count("runs", "status = 'running'") == 0


HOSTILE_RUN_IDS = [
    "1; DROP TABLE runs",
    "-1",
    "0",
    "99999999999999999999",
    "9223372036854775808",
    "3000000000",
    "1e3",
    " 7 ",
    "٣",
    "0x10",
    "",
]


@pytest.mark.parametrize("value", HOSTILE_RUN_IDS)
def test_hostile_run_ids_as_arguments(invoke, runs, value):
    kept = runs.add(PORTAL, status="completed", started_at=real_ago(hours=30))
    for args in (
        ("revert", value),
        ("revert", "--", value),
        ("delete", "--yes", "--", value),
        ("resume", "--", value),
        ("history", "--run", value),
    ):
        result = invoke(*args)
        assert_clean_exit(result)
        assert result.exit_code or args[0] == "history", (args, result.stdout)
    assert runs.get(kept)["status"] == "completed"
    assert runs.count() == 1 and runs.count("run_events") == 0


def test_hostile_arguments_through_the_real_program(db_url, checkpoint_dir, service, runs):
    """What only a real process shows: argv that is not valid UTF-8, and the exit status and
    stderr of ``python -m cleanup_core`` itself."""
    service.scan()
    kept = runs.add(PORTAL, status="completed", started_at=real_ago(hours=30))
    common = ["--db", db_url, "--checkpoint-dir", str(checkpoint_dir)]
    cases = {
        "not UTF-8": ([b"check", b"\xff\xfe../../etc"], 1),
        "SQL": (["check", "'; DROP TABLE runs; --"], 0),
        "huge run id": (["revert", "99999999999999999999"], 2),  # no column holds it
        "SQL run id": (["revert", "1; DROP TABLE runs"], 2),
    }
    processes = {
        label: subprocess.Popen(
            [sys.executable, "-m", "cleanup_core", *args, *common],
            cwd=ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for label, (args, _) in cases.items()
    }
    for label, process in processes.items():
        out, err = process.communicate(timeout=60)
        assert process.returncode == cases[label][1], (label, err)
        if process.returncode:
            assert err.startswith(b"error: ") and err.count(b"\n") == 1, (label, err)
        else:
            assert err == b"" and out.startswith(b"start: "), (label, out, err)
    assert runs.get(kept)["status"] == "completed" and runs.count() == 1


@pytest.mark.parametrize("stored", [b"Assam \xff Tenders", b"Assam Tenders", b"\x00"])
def test_a_portal_name_stored_as_a_blob(legacy, checkpoint_dir, stored):
    """SQLite keeps a BLOB in a TEXT column: such a run is shown, never judged dead (its
    checkpoint cannot be found), and breaks neither the scan, the monitor nor the command line."""
    write_checkpoint(checkpoint_dir, "Assam Tenders", tenders=[{"tender_id": "T1"}])
    run_id = insert_raw(
        legacy,
        {"portal_name": stored, "status": "running", "started_at": "2026-11-20 10:00:00"},
    )
    (verdict,) = legacy.scan(now=NOW).verdicts
    assert verdict.state in (RunState.ATTENTION, RunState.RESUMABLE), verdict.summary
    assert isinstance(verdict.portal_name, str)
    assert legacy.cleanup_if_needed(now=NOW).cleaned == ()
    report = Monitor(legacy, send=lambda *message: True).run_cycle(now=NOW)
    assert report.outcome == "ok" and [c.run_id for c in report.changes] == [run_id]
    runner = CliRunner(env={"CLEANUP_TIMEZONE": TZ})
    for args in (("scan",), ("status",), ("clean", "--auto"), ("watch", "--once", "--now")):
        result = runner.invoke(cli, [*args, "--db", legacy.settings.database_url])
        assert result.exit_code == 0 and result.exception is None, (args, result.output)
