"""Making stored text safe to show to a person: in a terminal, a log file or a web page.

Portal names, worker ids, actors and reasons come from the database, where any scraper (or an
attacker with write access) may have put anything. Shown raw, an ESC sequence clears the
operator's terminal or retitles it, a CR or newline forges a log line, and a Unicode bidi
override (U+202E) makes ``Assam\\u202egpj.exe`` read backwards. ``safe_text`` shows each such
character as a visible escape (``\\x1b``, ``\\n``, ``\\u202e``) instead; everything else,
including every script people write portal names in, passes through unchanged. It is for
display only: ``--json``, the database and the audit trail keep the exact text.
"""

from __future__ import annotations

import logging

_SHORT = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
_UNSAFE = (
    *range(0x00, 0x20),  # C0 controls: ESC, BEL, CR, LF, NUL ...
    0x7F,  # DEL
    *range(0x80, 0xA0),  # C1 controls (0x9B is a one-byte CSI on some terminals)
    0x061C,  # Arabic letter mark
    0x200E,  # left-to-right mark
    0x200F,  # right-to-left mark
    *range(0x202A, 0x202F),  # bidi embeddings and overrides, and their pop
    *range(0x2066, 0x206A),  # bidi isolates, and their pop
    0x2028,  # line separator
    0x2029,  # paragraph separator
    *range(0xD800, 0xE000),  # lone surrogates: no terminal or page can encode them
)


def _escape(code: int) -> str:
    if code in _SHORT:
        return _SHORT[code]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


_TABLE = {code: _escape(code) for code in _UNSAFE}


def safe_text(text: str) -> str:
    """``text`` with control characters, bidi controls and line separators shown as escapes.

    Every character it escapes is one ``str.isprintable`` refuses, so the common case (a plain
    name) costs one C-level check."""
    if text.isprintable():
        return text
    return text.translate(_TABLE)


def short_text(text: str, limit: int = 40) -> str:
    """``safe_text``, cut to ``limit`` characters with an ellipsis: for a label that cannot
    clip itself (a chart axis, a badge), where a 5,000-character name would cover the page."""
    shown = safe_text(text)
    return shown if len(shown) <= limit else shown[:limit] + "…"


# A value that was never recorded (a NULL counter), shown the same on every page and in the CLI;
# the dashboard gives it the accessible name "unknown". JSON keeps null.
UNKNOWN = "–"
# A counter that holds something other than a whole number: the rules treat it as unknown too,
# but it is not NULL (the run's reasons quote it).
UNREADABLE = "?"
# A time that never happened (no heartbeat yet), the same on every page.
NEVER = "never"


def counter_text(recorded: bool, value: int | None) -> str:
    """A stored counter as shown: its number, ``UNKNOWN`` when never recorded (NULL),
    ``UNREADABLE`` when it is not a whole number."""
    if not recorded:
        return UNKNOWN
    return UNREADABLE if value is None else str(value)


class SafeLogFormatter(logging.Formatter):
    """A formatter whose every record is one line: the message (which may quote a portal name)
    goes through ``safe_text``, so it can neither forge a log line nor reach a terminal raw.
    A traceback keeps its own line breaks, with each line made safe."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return safe_text(super().formatMessage(record))

    def formatException(self, ei: logging._SysExcInfoType) -> str:
        return safe_lines(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return safe_lines(super().formatStack(stack_info))


def safe_lines(text: str) -> str:
    """Multi-line text of the tool's own (a traceback) made safe line by line."""
    return "\n".join(safe_text(line) for line in text.split("\n"))
