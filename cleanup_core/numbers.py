"""Reading whole numbers from text that people and legacy code typed."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]{1,18}")


def whole_number(text: object) -> int | None:
    """``"42"`` -> 42; anything else (signs, spaces inside, ``"¹"``, 19+ digits) -> ``None``.

    ASCII digits only: ``str.isdigit`` also accepts superscripts and other scripts' digits,
    which ``int()`` then refuses.
    """
    if not isinstance(text, str):
        return None
    stripped = text.strip()
    return int(stripped) if _DIGITS.fullmatch(stripped) else None
