"""Stuck runs: the admin clean-up panel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reflex as rx
from reflex.vars import ArrayVar, NumberVar, ObjectVar

from tender_dashboard_reflex import routes
from tender_dashboard_reflex.components.layout import (
    WRAP_ANYWHERE,
    action_buttons,
    actions_cell,
    auto_refresh,
    clipped,
    counter,
    data_table,
    dialog,
    dialog_footer,
    headers,
    heartbeat_text,
    launch_button,
    page,
    state_badge,
    working,
)
from tender_dashboard_reflex.state.auth import AuthState
from tender_dashboard_reflex.state.stuck import PRESETS, StuckRow, StuckState

COLUMNS = (
    "Id",
    "Portal",
    "State",
    "Age",
    "Extracted",
    "Skipped",
    "Checkpoint",
    "Heartbeat",
    "Reasons",
)


def threshold_control() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.el.label(
                rx.text("Age threshold", weight="medium", size="2"), html_for="threshold-input"
            ),
            rx.input(
                value=StuckState.threshold_text,
                placeholder=StuckState.default_threshold.to_string() + " (default)",
                on_change=StuckState.set_threshold.debounce(500),
                type="number",
                min="0",
                step="1",
                width="9em",
                id="threshold-input",
            ),
            rx.text("hours", size="2"),
            *(
                rx.button(
                    f"{hours} h",
                    size="1",
                    variant=rx.cond(StuckState.threshold_hours == hours, "solid", "outline"),
                    on_click=StuckState.use_preset(hours),
                    id=f"preset-{hours}",
                )
                for hours in PRESETS
            ),
            align="center",
            spacing="2",
            wrap="wrap",
        ),
        rx.cond(
            StuckState.threshold_error != "",
            rx.text(StuckState.threshold_error, color_scheme="red", size="2", id="threshold-error"),
        ),
        rx.cond(
            StuckState.low_threshold,
            rx.callout(
                "Below 12 hours, healthy runs of large portals can be judged dead (false "
                "positives): they often go that long without a heartbeat. Check each run before "
                "cleaning.",
                icon="triangle_alert",
                color_scheme="orange",
                id="low-threshold-warning",
            ),
        ),
        spacing="2",
    )


def run_cells(row: ObjectVar[StuckRow]) -> list[rx.Component]:
    return [
        rx.table.cell(rx.link(row.id, href=routes.RUN + "?id=" + row.id.to_string())),
        rx.table.cell(clipped(row.portal, "12em", id="stuck-portal-" + row.id.to_string())),
        rx.table.cell(state_badge(row.state)),
        rx.table.cell(
            rx.text(row.age, white_space="nowrap"),
            rx.cond(
                StuckState.thresholds_differ,
                rx.text(
                    row.threshold,
                    size="1",
                    color_scheme="gray",
                    white_space="nowrap",
                    id="stuck-threshold-" + row.id.to_string(),
                ),
            ),
        ),
        rx.table.cell(counter(row.extracted)),
        rx.table.cell(counter(row.skipped)),
        rx.table.cell(row.checkpoint),
        rx.table.cell(heartbeat_text(row.heartbeat), white_space="nowrap"),
        rx.table.cell(
            rx.text(row.reasons, size="1", **WRAP_ANYWHERE), min_width="18em", max_width="28em"
        ),
    ]


def table_row(row: ObjectVar[StuckRow], table: str, *admin_buttons: rx.Component) -> rx.Component:
    """A run's cells, then the actions an admin may take on it (viewers see none)."""
    return rx.table.row(
        *run_cells(row),
        actions_cell(
            rx.cond(
                AuthState.is_admin,
                action_buttons(*admin_buttons),
                rx.text("view only", size="1", color_scheme="gray"),
            )
        ),
        id=f"{table}-row-" + row.id.to_string(),
    )


def force_button(row: ObjectVar[StuckRow]) -> rx.Component:
    return rx.button(
        "Force clean-up",
        size="1",
        color_scheme="red",
        variant="soft",
        on_click=StuckState.open_force_dialog(row.id),
        loading=working(StuckState.confirm_force),
        id="force-" + row.id.to_string(),
    )


def resume_button(
    run_id: rx.Var[int], configured: rx.Var[bool], on_click: Any, handler: object
) -> rx.Component:
    """Resume, disabled with why when the run's portal has no resume_command; a spinner while
    ``handler`` runs."""
    return launch_button(
        rx.icon("play", size=14),
        "Resume",
        configured=configured,
        setting="resume_command",
        element_id="no-resume-command-" + run_id.to_string(),
        size="1",
        on_click=on_click,
        loading=working(handler),
        id="resume-" + run_id.to_string(),
    )


