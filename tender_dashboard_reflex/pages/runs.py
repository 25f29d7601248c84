"""Runs: every run, with paging, sorting, filters and search; and one run's detail."""

from __future__ import annotations

from typing import cast

import reflex as rx
from reflex.vars import ObjectVar

from cleanup_core.reports import PAGE_SIZES, EventRow, LaunchRow, RunRow
from tender_dashboard_reflex import routes
from tender_dashboard_reflex.components.launches import launch_card
from tender_dashboard_reflex.components.layout import (
    WRAP_ANYWHERE,
    action_buttons,
    auto_refresh,
    clipped,
    counter,
    data_table,
    dialog,
    dialog_footer,
    headers,
    heartbeat_text,
    labelled,
    overdue_badge,
    page,
    page_buttons,
    state_badge,
    status_badge,
)
from tender_dashboard_reflex.pages.stuck import force_dialog, resume_button
from tender_dashboard_reflex.state.auth import AuthState
from tender_dashboard_reflex.state.runs import (
    STATE_CHOICES,
    STATUS_CHOICES,
    RunDetailState,
    RunsState,
)

# (label, sort column or "" when the column is not sortable)
COLUMNS = (
    ("Id", "id"),
    ("Portal", "portal_name"),
    ("Status", "status"),
    ("State", ""),
    ("Started", "started_at"),
    ("Completed", "completed_at"),
    ("Extracted", "extracted_total_tenders"),
    ("Skipped", "skipped_existing_total"),
    ("Heartbeat", "last_heartbeat_at"),
    ("Worker", ""),
)


def header_cell(label: str, column: str) -> rx.Component:
    """A column header; a sortable one is a button (reached with Tab, pressed with Enter) and
    tells a screen reader how the list is sorted (``aria-sort``)."""
    if not column:
        return rx.table.column_header_cell(label)
    active = RunsState.sort == column
    return rx.table.column_header_cell(
        rx.el.button(
            label,
            rx.text.span(
                rx.cond(active, rx.cond(RunsState.descending, " ↓", " ↑"), " ↕"),
                color=rx.cond(active, "inherit", rx.color("gray", 10)),
                aria_hidden="true",
            ),
            on_click=RunsState.sort_by(column),
            type="button",
            class_name="sort-button",
            id=f"sort-{column}",
        ),
        aria_sort=rx.cond(active, rx.cond(RunsState.descending, "descending", "ascending"), "none"),
    )


def run_link(run_id: rx.Var[int]) -> rx.Component:
    return rx.link(run_id, href=routes.RUN + "?id=" + run_id.to_string())


def run_row(row: ObjectVar[RunRow]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(run_link(row.id)),
        rx.table.cell(clipped(row.portal_name, id="run-portal-" + row.id.to_string())),
        rx.table.cell(status_badge(row.status)),
        rx.table.cell(
            rx.hstack(
                state_badge(row.state),
                overdue_badge(row.overdue, id="run-overdue-" + row.id.to_string()),
                spacing="1",
                wrap="wrap",
            )
        ),
        rx.table.cell(row.started_at, white_space="nowrap"),
        rx.table.cell(row.completed_at, white_space="nowrap"),
        rx.table.cell(counter(row.extracted)),
        rx.table.cell(counter(row.skipped)),
        rx.table.cell(heartbeat_text(row.heartbeat), white_space="nowrap"),
        rx.table.cell(clipped(row.worker_id, "12em", size="1")),
        id="run-row-" + row.id.to_string(),
    )


def filters() -> rx.Component:
    return rx.flex(
        labelled(
            "State",
            rx.select(
                STATE_CHOICES,
                value=RunsState.state_filter,
                on_change=RunsState.set_state_filter,
                id="filter-state",
            ),
            "filter-state",
        ),
        labelled(
            "Status",
            rx.select(
                STATUS_CHOICES,
                value=RunsState.status_filter,
                on_change=RunsState.set_status_filter,
                id="filter-status",
            ),
            "filter-status",
        ),
        labelled(
            "Portal",
            rx.select(
                RunsState.portals,
                value=RunsState.portal_filter,
                on_change=RunsState.set_portal_filter,
                id="filter-portal",
            ),
            "filter-portal",
        ),
        rx.input(
            rx.input.slot(rx.icon("search", size=14, aria_hidden="true")),
            placeholder="Search portal, status, worker or id",
            value=RunsState.search,
            on_change=RunsState.set_search.debounce(400),
            width=rx.breakpoints(initial="100%", sm="20em"),
            aria_label="Search runs",
            id="search",
        ),
        wrap="wrap",
        spacing="2",
        align="center",
    )


