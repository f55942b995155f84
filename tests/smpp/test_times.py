"""SMPP absolute/relative time strings: golden vectors, strict validation, round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from o2sms.errors import O2smsError
from o2sms.smpp.times import (
    RelativeTime,
    SmppTimeError,
    absolute_time,
    parse_absolute_time,
    parse_optional_time,
    parse_relative_time,
    parse_time,
    relative_time,
)

PLUS_2 = timezone(timedelta(hours=2))
MINUS_5_30 = timezone(-timedelta(hours=5, minutes=30))

# --- golden vectors (reference section 6), written by hand -------------------------------------

ABSOLUTE_GOLDEN = [
    # 24 03 15 | 14 30 45 | t=3 | nn=08 (8 x 15 min = 2 h) | '+' ahead of UTC
    (datetime(2024, 3, 15, 14, 30, 45, 300_000, tzinfo=PLUS_2), "240315143045308+"),
    # 24 03 15 | 14 30 45 | t=0 | nn=22 (22 x 15 min = 5 h 30) | '-' behind UTC
    (datetime(2024, 3, 15, 14, 30, 45, tzinfo=MINUS_5_30), "240315143045022-"),
    # 24 12 31 | 23 59 59 | t=0 | nn=00 | UTC
    (datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC), "241231235959000+"),
]

RELATIVE_GOLDEN = [
    # YY MM DD | hh mm ss | t | 00 | R
    (timedelta(hours=2), "000000020000000R"),  # in 2 hours
    (timedelta(days=1, hours=12, minutes=30), "000001123000000R"),  # in 1 day 12 h 30 min
    (timedelta(minutes=90, seconds=5), "000000013005000R"),  # in 90 min 5 s
]


@pytest.mark.parametrize(("dt", "expected"), ABSOLUTE_GOLDEN)
def test_absolute_time_golden(dt: datetime, expected: str) -> None:
    assert absolute_time(dt) == expected


@pytest.mark.parametrize(("dt", "text"), ABSOLUTE_GOLDEN)
def test_parse_absolute_golden_keeps_offset(dt: datetime, text: str) -> None:
    parsed = parse_time(text)
    assert isinstance(parsed, datetime)
    assert parsed == dt
    assert parsed.utcoffset() == dt.utcoffset()
    assert parsed.replace(tzinfo=None) == dt.replace(tzinfo=None)  # local wall-clock fields


def test_absolute_offset_sign_means_local_minus_offset_is_utc() -> None:
    parsed = parse_absolute_time("240315143045022-")
    assert parsed.astimezone(UTC) == datetime(2024, 3, 15, 20, 0, 45, tzinfo=UTC)


@pytest.mark.parametrize(("td", "expected"), RELATIVE_GOLDEN)
def test_relative_time_golden(td: timedelta, expected: str) -> None:
    assert relative_time(td) == expected
    assert parse_time(expected) == td


def test_relative_time_writes_tnn_as_000_truncating_to_whole_seconds() -> None:
    # SMPP 3.4: a relative time's "tnn" is always "000"; strict SMSCs reject other digits.
    assert relative_time(timedelta(seconds=1, microseconds=199_999)) == "000000000001000R"
    assert relative_time(timedelta(seconds=2, milliseconds=999)) == "000000000002000R"
    assert relative_time(timedelta(milliseconds=900)) == "000000000000000R"


def test_relative_time_tenths_are_opt_in_as_in_the_gateway_example() -> None:
    # The O2 (Infobip) example 070605040302100R carries a tenths digit: tenths=True writes it.
    assert relative_time(timedelta(seconds=2, milliseconds=100), tenths=True) == (
        "000000000002100R"
    )
    assert relative_time(timedelta(seconds=1, microseconds=199_999), tenths=True) == (
        "000000000001100R"
    )
    assert parse_time("000000000002100R") == timedelta(seconds=2, milliseconds=100)


def test_gateway_example_is_7y_6mo_5d_4h_3m_2_1s() -> None:
    rt = parse_relative_time("070605040302100R")
    assert rt == RelativeTime(years=7, months=6, days=5, hours=4, minutes=3, seconds=2, tenths=1)
    assert rt.to_smpp() == "070605040302100R"
    approx = timedelta(days=7 * 365 + 6 * 30 + 5, hours=4, minutes=3, seconds=2.1)
    assert parse_time("070605040302100R") == approx
    assert rt.approximate_timedelta() == approx


# --- RelativeTime.after: exact calendar arithmetic ---------------------------------------------


@pytest.mark.parametrize(
    ("now", "text", "expected"),
    [
        (datetime(2024, 1, 31, 10), "000100000000000R", datetime(2024, 2, 29, 10)),  # leap Feb
        (datetime(2023, 1, 31, 10), "000100000000000R", datetime(2023, 2, 28, 10)),
        (datetime(2024, 2, 29), "010000000000000R", datetime(2025, 2, 28)),
        (datetime(2024, 11, 30), "000300000000000R", datetime(2025, 2, 28)),  # crosses year
        (datetime(2024, 5, 31, 23, 59), "000100000100000R", datetime(2024, 7, 1, 0, 0)),
        (
            datetime(2020, 1, 1, tzinfo=UTC),
            "070605040302100R",
            datetime(2027, 7, 6, 4, 3, 2, 100_000, tzinfo=UTC),
        ),
    ],
)
def test_relative_after_is_exact(now: datetime, text: str, expected: datetime) -> None:
    assert parse_relative_time(text).after(now) == expected


_BRATISLAVA = ZoneInfo("Europe/Bratislava")


@pytest.mark.parametrize(
    ("now", "text", "expected_utc"),
    [
        # 01:30 CET = 00:30 UTC; the clocks jump from 02:00 to 03:00 that night
        (datetime(2024, 3, 31, 1, 30), "000000020000000R", datetime(2024, 3, 31, 2, 30)),
        # 01:30 CEST = 23:30 UTC the day before; the clocks fall back from 03:00 to 02:00
        (datetime(2024, 10, 27, 1, 30), "000000020000000R", datetime(2024, 10, 27, 1, 30)),
        # a month is a calendar step: 12:00 local stays 12:00 local across the change
        (datetime(2024, 3, 15, 12), "000100000000000R", datetime(2024, 4, 15, 10)),
    ],
)
def test_relative_after_counts_hours_as_elapsed_time(
    now: datetime, text: str, expected_utc: datetime
) -> None:
    end = parse_relative_time(text).after(now.replace(tzinfo=_BRATISLAVA))
    assert end.tzinfo is _BRATISLAVA
    assert end.astimezone(UTC) == expected_utc.replace(tzinfo=UTC)


def test_relative_after_past_year_9999_raises() -> None:
    with pytest.raises(SmppTimeError):
        parse_relative_time("990000000000000R").after(datetime(9950, 1, 1))


# --- empty and invalid strings -----------------------------------------------------------------


def test_empty_string_raises_but_optional_is_none() -> None:
    with pytest.raises(SmppTimeError, match="parse_optional_time"):
        parse_time("")
    assert parse_optional_time("") is None
    assert parse_optional_time("000000020000000R") == timedelta(hours=2)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("24031514304530+", "exactly 16"),  # 15 chars
        ("2403151430453080+", "exactly 16"),  # 17 chars
        ("2403151430453 8+", "15 digits"),
        ("24031514304530x+", "15 digits"),
        ("２40315143045308+", "15 digits"),  # fullwidth digit: not ASCII
        ("240315143045308Z", "'R'"),
        ("241315143045308+", "month 13"),
        ("240015143045308+", "month 00"),
        ("240230143045308+", "day 30"),
        ("230229143045308+", "day 29"),  # 2023 is not a leap year
        ("240300143045308+", "day 00"),
        ("240315243045308+", "24:30:45"),
        ("240315146045308+", "14:60:45"),
        ("240315143060308+", "14:30:60"),
        ("240315143045349+", "nn=49"),
    ],
)
def test_invalid_strings_raise(text: str, why: str) -> None:
    with pytest.raises(SmppTimeError, match=why):
        parse_time(text)


def test_kind_specific_parsers_reject_the_other_kind() -> None:
    with pytest.raises(SmppTimeError, match="relative"):
        parse_absolute_time("000000020000000R")
    with pytest.raises(SmppTimeError, match="relative time ending in 'R'"):
        parse_relative_time("240315143045308+")


def test_error_is_in_the_o2sms_tree_and_a_value_error() -> None:
    assert issubclass(SmppTimeError, O2smsError)
    assert issubclass(SmppTimeError, ValueError)


def test_lenient_relative_fields() -> None:
    # Relative fields are counts, so 90 minutes is fine; nn is ignored like lenient decoders do.
    assert parse_time("000000009000000R") == timedelta(minutes=90)
    assert parse_time("000000000000012R") == timedelta(0)


# --- values that cannot be written --------------------------------------------------------------


def test_relative_rejects_negative_and_over_99_days() -> None:
    with pytest.raises(SmppTimeError, match="absolute"):
        relative_time(timedelta(microseconds=-1))
    with pytest.raises(SmppTimeError, match="absolute"):
        relative_time(timedelta(days=100))
    assert relative_time(timedelta(days=100) - timedelta(microseconds=1)) == "000099235959000R"
    almost = timedelta(days=100) - timedelta(microseconds=1)
    assert relative_time(almost, tenths=True) == "000099235959900R"


def test_absolute_rejects_naive() -> None:
    with pytest.raises(SmppTimeError, match="naive"):
        absolute_time(datetime(2024, 3, 15, 14, 30))


@pytest.mark.parametrize(
    "offset",
    [timedelta(minutes=20), -timedelta(hours=5, minutes=50), timedelta(seconds=1)],
)
def test_absolute_rejects_offsets_not_on_quarter_hours(offset: timedelta) -> None:
    with pytest.raises(SmppTimeError, match="15 minutes"):
        absolute_time(datetime(2024, 3, 15, tzinfo=timezone(offset)))


def test_absolute_rejects_offset_over_12_hours() -> None:
    with pytest.raises(SmppTimeError, match="12 hours"):
        absolute_time(datetime(2024, 3, 15, tzinfo=timezone(timedelta(hours=13))))
    assert absolute_time(datetime(2024, 3, 15, tzinfo=timezone(-timedelta(hours=12)))).endswith(
        "048-"
    )


@pytest.mark.parametrize("year", [1999, 2100])
def test_absolute_rejects_years_outside_2000_2099(year: int) -> None:
    with pytest.raises(SmppTimeError, match=r"2000\.\.2099"):
        absolute_time(datetime(year, 6, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    "fields",
    [{"years": 100}, {"days": -1}, {"tenths": 10}, {"seconds": 100}],
)
def test_relative_time_fields_are_range_checked(fields: dict[str, int]) -> None:
    with pytest.raises(SmppTimeError):
        RelativeTime(**fields)


# --- property tests -----------------------------------------------------------------------------

offsets = st.integers(min_value=-48, max_value=48).map(
    lambda q: timezone(timedelta(minutes=15 * q))
)
smpp_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59, 999_999)
)


@given(smpp_datetimes, offsets)
def test_absolute_round_trip(local: datetime, tz: timezone) -> None:
    dt = local.replace(tzinfo=tz)
    text = absolute_time(dt)
    assert len(text) == 16
    parsed = parse_time(text)
    assert isinstance(parsed, datetime)
    expected = dt.replace(microsecond=dt.microsecond // 100_000 * 100_000)
    assert parsed == expected
    assert parsed.utcoffset() == dt.utcoffset()
    assert parsed.replace(tzinfo=None) == expected.replace(tzinfo=None)
    assert absolute_time(parsed) == text


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=100, microseconds=-1)))
def test_relative_round_trip(td: timedelta) -> None:
    text = relative_time(td)
    assert len(text) == 16
    assert text.startswith("0000")
    assert text.endswith("000R")
    expected = td - timedelta(microseconds=td.microseconds)
    assert parse_time(text) == expected
    assert relative_time(expected) == text


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=100, microseconds=-1)))
def test_relative_round_trip_with_tenths(td: timedelta) -> None:
    text = relative_time(td, tenths=True)
    assert text.startswith("0000")
    assert text.endswith("00R")
    expected = td - timedelta(microseconds=td.microseconds % 100_000)
    assert parse_time(text) == expected
    assert relative_time(expected, tenths=True) == text


two_digits = st.integers(min_value=0, max_value=99)


relative_times = st.builds(
    RelativeTime,
    years=two_digits,
    months=two_digits,
    days=two_digits,
    hours=two_digits,
    minutes=two_digits,
    seconds=two_digits,
    tenths=st.integers(0, 9),
)


@given(relative_times)
def test_relative_fields_round_trip(rt: RelativeTime) -> None:
    assert parse_relative_time(rt.to_smpp()) == rt


def test_nepal_offset_is_a_quarter_hour_multiple() -> None:
    nepal = timezone(timedelta(hours=5, minutes=45))
    assert absolute_time(datetime(2024, 3, 15, tzinfo=nepal)) == "240315000000023+"


@given(st.text(max_size=20) | st.text(alphabet="0123456789+-R ", min_size=16, max_size=16))
def test_parse_time_only_raises_smpp_time_error(text: str) -> None:
    try:
        parsed = parse_optional_time(text)
    except SmppTimeError:
        return
    if text == "":
        assert parsed is None
    else:
        assert isinstance(parsed, datetime | timedelta)
        assert len(text) == 16
