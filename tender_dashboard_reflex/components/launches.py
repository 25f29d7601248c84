"""The latest launch of a run or portal: its state, who started it when, the exit code, and
the last lines of its log (escaped by ``reports.launch_row``)."""

from __future__ import annotations

import reflex as rx
from reflex.vars import ObjectVar

from cleanup_core.reports import LaunchRow, PortalRow
from tender_dashboard_reflex.components.layout import WRAP_ANYWHERE

LAUNCH_COLOURS = {
    "starting": "blue",
    "running": "grass",
    "succeeded": "grass",
    "failed": "red",
    "expired": "orange",
}


def launch_badge(state: rx.Var[str], element_id: rx.Var[str] | str) -> rx.Component:
    return rx.match(
        state,
        *(
            (name, rx.badge(name, color_scheme=colour, high_contrast=True, id=element_id))
            for name, colour in LAUNCH_COLOURS.items()
        ),
        rx.badge(state, high_contrast=True, id=element_id),
    )


def log_lines(lines: rx.Var[list[str]], element_id: rx.Var[str] | str) -> rx.Component:
    """The log's last lines, as preformatted text (each already escaped)."""
    return rx.el.pre(
        rx.foreach(lines, lambda line: rx.text(line, as_="div")),
        id=element_id,
        font_size="0.8em",
        max_height="14em",
        overflow="auto",
        padding="0.5em",
        background=rx.color("gray", 3),
        border_radius="4px",
        white_space="pre-wrap",
        **WRAP_ANYWHERE,
    )


def launch_card(launch: ObjectVar[LaunchRow]) -> rx.Component:
    """The run page's card about its latest launch (nothing when it never was launched)."""
    return rx.cond(
        launch.state != "",
        rx.card(
            rx.hstack(
                rx.heading("Latest launch", size="3", as_="h2"),
                launch_badge(launch.state, "launch-state"),
                align="center",
            ),
            rx.data_list.root(
                _item("What", launch.what, "launch-what"),
                _item("By", launch.actor, "launch-actor"),
                _item("When", launch.launched_at, "launch-when"),
                _item("Process", launch.pid, "launch-pid"),
                _item("Exit code", launch.exit_code, "launch-exit"),
                _item("Why", launch.note, "launch-note"),
                _item("Log file", launch.log_path, "launch-log-path"),
                size="1",
            ),
            rx.cond(launch.log.length() > 0, log_lines(launch.log, "launch-log")),
            width="100%",
            id="launch-card",
        ),
    )


def _item(label: str, value: rx.Var[str], element_id: str) -> rx.Component:
    return rx.data_list.item(
        rx.data_list.label(label),
        rx.data_list.value(rx.text(value, id=element_id, **WRAP_ANYWHERE)),
    )


def portal_launch(row: ObjectVar[PortalRow]) -> rx.Component:
    """A portal row's latest launch: state and one line, its log behind a disclosure."""
    key = row.last_run_id.to_string()
    return rx.cond(
        row.launch_text != "",
        rx.box(
            rx.hstack(
                launch_badge(row.launch_state, "portal-launch-state-" + key),
                rx.text(row.launch_text, size="1", id="portal-launch-" + key, **WRAP_ANYWHERE),
                align="center",
                spacing="1",
            ),
            rx.el.details(
                rx.el.summary("last lines of its log", font_size="0.8em"),
                rx.text(row.launch_note, size="1"),
                log_lines(row.launch_log, "portal-launch-log-" + key),
            ),
            margin_top="0.25em",
        ),
    )
