"""Portals: newest run, pre-scrape verdict and the matching action, per portal."""

from __future__ import annotations

import reflex as rx
from reflex.vars import ObjectVar

from cleanup_core.reports import PortalRow
from tender_dashboard_reflex import routes
from tender_dashboard_reflex.components.launches import portal_launch
from tender_dashboard_reflex.components.layout import (
    WRAP_ANYWHERE,
    actions_cell,
    auto_refresh,
    clipped,
    data_table,
    headers,
    launch_button,
    page,
    status_badge,
    working,
)
from tender_dashboard_reflex.state.auth import AuthState
from tender_dashboard_reflex.state.portals import PortalsState

VERDICT_COLOURS = {"start": "grass", "resume": "amber", "cleanup": "red", "wait": "blue"}
COLUMNS = (
    "Portal",
    "Last run",
    "Status",
    "Started",
    "Running",
    "Typical run",
    "Threshold",
    "Verdict",
    "Reason",
)


def action_button(row: ObjectVar[PortalRow]) -> rx.Component:
    """The verdict's action for an admin; disabled, with why, when the command it needs is not
    set for the portal."""
    row_id = row.last_run_id.to_string()
    return rx.cond(
        AuthState.is_admin,
        rx.match(
            row.action,
            (
                "resume",
                launch_button(
                    rx.icon("play", size=14),
                    "Resume",
                    size="1",
                    on_click=PortalsState.resume(row.run_id),
                    loading=working(PortalsState.resume),
                    configured=row.resume_command_set,
                    setting="resume_command",
                    element_id="no-command-" + row_id,
                    id="portal-resume-" + row_id,
                ),
            ),
            (
                "cleanup",
                launch_button(
                    "Clean up & start",
                    size="1",
                    color_scheme="red",
                    on_click=PortalsState.clean_up_and_start(row.portal, row.run_ids),
                    loading=working(PortalsState.clean_up_and_start),
                    configured=row.start_command_set,
                    setting="start_command",
                    element_id="no-command-" + row_id,
                    id="portal-cleanup-" + row_id,
                ),
            ),
            (
                "start",
                launch_button(
                    "Start",
                    size="1",
                    variant="soft",
                    on_click=PortalsState.start(row.portal),
                    loading=working(PortalsState.start),
                    configured=row.start_command_set,
                    setting="start_command",
                    element_id="no-command-" + row_id,
                    id="portal-start-" + row_id,
                ),
            ),
            rx.fragment(),
        ),
    )


def verdict_badge(row: ObjectVar[PortalRow]) -> rx.Component:
    """The pre-scrape verdict; a wait for a run that needs a person (an unreadable checkpoint,
    an unknown start ...) is its own purple "needs attention" badge with an icon, not the blue
    "wait" of a healthy live portal. The words say it; the colour only repeats them."""
    return rx.cond(
        row.attention,
        rx.badge(
            rx.icon("triangle_alert", size=12, aria_hidden="true"),
            "needs attention",
            color_scheme="purple",
            high_contrast=True,
            id="portal-verdict-" + row.last_run_id.to_string(),
        ),
        rx.match(
            row.action,
            *(
                (
                    name,
                    rx.badge(
                        name,
                        color_scheme=colour,
                        high_contrast=True,
                        id="portal-verdict-" + row.last_run_id.to_string(),
                    ),
                )
                for name, colour in VERDICT_COLOURS.items()
            ),
            rx.badge(row.action, high_contrast=True),
        ),
    )


def portal_row(row: ObjectVar[PortalRow]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(clipped(row.portal_shown, weight="medium")),
        rx.table.cell(
            rx.link(row.last_run_id, href=routes.RUN + "?id=" + row.last_run_id.to_string())
        ),
        rx.table.cell(status_badge(row.last_status)),
        rx.table.cell(row.last_started_at, white_space="nowrap"),
        rx.table.cell(row.running),
        rx.table.cell(
            rx.text(row.typical_duration, size="1"),
            min_width="9em",
            id="portal-typical-" + row.last_run_id.to_string(),
        ),
        rx.table.cell(
            rx.text(row.threshold, white_space="nowrap"),
            rx.text(row.threshold_source, size="1", color_scheme="gray"),
            id="portal-threshold-" + row.last_run_id.to_string(),
        ),
        rx.table.cell(verdict_badge(row)),
        rx.table.cell(
            rx.text(
                row.reason,
                size="1",
                weight=rx.cond(row.attention, "medium", "regular"),
                id="portal-reason-" + row.last_run_id.to_string(),
                **WRAP_ANYWHERE,
            ),
            rx.cond(
                row.shared_checkpoint != "",
                rx.callout(
                    row.shared_checkpoint,
                    icon="triangle_alert",
                    color_scheme="purple",
                    size="1",
                    margin_top="0.25em",
                    id="portal-shared-" + row.last_run_id.to_string(),
                ),
            ),
            portal_launch(row),
            min_width="18em",
            max_width="32em",
        ),
        actions_cell(action_button(row)),
        id="portal-row-" + row.last_run_id.to_string(),
    )


def portals_page() -> rx.Component:
    return page(
        "Portals",
        rx.text(
            "The verdict is the pre-scrape check a scraper would get now: start, resume its "
            "resumable run, clean up its dead runs first, or wait (a run is alive or may still "
            "be starting); 'needs attention' waits for a person (see the reason).",
            size="2",
            color_scheme="gray",
        ),
        data_table(
            headers(*COLUMNS, actions=True),
            PortalsState.rows,
            portal_row,
            table_id="portals-table",
            empty="No portals yet: no runs were recorded.",
            empty_id="portals-empty",
        ),
        current=routes.PORTALS,
        actions=auto_refresh(
            PortalsState.auto_refresh, PortalsState.refresh, PortalsState.set_auto_refresh
        ),
    )
