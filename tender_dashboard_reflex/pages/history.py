"""History: the audit trail with filters and Revert on clean-ups."""

from __future__ import annotations

import reflex as rx
from reflex.vars import ObjectVar

from cleanup_core.reports import EventRow
from tender_dashboard_reflex import routes
from tender_dashboard_reflex.components.layout import (
    WRAP_ANYWHERE,
    actions_cell,
    clipped,
    data_table,
    dialog,
    dialog_footer,
    headers,
    labelled,
    page,
    page_buttons,
)
from tender_dashboard_reflex.state.auth import AuthState
from tender_dashboard_reflex.state.history import ACTION_CHOICES, HistoryState

COLUMNS = ("Event", "When", "Run", "Portal", "Action", "By", "Status change", "Details")


def history_row(event: ObjectVar[EventRow]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(event.id),
        rx.table.cell(event.created_at, white_space="nowrap"),
        rx.table.cell(
            rx.cond(
                event.run_deleted,  # a later run may have its id: no link to that one
                rx.text(
                    event.run_id,
                    " (deleted)",
                    title="This run's record was deleted; its tenders were kept",
                    white_space="nowrap",
                ),
                rx.link(event.run_id, href=routes.RUN + "?id=" + event.run_id.to_string()),
            )
        ),
        rx.table.cell(clipped(event.portal_name)),
        rx.table.cell(rx.badge(event.action_label, high_contrast=True, white_space="nowrap")),
        rx.table.cell(clipped(event.actor, "12em", size="1")),
        rx.table.cell(rx.text(event.from_status, " → ", event.to_status, size="1")),
        rx.table.cell(
            rx.text(event.summary, size="1", **WRAP_ANYWHERE), min_width="16em", max_width="28em"
        ),
        actions_cell(
            rx.cond(
                AuthState.is_admin & event.revertible,
                rx.button(
                    rx.icon("undo_2", size=14),
                    "Revert",
                    size="1",
                    variant="soft",
                    on_click=HistoryState.ask_revert(event.run_id),
                    id="revert-" + event.id.to_string(),
                ),
            )
        ),
        id="event-row-" + event.id.to_string(),
    )


def revert_dialog() -> rx.Component:
    return dialog(
        rx.dialog.title("Revert the clean-up of run ", HistoryState.revert_run_id.to_string(), "?"),
        rx.dialog.description(
            "The run gets back the status and completed time it had before the clean-up "
            "(usually 'running'), and the revert is recorded in the history."
        ),
        dialog_footer(
            "revert-cancel",
            rx.button("Confirm", on_click=HistoryState.confirm_revert, id="revert-confirm"),
        ),
        open=HistoryState.revert_dialog_open,
        on_close=HistoryState.close_revert_dialog,
    )


def history_page() -> rx.Component:
    return page(
        "History",
        rx.flex(
            labelled(
                "Portal",
                rx.select(
                    HistoryState.portals,
                    value=HistoryState.portal_filter,
                    on_change=HistoryState.set_portal_filter,
                    id="history-portal",
                ),
                "history-portal",
            ),
            labelled(
                "Action",
                rx.select.root(
                    rx.select.trigger(id="history-action"),
                    rx.select.content(
                        *(rx.select.item(label, value=value) for value, label in ACTION_CHOICES)
                    ),
                    value=HistoryState.action_filter,
                    on_change=HistoryState.set_action_filter,
                ),
                "history-action",
            ),
            labelled(
                "Run",
                rx.input(
                    placeholder="any id",
                    value=HistoryState.run_filter,
                    on_change=HistoryState.set_run_filter.debounce(400),
                    width="8em",
                    id="history-run",
                ),
                "history-run",
            ),
            wrap="wrap",
            spacing="2",
        ),
        data_table(
            headers(*COLUMNS, actions=True),
            HistoryState.events,
            history_row,
            table_id="history-table",
            empty="No events match.",
            empty_id="history-empty",
        ),
        rx.flex(
            rx.text(
                HistoryState.total,
                rx.cond(HistoryState.total == 1, " event · page ", " events · page "),
                HistoryState.page,
                " of ",
                HistoryState.page_count,
                size="2",
                id="history-total",
            ),
            page_buttons(
                HistoryState.page, HistoryState.page_count, HistoryState.go_to_page, "history"
            ),
            justify="between",
            width="100%",
        ),
        revert_dialog(),
        current=routes.HISTORY,
    )
