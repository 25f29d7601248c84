"""Stored text shown to a person: control and bidi characters escaped, everything else kept."""

import logging
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleanup_core.display import SafeLogFormatter, safe_text


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("Assam Tenders", "Assam Tenders"),
        ("\x1b[2J", "\\x1b[2J"),
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        ("Assam\u202egpj.exe", "Assam\\u202egpj.exe"),
        ("tab\tnew\nline\rcr", "tab\\tnew\\nline\\rcr"),
        ("nul\x00del\x7f", "nul\\x00del\\x7f"),
        ("c1 \x9b31m", "c1 \\x9b31m"),
        ("\u2066isolate\u2069 \u200e\u200f\u061c", "\\u2066isolate\\u2069 \\u200e\\u200f\\u061c"),
        ("line\u2028paragraph\u2029", "line\\u2028paragraph\\u2029"),
        ("lone \udcff surrogate", "lone \\udcff surrogate"),
        # every script and sign people write portal names in stays as it is
        ("मध्य प्रदेश", "मध्य प्रदेश"),
        ("تنفيذ المناقصات", "تنفيذ المناقصات"),
        ("שלום עולם", "שלום עולם"),
        ("e\u0301 😀 C:\\Windows [red]", "e\u0301 😀 C:\\Windows [red]"),
    ],
)
def test_unsafe_characters_are_shown_escaped(stored, shown):
    assert safe_text(stored) == shown


DANGEROUS = {"Cc", "Zl", "Zp", "Cs"}
BIDI_CONTROLS = {"LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI", "PDI", "LRM", "RLM", "ALM"}


@given(st.text(alphabet=st.characters(codec=None), max_size=60))
def test_no_control_or_bidi_character_survives(text):
    shown = safe_text(text)
    for char in shown:
        assert unicodedata.category(char) not in DANGEROUS, repr(char)
        assert unicodedata.bidirectional(char) not in BIDI_CONTROLS, repr(char)
    shown.encode("utf-8")  # a terminal or page can always encode it


@given(st.text(alphabet=st.characters(exclude_categories=("Cc", "Cf", "Zl", "Zp", "Cs"))))
def test_printable_text_is_unchanged(text):
    assert safe_text(text) == text


def test_a_log_record_stays_one_safe_line_and_its_traceback_keeps_its_lines():
    formatter = SafeLogFormatter("%(levelname)s %(message)s")
    name = "Evil\n2026-12-01 ERROR forged line\x1b[2J\u202e"
    try:
        raise ValueError(f"bad portal {name}")
    except ValueError:
        record = logging.LogRecord(
            "cleanup_core", logging.ERROR, __file__, 1, "portal %s failed", (name,), sys.exc_info()
        )
    text = formatter.format(record)
    first, *traceback = text.split("\n")
    assert first == "ERROR portal Evil\\n2026-12-01 ERROR forged line\\x1b[2J\\u202e failed"
    assert traceback[0] == "Traceback (most recent call last):"
    assert traceback[-1].endswith("forged line\\x1b[2J\\u202e")
    assert all(line.isprintable() for line in traceback)
