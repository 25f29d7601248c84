"""Reading and writing the timestamps found in run tables.

Legacy scrapers wrote ``started_at``/``completed_at`` as text in many shapes (space or ``T``
separator, microseconds, ``+05:30`` or ``Z``, sometimes day-first dates, compact ``20261201093000``
or epoch seconds). Naive values are wall-clock time in a configured zone. Everything here returns
aware UTC datetimes so that age arithmetic is never off by a zone or a DST change; anything that
cannot be read unambiguously raises ``ValueError`` and the caller takes the conservative path.

A bare number (an integer or float column, or digits-only text) is read only where it can mean one
moment: 14 or 12 digits are compact wall-clock time (``YYYYMMDDHHMMSS``, ``YYYYMMDDHHMM``);
8 digits that form a date are a day without a time of day (refused, like ``2026-12-01``); any
other number must be epoch seconds, or 13-digit epoch milliseconds. Every one of them must lie
between 2000 and 2100.
``20261201`` read as epoch seconds would be August 1970 - a run started today judged long dead.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime

# The epoch times a run table can plausibly hold: 2000-01-01 up to 2100-01-01 (UTC).
_EPOCH_FIRST, _EPOCH_END = 946_684_800, 4_102_444_800
# Epoch milliseconds have 13 digits (2001-09-09 on); 12-digit numbers are compact date and time.
_EPOCH_MS_FIRST = 1_000_000_000_000
_MAX_TEXT = 64

_NUMERIC = re.compile(r"^[+-]?\d+(\.\d+)?$")
# 2026-11-27 09:15:02,123 / 2026-11-27 09:15:02.123456789 +05:30 / 2026/11/27T09:15
_YMD = re.compile(
    r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})"
    r"(?:[T ]+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<f>\d+))?)?)?"
    r"\s*(?P<tz>Z|UTC|GMT|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)
# 27-11-2026 09:15:02 / 27/11/2026 (day first, as Indian portals write it)
_DMY = re.compile(
    r"^(?P<d>\d{1,2})[-/.](?P<m>\d{1,2})[-/.](?P<y>\d{4})"
    r"(?:[T ]+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<f>\d+))?)?)?"
    r"\s*(?P<ampm>[AaPp][Mm])?$"
)


# Parsed text, by (text, zone): a scan judges the same rows again and again.
_CACHE_LIMIT = 100_000
_cache: dict[tuple[str, tzinfo], datetime] = {}


def parse_timestamp(value: object, tz: tzinfo) -> datetime | None:
    """Turn a stored timestamp into an aware UTC datetime; ``None`` for NULL or blank.

    Raises ``ValueError`` (never anything else) when the value cannot be read without guessing.
    """
    if type(value) is str and ":" in value:  # has a time of day: maybe a plain ISO shape
        key = (value, tz)
        cached = _cache.get(key)
        if cached is not None:
            return cached
        try:  # the common, unambiguous ISO shapes, in C
            parsed = datetime.fromisoformat(value)
            result = (parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)).astimezone(UTC)
        except (ValueError, OverflowError):
            pass  # the careful path below reads it or says why not
        else:
            if len(_cache) >= _CACHE_LIMIT:
                _cache.clear()
            _cache[key] = result
            return result
    try:
        careful = _parse(value, tz)
        return None if careful is None else careful.astimezone(UTC)
    except (TypeError, OverflowError, ArithmeticError, OSError) as exc:
        raise ValueError(f"unreadable timestamp {_show(value)}: {exc}") from None


def _parse(value: object, tz: tzinfo) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        raise ValueError(_DAY_ONLY.format(_show(value)))
    if isinstance(value, bool):
        raise ValueError(f"unreadable timestamp {_show(value)}")
    if isinstance(value, int | float):
        return _from_number(value, value, tz)
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"unreadable timestamp {_show(value)}") from None
    if not isinstance(value, str):
        raise ValueError(f"unreadable timestamp {_show(value)}")
    text = value.strip()
    if not text:
        return None
    if len(text) > _MAX_TEXT:
        raise ValueError(f"unreadable timestamp {_show(value)}: too long")
    if text.isascii() and text.isdigit():
        return _from_number(int(text), value, tz, digits=text)
    if _NUMERIC.match(text):
        return _from_number(float(text), value, tz)
    for parse in (_parse_ymd, _parse_dmy, _parse_rfc2822):
        result = parse(text, tz)
        if result is not None:
            return result
    raise ValueError(f"unreadable timestamp {_show(value)}")


_COMPACT_NAMES = {14: "YYYYMMDDHHMMSS", 12: "YYYYMMDDHHMM", 8: "YYYYMMDD"}
_NOT_A_MOMENT = (
    "a bare number is read only as epoch seconds, 13-digit epoch milliseconds, YYYYMMDDHHMMSS "
    "or YYYYMMDDHHMM between 2000 and 2100"
)


def _from_number(number: float, raw: object, tz: tzinfo, digits: str | None = None) -> datetime:
    """A bare number, from a numeric column or digits-only text (``digits``, as written)."""
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"unreadable timestamp {_show(raw)}: {_NOT_A_MOMENT}")
    if (isinstance(number, int) or number.is_integer()) and number > 0:
        digits = digits or str(int(number))
        if len(digits) in _COMPACT_NAMES:
            return _from_compact(digits, raw, tz)
    if _EPOCH_FIRST <= number < _EPOCH_END:
        return datetime.fromtimestamp(number, UTC)
    if _EPOCH_MS_FIRST <= number < _EPOCH_END * 1000:
        return datetime.fromtimestamp(number / 1000, UTC)
    raise ValueError(f"unreadable timestamp {_show(raw)}: {_NOT_A_MOMENT}")


def _from_compact(digits: str, raw: object, tz: tzinfo) -> datetime:
    """``YYYYMMDD[HHMM[SS]]``: wall-clock time in ``tz``; a date alone is refused."""
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:8])
    hour, minute, second = (int(digits[i : i + 2] or 0) for i in (8, 10, 12))
    try:
        result = datetime(year, month, day, hour, minute, second)
    except ValueError:
        name = _COMPACT_NAMES[len(digits)]
        raise ValueError(
            f"unreadable timestamp {_show(raw)}: not a valid {name}, and {_NOT_A_MOMENT}"
        ) from None
    if len(digits) == 8:
        raise ValueError(_DAY_ONLY.format(_show(raw)))
    if not 2000 <= year < 2100:  # 10000101000000 is more likely an id than the year 1000
        raise ValueError(f"unreadable timestamp {_show(raw)}: {_NOT_A_MOMENT}")
    return result.replace(tzinfo=tz)


def _parse_ymd(text: str, tz: tzinfo) -> datetime | None:
    m = _YMD.match(text)
    if not m:
        return None
    return _build(m, tz, zone_text=m.group("tz"))


def _parse_dmy(text: str, tz: tzinfo) -> datetime | None:
    m = _DMY.match(text)
    if not m:
        return None
    day, month = int(m.group("d")), int(m.group("m"))
    if day <= 12 and month <= 12 and day != month:
        raise ValueError(f"ambiguous date {text!r}: day and month could be swapped")
    result = _build(m, tz, zone_text=None)
    ampm = (m.group("ampm") or "").lower()
    if ampm:
        hour = result.hour
        if not 1 <= hour <= 12:
            raise ValueError(f"unreadable timestamp {text!r}: hour {hour} with {ampm.upper()}")
        hour = hour % 12 + (12 if ampm == "pm" else 0)
        result = result.replace(hour=hour)
    return result


def _parse_rfc2822(text: str, tz: tzinfo) -> datetime | None:
    if not re.search(r"[A-Za-z]{3}", text):
        return None
    try:
        result = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return result if result.tzinfo else result.replace(tzinfo=tz)


# A day without a time could be any moment of it: reading it as midnight would make a run up to
# a day older than it is, so a young run could be judged dead.
_DAY_ONLY = "a date without a time of day, {}: the moment could be any time that day"


def _build(m: re.Match[str], tz: tzinfo, zone_text: str | None) -> datetime:
    if m.group("H") is None:
        raise ValueError(_DAY_ONLY.format(repr(m.group(0))))
    fraction = (m.group("f") or "0")[:6].ljust(6, "0")
    result = datetime(
        int(m.group("y")),
        int(m.group("m")),
        int(m.group("d")),
        int(m.group("H") or 0),
        int(m.group("M") or 0),
        int(m.group("S") or 0),
        int(fraction),
    )
    return result.replace(tzinfo=_zone(zone_text) if zone_text else tz)


def _zone(text: str) -> tzinfo:
    if text.upper() in ("Z", "UTC", "GMT"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ValueError(f"invalid UTC offset {text!r}")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def to_local_naive(moment: datetime, tz: tzinfo) -> datetime:
    """Wall-clock time in ``tz`` without zone, as legacy code wrote ``started_at``."""
    return moment.astimezone(tz).replace(tzinfo=None)


def format_legacy(moment: datetime, tz: tzinfo) -> str:
    """The text form written into legacy columns: ``2026-11-27 09:15:02.123456`` in zone ``tz``."""
    return to_local_naive(moment, tz).isoformat(sep=" ", timespec="microseconds")


def format_utc(moment: datetime) -> str:
    """The text form of the tool's own columns: fixed width, UTC, sortable as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def utc_now() -> datetime:
    return datetime.now(UTC)


def duration(delta: timedelta) -> str:
    """``45 s``, ``12 min``, ``3.5 h``, ``4.2 d`` (negative: ``in the future``)."""
    seconds = delta.total_seconds()
    if seconds < 0:
        return "in the future"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
