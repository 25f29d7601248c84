"""Reading whole numbers from text that people and legacy code typed."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]{1,18}")
# The largest id an integer column holds (64-bit); no run can have a larger one.
LARGEST_ID = 2**63 - 1


def whole_number(text: object) -> int | None:
    """``"42"`` -> 42; anything else (signs, spaces inside, ``"¹"``, 19+ digits) -> ``None``.

    ASCII digits only: ``str.isdigit`` also accepts superscripts and other scripts' digits,
    which ``int()`` then refuses.
    """
    if not isinstance(text, str):
        return None
    stripped = text.strip()
    return int(stripped) if _DIGITS.fullmatch(stripped) else None


def run_id_from_text(text: str) -> int:
    """A run id a person typed: ASCII digits from 1 to ``LARGEST_ID``; ``ValueError`` saying
    so (with the text, shortened) for anything else."""
    stripped = text.strip()
    digits = stripped.isascii() and stripped.isdigit() and len(stripped) <= 19
    number = int(stripped) if digits else 0
    if not 1 <= number <= LARGEST_ID:
        shown = repr(text) if len(text) <= 40 else f"{text[:30]!r}... ({len(text)} characters)"
        raise ValueError(f"a run id is a whole number from 1 to {LARGEST_ID}, got {shown}")
    return number
