"""Cleaning up dead runs: by compare-and-set, in batches, with one audit event per run.

Every clean-up goes through ``Cleaning.cleanup_runs`` (the CLI, the dashboard, the monitor and
the seed API alike) or, inside a worker's claim and the demo, through ``_clean_locked``: the
same judgement, the same guards in the UPDATE, the same audit event.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from cleanup_core.classify import Verdict
from cleanup_core.records import RunFacts
from cleanup_core.service.audit import cleanup_event
from cleanup_core.service.base import DEFAULT_ACTOR, checked_ids, is_whole_number
from cleanup_core.service.judging import Judging
from cleanup_core.storage import events, runs
from cleanup_core.vocabulary import RunState

log = logging.getLogger("cleanup_core")

# Runs per transaction: a clean-up of thousands of runs holds the write lock for one batch at a
# time, and an interrupt leaves every batch either whole or untouched.
BATCH_SIZE = 500

Progress = Callable[[int, int], None]  # (runs handled so far, runs requested)


@dataclass(frozen=True)
class CleanupResult:
    """What a clean-up did: ``cleaned`` of ``requested``; the rest were left alone, with why."""

    requested: tuple[int, ...]
    cleaned: tuple[int, ...]
    left_alone: dict[int, str] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return f"Cleaned {len(self.cleaned)}/{len(self.requested)} dead runs"

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": list(self.requested),
            "cleaned": list(self.cleaned),
            "left_alone": {str(k): v for k, v in self.left_alone.items()},
            "message": self.message,
        }


class CleanupInterrupted(KeyboardInterrupt):
    """Ctrl-C during a clean-up: the batches before it are cleaned (each with its audit
    events), the one it interrupted and the rest are untouched. ``result`` says which."""

    def __init__(self, result: CleanupResult):
        self.result = result
        super().__init__(
            f"interrupted: {len(result.cleaned)} runs were cleaned (each with its audit event) "
            "before the interrupt; the rest are untouched. Run the clean-up again to finish."
        )


class Cleaning(Judging):
    """Clean-ups: a person's, a scheduler's or the monitor's."""

    def cleanup_runs(
        self,
        run_ids: Iterable[int],
        *,
        actor: str = DEFAULT_ACTOR,
        age_threshold_hours: float | None = None,
        force: bool = False,
        now: datetime | None = None,
        progress: Progress | None = None,
    ) -> CleanupResult:
        """Mark the given runs ``Timeout - Auto-cleaned`` if they are dead now, in batches of
        ``BATCH_SIZE``, each its own transaction. Each run is judged again with fresh facts
        (and stored tenders) while its row is locked, and the UPDATE re-checks status,
        progress, stored tenders and heartbeat, so a run that changed since it was shown is
        left alone. ``force`` (a person's explicit decision) also cleans resumable and
        attention runs, never alive or young ones. ``progress`` is called after each batch.
        Ctrl-C raises ``CleanupInterrupted`` with what the finished batches cleaned."""
        ids = checked_ids(run_ids)
        threshold = self._threshold(age_threshold_hours)
        cleaned: list[int] = []
        left_alone: dict[int, str] = {}
        try:
            for start in range(0, len(ids), BATCH_SIZE):
                batch = ids[start : start + BATCH_SIZE]
                done, why = self._cleanup_batch(batch, actor, threshold, force, now)
                cleaned.extend(done)
                left_alone.update(why)
                if progress is not None:
                    progress(start + len(batch), len(ids))
        except KeyboardInterrupt:
            partial = CleanupResult(tuple(ids), tuple(cleaned), left_alone)
            log.warning("%s", CleanupInterrupted(partial))
            raise CleanupInterrupted(partial) from None
        result = CleanupResult(tuple(ids), tuple(cleaned), left_alone)
        if ids:
            log.info("%s (by %s)", result.message, actor)
        return result

    def _cleanup_batch(
        self,
        ids: list[int],
        actor: str,
        threshold: float | None,
        force: bool,
        now: datetime | None,
    ) -> tuple[list[int], dict[int, str]]:
        """One transaction: judge ``ids`` under lock, clean those allowed, say why not the
        others. Returns the cleaned ids in the order given, and the others with why."""
        allowed = {RunState.DEAD}
        if force:
            allowed |= {RunState.RESUMABLE, RunState.ATTENTION}
        with self.db.write() as conn:
            moment = self._now(conn, now)
            facts = runs.running_facts(conn, run_ids=ids, lock=True)
            judged, _ = self._judge_with_tenders(conn, facts, moment, threshold)
            verdicts = {v.run_id: v for v in judged}
            targets = [v for v in judged if v.state in allowed]
            cleaned = self._clean_locked(conn, targets, facts, actor=actor, now=moment, force=force)
            left_alone = self._why_left_alone(conn, ids, cleaned, verdicts, allowed)
        if log.isEnabledFor(logging.INFO):  # a line per run: only when someone reads them
            for run_id in ids:
                if run_id in cleaned:
                    v = verdicts[run_id]
                    log.info(
                        "cleaned run %d (%s) by %s: %s", run_id, v.portal_name, actor, v.summary
                    )
                else:
                    log.info("left run %d alone: %s", run_id, left_alone[run_id])
        return [i for i in ids if i in cleaned], left_alone

    def _clean_locked(
        self,
        conn: Connection,
        targets: Sequence[Verdict],
        facts: Sequence[RunFacts],
        *,
        actor: str,
        now: datetime,
        force: bool = False,
    ) -> set[int]:
        """Inside the caller's write transaction, with ``facts`` read under lock: clean the
        judged ``targets`` by compare-and-set and write one audit event per cleaned run.
        Returns the ids this call cleaned."""
        by_timeout: dict[timedelta, list[int]] = defaultdict(list)
        for verdict in targets:
            by_timeout[verdict.policy.heartbeat_timeout].append(verdict.run_id)
        cleaned: set[int] = set()
        for timeout, group in by_timeout.items():
            cleaned.update(
                runs.mark_cleaned(
                    conn,
                    group,
                    heartbeat_cutoff=now - timeout,
                    completed_at=now,
                    require_no_progress=not force,
                )
            )
        completed_raw = {f.id: f.completed_at for f in facts}
        events.insert_events(
            conn,
            (
                cleanup_event(v, completed_raw[v.run_id], actor=actor, now=now, force=force)
                for v in targets
                if v.run_id in cleaned
            ),
        )
        return cleaned

    def _why_left_alone(
        self,
        conn: Connection,
        ids: list[int],
        cleaned: set[int],
        verdicts: dict[int, Verdict],
        allowed: set[RunState],
    ) -> dict[int, str]:
        missing = [i for i in ids if i not in cleaned and i not in verdicts]
        stored = runs.runs_by_id(conn, missing) if missing else {}
        why: dict[int, str] = {}
        for run_id in ids:
            if run_id in cleaned:
                continue
            if run_id in verdicts:
                verdict = verdicts[run_id]
                if verdict.state in allowed:
                    why[run_id] = (
                        "changed while being cleaned (progress, stored tenders or heartbeat)"
                    )
                else:
                    why[run_id] = f"{verdict.state.value}: {verdict.summary}"
            elif run_id in stored:
                why[run_id] = f"not running (status {stored[run_id].status!r})"
            else:
                why[run_id] = "no such run"
        return why

    def cleanup_run(
        self,
        run_id: int,
        *,
        actor: str = DEFAULT_ACTOR,
        age_threshold_hours: float | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Clean one run if it is dead; ``True`` only if this call cleaned it."""
        if not is_whole_number(run_id):
            return False
        result = self.cleanup_runs(
            [run_id], actor=actor, age_threshold_hours=age_threshold_hours, now=now
        )
        return bool(result.cleaned)

    def cleanup_if_needed(
        self,
        age_threshold_hours: float | None = None,
        *,
        actor: str = DEFAULT_ACTOR,
        now: datetime | None = None,
        progress: Progress | None = None,
    ) -> CleanupResult:
        """Clean every dead run (never resumable, alive, young or attention ones)."""
        summary = self.scan(age_threshold_hours, now=now)
        return self.cleanup_runs(
            [v.run_id for v in summary.dead],
            actor=actor,
            age_threshold_hours=age_threshold_hours,
            now=now,
            progress=progress,
        )