def resumable_row(row: ObjectVar[StuckRow]) -> rx.Component:
    resume = resume_button(
        row.id, row.resume_command_set, StuckState.resume(row.id), StuckState.resume
    )
    return table_row(row, "resumable", resume, force_button(row))


def dead_row(row: ObjectVar[StuckRow]) -> rx.Component:
    clean = rx.button(
        rx.icon("eraser", size=14),
        "Clean up",
        size="1",
        color_scheme="red",
        on_click=StuckState.cleanup_one(row.id),
        loading=working(StuckState.cleanup_one),
        id="cleanup-" + row.id.to_string(),
    )
    return table_row(row, "dead", clean)


def attention_row(row: ObjectVar[StuckRow]) -> rx.Component:
    return table_row(row, "attention", force_button(row))


def runs_table(
    title: str,
    description: str,
    rows: ArrayVar[Any],
    total: NumberVar[Any],
    render: Callable[[ObjectVar[StuckRow]], rx.Component],
    table_id: str,
    empty: str,
) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading(title, size="4"),
                rx.badge(total, id=f"{table_id}-count"),
                align="center",
            ),
            rx.text(description, size="2", color_scheme="gray"),
            rx.cond(
                total > rows.length(),
                rx.text(
                    "Showing the oldest ",
                    rows.length(),
                    " of ",
                    total,
                    "; the counts and Clean Stuck Runs cover all of them.",
                    size="2",
                    weight="medium",
                    id=f"{table_id}-truncated",
                ),
            ),
            data_table(
                headers(*COLUMNS, actions=True), rows, render, table_id=table_id, empty=empty
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
    )


def preview_row(row: ObjectVar[StuckRow]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.id),
        rx.table.cell(clipped(row.portal)),
        rx.table.cell(row.age, white_space="nowrap"),
        rx.table.cell(rx.text(row.reasons, size="1", **WRAP_ANYWHERE)),
        id="preview-row-" + row.id.to_string(),
    )


def clean_dialog() -> rx.Component:
    return dialog(
        rx.dialog.title("Clean stuck runs?"),
        rx.dialog.description(
            "These ",
            rx.text.strong(StuckState.preview_total, id="clean-preview-total"),
            " dead runs will be marked 'Timeout - Auto-cleaned' (nothing is deleted; each can "
            "be reverted from History). A run that makes progress or sends a heartbeat before "
            "you confirm is left alone.",
        ),
        rx.cond(
            StuckState.low_threshold,
            rx.callout(
                "The threshold is below 12 hours.",
                icon="triangle_alert",
                color_scheme="orange",
                margin_y="0.5em",
            ),
        ),
        rx.cond(
            StuckState.preview_by_portal.length() > 1,
            rx.flex(
                rx.foreach(
                    StuckState.preview_by_portal,
                    lambda p: rx.badge(p["portal"], ": ", p["runs"], variant="outline"),
                ),
                wrap="wrap",
                spacing="1",
                margin_top="0.5em",
                id="clean-preview-portals",
            ),
        ),
        rx.cond(
            StuckState.preview_total > StuckState.preview.length(),
            rx.text(
                "Listed below: the oldest ",
                StuckState.preview.length(),
                " of them.",
                size="2",
                margin_top="0.5em",
            ),
        ),
        # A plain scrolling box a keyboard can reach (tab stop, named), not a Radix ScrollArea.
        rx.box(
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *(
                            rx.table.column_header_cell(c)
                            for c in ("Id", "Portal", "Age", "Why dead")
                        )
                    )
                ),
                rx.table.body(rx.foreach(StuckState.preview, preview_row)),
                size="1",
                id="clean-preview",
            ),
            overflow_y="auto",
            max_height="40vh",
            margin_y="0.75em",
            tab_index=0,
            role="region",
            aria_label="Runs to clean",
        ),
        dialog_footer(
            "clean-cancel",
            rx.button(
                "Confirm",
                color_scheme="red",
                on_click=StuckState.confirm_clean,
                loading=working(StuckState.confirm_clean),
                disabled=StuckState.preview_total == 0,
                id="clean-confirm",
            ),
        ),
        open=StuckState.clean_dialog_open,
        on_close=StuckState.close_clean_dialog,
        max_width="56em",
    )


