"""Tenders as a scraper hands them over: checked, and made safe to keep as JSON.

A tender is a dict with at least a ``tender_id``; the fields the ``tenders`` table stores
(``records.TENDER_FIELDS``) are brought to the types the table holds, every other key is kept
for the checkpoint. Pure: no database, no files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from cleanup_core.records import TENDER_FIELDS

_TEXT_FIELDS = tuple(name for name in TENDER_FIELDS if name != "value_inr")


def checked_tender(tender: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-safe copy of one tender, with the stored fields in the types the table holds;
    ``ValueError`` (saying which tender and field) for one that cannot be stored."""
    if not isinstance(tender, Mapping):
        raise ValueError(f"a tender must be a dict with a 'tender_id', got {type(tender).__name__}")
    checked = {str(key): json_safe(value) for key, value in tender.items()}
    tender_id = tender_id_of(checked)
    if tender_id is None:
        raise ValueError(f"a tender needs a non-empty 'tender_id', got {tender.get('tender_id')!r}")
    checked["tender_id"] = tender_id
    for name in _TEXT_FIELDS:
        if checked.get(name) is not None and not isinstance(checked[name], str):
            checked[name] = str(checked[name])
    value = checked.get("value_inr")
    if value is not None:
        checked["value_inr"] = _amount(tender_id, value)
    return checked


def _amount(tender_id: str, value: Any) -> float:
    problem = ValueError(
        f"tender {tender_id!r}: value_inr must be a finite number, got {_shown(value)}"
    )
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise problem
    try:
        amount = float(value)
    except (ValueError, OverflowError):  # "twelve lakh"; an int beyond a float's range
        raise problem from None
    if not math.isfinite(amount):  # "1e400", nan: no column or report can use them
        raise problem
    return amount


def _shown(value: Any) -> str:
    """A value for an error message, shortened."""
    try:
        text = repr(value)
    except ValueError:  # an integer with more digits than Python will print
        return "a number too long to show"
    return text if len(text) <= 40 else f"{text[:30]}... ({len(text)} characters)"


def tender_id_of(tender: object) -> str | None:
    """The tender's id as text, or ``None`` when it has none (or is not a dict)."""
    if not isinstance(tender, Mapping):
        return None
    value = tender.get("tender_id")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def json_safe(value: Any) -> Any:
    """``value`` with dates, decimals and tuples turned into what JSON holds."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def stored_row(tender: Mapping[str, Any], *, run_id: int, portal_name: str) -> dict[str, Any]:
    """The ``tenders`` row of a checked tender stored by ``run_id``."""
    row = {name: tender.get(name) for name in TENDER_FIELDS}
    return {**row, "run_id": run_id, "portal_name": portal_name}
