"""Overview: what is running, what is stuck, and what was cleaned."""

from __future__ import annotations

import reflex as rx

from tender_dashboard_reflex import routes
from tender_dashboard_reflex.components.layout import auto_refresh, page
from tender_dashboard_reflex.state.overview import OverviewState

STATUS_COLOURS = {
    "running": "#3e63dd",
    "completed": "#30a46c",
    "failed": "#e54d2e",
    "cleaned": "#8b8d98",
    "other": "#f76b15",
}
# What each running run is judged (every running run is exactly one of these), in card order.
STATES = (
    ("Alive", "alive", OverviewState.alive, "grass", routes.RUNS),
    ("Young", "young", OverviewState.young, "blue", routes.RUNS),
    ("Resumable", "resumable", OverviewState.resumable, "amber", routes.STUCK),
    ("Dead", "dead", OverviewState.dead, "red", routes.STUCK),
    ("Needs attention", "attention", OverviewState.attention, "purple", routes.STUCK),
)


def stat(label: str, value: rx.Var[int], colour: str, element_id: str, href: str) -> rx.Component:
    return rx.link(
        rx.card(
            rx.vstack(
                rx.text(label, size="2", color_scheme="gray"),
                rx.text(value, size="7", weight="bold", color=rx.color(colour, 11), id=element_id),
                spacing="1",
            ),
            height="100%",
        ),
        href=href,
        underline="none",
        display="block",
    )


def running_sum() -> rx.Component:
    """The cards' arithmetic in words: every running run is in exactly one state."""
    parts: list[rx.Var | str] = [f"Running {OverviewState.running} = "]
    for index, (_label, word, value, _colour, _href) in enumerate(STATES):
        parts += [" + " if index else "", f"{word} {value}"]
    return rx.text(*parts, size="2", color_scheme="gray", id="running-sum")


def occurs(group: str) -> rx.Var[bool]:
    """Whether any portal in the chart has runs in this status group."""
    return OverviewState.by_portal.filter(lambda p: p[group].to(int) > 0).length() > 0


def status_legend() -> rx.Component:
    """The chart's legend: only the status groups that occur in it, each named in words."""
    return rx.flex(
        *(
            rx.cond(
                occurs(group),
                rx.hstack(
                    rx.box(width="0.8em", height="0.8em", background=colour, border_radius="2px"),
                    rx.text(group, size="1"),
                    align="center",
                    spacing="1",
                    id=f"legend-{group}",
                ),
            )
            for group, colour in STATUS_COLOURS.items()
        ),
        wrap="wrap",
        spacing="3",
        justify="center",
        id="chart-legend",
    )


def overview_page() -> rx.Component:
    return page(
        "Overview",
        rx.vstack(
            rx.grid(
                stat("Running", OverviewState.running, "blue", "count-running", routes.RUNS),
                *(
                    stat(label, value, colour, f"count-{word}", href)
                    for label, word, value, colour, href in STATES
                ),
                stat(
                    "Cleaned (7 days)",
                    OverviewState.cleaned_last_7_days,
                    "gray",
                    "count-cleaned",
                    routes.HISTORY,
                ),
                grid_template_columns="repeat(auto-fit, minmax(9.5em, 1fr))",
                spacing="3",
                width="100%",
            ),
            running_sum(),
            spacing="2",
            width="100%",
        ),
        rx.grid(
            rx.card(
                rx.heading("Runs by status per portal", size="3", as_="h2"),
                rx.recharts.bar_chart(
                    *(
                        rx.recharts.bar(
                            data_key=group,
                            stack_id="status",
                            fill=colour,
                            name=group,
                            is_animation_active=False,
                        )
                        for group, colour in STATUS_COLOURS.items()
                    ),
                    # Every portal named (angled so long names fit), not every other one.
                    rx.recharts.x_axis(
                        data_key="portal",
                        interval=0,
                        angle=-30,
                        text_anchor="end",
                        height=80,
                        tick={"fontSize": 11},
                    ),
                    rx.recharts.y_axis(allow_decimals=False),
                    rx.recharts.graphing_tooltip(),
                    data=OverviewState.by_portal,
                    height=320,
                ),
                status_legend(),
                id="chart-by-portal",
            ),
            rx.card(
                rx.heading("Clean-ups per day (last 14 days)", size="3", as_="h2"),
                rx.recharts.bar_chart(
                    rx.recharts.bar(
                        data_key="cleanups",
                        fill="#8b8d98",
                        name="clean-ups",
                        is_animation_active=False,
                    ),
                    rx.recharts.x_axis(data_key="day", tick={"fontSize": 11}),
                    rx.recharts.y_axis(allow_decimals=False),
                    rx.recharts.graphing_tooltip(),
                    data=OverviewState.cleanups_by_day,
                    height=320,
                ),
                id="chart-cleanups",
            ),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="3",
            width="100%",
        ),
        rx.callout(
            OverviewState.monitor,
            icon=rx.cond(OverviewState.monitor_late, "triangle_alert", "info"),
            color_scheme=rx.cond(OverviewState.monitor_late, "red", "gray"),
            size="1",
            id="monitor-status",
        ),
        rx.text(
            "Judged at ", OverviewState.checked_at, size="1", color_scheme="gray", id="checked-at"
        ),
        current=routes.OVERVIEW,
        actions=auto_refresh(
            OverviewState.auto_refresh, OverviewState.load, OverviewState.set_auto_refresh
        ),
    )
