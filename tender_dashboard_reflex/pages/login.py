"""The login page: user name, password, "Log in". Accounts come from the command line."""

from __future__ import annotations

import reflex as rx

from tender_dashboard_reflex.components.layout import working
from tender_dashboard_reflex.state.login import LoginState


def login_page() -> rx.Component:
    return rx.el.main(
        rx.center(
            rx.card(
                rx.form(
                    rx.vstack(
                        rx.hstack(
                            rx.icon("brush_cleaning", size=22, aria_hidden="true"),
                            rx.heading("Stuck-run clean-up", size="5"),
                            align="center",
                        ),
                        rx.text(
                            "Sign in to manage stuck scraper runs.", size="2", color_scheme="gray"
                        ),
                        rx.el.label(
                            rx.text("User name", size="2", weight="medium"), html_for="username"
                        ),
                        rx.input(
                            name="username",
                            id="username",
                            auto_complete="username",
                            required=True,
                            width="100%",
                        ),
                        rx.el.label(
                            rx.text("Password", size="2", weight="medium"), html_for="password"
                        ),
                        rx.input(
                            name="password",
                            id="password",
                            type="password",
                            auto_complete="current-password",
                            required=True,
                            width="100%",
                        ),
                        rx.cond(
                            LoginState.error != "",
                            rx.callout(
                                LoginState.error,
                                icon="circle_alert",
                                color_scheme="red",
                                id="login-error",
                                width="100%",
                            ),
                        ),
                        rx.button(
                            "Log in",
                            type="submit",
                            width="100%",
                            loading=working(LoginState.log_in),
                            id="login-submit",
                        ),
                        rx.text(
                            "No account? An operator creates one with ",
                            rx.code("python -m cleanup_core admin create NAME"),
                            ".",
                            size="1",
                            color_scheme="gray",
                        ),
                        spacing="3",
                        width="100%",
                    ),
                    on_submit=LoginState.log_in,
                    reset_on_submit=False,
                ),
                width="100%",
                max_width="24em",
            ),
            min_height="100vh",
            padding="1em",
        ),
    )
