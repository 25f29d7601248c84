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


def stat(label: str, value: rx.Var[int], colour: str, element_id: str, href: str) -> rx.Component:
    return rx.link(
        rx.card(
            rx.vstack(
                rx.text(label, size="2", color_scheme="gray"),
                rx.heading(value, size="7", color=rx.color(colour, 11), id=element_id),
                spacing="1",
            ),
            min_width="9em",
        ),
        href=href,
        underline="none",
    )


def overview_page() -> rx.Component:
    return page(
        "Overview",
        rx.flex(
            stat("Running", OverviewState.running, "blue", "count-running", routes.RUNS),
            stat("Alive", OverviewState.alive, "grass", "count-alive", routes.RUNS),
            stat("Resumable", OverviewState.resumable, "amber", "count-resumable", routes.STUCK),
            stat("Dead", OverviewState.dead, "red", "count-dead", routes.STUCK),
            stat(
                "Needs attention",
                OverviewState.attention,
                "purple",
                "count-attention",
                routes.STUCK,
            ),
            stat(
                "Cleaned (7 days)",
                OverviewState.cleaned_last_7_days,
                "gray",
                "count-cleaned",
                routes.HISTORY,
            ),
            wrap="wrap",
            spacing="3",
        ),
        rx.grid(
            rx.card(
                rx.heading("Runs by status per portal", size="3"),
                rx.recharts.bar_chart(
                    *(
                        rx.recharts.bar(data_key=group, stack_id="status", fill=colour, name=group)
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
                    rx.recharts.legend(),
                    rx.recharts.graphing_tooltip(),
                    data=OverviewState.by_portal,
                    height=320,
                ),
                id="chart-by-portal",
            ),
            rx.card(
                rx.heading("Clean-ups per day (last 14 days)", size="3"),
                rx.recharts.bar_chart(
                    rx.recharts.bar(data_key="cleanups", fill="#8b8d98", name="clean-ups"),
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
        actions=auto_refresh(
            OverviewState.auto_refresh, OverviewState.load, OverviewState.set_auto_refresh
        ),
    )
