"""Real tenders and audit events survive any sequence of legacy runs, deletions (the tool's and
the operator's own SQL), clean-ups and demo reloads — on SQLite, where ids are handed out again
(each example reuses one, asserted), and on PostgreSQL.

A model follows every run id's incarnations: which tenders and events each one wrote. A real
run's rows, and every row of a run deleted through the tool, must stay exactly as they were;
the history and stored-tender count of a run id are exactly its current incarnation's."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import insert, text

from cleanup_core import CleanupService, load_demo
from cleanup_core.models import Run, Tender
from cleanup_core.storage import tenders
from tests.conftest import NOW

LEGACY_PORTAL = "Legacy Portal"
TABLES = ("tenders", "run_events", "runs", "deleted_runs", "demo_runs")


@dataclass
class Incarnation:
    """One life of a run id: who wrote it and which rows it wrote."""

    owner: str  # "real" or "demo"
    tenders: set[int] = field(default_factory=set)
    events: set[int] = field(default_factory=set)


class RunIdReuse(RuleBasedStateMachine):
    service: CleanupService
    checkpoint_dir: Path

    def __init__(self) -> None:
        super().__init__()
        with self.service.db.write() as conn:
            for table in TABLES:
                conn.execute(text(f"DELETE FROM {table}"))  # SQLite then starts ids at 1 again
        for path in self.checkpoint_dir.iterdir():
            path.unlink()
        self.live: dict[int, Incarnation] = {}
        self.protected: dict[tuple[str, int], tuple[Any, ...]] = {}  # (table, id) -> row
        self.deleted_events: set[int] = set()
        self.tainted: set[int] = set()  # ids whose earlier run was deleted outside the tool
        self.handed_out: set[int] = set()
        self.reused = 0
        self.serial = 0
        self.seen = self._rows()

    # -- what is in the database -------------------------------------------------------------

    def _rows(self) -> dict[tuple[str, int], tuple[Any, ...]]:
        with self.service.db.read() as conn:
            return {
                (table, row[0]): tuple(row)
                for table in ("tenders", "run_events")
                for row in conn.execute(text(f"SELECT * FROM {table}"))
            }

    def _observe(self, gone: dict[int, Incarnation] | None = None) -> None:
        """Give each new row to the incarnation of its run id (``gone``: just deleted)."""
        now = self._rows()
        owners = {**(gone or {}), **self.live}
        with self.service.db.read() as conn:
            links = {
                ("tenders", tid): rid
                for tid, rid in conn.execute(text("SELECT id, run_id FROM tenders"))
            } | {
                ("run_events", eid): rid
                for eid, rid in conn.execute(text("SELECT id, run_id FROM run_events"))
            }
        for key, row in now.items():
            if self.seen.get(key) == row:
                continue
            incarnation = owners[links[key]]
            (incarnation.tenders if key[0] == "tenders" else incarnation.events).add(key[1])
            if incarnation.owner == "real":
                self.protected[key] = row
        self.seen = now

    def _protect(self, incarnation: Incarnation) -> None:
        for table, ids in (("tenders", incarnation.tenders), ("run_events", incarnation.events)):
            for row_id in ids:
                self.protected[(table, row_id)] = self.seen[(table, row_id)]

    def _new_id(self, run_id: int) -> None:
        assert run_id not in self.live
        self.reused += run_id in self.handed_out
        self.handed_out.add(run_id)

    def _run_ids(self, *, running: bool) -> list[int]:
        op = "=" if running else "IS DISTINCT FROM"
        with self.service.db.read() as conn:
            found = conn.execute(text(f"SELECT id FROM runs WHERE status {op} 'running'"))
            return sorted((row[0] for row in found), reverse=True)  # newest first

    # -- what happens ------------------------------------------------------------------------

    @initialize(then_demo=st.booleans())
    def free_the_newest_id(self, then_demo: bool) -> None:
        """Every example starts by deleting the newest run and inserting another one, so
        SQLite hands that id out again."""
        self.legacy_scraper_run(tenders=2, finished=True)
        self.legacy_scraper_run(tenders=1, finished=True)
        self.delete_through_the_tool(0)
        if then_demo:
            self.load_the_demo()
        else:
            self.legacy_scraper_run(tenders=1, finished=False)

    @rule(tenders=st.integers(0, 3), finished=st.booleans())
    def legacy_scraper_run(self, tenders: int, finished: bool) -> None:
        self.serial += 1
        row = {
            "portal_name": LEGACY_PORTAL,
            "status": "completed" if finished else "running",
            "started_at": NOW - timedelta(hours=47, minutes=self.serial),
            "extracted_total_tenders": 0,
        }
        with self.service.db.write() as conn:
            run_id = conn.execute(insert(Run.__table__).values(**row).returning(Run.id)).scalar()
            self._new_id(run_id)
            self.live[run_id] = Incarnation("real")
            for i in range(tenders):
                tender = {"run_id": run_id, "portal_name": LEGACY_PORTAL}
                conn.execute(
                    insert(Tender.__table__).values(tender_id=f"REAL-{self.serial}-{i}", **tender)
                )
        self._observe()

    @rule()
    def load_the_demo(self) -> None:
        replaced = [inc for inc in self.live.values() if inc.owner == "demo"]
        report = load_demo(self.service, force=True, now=NOW)
        for incarnation in replaced:  # gone, even if an identical row now has the same id
            for table, ids in (
                ("tenders", incarnation.tenders),
                ("run_events", incarnation.events),
            ):
                for row_id in ids:
                    self.seen.pop((table, row_id), None)
        self.live = {i: inc for i, inc in self.live.items() if inc.owner != "demo"}
        for ids in report.runs.values():
            for run_id in ids:
                self._new_id(run_id)
                self.live[run_id] = Incarnation("demo")
        self._observe()

    @rule(pick=st.integers(0, 5))
    def delete_through_the_tool(self, pick: int) -> None:
        candidates = self._run_ids(running=False)
        if not candidates:
            return
        run_id = candidates[min(pick, len(candidates) - 1)]
        assert self.service.delete_runs([run_id], confirm=True, actor="op") == 1
        incarnation = self.live.pop(run_id)
        self._observe(gone={run_id: incarnation})
        self._protect(incarnation)
        self.deleted_events |= incarnation.events

    @rule(pick=st.integers(0, 5))
    def delete_with_the_operators_own_sql(self, pick: int) -> None:
        candidates = self._run_ids(running=False) + self._run_ids(running=True)
        if not candidates:
            return
        run_id = candidates[min(pick, len(candidates) - 1)]
        with self.service.db.write() as conn:
            conn.execute(text("DELETE FROM runs WHERE id = :r"), {"r": run_id})
        self.live.pop(run_id)
        self.tainted.add(run_id)

    @rule()
    def clean_up_dead_runs(self) -> None:
        self.service.cleanup_if_needed(now=NOW, actor="nightly")
        self._observe()

    @rule()
    def force_clean_the_newest_running_run(self) -> None:
        running = self._run_ids(running=True)
        if running:
            self.service.cleanup_runs(running[:1], force=True, actor="op", now=NOW)
            self._observe()

    # -- what must hold ----------------------------------------------------------------------

    @invariant()
    def real_tenders_and_events_are_all_there_unchanged(self) -> None:
        now = self._rows()
        lost = {key: row for key, row in self.protected.items() if now.get(key) != row}
        assert not lost, f"real rows lost or changed: {lost}"

    @invariant()
    def the_model_knows_every_run(self) -> None:
        assert set(self.live) == set(self._run_ids(running=True) + self._run_ids(running=False))

    @invariant()
    def a_run_id_links_only_its_current_incarnations_rows(self) -> None:
        judged = {i for i in self.live if i not in self.tainted}
        with self.service.db.read() as conn:
            counts = tenders.stored_tender_counts(conn, sorted(judged))
        assert counts is not None
        everything = {e.id: e for e in self.service.history(limit=1000).events}
        for run_id in judged:
            incarnation = self.live[run_id]
            history = {e.id for e in self.service.history(run_id=run_id, limit=1000).events}
            assert history == incarnation.events, run_id
            assert counts.get(run_id, 0) == len(incarnation.tenders), run_id
            assert not any(everything[i].run_deleted for i in incarnation.events), run_id
        assert all(everything[i].run_deleted for i in self.deleted_events)

    def teardown(self) -> None:
        if self.service.db.is_sqlite:
            assert self.reused, "SQLite handed out no id twice: the scenario proves nothing"


@pytest.mark.slow
def test_real_rows_survive_any_sequence_of_runs_deletes_and_demo_reloads(service, checkpoint_dir):
    RunIdReuse.service = service
    RunIdReuse.checkpoint_dir = checkpoint_dir
    run_state_machine_as_test(
        RunIdReuse,
        settings=settings(
            max_examples=30,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
