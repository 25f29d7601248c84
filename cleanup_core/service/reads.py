"""What the dashboard's pages read: pages of runs with their live state, one run with its
verdict and history, each portal's newest run, counts for the overview. ``reports`` formats
them for display."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cleanup_core.checkpoints import CheckpointInfo, inspect_checkpoint, stored_checkpoint_info
from cleanup_core.classify import Verdict
from cleanup_core.records import PortalStatusCount, RunFacts
from cleanup_core.service.audit import AuditEvent
from cleanup_core.service.history import Auditing
from cleanup_core.service.judging import Judging
from cleanup_core.storage import checkpoints, events, runs
from cleanup_core.vocabulary import FINISHED, AuditAction, RunState


@dataclass(frozen=True)
class RunsPageData:
    """One page of runs (any status) and the state of its running ones, judged at
    ``checked_at``."""

    runs: list[RunFacts]
    total: int
    states: dict[int, RunState]
    checked_at: datetime
    overdue: frozenset[int] = frozenset()  # running runs past their portal's p99 x factor


@dataclass(frozen=True)
class RunData:
    """One run, its verdict while it is running, its checkpoint (its row in the database, else
    its portal's file) and its events."""

    run: RunFacts
    verdict: Verdict | None
    checkpoint: CheckpointInfo
    events: tuple[AuditEvent, ...]
    checked_at: datetime


class Reads(Judging, Auditing):
    """The dashboard's reads (read-only transactions)."""

    def read_runs_page(
        self,
        *,
        statuses: Sequence[str] | None = None,
        portal_name: str | None = None,
        search: str | None = None,
        sort: str = "id",
        descending: bool = True,
        limit: int,
        offset: int = 0,
        state: str | None = None,
        now: datetime | None = None,
    ) -> RunsPageData:
        """A page of runs, filtered and sorted on the server. ``sort`` must be one of the
        sortable columns (the browser can send anything). ``state`` keeps the running runs
        judged so now (``alive``, ``young``, ``resumable``, ``dead``, ``attention``: the same
        judgement as ``scan``, with the default threshold), or ``finished``: runs not
        running."""
        if sort not in runs.SORTABLE_RUN_COLUMNS:
            raise ValueError(f"cannot sort runs by {sort!r}")
        if state is not None and state != FINISHED and state not in set(RunState):
            raise ValueError(f"no run state {str(state)[:40]!r}")
        with self.db.read() as conn:
            now = self._now(conn, now)
            run_ids: list[int] | None = None
            if state is not None and state != FINISHED:
                judged, _ = self._judge_with_tenders(
                    conn, runs.running_facts(conn, portal_name=portal_name), now, None
                )
                run_ids = [v.run_id for v in judged if v.state == state]
            found, total = runs.runs_page(
                conn,
                statuses=statuses,
                portal_name=portal_name,
                search=search,
                sort=sort,
                descending=descending,
                limit=limit,
                offset=offset,
                run_ids=run_ids,
                finished=state == FINISHED,
            )
            running = [run for run in found if run.is_running]
            verdicts, _ = self._judge_with_tenders(conn, running, now, None)
        overdue = frozenset(v.run_id for v in verdicts if v.overdue)
        return RunsPageData(found, total, {v.run_id: v.state for v in verdicts}, now, overdue)

    def read_run(self, run_id: int, *, now: datetime | None = None) -> RunData | None:
        """Everything about one run, or ``None`` if it does not exist."""
        with self.db.read() as conn:
            now = self._now(conn, now)
            run = runs.runs_by_id(conn, [run_id]).get(run_id)
            verdicts, _ = self._judge_with_tenders(
                conn, [run] if run is not None and run.is_running else [], now, None
            )
            stored = checkpoints.run_checkpoints(conn, [run_id]).get(run_id)
        if run is None:
            return None
        settings = self.settings
        portal = run.portal_name if isinstance(run.portal_name, str) else ""
        if stored is not None:  # the run's own, in the database, first
            checkpoint = stored_checkpoint_info(stored)
        else:
            checkpoint = inspect_checkpoint(
                settings.checkpoint_dir, portal, max_bytes=settings.max_checkpoint_bytes
            )
        history = self.history(run_id=run_id, limit=200)
        verdict = verdicts[0] if verdicts else None
        return RunData(run, verdict, checkpoint, history.events, now)

    def read_latest_runs(self) -> list[RunFacts]:
        """The newest run of each portal."""
        with self.db.read() as conn:
            return runs.latest_runs_by_portal(conn)

    def read_status_counts(self) -> list[PortalStatusCount]:
        """How many runs each portal has of each status."""
        with self.db.read() as conn:
            return runs.status_counts_by_portal(conn)

    def read_event_times(self, action: AuditAction, since: datetime) -> list[object]:
        """When each ``action`` event since ``since`` happened (raw stored values)."""
        with self.db.read() as conn:
            return events.event_times(conn, action, since)
