"""Writing the demo fleet: ``demo`` plans the runs, tenders and files; this writes them, in one
transaction, replacing exactly the runs an earlier demo wrote (its marks say which) and never
anyone else's."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection

from cleanup_core.errors import RefusedError
from cleanup_core.service.audit import worker_event
from cleanup_core.service.cleaning import Cleaning
from cleanup_core.storage import demo, events, launches, runs, tenders, worker
from cleanup_core.tenders import stored_row
from cleanup_core.timestamps import parse_timestamp
from cleanup_core.vocabulary import AuditAction


@dataclass(frozen=True)
class PlannedRun:
    """One demo run: its row, its tenders, its worker's audit events (``tracked``: a start
    event first), and, with ``cleaned_at``, a clean-up at that time by ``cleaned_by``."""

    label: str  # what the run shows, e.g. "dead"
    portal_name: str
    row: Mapping[str, Any]  # the columns of its runs row besides portal_name
    tenders: Sequence[Mapping[str, Any]] = ()
    tracked: bool = True
    events: Sequence[tuple[AuditAction, datetime, Mapping[str, Any]]] = ()
    cleaned_at: datetime | None = None
    cleaned_by: str = ""


class DemoPlan(Protocol):
    """What the demo supplies: its runs as of a moment, and the files that go with them."""

    worker_prefix: str  # every demo run's worker_id starts with it

    def runs(self, now: datetime) -> Iterable[PlannedRun]: ...

    def refuse_foreign_files(self, demo_run_ids: set[int]) -> None:
        """Raise ``RefusedError`` if a file the demo would replace is not the demo's."""

    def write_files(self, run_ids: Mapping[str, Sequence[int]], now: datetime) -> tuple[Path, ...]:
        """Write the demo's files for the runs just written (by label); where they are."""


@dataclass(frozen=True)
class DemoLoad:
    """What was written: run ids by label, tenders, files, how many earlier demo runs were
    replaced, and how many runs that are not the demo's the database holds (kept)."""

    runs: dict[str, tuple[int, ...]]
    tenders: int
    files: tuple[Path, ...]
    replaced_runs: int
    loaded_at: datetime
    other_runs: int = 0


@dataclass
class _Written:
    runs: dict[str, list[int]] = field(default_factory=dict)
    tenders: int = 0


class DemoLoading(Cleaning):
    """The demo fleet's one use case."""

    def load_demo_fleet(
        self, plan: DemoPlan, *, force: bool = False, now: datetime | None = None
    ) -> DemoLoad:
        """Set the database up (as ``init`` does), then replace the earlier demo runs with the
        plan's, as of ``now`` (default: the database's clock). Refused when the database holds
        runs that are not the demo's, unless ``force`` (they are kept, never changed). The
        plan's files are written before the commit, so no other process ever sees the runs
        without them."""
        if now is not None and now.tzinfo is None:
            raise ValueError("now must be timezone-aware (e.g. datetime.now(timezone.utc))")
        self.init_database(beside_other_tables=force)
        with self.db.write() as conn:
            now = self._now(conn, now)
            previous, stale = self._own_demo_runs(conn, plan.worker_prefix)
            foreign = runs.count_runs(conn) - len(previous)
            if foreign and not force:
                raise RefusedError(
                    f"The database {self.db.label} already holds {foreign} runs that are not "
                    "the demo's. Load the demo into another database, or force it to add the "
                    "demo next to them (they are kept as they are)."
                )
            plan.refuse_foreign_files(set(previous))
            demo.forget_demo_marks(conn, stale)
            demo.delete_demo_runs(conn, previous)
            launches.forget_runs(conn, previous)
            written = _Written()
            for planned in plan.runs(now):
                run_id = self._write_run(conn, planned)
                written.runs.setdefault(planned.label, []).append(run_id)
                written.tenders += len(planned.tenders)
            files = plan.write_files(written.runs, now)
        return DemoLoad(
            runs={label: tuple(ids) for label, ids in written.runs.items()},
            tenders=written.tenders,
            files=files,
            replaced_runs=len(previous),
            loaded_at=now,
            other_runs=foreign,
        )

    def _write_run(self, conn: Connection, planned: PlannedRun) -> int:
        portal = planned.portal_name
        row = {"portal_name": portal, **planned.row}
        run_id = worker.insert_run(conn, row)
        demo.mark_demo_run(conn, run_id, portal_name=portal, started_at=row["started_at"])
        tenders.insert_tenders(
            conn, [stored_row(t, run_id=run_id, portal_name=portal) for t in planned.tenders]
        )
        if planned.tracked:
            history = [(AuditAction.START, row["started_at"], {}), *planned.events]
            events.insert_events(
                conn,
                (
                    worker_event(
                        action,
                        run_id=run_id,
                        portal_name=portal,
                        worker_id=row["worker_id"],
                        now=at,
                        details=details,
                    )
                    for action, at, details in history
                ),
            )
        if planned.cleaned_at is not None:
            check, facts = self._check_in(conn, portal, now=planned.cleaned_at, lock=True)
            self._clean_locked(
                conn,
                [v for v in check.runs if v.run_id == run_id],  # never another run of the portal
                facts,
                actor=planned.cleaned_by,
                now=planned.cleaned_at,
            )
        return run_id

    def _own_demo_runs(self, conn: Connection, worker_prefix: str) -> tuple[list[int], list[int]]:
        """The ids of the runs that are still the demo's, and of demo marks whose run is gone
        or is someone else's now (same id, another portal or start time). Demo runs written
        before the demo marked them (their workers' ids start with ``worker_prefix``, on ids
        no deleted run had) are marked first."""
        tz = self.settings.timezone

        def instant(raw: object) -> datetime | None:
            try:
                return parse_timestamp(raw, tz)
            except ValueError:
                return None

        for run in demo.unmarked_runs_of_worker(conn, worker_prefix):
            started = instant(run.started_at)
            if started is not None and isinstance(run.portal_name, str):
                demo.mark_demo_run(
                    conn, run.id, portal_name=run.portal_name, started_at=started, fresh=False
                )
        own: list[int] = []
        stale: list[int] = []
        for mark in demo.demo_marks(conn):
            same = (
                mark.run_exists
                and mark.run_portal == mark.portal_name
                and instant(mark.run_started_at) == instant(mark.started_at)
            )
            (own if same else stale).append(mark.run_id)
        return own, stale
