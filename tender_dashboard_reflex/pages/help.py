"""Help on the settings, from the README itself: a button that needs a command that is not set
links here, so the explanation is the README's and works without internet access (or a copy of
the repository on GitHub)."""

from __future__ import annotations

import re
from pathlib import Path

import reflex as rx

from tender_dashboard_reflex import routes

README = Path(__file__).resolve().parents[2] / "README.md"
# (anchor, the paragraph or section of the README that starts with this line)
SECTIONS = (
    ("launching", "**Launching scrapers.**"),
    ("settings", "## Settings"),
)
NAMES = {"launching": "Launching scrapers", "settings": "Settings"}


def readme_part(text: str, first_line: str) -> str:
    """The README from ``first_line`` to the next paragraph in bold or next section heading."""
    start = text.find("\n" + first_line)
    if start < 0:
        return f"(The README has no part starting with {first_line!r}.)"
    rest = text[start + 1 :]
    end = re.search(r"\n(?:## |\*\*[A-Z][^*]*\.\*\* )", rest[len(first_line) :])
    return rest if end is None else rest[: len(first_line) + end.start()]


def _parts() -> list[tuple[str, str]]:
    try:
        text = README.read_text(encoding="utf-8")
    except OSError:
        return [("settings", "The README is not next to the dashboard; see its Settings section.")]
    return [(anchor, readme_part(text, line)) for anchor, line in SECTIONS]


def _plain_code(value: object, **_props: object) -> rx.Component:
    """A code block as plain text: the highlighter's pale token colours fail contrast checks."""
    return rx.el.pre(
        value,
        padding="0.75em",
        border_radius="6px",
        background=rx.color("gray", 3),
        color=rx.color("gray", 12),
        overflow_x="auto",
        font_size="0.85em",
        tab_index=0,  # a keyboard can scroll it
    )


def _underlined_link(value: object) -> rx.Component:
    """A link inside the text: underlined, so it is told apart by more than its colour."""
    return rx.link(value, underline="always")


def settings_help_page() -> rx.Component:
    """A plain page, readable without signing in: it holds only the README's public text."""
    return rx.el.main(
        rx.vstack(
            rx.link("← Back to the dashboard", href=routes.OVERVIEW, size="2", id="help-back"),
            rx.heading("Settings help", size="6", id="page-title"),
            rx.text(
                "From the README. Set resume_command / start_command (globally, or per portal "
                "in the config file) so Resume, Start and Clean up & start can launch a "
                "scraper, then restart the dashboard.",
                size="2",
                color_scheme="gray",
            ),
            *(
                # Wide tables and code scroll inside their own box on a phone.
                rx.box(
                    rx.markdown(part, component_map={"pre": _plain_code, "a": _underlined_link}),
                    id=anchor,
                    width="100%",
                    overflow_x="auto",
                    tab_index=0,  # a keyboard can scroll a wide table
                    role="region",
                    aria_label=NAMES.get(anchor, anchor),
                )
                for anchor, part in _parts()
            ),
            spacing="4",
            width="100%",
            padding=rx.breakpoints(initial="1em", sm="1.25em"),
            max_width="1100px",
            margin_x="auto",
        )
    )
