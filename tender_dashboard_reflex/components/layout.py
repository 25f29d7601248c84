"""The frame around every signed-in page: navigation, who is signed in, and the content."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, cast

import reflex as rx
from reflex.event import EventCallback, EventHandler
from reflex.vars import ArrayVar, NumberVar

from cleanup_core.display import NEVER, UNKNOWN
from tender_dashboard_reflex import routes
from tender_dashboard_reflex.state.auth import AuthState

NAV = (
    ("Overview", routes.OVERVIEW, "layout_dashboard"),
    ("Runs", routes.RUNS, "list"),
    ("Stuck runs", routes.STUCK, "triangle_alert"),
    ("Portals", routes.PORTALS, "globe"),
    ("History", routes.HISTORY, "history"),
)

# Below Radix's "md" breakpoint (1024 px) the header is one short row: the name and a Menu button
# that opens the navigation and the account; from "md" up it all fits in the header's one row.
WIDE_ONLY = rx.breakpoints(initial="none", md="flex")
NARROW_ONLY = rx.breakpoints(initial="flex", md="none")


def working(*handlers: object) -> rx.Var[bool]:
    """Whether one of ``handlers`` is running in this tab: for a button's spinner (``loading``,
    which also disables it). The server ignores a second call meanwhile anyway (see
    ``state/auth.background``)."""
    names = [cast("EventHandler", handler).fn.__qualname__ for handler in handlers]
    running: rx.Var[bool] = AuthState.busy.contains(names[0])
    for name in names[1:]:
        running = running | AuthState.busy.contains(name)
    return running


def nav_link(label: str, route: str, icon: str, *, current: bool, element_id: str) -> rx.Component:
    """A page in the navigation; the page being shown is marked for the eye (tint, bold, a
    bar under it) and for a screen reader (``aria-current="page"``)."""
    marked: dict[str, Any] = (
        {
            "aria_current": "page",
            "background": rx.color("accent", 4),
            "color": rx.color("accent", 12),
            "box_shadow": f"inset 0 -2px 0 {rx.color('accent', 11)}",
        }
        if current
        else {"_hover": {"background": rx.color("accent", 3)}}
    )
    return rx.link(
        rx.hstack(
            rx.icon(icon, size=16, aria_hidden="true"),
            rx.text(label, size="2", weight="bold" if current else "regular"),
            spacing="2",
            align="center",
        ),
        href=route,
        id=element_id,
        underline="none",
        padding_x="0.6em",
        padding_y="0.3em",
        border_radius="6px",
        **marked,
    )


def nav_links(current: str, id_prefix: str, direction: Literal["row", "column"]) -> rx.Component:
    return rx.el.nav(
        rx.flex(
            *(
                nav_link(
                    label,
                    route,
                    icon,
                    current=route == current,
                    element_id=f"{id_prefix}-{route.strip('/') or 'overview'}",
                )
                for label, route, icon in NAV
            ),
            direction=direction,
            wrap="wrap",
            spacing="1",
        ),
        aria_label="Pages",
    )


def account(id_prefix: str = "") -> rx.Component:
    """Who is signed in, with which role, and Log out."""
    return rx.hstack(
        rx.badge(
            AuthState.role,
            color_scheme=rx.cond(AuthState.is_admin, "grass", "gray"),
            high_contrast=True,
            id=f"{id_prefix}current-role",
        ),
        rx.text(AuthState.username, size="2", id=f"{id_prefix}current-user"),
        rx.button(
            rx.icon("log_out", size=14, aria_hidden="true"),
            "Log out",
            size="1",
            variant="soft",
            on_click=AuthState.log_out,
            id=f"{id_prefix}logout",
        ),
        align="center",
        spacing="2",
    )


def phone_menu(current: str) -> rx.Component:
    """The navigation and the account behind one Menu button, for a narrow screen."""
    return rx.popover.root(
        rx.popover.trigger(
            rx.icon_button(
                rx.icon("menu", size=18), variant="soft", aria_label="Menu", id="nav-menu"
            ),
        ),
        rx.popover.content(
            rx.vstack(
                nav_links(current, "menu-nav", "column"),
                rx.separator(size="4"),
                account("menu-"),
                spacing="3",
            ),
            align="end",
            aria_label="Menu",
            id="nav-menu-content",
        ),
    )


def navbar(current: str) -> rx.Component:
    return rx.el.header(
        rx.flex(
            rx.hstack(
                rx.icon(
                    "brush_cleaning", size=20, color=rx.color("accent", 10), aria_hidden="true"
                ),
                rx.text("Stuck-run clean-up", size="4", weight="bold", white_space="nowrap"),
                align="center",
                spacing="2",
            ),
            rx.box(nav_links(current, "nav", "row"), display=WIDE_ONLY),
            rx.box(account(), display=WIDE_ONLY),
            rx.box(phone_menu(current), display=NARROW_ONLY),
            justify="between",
            align="center",
            wrap="wrap",
            spacing="3",
        ),
        padding=rx.breakpoints(initial="0.5em 1em", sm="0.75em 1.25em"),
        border_bottom=f"1px solid {rx.color('gray', 5)}",
        background=rx.color("gray", 1),
        position="sticky",
        top="0",
        z_index="10",
        id="site-header",
    )


def page(
    title: str | rx.Component,
    *content: rx.Component,
    current: str,
    actions: rx.Component | None = None,
) -> rx.Component:
    """A signed-in page; ``current`` is the route the navigation marks as the page shown.
    Nothing but a placeholder renders until the session is confirmed."""
    heading = rx.heading(title, size="6", id="page-title") if isinstance(title, str) else title
    return rx.box(
        navbar(current),
        rx.el.main(
            rx.cond(
                AuthState.signed_in,
                rx.vstack(
                    rx.flex(
                        heading,
                        actions if actions is not None else rx.fragment(),
                        justify="between",
                        align="center",
                        wrap="wrap",
                        spacing="3",
                        width="100%",
                    ),
                    *content,
                    spacing="4",
                    padding=rx.breakpoints(initial="1em", sm="1.25em"),
                    # Room to scroll the page's last controls above a toast on a phone.
                    padding_bottom=rx.breakpoints(initial="8em", sm="1.25em"),
                    width="100%",
                    max_width="1400px",
                    margin_x="auto",
                ),
                rx.center(rx.spinner(size="3"), padding="4em"),
            ),
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
            *(
                (name, rx.badge(name, color_scheme=color, high_contrast=True))
                for name, color in STATE_COLORS.items()
            ),
            rx.badge(state, high_contrast=True),
        ),
        rx.fragment(),
    )


def overdue_badge(overdue: rx.Var[bool], **props: Any) -> rx.Component:
    """Beside a running run's state: it runs longer than its portal's p99 x overdue_factor."""
    return rx.cond(
        overdue,
        rx.badge(
            "overdue",
            color_scheme="orange",
            variant="outline",
            title="Running longer than overdue_factor x the p99 of its portal's completed runs",
            **props,
        ),
        rx.fragment(),
    )


def status_badge(status: rx.Var[str]) -> rx.Component:
    return rx.match(
        status,
        *(
            (name, rx.badge(name, color_scheme=color, variant="soft", high_contrast=True))
            for name, color in STATUS_COLORS.items()
        ),
        rx.badge(status, color_scheme="orange", variant="outline", high_contrast=True),
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
    """A server-filled table, with a line saying so when it has no rows.

    On a narrow screen it scrolls sideways inside its own box: a "scroll" hint above it and a
    shadow on the action column (which stays in view, see ``actions_cell``) show that more
    columns are hidden; ``assets/dashboard.js`` marks the box when they are."""
    return rx.box(
        rx.text(
            "Scroll sideways for more columns →",
            size="1",
            color_scheme="gray",
            class_name="scroll-hint",
            aria_hidden="true",
            id=f"{table_id}-scroll-hint",
        ),
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
        class_name="table-box",
        width="100%",
    )


def headers(*labels: str, actions: bool = False) -> list[rx.Component]:
    """Column headers; with ``actions``, a last "Actions" column that stays in view."""
    cells = [rx.table.column_header_cell(label) for label in labels]
    if actions:
        cells.append(rx.table.column_header_cell("Actions", class_name="actions-cell"))
    return cells


def actions_cell(*content: rx.Component) -> rx.Component:
    """A row's last cell, holding its buttons: it stays at the right edge of the table box
    while the other columns scroll sideways, so every action is reachable on a phone."""
    return rx.table.cell(*content, class_name="actions-cell")


def action_buttons(*buttons: rx.Component) -> rx.Component:
    """A row's buttons: side by side, one above the other on a phone."""
    return rx.flex(
        *buttons,
        direction=rx.breakpoints(initial="column", sm="row"),
        spacing="2",
        align=rx.breakpoints(initial="stretch", sm="center"),
    )


