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
        "1",
        "1.5",
        1,
        0,
        -1795749302,
        1.5,
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


# -- bare numbers: read only when they cannot mean anything else ---------------------------------

# 2026-12-01 09:30:00 in Asia/Kolkata is 04:00 UTC.
DEC_1_0930_UTC = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # compact wall-clock time in the configured zone, as scrapers' own tables write it
        (20261201093000, DEC_1_0930_UTC),
        ("20261201093000", DEC_1_0930_UTC),
        (" 20261201093000 ", DEC_1_0930_UTC),
        (20261201093000.0, DEC_1_0930_UTC),
        (202612010930, DEC_1_0930_UTC),
        ("202612010930", DEC_1_0930_UTC),
        # epoch seconds and milliseconds between 2000 and 2100
        (946684800, datetime(2000, 1, 1, tzinfo=UTC)),
        (4102444799, datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("1795749302.25", datetime(2026, 11, 27, 3, 15, 2, 250000, tzinfo=UTC)),
        ("1795749302000", datetime(2026, 11, 27, 3, 15, 2, tzinfo=UTC)),
    ],
)
def test_bare_numbers_that_mean_one_moment_are_read(raw, expected):
    assert parse_timestamp(raw, IST) == expected


@pytest.mark.parametrize(
    "raw",
    [20261201, "20261201", 20261201.0, " 20261201 "],
)
def test_a_compact_date_is_a_day_without_a_time(raw):
    with pytest.raises(ValueError, match="a date without a time of day") as refused:
        parse_timestamp(raw, IST)
    assert "20261201" in str(refused.value)


@pytest.mark.parametrize(
    "raw",
    [
        "1",
        "1.5",
        1,
        1.5,
        0,
        -1,
        "-1795749302",
        "+20261201",  # a sign: not a compact date, and 1970 as epoch seconds
        946684799,  # one second before 2000
        4102444800,  # 2100 in epoch seconds
        "4102444800000",  # 2100 in epoch milliseconds
        999999999999,  # 12 digits that are no date and time (epoch ms only from 13 digits)
        20261301093000,  # month 13
        20261201250000,  # hour 25
        19991231235959,  # a valid compact time, but before 2000
        10000101000000,  # the year 1000: more likely an id than a time
        "010101010101",
        21000101000000,
        20260230,  # 30 February: not a date, and 1970 as epoch seconds
        202612010,  # 9 digits: 1976
        12345678901234567,
        "0020261201",  # leading zeros: 10 digits, 1970
        "20261201.5",
        1e300,
    ],
)
def test_other_bare_numbers_are_refused_with_the_raw_value(raw):
    with pytest.raises(ValueError, match=r"unreadable timestamp|a date without") as refused:
        parse_timestamp(raw, IST)
    assert repr(raw) in str(refused.value) or str(raw).strip() in str(refused.value)


COMPACT_TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31))


@given(COMPACT_TIMES, st.sampled_from(["%Y%m%d%H%M%S", "%Y%m%d%H%M"]), st.booleans())
def test_compact_date_and_time_is_wall_clock_time_in_the_zone(moment, shape, as_int):
    text = moment.strftime(shape)
    expected = datetime.strptime(text, shape).replace(tzinfo=IST).astimezone(UTC)
    assert parse_timestamp(int(text) if as_int else text, IST) == expected


@given(st.dates(min_value=date(1000, 1, 1)), st.booleans())
def test_any_compact_date_is_refused_as_a_day_without_a_time(day, as_int):
    text = day.strftime("%Y%m%d")
    with pytest.raises(ValueError, match="a date without a time of day"):
        parse_timestamp(int(text) if as_int else text, IST)


EPOCH_2000, EPOCH_2100 = 946_684_800, 4_102_444_800


@given(
    st.one_of(
        st.integers(max_value=EPOCH_2000 - 1),
        st.integers(min_value=EPOCH_2100, max_value=10**12 - 1),
        st.integers(min_value=EPOCH_2100 * 1000),
        st.floats(max_value=EPOCH_2000 - 0.001),
        st.floats(min_value=EPOCH_2100, max_value=1e12 - 1).filter(lambda f: not f.is_integer()),
    ).filter(lambda number: len(str(number)) not in (12, 14)),
    st.booleans(),
)
def test_a_number_outside_2000_to_2100_is_refused_unless_compact_date_and_time(number, as_text):
    """Outside the plausible epoch range only the compact forms (12 or 14 digits, tested
    above) are read; anything else, an 8-digit date included, is refused with its value."""
    raw = str(number) if as_text else number
    with pytest.raises(ValueError, match=r"unreadable timestamp|a date without") as refused:
        parse_timestamp(raw, IST)
    assert str(number) in str(refused.value)