def force_dialog(state: Any = StuckState) -> rx.Component:
    """The typed confirmation of a forced clean-up, for ``state`` (the Stuck runs panel or a
    run's page): ``force_run_id``, ``force_typed``, ``force_dialog_open`` and the handlers
    ``set_force_typed``, ``confirm_force`` and ``close_force_dialog``."""
    run_id = state.force_run_id.to_string()
    return dialog(
        rx.dialog.title("Force clean-up of run " + run_id),
        rx.dialog.description(
            "This run is not dead: it made progress, left a checkpoint, or cannot be judged "
            "safely. Forcing marks it 'Timeout - Auto-cleaned' so it will not be resumed "
            "(a run with a live heartbeat is never cut off)."
        ),
        rx.el.label(
            rx.text("Type the run id, ", rx.text.strong(run_id), ", to confirm", size="2"),
            html_for="force-typed",
            display="block",
            margin_top="0.75em",
        ),
        rx.input(
            value=state.force_typed,
            on_change=state.set_force_typed,
            auto_complete="off",
            input_mode="numeric",
            margin_top="0.4em",
            id="force-typed",
        ),
        dialog_footer(
            "force-cancel",
            rx.button(
                "Confirm",
                color_scheme="red",
                on_click=state.confirm_force,
                loading=working(state.confirm_force),
                disabled=state.force_typed != run_id,
                id="force-confirm",
            ),
        ),
        open=state.force_dialog_open,
        on_close=state.close_force_dialog,
    )


def last_result() -> rx.Component:
    """The last clean-up's result, with its time, until it is dismissed or out of date."""
    return rx.card(
        rx.flex(
            rx.icon("info", size=18, color=rx.color("accent", 11), aria_hidden="true"),
            rx.vstack(
                rx.text(
                    StuckState.last_result,
                    " at ",
                    rx.el.time(StuckState.last_result_at),
                    weight="medium",
                    id="last-result-text",
                ),
                rx.foreach(StuckState.left_alone, lambda line: rx.text(line, size="1")),
                spacing="1",
                flex_grow="1",
            ),
            rx.icon_button(
                rx.icon("x", size=14),
                size="1",
                variant="ghost",
                color_scheme="gray",
                on_click=StuckState.dismiss_result,
                aria_label="Dismiss the result",
                id="last-result-dismiss",
            ),
            spacing="3",
            align="start",
        ),
        role="status",
        background=rx.color("accent", 3),
        width="100%",
        id="last-result",
    )


def stuck_page() -> rx.Component:
    actions = rx.hstack(
        auto_refresh(StuckState.auto_refresh, StuckState.tick, StuckState.set_auto_refresh),
        rx.button(
            rx.icon("refresh_cw", size=14),
            "Refresh",
            variant="soft",
            on_click=StuckState.refresh,
            loading=working(StuckState.refresh),
            id="refresh",
        ),
        rx.cond(
            AuthState.is_admin,
            rx.button(
                rx.icon("brush_cleaning", size=16),
                "Clean Stuck Runs",
                color_scheme="red",
                on_click=StuckState.open_clean_dialog,
                loading=working(StuckState.open_clean_dialog, StuckState.confirm_clean),
                disabled=StuckState.dead_total == 0,
                id="clean-stuck-runs",
            ),
        ),
        align="center",
        spacing="3",
        wrap="wrap",
    )
    return page(
        "Stuck runs",
        threshold_control(),
        rx.cond(StuckState.last_result != "", last_result()),
        rx.cond(
            StuckState.loaded,
            rx.vstack(
                runs_table(
                    "Dead",
                    "No progress, no checkpoint, no heartbeat, older than the threshold: "
                    "safe to clean.",
                    StuckState.dead,
                    StuckState.dead_total,
                    dead_row,
                    "dead-table",
                    "No dead runs.",
                ),
                runs_table(
                    "Resumable",
                    "Made progress or left a checkpoint with tenders: resume them; they are never "
                    "cleaned automatically.",
                    StuckState.resumable,
                    StuckState.resumable_total,
                    resumable_row,
                    "resumable-table",
                    "No resumable runs.",
                ),
                rx.cond(
                    StuckState.attention_total > 0,
                    runs_table(
                        "Needs attention",
                        "Cannot be judged safely (unreadable checkpoint or data, unknown start, "
                        "excluded portal): never cleaned automatically.",
                        StuckState.attention,
                        StuckState.attention_total,
                        attention_row,
                        "attention-table",
                        "",
                    ),
                ),
                spacing="4",
                width="100%",
            ),
            rx.center(rx.spinner(size="3"), padding="3em", id="stuck-loading"),
        ),
        clean_dialog(),
        force_dialog(),
        current=routes.STUCK,
        actions=actions,
    )
