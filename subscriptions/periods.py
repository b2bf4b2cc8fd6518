"""Period arithmetic (DESIGN §4): pure functions of their inputs, no database, no clock.

Every boundary is ``anchor + k × interval`` on the local wall clock of the business time zone,
with the day clamped to the month's length. A boundary is never derived from the previous
one, so an anchor on the 31st comes back to the 31st after a short month, and the local time
of day survives daylight-saving changes.
"""

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

MONTHS_PER_INTERVAL = {"month": 1, "year": 12}


@dataclass(frozen=True)
class Period:
    index: int
    start: datetime
    end: datetime


def add_months(instant: datetime, months: int, *, tz: ZoneInfo) -> datetime:
    local = instant.astimezone(tz)
    if not months:
        return local
    years, month_zero = divmod(local.month - 1 + months, 12)
    year, month = local.year + years, month_zero + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day, fold=0)


def add_days(instant: datetime, days: int, *, tz: ZoneInfo) -> datetime:
    """Calendar days on the local wall clock (a day across a DST change lasts 23 or 25 h)."""
    local = instant.astimezone(tz)
    if not days:
        return local
    shifted = (local.replace(tzinfo=None) + timedelta(days=days)).replace(tzinfo=tz, fold=0)
    return shifted


def whole_seconds(start: datetime, end: datetime) -> int:
    """Whole seconds from ``start`` to ``end``, floored, counted between instants (two
    datetimes sharing a tzinfo subtract by wall clock, which is off by an hour across a
    daylight-saving change): time as proration counts it (DESIGN §7)."""
    return (end.astimezone(UTC) - start.astimezone(UTC)) // timedelta(seconds=1)


def period_boundary(*, anchor: datetime, interval: str, index: int, tz: ZoneInfo) -> datetime:
    return add_months(anchor, index * MONTHS_PER_INTERVAL[interval], tz=tz)


def period_by_index(*, anchor: datetime, interval: str, index: int, tz: ZoneInfo) -> Period:
    return Period(
        index=index,
        start=period_boundary(anchor=anchor, interval=interval, index=index, tz=tz),
        end=period_boundary(anchor=anchor, interval=interval, index=index + 1, tz=tz),
    )


def period_at(*, anchor: datetime, interval: str, instant: datetime, tz: ZoneInfo) -> Period:
    """The period that contains ``instant`` (start inclusive, end exclusive)."""
    # Compared in UTC: two datetimes sharing a tzinfo compare by wall clock, ignoring fold.
    instant = instant.astimezone(UTC)
    local_anchor, local_instant = anchor.astimezone(tz), instant.astimezone(tz)
    months = (
        (local_instant.year - local_anchor.year) * 12 + local_instant.month - local_anchor.month
    )
    index = months // MONTHS_PER_INTERVAL[interval]
    period = period_by_index(anchor=anchor, interval=interval, index=index, tz=tz)
    while instant < period.start:
        period = period_by_index(anchor=anchor, interval=interval, index=period.index - 1, tz=tz)
    while instant >= period.end:
        period = period_by_index(anchor=anchor, interval=interval, index=period.index + 1, tz=tz)
    return period