def pager() -> rx.Component:
    return rx.flex(
        rx.text(
            RunsState.total,
            rx.cond(RunsState.total == 1, " run · page ", " runs · page "),
            RunsState.page,
            " of ",
            RunsState.page_count,
            size="2",
            id="runs-total",
        ),
        rx.hstack(
            page_buttons(RunsState.page, RunsState.page_count, RunsState.go_to_page, "page"),
            labelled(
                "Per page",
                rx.select(
                    [str(size) for size in PAGE_SIZES],
                    value=RunsState.page_size.to_string(),
                    on_change=RunsState.set_page_size,
                    size="1",
                    id="page-size",
                ),
                "page-size",
            ),
            spacing="2",
            align="center",
        ),
        justify="between",
        align="center",
        wrap="wrap",
        spacing="2",
        width="100%",
    )


def runs_page_view() -> rx.Component:
    return page(
        "Runs",
        filters(),
        data_table(
            [header_cell(*c) for c in COLUMNS],
            RunsState.rows,
            run_row,
            table_id="runs-table",
            empty="No runs match.",
            empty_id="runs-empty",
        ),
        pager(),
        current=routes.RUNS,
        actions=auto_refresh(RunsState.auto_refresh, RunsState.refresh, RunsState.set_auto_refresh),
    )


def field(label: str, value: rx.Var | str, element_id: str) -> rx.Component:
    return rx.data_list.item(
        rx.data_list.label(label),
        rx.data_list.value(rx.text(value, id=element_id, **WRAP_ANYWHERE)),
    )


def counter_field(label: str, value: rx.Var[str], element_id: str) -> rx.Component:
    return rx.data_list.item(
        rx.data_list.label(label),
        rx.data_list.value(counter(value, id=element_id)),
    )


def back_to_runs() -> rx.Var[str]:
    """The list this tab came from, with its filters (state, status, portal, search)."""
    query = RunsState.back_query
    return rx.cond(query != "", routes.RUNS + "?" + query, routes.RUNS).to(str)


def run_actions(run: ObjectVar[RunRow]) -> rx.Component:
    """What an admin can do with this run now, by its judged state: resume (resumable, or
    needing attention only because its automatic resumes ran out), clean up (dead), force
    clean-up (resumable, young, attention; a live run never), revert (its last clean-up, while
    the run is still as that left it). A viewer sees none."""
    state = run.state
    resume = resume_button(
        run.id, RunDetailState.resume_command_set, RunDetailState.resume, RunDetailState.resume
    )
    clean = rx.button(
        rx.icon("eraser", size=14),
        "Clean up",
        size="1",
        color_scheme="red",
        on_click=RunDetailState.cleanup,
        id="detail-cleanup",
    )
    force = rx.button(
        "Force clean-up",
        size="1",
        color_scheme="red",
        variant="soft",
        on_click=RunDetailState.open_force_dialog,
        id="detail-force",
    )
    revert = rx.button(
        rx.icon("undo_2", size=14),
        "Revert the clean-up",
        size="1",
        variant="soft",
        on_click=RunDetailState.ask_revert,
        id="detail-revert",
    )
    buttons = action_buttons(
        rx.cond(RunDetailState.resumable_by_hand, resume),
        rx.cond(state == "dead", clean),
        rx.cond((state == "resumable") | (state == "young") | (state == "attention"), force),
        rx.cond(RunDetailState.revertible, revert),
    )
    offered = RunDetailState.resumable_by_hand | (state == "dead") | (state == "young")
    offered = offered | (state == "attention") | RunDetailState.revertible
    return rx.cond(
        AuthState.is_admin & offered,
        rx.card(
            rx.heading("Actions", size="3", as_="h2"),
            rx.box(buttons, margin_top="0.5em"),
            width="100%",
            id="detail-actions",
        ),
    )