def empty_row(columns: int, message: str, element_id: str) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.text(message, color_scheme="gray", size="2"), col_span=columns, id=element_id
        )
    )


def auto_refresh(
    enabled: rx.Var[bool], on_tick: EventCallback[()], toggle: EventCallback[bool]
) -> rx.Component:
    """A switch; while on, ``on_tick`` runs every 5 s so the page follows changes made
    elsewhere without a reload. On the pages that show the shared scan (Overview, Stuck runs,
    Portals) it is on by default: a tick reads the scan the backend worker shares between its
    tabs (``backend.shared_scan``), not the database."""
    return rx.el.label(
        rx.hstack(
            rx.switch(checked=enabled, on_change=toggle, id="auto-refresh"),
            rx.text("Auto-refresh", size="2"),
            rx.cond(enabled, rx.moment(interval=5000, on_change=on_tick, display="none")),
            align="center",
            spacing="2",
        ),
        cursor="pointer",
    )


def labelled(label: str, control: rx.Component, control_id: str) -> rx.Component:
    """A filter control with its caption in front, so "all" says what it is all of; the
    caption is the control's ``<label>``, so a screen reader names the control by it."""
    return rx.hstack(
        rx.el.label(rx.text(label, size="2", color_scheme="gray"), html_for=control_id),
        control,
        spacing="2",
        align="center",
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


# Radix gives focus back only to a Dialog.Trigger; these dialogs are opened by the server after a
# row's button was clicked, so ``assets/dashboard.js`` remembers that button and this puts focus
# back on it (instead of on the page's body) once the dialog is gone.
RETURN_FOCUS = rx.call_script("window.returnFocusAfterDialog?.()").prevent_default


def dialog(*content: rx.Component, open: rx.Var[bool], on_close: Any, **props: Any) -> rx.Component:
    """A modal dialog the server opens (``open``) that Escape, a click outside it and its Cancel
    button close through ``on_close`` (which must leave everything as it was). Radix reports
    each of those as ``onOpenChange(false)``; nothing else changes it, as no trigger opens it.
    While open, focus stays inside; when closed, it returns to the button that opened it."""
    return rx.dialog.root(
        rx.dialog.content(*content, on_close_auto_focus=RETURN_FOCUS, **props),
        open=open,
        on_open_change=on_close,
    )


def dialog_footer(cancel_id: str, confirm: rx.Component) -> rx.Component:
    """Cancel (closes the dialog, changes nothing) and the dialog's Confirm button."""
    return rx.flex(
        rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray", id=cancel_id)),
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


def counter(value: rx.Var[str], **props: Any) -> rx.Component:
    """A stored counter (see ``display.counter_text``): a value never recorded is a dash for the
    eye and "unknown" for a screen reader, with the meaning on hover; the same on every page."""
    return rx.text.span(
        rx.cond(
            value == UNKNOWN,
            rx.fragment(
                rx.text.span(UNKNOWN, aria_hidden="true", title="unknown: never recorded"),
                rx.text.span("unknown", class_name="sr-only"),
            ),
            value,
        ),
        **props,
    )


def heartbeat_text(value: rx.Var[str], **props: Any) -> rx.Component:
    """A last heartbeat ("3 min ago", or "never"), grey when there never was one."""
    return rx.text.span(
        value, color=rx.cond(value == NEVER, rx.color("gray", 11), "inherit"), **props
    )


# Where an action that needs a command explains that none is set: the README's Settings section,
# served by the dashboard itself (pages/help.py), so it works without internet access.
SETTINGS_HELP = routes.SETTINGS_HELP


def missing_command(setting: str, element_id: rx.Var[str] | str) -> rx.Component:
    """Why a launch button is disabled: which setting is missing, with a link to its help."""
    noun = setting.replace("_", " ")
    return rx.text(
        f"No {noun} is set for this portal. ",
        rx.link(
            "How to set " + setting,
            href=f"{SETTINGS_HELP}#launching",
            size="1",
        ),
        size="1",
        color_scheme="gray",
        id=element_id,
        max_width="16em",
    )


def launch_button(
    *children: Any,
    configured: rx.Var[bool],
    setting: str,
    element_id: rx.Var[str],
    **props: Any,
) -> rx.Component:
    """A launch button (Resume, Start, Clean up & start; ``children`` and ``props`` as for
    ``rx.button``) when its command is set; otherwise the same button disabled, with why
    underneath (``element_id`` names that note)."""
    button = rx.button(*children, disabled=~configured, **props)
    return rx.cond(
        configured,
        button,
        rx.vstack(button, missing_command(setting, element_id), spacing="1"),
    )
