"""SMPP 3.4 time strings (spec 7.1.1) to and from :mod:`datetime` values.

``schedule_delivery_time``, ``validity_period`` and ``final_date`` are either empty or 16
characters: absolute ``YYMMDDhhmmsstnnp`` (local time at an offset of ``nn`` quarter hours,
``p`` is ``+`` ahead of UTC or ``-`` behind) or relative ``YYMMDDhhmmsstnnR`` (an interval from
"now" at the SMSC). SMPP 3.4 fixes a relative time's ``tnn`` as ``000`` and strict SMSCs
reject anything else, so :func:`relative_time` writes whole seconds by default. The O2
(Infobip) gateway supports only relative times for scheduling and its own example,
``070605040302100R``, uses the tenths digit: ``relative_time(td, tenths=True)`` writes that
form, and parsing accepts any tenths digit.

This module never reads a clock: whatever needs "now" takes it as an argument.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from o2sms.errors import O2smsError

__all__ = [
    "RelativeTime",
    "SmppTimeError",
    "absolute_time",
    "parse_absolute_time",
    "parse_optional_time",
    "parse_relative_time",
    "parse_time",
    "relative_time",
]

TIME_LENGTH = 16
"""Length of every non-empty SMPP time string (C(17) without its NUL)."""

MAX_QUARTER_HOURS = 48
"""Largest ``nn`` (offset from UTC in quarter hours) the spec allows: 12 hours."""

MAX_RELATIVE_DAYS = 99
"""``DD`` has two digits, so :func:`relative_time` writes at most 99 days."""

_QUARTER_HOUR = timedelta(minutes=15)
_TENTH_US = 100_000


class SmppTimeError(O2smsError, ValueError):
    """A string is not an SMPP absolute or relative time, or a value cannot be written as one."""


@dataclass(frozen=True, slots=True)
class RelativeTime:
    """The raw fields of a relative time, kept apart because years and months are calendar units.

    Use :meth:`after` for the exact instant (the simulator's scheduling) and
    :meth:`approximate_timedelta` where a plain interval is enough.
    """

    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0
    minutes: int = 0
    seconds: int = 0
    tenths: int = 0

    def __post_init__(self) -> None:
        for name in ("years", "months", "days", "hours", "minutes", "seconds"):
            value = getattr(self, name)
            if not 0 <= value <= 99:
                raise SmppTimeError(f"relative time field {name}={value} is outside 0..99")
        if not 0 <= self.tenths <= 9:
            raise SmppTimeError(f"relative time field tenths={self.tenths} is outside 0..9")

    def to_smpp(self) -> str:
        """The 16-character ``YYMMDDhhmmsst00R`` string of these fields."""
        return (
            f"{self.years:02d}{self.months:02d}{self.days:02d}"
            f"{self.hours:02d}{self.minutes:02d}{self.seconds:02d}{self.tenths:d}00R"
        )

    def fixed_part(self) -> timedelta:
        """Days, hours, minutes, seconds and tenths: the part that is an exact interval."""
        return timedelta(
            days=self.days,
            hours=self.hours,
            minutes=self.minutes,
            seconds=self.seconds,
            microseconds=self.tenths * _TENTH_US,
        )

    def approximate_timedelta(self) -> timedelta:
        """The interval with a year counted as 365 days and a month as 30 (an approximation)."""
        return timedelta(days=365 * self.years + 30 * self.months) + self.fixed_part()

    def after(self, now: datetime) -> datetime:
        """The instant this interval ends when it starts at ``now``, with exact calendar arithmetic.

        Years and months are added first, on ``now``'s calendar, clamping the day to the end
        of a shorter month (31 January + 1 month = 28 or 29 February); then the fixed part as
        elapsed time (SMPP 3.4 §7.1.1: an interval from now), so "in 2 hours" across a
        daylight-saving change is still 2 hours. Aware datetimes keep their tzinfo.
        """
        month_index = now.month - 1 + self.months
        year = now.year + self.years + month_index // 12
        month = month_index % 12 + 1
        if year > 9999:
            raise SmppTimeError(f"{self.to_smpp()} after {now.isoformat()} is past year 9999")
        day = min(now.day, calendar.monthrange(year, month)[1])
        try:
            shifted = now.replace(year=year, month=month, day=day)
            if shifted.tzinfo is None:
                return shifted + self.fixed_part()
            return (shifted.astimezone(UTC) + self.fixed_part()).astimezone(shifted.tzinfo)
        except OverflowError as exc:
            raise SmppTimeError(f"{self.to_smpp()} after {now.isoformat()} overflows") from exc


def relative_time(td: timedelta, *, tenths: bool = False) -> str:
    """Write an interval as ``0000DDhhmmss000R`` (YY=MM=00: no calendar ambiguity).

    SMPP 3.4 requires ``tnn`` = ``000`` in a relative time, so sub-second precision is
    truncated to whole seconds. ``tenths=True`` writes the tenths digit instead
    (``0000DDhhmmsst00R``, truncated to tenths), as the O2 (Infobip) example
    ``070605040302100R`` shows; send it only to an SMSC known to accept it. Negative intervals
    and intervals of 100 days or more cannot be written; use :func:`absolute_time` for those.
    """
    if td < timedelta(0):
        raise SmppTimeError(f"relative time cannot be negative ({td}); use an absolute time")
    if td.days > MAX_RELATIVE_DAYS:
        raise SmppTimeError(
            f"relative time {td} exceeds {MAX_RELATIVE_DAYS} days (DD has two digits); "
            "use an absolute time instead"
        )
    hours, rest = divmod(td.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return RelativeTime(
        days=td.days,
        hours=hours,
        minutes=minutes,
        seconds=seconds,
        tenths=td.microseconds // _TENTH_US if tenths else 0,
    ).to_smpp()


def absolute_time(dt: datetime) -> str:
    """Write an aware datetime as ``YYMMDDhhmmsstnnp`` in its own offset (tenths truncated).

    The offset must be a whole number of quarter hours within 12 hours of UTC and the year
    2000..2099; convert with ``dt.astimezone(UTC)`` when it is not.
    """
    offset = dt.utcoffset()
    if offset is None:
        raise SmppTimeError(
            f"absolute time needs a timezone-aware datetime, got naive {dt.isoformat()}; "
            "attach a tzinfo (e.g. datetime.UTC)"
        )
    quarters, remainder = divmod(abs(offset), _QUARTER_HOUR)
    if remainder:
        raise SmppTimeError(
            f"UTC offset {offset} of {dt.isoformat()} is not a multiple of 15 minutes; "
            "convert with dt.astimezone(UTC)"
        )
    if quarters > MAX_QUARTER_HOURS:
        raise SmppTimeError(
            f"UTC offset {offset} of {dt.isoformat()} exceeds 12 hours (nn > 48); "
            "convert with dt.astimezone(UTC)"
        )
    if not 2000 <= dt.year <= 2099:
        raise SmppTimeError(f"year {dt.year} cannot be written: YY covers 2000..2099 only")
    sign = "-" if offset < timedelta(0) else "+"
    return (
        f"{dt.year % 100:02d}{dt.month:02d}{dt.day:02d}"
        f"{dt.hour:02d}{dt.minute:02d}{dt.second:02d}"
        f"{dt.microsecond // _TENTH_US:d}{quarters:02d}{sign}"
    )


def _check_shape(s: str) -> None:
    """Raise unless ``s`` has 16 characters, ASCII digits in 0..14 and a known last character."""
    if len(s) != TIME_LENGTH:
        raise SmppTimeError(
            f"SMPP time must have exactly {TIME_LENGTH} characters, got {len(s)}: {s!r}"
        )
    digits = s[:15]
    if not (digits.isascii() and digits.isdigit()):
        raise SmppTimeError(f"SMPP time must start with 15 digits: {s!r}")
    if s[15] not in "+-R":
        raise SmppTimeError(f"SMPP time must end with '+', '-' or 'R', got {s[15]!r}: {s!r}")


def parse_absolute_time(s: str) -> datetime:
    """Read ``YYMMDDhhmmsstnnp`` as an aware datetime carrying its own UTC offset (YY -> 20YY)."""
    _check_shape(s)
    if s[15] == "R":
        raise SmppTimeError(f"expected an absolute time, got the relative time {s!r}")
    yy, mo, dd, hh, mi, ss = (int(s[i : i + 2]) for i in range(0, 12, 2))
    tenths, quarters = int(s[12]), int(s[13:15])
    if not 1 <= mo <= 12:
        raise SmppTimeError(f"month {mo:02d} is outside 01..12 in {s!r}")
    if not 1 <= dd <= calendar.monthrange(2000 + yy, mo)[1]:
        raise SmppTimeError(f"day {dd:02d} does not exist in month {mo:02d} of 20{yy:02d}: {s!r}")
    if hh > 23 or mi > 59 or ss > 59:
        raise SmppTimeError(f"time of day {hh:02d}:{mi:02d}:{ss:02d} is invalid in {s!r}")
    if quarters > MAX_QUARTER_HOURS:
        raise SmppTimeError(f"UTC offset nn={quarters:02d} is outside 00..48 in {s!r}")
    offset = quarters * _QUARTER_HOUR
    tz = UTC if quarters == 0 else timezone(-offset if s[15] == "-" else offset)
    return datetime(2000 + yy, mo, dd, hh, mi, ss, tenths * _TENTH_US, tzinfo=tz)


def parse_relative_time(s: str) -> RelativeTime:
    """Read ``YYMMDDhhmmsstnnR`` into its raw fields.

    Each two-digit field may be 00..99 (an interval is a sum, so ``90`` minutes is accepted);
    ``nn`` is ignored, as lenient decoders do (the spec wants ``00``).
    """
    _check_shape(s)
    if s[15] != "R":
        raise SmppTimeError(f"expected a relative time ending in 'R', got {s!r}")
    yy, mo, dd, hh, mi, ss = (int(s[i : i + 2]) for i in range(0, 12, 2))
    return RelativeTime(yy, mo, dd, hh, mi, ss, int(s[12]))


def parse_time(s: str) -> datetime | timedelta:
    """Read an absolute time as an aware datetime or a relative time as a timedelta.

    A relative time's years count as 365 days and months as 30 (an approximation; use
    :func:`parse_relative_time` and :meth:`RelativeTime.after` for exact calendar arithmetic).
    The empty string raises; use :func:`parse_optional_time` for fields that may be unset.
    """
    if s == "":
        raise SmppTimeError(
            "empty SMPP time (field unset); use parse_optional_time() where empty is allowed"
        )
    _check_shape(s)
    if s[15] == "R":
        return parse_relative_time(s).approximate_timedelta()
    return parse_absolute_time(s)


def parse_optional_time(s: str) -> datetime | timedelta | None:
    """Like :func:`parse_time`, but ``""`` (an unset schedule or validity time) is None."""
    if s == "":
        return None
    return parse_time(s)
