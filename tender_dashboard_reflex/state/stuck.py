"""The admin clean-up panel: resumable and dead runs, Clean Stuck Runs, per-run actions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import reflex as rx

from cleanup_core.classify import Verdict
from cleanup_core.config import MIN_SAFE_THRESHOLD_HOURS, validate_threshold_hours
from cleanup_core.display import NEVER, counter_text, safe_text, short_text
from cleanup_core.service import StuckRunSummary
from cleanup_core.timestamps import duration
from cleanup_core.vocabulary import CheckpointSource
from tender_dashboard_reflex.backend import changing, service, shared_scan
from tender_dashboard_reflex.state.auth import AuthState, Work, background, event, run_id_argument

PRESETS = (24, 36, 48)
THRESHOLD = "The threshold"
# The browser gets at most this many rows per table (oldest first) and in the preview; counts
# and the clean-up itself cover every run. After an outage there may be thousands.
SHOW_LIMIT = 100


@dataclass
class StuckRow:
    id: int
    portal: str
    state: str
    age: str
    extracted: str
    skipped: str
    checkpoint: str
    heartbeat: str
    reasons: str
    resume_command_set: bool = True  # its portal has a resume_command: Resume can work
    threshold: str = ""  # the age threshold this run was judged by, and its source


def stuck_row(verdict: Verdict, resume_command_set: bool = True) -> StuckRow:
    info = verdict.checkpoint
    if info.status.is_problem:
        checkpoint = info.status.value
    elif verdict.checkpoint_tenders:
        where = " (database)" if info.source is CheckpointSource.DATABASE else ""
        checkpoint = f"{verdict.checkpoint_tenders} tenders{where}"
    else:
        checkpoint = "-"
    heartbeat = NEVER
    if verdict.heartbeat_age_minutes is not None:
        heartbeat = duration(timedelta(minutes=verdict.heartbeat_age_minutes)) + " ago"
    return StuckRow(
        id=verdict.run_id,
        portal=safe_text(verdict.portal_name or ""),
        state=verdict.state.value,
        age="?" if verdict.age_hours is None else f"{verdict.age_hours:.1f} h",
        extracted=counter_text(verdict.extracted_recorded, verdict.extracted),
        skipped=counter_text(verdict.skipped_recorded, verdict.skipped),
        checkpoint=checkpoint,
        heartbeat=heartbeat,
        reasons=safe_text(verdict.summary),
        threshold=(
            f"threshold {verdict.policy.age_threshold_hours:.3g} h "
            f"({verdict.policy.threshold_source})"
        ),
        resume_command_set=resume_command_set,
    )


def _hours_text(hours: float) -> str:
    return str(int(hours)) if hours.is_integer() else str(hours)


class StuckState(AuthState):
    # What is in the threshold box, and the last valid threshold typed or chosen (``None``: the
    # default), which the tables and a clean-up use while the box holds something invalid.
    threshold_text: rx.Field[str] = rx.field("")
    requested_hours: rx.Field[float | None] = rx.field(None)
    _valid_text: str = ""
    default_threshold: rx.Field[float] = rx.field(24.0)
    resumable: rx.Field[list[StuckRow]] = rx.field(default_factory=list[StuckRow])
    dead: rx.Field[list[StuckRow]] = rx.field(default_factory=list[StuckRow])
    attention: rx.Field[list[StuckRow]] = rx.field(default_factory=list[StuckRow])
    resumable_total: rx.Field[int] = rx.field(0)
    dead_total: rx.Field[int] = rx.field(0)
    attention_total: rx.Field[int] = rx.field(0)
    loaded: rx.Field[bool] = rx.field(False)
    # The runs shown were judged by different thresholds (learned, per portal): show each.
    thresholds_differ: rx.Field[bool] = rx.field(False)
    auto_refresh: rx.Field[bool] = rx.field(True)

    clean_dialog_open: rx.Field[bool] = rx.field(False)
    preview: rx.Field[list[StuckRow]] = rx.field(default_factory=list[StuckRow])
    preview_total: rx.Field[int] = rx.field(0)
    preview_by_portal: rx.Field[list[dict[str, Any]]] = rx.field(
        default_factory=list[dict[str, Any]]
    )
    _preview_ids: list[int] = []
    # The result of this tab's last clean-up, with when it happened (in the configured zone);
    # gone when dismissed, when the page is opened again, or once a run it cleaned is running
    # again (reverted) - it then no longer describes the page.
    last_result: rx.Field[str] = rx.field("")
    last_result_at: rx.Field[str] = rx.field("")
    left_alone: rx.Field[list[str]] = rx.field(default_factory=list[str])
    _result_ids: list[int] = []

    force_dialog_open: rx.Field[bool] = rx.field(False)
    force_run_id: rx.Field[int] = rx.field(0)
    force_typed: rx.Field[str] = rx.field("")

    # -- threshold ---------------------------------------------------------------------------

    @rx.var
    def threshold_hours(self) -> float:
        """The threshold in use: the last valid one typed or chosen, else the default."""
        return self.default_threshold if self.requested_hours is None else self.requested_hours

    @rx.var
    def threshold_error(self) -> str:
        """Why the box's value is not used (the core's own check), or ""."""
        if self.threshold_text.strip() == "":
            return ""
        try:
            validate_threshold_hours(self.threshold_text, THRESHOLD)
        except ValueError as exc:
            return f"{exc}; still using {_hours_text(self.threshold_hours)} h."
        return ""

    @rx.var
    def low_threshold(self) -> bool:
        return self.threshold_hours < MIN_SAFE_THRESHOLD_HOURS

    def _use_threshold(self, hours: float | None, text: str) -> None:
        self.requested_hours, self.threshold_text, self._valid_text = hours, text, text

    def _scan(self, fresh: bool = False) -> Work:
        """Judge every running run (the shared scan; ``fresh``: one begun now, as for Refresh
        or a preview); keep the first rows of each table. Returns the dead."""
        hours = self.requested_hours

        def read() -> tuple[StuckRunSummary, dict[object, bool]]:
            summary = shared_scan(hours, fresh=fresh)
            shown = (*summary.dead, *summary.resumable, *summary.attention)
            portals = {v.portal_name for v in shown}  # (at most SHOW_LIMIT of each are shown)
            return summary, {p: service().launch_commands(p).resume for p in portals}

        summary, commands = yield read
        dead, resumable, attention = summary.dead, summary.resumable, summary.attention
        self.dead = self._rows(dead, commands)
        self.resumable = self._rows(resumable, commands)
        self.attention = self._rows(attention, commands)
        self.dead_total, self.resumable_total = len(dead), len(resumable)
        self.attention_total = len(attention)
        shown = (*self.dead, *self.resumable, *self.attention)
        self.thresholds_differ = len({row.threshold for row in shown}) > 1
        self.loaded = True
        if self._result_ids and {v.run_id for v in summary.verdicts} & set(self._result_ids):
            self._clear_result()  # a run it cleaned runs again (reverted): it is out of date
        return dead

    def _rows(self, verdicts: tuple[Verdict, ...], commands: dict[object, bool]) -> list[StuckRow]:
        return [stuck_row(v, commands.get(v.portal_name, False)) for v in verdicts[:SHOW_LIMIT]]

    def _clear_result(self) -> None:
        self.last_result, self.last_result_at, self.left_alone = "", "", []
        self._result_ids = []

    def _show_result(self, message: str, cleaned: list[int], left_alone: dict[int, str]) -> None:
        """Keep a clean-up's result on the page, timestamped, until it is out of date."""
        self.last_result = message
        self.last_result_at = datetime.now(service().settings.timezone).strftime("%H:%M")
        self.left_alone = [f"run {i}: {why}" for i, why in left_alone.items()]
        self._result_ids = list(cleaned)

    @background("open the stuck-runs panel", admin=False)
    def load(self) -> Work:
        self._clear_result()  # opening the page again: an earlier result is history now
        self.default_threshold = yield lambda: service().settings.age_threshold_hours
        if self.threshold_error:  # a reload never keeps a broken value
            self.threshold_text = self._valid_text
        yield from self._scan()

    @background("refresh the stuck-runs panel", admin=False)
    def refresh(self) -> Work:
        """The Refresh button: a scan begun now."""
        yield from self._scan(fresh=True)

    @background("refresh the stuck-runs panel", admin=False)
    def tick(self) -> Work:
        """Auto-refresh: the shared scan, a few seconds old at most."""
        yield from self._scan()

    @background("change the threshold", admin=False)
    def set_threshold(self, value: str) -> Work:
        """What is typed in the box: a valid value (or nothing, for the default) rescans; an
        invalid one is explained under the box and the tables keep the last valid threshold."""
        text = str(value)[:20]
        if not text.strip():
            self._use_threshold(None, text)
        else:
            try:
                hours = validate_threshold_hours(text, THRESHOLD)
            except ValueError:
                self.threshold_text = text  # threshold_error says why
                return
            self._use_threshold(hours, text)
        yield from self._scan()

    @background("change the threshold", admin=False)
    def use_preset(self, hours: float) -> Work:
        valid = validate_threshold_hours(hours, THRESHOLD)
        self._use_threshold(valid, _hours_text(valid))
        yield from self._scan()

    @event
    def set_auto_refresh(self, enabled: bool) -> None:
        self.auto_refresh = bool(enabled)

    @event
    def dismiss_result(self) -> None:
        """The result's close button."""
        self._clear_result()

    # -- Clean Stuck Runs -----------------------------------------------------------------

    @background("preview Clean Stuck Runs", admin=True, busy=True)
    def open_clean_dialog(self) -> Work:
        """Preview exactly the runs a clean-up would change, from a fresh scan: every one is
        counted per portal, the first ones are listed."""
        dead = yield from self._scan(fresh=True)
        self._preview_ids = [v.run_id for v in dead]
        self.preview = list(self.dead)
        self.preview_total = len(dead)
        by_portal = Counter(v.portal_name or "" for v in dead)
        self.preview_by_portal = [
            {"portal": short_text(portal), "runs": count}
            for portal, count in sorted(by_portal.items())
        ]
        self.clean_dialog_open = True

    @event
    def close_clean_dialog(self) -> None:
        self.clean_dialog_open = False
        self.preview = []
        self._preview_ids = []

    @background("Clean Stuck Runs", admin=True, busy=True)
    def confirm_clean(self) -> Work:
        """Clean the previewed runs by compare-and-set: a run that changed since the preview
        (progress, a heartbeat, a checkpoint) is left alone and named."""
        ids = list(self._preview_ids)
        self.clean_dialog_open = False
        self.preview, self.preview_by_portal, self.preview_total = [], [], 0
        self._preview_ids = []
        actor, hours = self._actor(), self.requested_hours
        result = yield changing(
            lambda: service().cleanup_runs(ids, actor=actor, age_threshold_hours=hours)
        )
        self._show_result(result.message, list(result.cleaned), dict(result.left_alone))
        yield from self._scan()
        if result.left_alone:
            names = ", ".join(str(i) for i in result.left_alone)
            return rx.toast.warning(
                f"{result.message}. Left alone (changed since the preview): {names}",
                duration=15000,
            )
        return rx.toast.success(result.message)

    @background("clean up a run", admin=True, busy=True)
    def cleanup_one(self, run_id: int) -> Work:
        run_id = run_id_argument(run_id)
        actor, hours = self._actor(), self.requested_hours
        result = yield changing(
            lambda: service().cleanup_runs([run_id], actor=actor, age_threshold_hours=hours)
        )
        # The panel's result now describes this clean-up, not an earlier one.
        self._show_result(
            f"Cleaned {len(result.cleaned)}/1 dead run (run {run_id})",
            list(result.cleaned),
            dict(result.left_alone),
        )
        yield from self._scan()
        if result.cleaned:
            return rx.toast.success(f"Cleaned up run {run_id}.")
        return rx.toast.warning(f"Run {run_id} was left alone: {result.left_alone[run_id]}")

    # -- Force clean-up (typed confirmation) ----------------------------------------------------

    @background("force a clean-up", admin=True)
    def open_force_dialog(self, run_id: int) -> Work:
        self.force_run_id = run_id_argument(run_id)
        self.force_typed = ""
        self.force_dialog_open = True
        yield from ()

    @event
    def close_force_dialog(self) -> None:
        self.force_dialog_open = False
        self.force_typed = ""

    @event
    def set_force_typed(self, value: str) -> None:
        self.force_typed = str(value)[:20]

    @background("force a clean-up", admin=True, busy=True)
    def confirm_force(self) -> Work:
        run_id = self.force_run_id
        if self.force_typed.strip() != str(run_id):
            return rx.toast.error(f"Type the run id {run_id} to confirm the forced clean-up.")
        self.force_dialog_open = False
        self.force_typed = ""
        actor, hours = self._actor(), self.requested_hours
        result = yield changing(
            lambda: service().cleanup_runs(
                [run_id], actor=actor, age_threshold_hours=hours, force=True
            )
        )
        self._show_result(
            f"Forced clean-up of run {run_id}: {len(result.cleaned)}/1 cleaned",
            list(result.cleaned),
            dict(result.left_alone),
        )
        yield from self._scan()
        if result.cleaned:
            return rx.toast.success(f"Run {run_id} was cleaned up (forced); revert it in History.")
        return rx.toast.warning(f"Run {run_id} was left alone: {result.left_alone[run_id]}")

    # -- Resume ---------------------------------------------------------------------------

    @background("resume a run", admin=True, busy=True)
    def resume(self, run_id: int) -> Work:
        run_id, actor = run_id_argument(run_id), self._actor()
        launched = yield changing(lambda: service().launch_resume(run_id, actor=actor))
        return rx.toast.success(launched.message, duration=10000)
