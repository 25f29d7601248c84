"""The frame around every signed-in page: navigation, who is signed in, and the content."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reflex as rx
from reflex.event import EventCallback
from reflex.vars import ArrayVar, NumberVar

from tender_dashboard_reflex import routes
from tender_dashboard_reflex.state.auth import AuthState

NAV = (
    ("Overview", routes.OVERVIEW, "layout_dashboard"),
    ("Runs", routes.RUNS, "list"),
    ("Stuck runs", routes.STUCK, "triangle_alert"),
    ("Portals", routes.PORTALS, "globe"),
    ("History", routes.HISTORY, "history"),
)


def nav_link(label: str, route: str, icon: str) -> rx.Component:
    return rx.link(
        rx.hstack(rx.icon(icon, size=16), rx.text(label, size="2"), spacing="2", align="center"),
        href=route,
        id=f"nav-{route.strip('/') or 'overview'}",
        underline="none",
        padding_x="0.6em",
        padding_y="0.3em",
        border_radius="6px",
        _hover={"background": rx.color("accent", 3)},
    )


def navbar() -> rx.Component:
    return rx.flex(
        rx.hstack(
            rx.icon("brush_cleaning", size=20, color=rx.color("accent", 10)),
            rx.heading("Stuck-run clean-up", size="4", white_space="nowrap"),
            align="center",
            spacing="2",
        ),
        rx.flex(*(nav_link(*item) for item in NAV), wrap="wrap", spacing="1"),
        rx.hstack(
            rx.badge(
                AuthState.role,
                color_scheme=rx.cond(AuthState.is_admin, "grass", "gray"),
                id="current-role",
            ),
            rx.text(AuthState.username, size="2", id="current-user"),
            rx.button(
                rx.icon("log_out", size=14),
                "Log out",
                size="1",
                variant="soft",
                on_click=AuthState.log_out,
                id="logout",
            ),
            align="center",
            spacing="2",
        ),
        justify="between",
        align="center",
        wrap="wrap",
        spacing="3",
        padding="0.75em 1.25em",
        border_bottom=f"1px solid {rx.color('gray', 5)}",
        background=rx.color("gray", 1),
        position="sticky",
        top="0",
        z_index="10",
    )


def page(title: str, *content: rx.Component, actions: rx.Component | None = None) -> rx.Component:
    """A signed-in page. Nothing but a placeholder renders until the session is confirmed."""
    return rx.box(
        navbar(),
        rx.cond(
            AuthState.signed_in,
            rx.vstack(
                rx.flex(
                    rx.heading(title, size="6", id="page-title"),
                    actions if actions is not None else rx.fragment(),
                    justify="between",
                    align="center",
                    wrap="wrap",
                    spacing="3",
                    width="100%",
                ),
                *content,
                spacing="4",
                padding="1.25em",
                width="100%",
                max_width="1400px",
                margin_x="auto",
            ),
            rx.center(rx.spinner(size="3"), padding="4em"),
        ),
        min_height="100vh",
    )


STATE_COLORS = {
    "alive": "grass",
    "young": "blue",
    "resumable": "amber",
    "dead": "red",
    "attention": "purple",
}

STATUS_COLORS = {
    "running": "blue",
    "completed": "grass",
    "failed": "tomato",
    "Timeout - Auto-cleaned": "gray",
}


def state_badge(state: rx.Var[str]) -> rx.Component:
    return rx.cond(
        state != "",
        rx.match(
            state,
            *((name, rx.badge(name, color_scheme=color)) for name, color in STATE_COLORS.items()),
            rx.badge(state),
        ),
        rx.fragment(),
    )


def status_badge(status: rx.Var[str]) -> rx.Component:
    return rx.match(
        status,
        *(
            (name, rx.badge(name, color_scheme=color, variant="soft"))
            for name, color in STATUS_COLORS.items()
        ),
        rx.badge(status, color_scheme="orange", variant="outline"),
    )


def data_table(
    headers: list[rx.Component],
    rows: ArrayVar[Any],
    render: Callable[[Any], rx.Component],
    *,
    table_id: str,
    empty: str,
    empty_id: str | None = None,
) -> rx.Component:
    """A server-filled table that scrolls sideways on a narrow screen, with a line saying so
    when it has no rows."""
    return rx.box(
        rx.table.root(
            rx.table.header(rx.table.row(*headers)),
            rx.table.body(
                rx.cond(
                    rows.length() > 0,
                    rx.foreach(rows, render),
                    empty_row(len(headers), empty, empty_id or f"{table_id}-empty"),
                )
            ),
            size="1",
            variant="surface",
            id=table_id,
        ),
        overflow_x="auto",
        width="100%",
    )


def headers(*labels: str) -> list[rx.Component]:
    return [rx.table.column_header_cell(label) for label in labels]


def empty_row(columns: int, message: str, element_id: str) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.text(message, color_scheme="gray", size="2"), col_span=columns, id=element_id
        )
    )


def auto_refresh(
    enabled: rx.Var[bool], on_tick: EventCallback[()], toggle: EventCallback[bool]
) -> rx.Component:
    """A switch; while on, ``on_tick`` runs every 15 s so finished runs leave without a reload."""
    return rx.hstack(
        rx.switch(checked=enabled, on_change=toggle, id="auto-refresh"),
        rx.text("Auto-refresh", size="2"),
        rx.cond(enabled, rx.moment(interval=15000, on_change=on_tick, display="none")),
        align="center",
        spacing="2",
    )


def labelled(label: str, control: rx.Component) -> rx.Component:
    """A filter control with its caption in front, so "all" says what it is all of."""
    return rx.hstack(
        rx.text(label, size="2", color_scheme="gray"), control, spacing="2", align="center"
    )


def page_buttons(
    page: NumberVar[Any], page_count: NumberVar[Any], go_to_page: EventCallback[Any], prefix: str
) -> rx.Component:
    """Previous / Next for a server-paged list."""
    return rx.hstack(
        rx.button(
            "Previous",
            size="1",
            variant="soft",
            on_click=go_to_page(page - 1),
            disabled=page <= 1,
            id=f"{prefix}-prev",
        ),
        rx.button(
            "Next",
            size="1",
            variant="soft",
            on_click=go_to_page(page + 1),
            disabled=page >= page_count,
            id=f"{prefix}-next",
        ),
        spacing="2",
    )


def dialog_footer(on_cancel: Any, cancel_id: str, confirm: rx.Component) -> rx.Component:
    """Cancel (closes the dialog, changes nothing) and the dialog's Confirm button."""
    return rx.flex(
        rx.alert_dialog.cancel(
            rx.button(
                "Cancel", variant="soft", color_scheme="gray", on_click=on_cancel, id=cancel_id
            ),
        ),
        confirm,
        spacing="3",
        justify="end",
        margin_top="0.75em",
    )


def clipped(text: rx.Var[str], max_width: str = "16em", **props: Any) -> rx.Component:
    """Stored text in a table cell (a portal name, a worker, an actor): one line, cut with an
    ellipsis at ``max_width``, the whole text on hover. A 5,000-character name then cannot push
    the other columns off the screen. (The text itself is escaped by the read models.)"""
    return rx.text(
        text,
        title=text,
        max_width=max_width,
        overflow="hidden",
        text_overflow="ellipsis",
        white_space="nowrap",
        **props,
    )


# Free text (reasons, details) wraps anywhere, so one long word cannot widen its column.
WRAP_ANYWHERE = {"overflow_wrap": "anywhere"}
