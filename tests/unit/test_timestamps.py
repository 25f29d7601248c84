from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleanup_core.timestamps import format_legacy, format_utc, parse_timestamp

IST = ZoneInfo("Asia/Kolkata")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # naive text is wall-clock time in the configured zone (IST = UTC+5:30)
        ("2026-11-27 09:15:02", datetime(2026, 11, 27, 3, 45, 2, tzinfo=UTC)),
        ("2026-11-27T09:15:02", datetime(2026, 11, 27, 3, 45, 2, tzinfo=UTC)),
        ("2026-11-27T09:15:02.123456", datetime(2026, 11, 27, 3, 45, 2, 123456, tzinfo=UTC)),
        ("2026-11-27 09:15:02.5", datetime(2026, 11, 27, 3, 45, 2, 500000, tzinfo=UTC)),
        ("2026-11-27 09:15:02,250", datetime(2026, 11, 27, 3, 45, 2, 250000, tzinfo=UTC)),
        ("2026-11-27T09:15:02.123456789", datetime(2026, 11, 27, 3, 45, 2, 123456, tzinfo=UTC)),
        ("2026-11-27 09:15", datetime(2026, 11, 27, 3, 45, tzinfo=UTC)),
        ("2026/11/27 09:15:02", datetime(2026, 11, 27, 3, 45, 2, tzinfo=UTC)),
        # explicit zones win over the configured one
        ("2026-11-27 09:15:02+05:30", datetime(2026, 11, 27, 3, 45, 2, tzinfo=UTC)),
        ("2026-11-27T09:15:02Z", datetime(2026, 11, 27, 9, 15, 2, tzinfo=UTC)),
        ("2026-11-27T09:15:02z", datetime(2026, 11, 27, 9, 15, 2, tzinfo=UTC)),
        ("2026-11-27 09:15:02 +0000", datetime(2026, 11, 27, 9, 15, 2, tzinfo=UTC)),
        ("2026-11-27T09:15:02-03:00", datetime(2026, 11, 27, 12, 15, 2, tzinfo=UTC)),
        ("2026-11-27 09:15:02 UTC", datetime(2026, 11, 27, 9, 15, 2, tzinfo=UTC)),
        ("  2026-11-27 09:15:02  ", datetime(2026, 11, 27, 3, 45, 2, tzinfo=UTC)),
        # day-first, as Indian portals print dates, when unambiguous
        ("27-11-2026 09:15:02", datetime(2026, 11, 27, 3, 45, 2, tzinfo=UTC)),
        ("27/11/2026 09:15 PM", datetime(2026, 11, 27, 15, 45, tzinfo=UTC)),
        # RFC 2822 and epoch values
        ("Fri, 27 Nov 2026 09:15:02 +0000", datetime(2026, 11, 27, 9, 15, 2, tzinfo=UTC)),
        ("1795749302", datetime(2026, 11, 27, 3, 15, 2, tzinfo=UTC)),
        (1795749302, datetime(2026, 11, 27, 3, 15, 2, tzinfo=UTC)),
        (1795749302000, datetime(2026, 11, 27, 3, 15, 2, tzinfo=UTC)),
        (1795749302.5, datetime(2026, 11, 27, 3, 15, 2, 500000, tzinfo=UTC)),
        # values a driver already turned into datetimes
        (datetime(2026, 11, 27, 9, 15, 2), datetime(2026, 11, 27, 3, 45, 2, tzinfo=UTC)),
        (
            datetime(2026, 11, 27, 9, 15, 2, tzinfo=timezone(timedelta(hours=1))),
            datetime(2026, 11, 27, 8, 15, 2, tzinfo=UTC),
        ),
        (b"2026-11-27 09:15:02", datetime(2026, 11, 27, 3, 45, 2, tzinfo=UTC)),
    ],
)
def test_reads_the_formats_seen_in_legacy_tables(raw, expected):
    parsed = parse_timestamp(raw, IST)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_null_and_blank_mean_not_recorded(raw):
    assert parse_timestamp(raw, IST) is None


@pytest.mark.parametrize(
    "raw",
    [
        "yesterday",
        "2026-13-01 00:00:00",
        "2026-02-30",
        "2026-11-27 25:00:00",
        "2026-11-27 09:15:02+25:00",
        "11/12/2026",  # 11 Dec or 12 Nov? refuse to guess
        "27/11/2026 13:00 PM",
        "0",
        "-5",
        "nan",
        float("nan"),
        float("inf"),
        True,
        [2026, 11, 27],
        b"\xff\xfe",
        "2026-11-27" + "9" * 200,
        "9" * 400,
        "0001-01-01 00:00:00+14:00",
        # a day without a time could be any moment of it: never read as midnight
        "2026-11-27",
        "05/05/2026",
        "2026/11/27",
        date(2026, 11, 27),
    ],
)
def test_unreadable_values_raise_value_error_only(raw):
    with pytest.raises(
        ValueError, match=r"timestamp|ambiguous|offset|epoch|hour|day|month|year|date"
    ):
        parse_timestamp(raw, IST)


@given(st.one_of(st.text(max_size=80), st.binary(max_size=40), st.integers(), st.floats()))
def test_any_value_parses_or_raises_value_error(raw):
    try:
        result = parse_timestamp(raw, IST)
    except ValueError:
        return
    assert result is None or result.tzinfo is UTC


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
)
def test_tool_formats_read_back_to_the_same_moment(moment):
    assert parse_timestamp(format_utc(moment), IST) == moment
    # Naive local text is ambiguous only in a DST fold; Asia/Kolkata has none.
    assert parse_timestamp(format_legacy(moment, IST), IST) == moment


def test_legacy_format_is_naive_wall_clock_text():
    moment = datetime(2026, 11, 27, 3, 45, 2, tzinfo=UTC)
    assert format_legacy(moment, IST) == "2026-11-27 09:15:02.000000"
    assert format_utc(moment) == "2026-11-27T03:45:02.000000+00:00"