def revert_dialog() -> rx.Component:
    run = cast("ObjectVar[RunRow]", RunDetailState.run)
    return dialog(
        rx.dialog.title("Revert the clean-up of run ", run.id.to_string(), "?"),
        rx.dialog.description(
            "The run gets back the status and completed time it had before the clean-up "
            "(usually 'running'), and the revert is recorded in the history."
        ),
        dialog_footer(
            "revert-cancel",
            rx.button("Confirm", on_click=RunDetailState.confirm_revert, id="revert-confirm"),
        ),
        open=RunDetailState.revert_dialog_open,
        on_close=RunDetailState.close_revert_dialog,
    )


def event_row(event: ObjectVar[EventRow]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(event.created_at, white_space="nowrap"),
        rx.table.cell(rx.badge(event.action_label, high_contrast=True, white_space="nowrap")),
        rx.table.cell(clipped(event.actor)),
        rx.table.cell(event.from_status, " → ", event.to_status),
        rx.table.cell(rx.text(event.summary, size="1", **WRAP_ANYWHERE)),
    )


def run_detail_page() -> rx.Component:
    # The run's ObjectVar. (mypy resolves a dataclass var to Field.__get__'s sequence
    # overload, solving its element type as Never; pyright and the running app do not.)
    run = cast("ObjectVar[RunRow]", RunDetailState.run)
    title = rx.heading(
        "Run",
        rx.cond(RunDetailState.found, f" {run.id} · {run.portal_name}", ""),
        size="6",
        id="page-title",
        **WRAP_ANYWHERE,
    )
    return page(
        title,
        rx.link("← Back to Runs", href=back_to_runs(), size="2", id="back-to-runs"),
        rx.cond(
            RunDetailState.found,
            rx.vstack(
                run_actions(run),
                rx.card(
                    rx.data_list.root(
                        field("Id", run.id.to_string(), "detail-id"),
                        field("Portal", run.portal_name, "detail-portal"),
                        rx.data_list.item(
                            rx.data_list.label("Status"),
                            rx.data_list.value(
                                rx.hstack(
                                    status_badge(run.status),
                                    state_badge(run.state),
                                    overdue_badge(run.overdue, id="detail-overdue"),
                                    id="detail-status",
                                )
                            ),
                        ),
                        field("Started", run.started_at, "detail-started"),
                        field("Completed", run.completed_at, "detail-completed"),
                        counter_field("Extracted", run.extracted, "detail-extracted"),
                        counter_field("Skipped", run.skipped, "detail-skipped"),
                        rx.data_list.item(
                            rx.data_list.label("Last heartbeat"),
                            rx.data_list.value(
                                heartbeat_text(run.heartbeat, id="detail-heartbeat")
                            ),
                        ),
                        field("Last progress", RunDetailState.last_progress, "detail-progress"),
                        field("Worker", run.worker_id, "detail-worker"),
                        field("Attempt", RunDetailState.attempt, "detail-attempt"),
                        field("Checkpoint", RunDetailState.checkpoint, "detail-checkpoint"),
                    ),
                    width="100%",
                ),
                # A running run's page follows it: heartbeat, counters, state, every 3 s.
                rx.cond(
                    run.status == "running",
                    rx.moment(interval=3000, on_change=RunDetailState.follow, display="none"),
                ),
                rx.cond(
                    RunDetailState.stalled != "",
                    rx.callout(
                        RunDetailState.stalled,
                        icon="triangle_alert",
                        color_scheme="amber",
                        id="detail-stalled",
                        width="100%",
                        **WRAP_ANYWHERE,
                    ),
                ),
                rx.cond(
                    RunDetailState.reasons.length() > 0,
                    rx.card(
                        rx.heading("Why it is judged ", run.state, size="3", as_="h2"),
                        rx.unordered_list(
                            rx.foreach(RunDetailState.reasons, rx.list_item),
                            id="detail-reasons",
                            **WRAP_ANYWHERE,
                        ),
                        width="100%",
                    ),
                ),
                launch_card(cast("ObjectVar[LaunchRow]", RunDetailState.launch)),
                rx.card(
                    rx.heading("Audit events", size="3", as_="h2"),
                    data_table(
                        headers("When", "Action", "By", "Status", "Details"),
                        RunDetailState.events,
                        event_row,
                        table_id="detail-events",
                        empty="No events for this run.",
                        empty_id="detail-no-events",
                    ),
                    width="100%",
                ),
                width="100%",
                spacing="3",
            ),
            rx.text("No such run.", id="detail-missing"),
        ),
        force_dialog(RunDetailState),
        revert_dialog(),
        current=routes.RUNS,
    )
