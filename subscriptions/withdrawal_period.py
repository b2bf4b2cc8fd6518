"""The 14-day withdrawal period (droit de rétractation, DESIGN §8): pure functions of their
inputs, no database, no clock.

Counted as articles L221-18 and L221-19 of the Code de la consommation count it (règlement
CEE n° 1182/71): for a contract of services the period runs from the day the contract is
concluded; that day is not counted; the period starts at the first hour of the next day and
ends at the expiry of the last hour of the fourteenth day; a period that would end on a
Saturday, a Sunday or a public holiday is extended to the end of the next working day.

Here the contract is concluded at the subscription's ``started_at`` (the start of the first
paid period: the customer ordered and paid), on the calendar of the business time zone. A
subscription started on Tuesday 10 March 2026 at 9:30 may be withdrawn until Tuesday 24 March
2026 at 23:59:59.999999 (Paris); from 25 March 2026 at 0:00 it may not.

Public holidays are the eleven of article L3133-1 of the Code du travail (metropolitan France;
the extra ones of Alsace-Moselle and the overseas departments are not counted, which only
ever makes the period shorter there by a day, never longer than the law's)."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WITHDRAWAL_DAYS = 14


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous algorithm, a.k.a. Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741 - the algorithm's own name
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return date(year, month, day + 1)


def public_holidays(year: int) -> frozenset[date]:
    """The French public holidays (jours fériés, L3133-1 du Code du travail) of ``year``."""
    easter = easter_sunday(year)
    return frozenset({
        date(year, 1, 1),  # Jour de l'an
        easter + timedelta(days=1),  # Lundi de Pâques
        date(year, 5, 1),  # Fête du Travail
        date(year, 5, 8),  # Victoire 1945
        easter + timedelta(days=39),  # Ascension
        easter + timedelta(days=50),  # Lundi de Pentecôte
        date(year, 7, 14),  # Fête nationale
        date(year, 8, 15),  # Assomption
        date(year, 11, 1),  # Toussaint
        date(year, 11, 11),  # Armistice 1918
        date(year, 12, 25),  # Noël
    })


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in public_holidays(day.year)


def withdrawal_last_day(*, concluded_at: datetime, tz: ZoneInfo) -> date:
    """The last day (inclusive, on the ``tz`` calendar) on which the customer may withdraw."""
    last = concluded_at.astimezone(tz).date() + timedelta(days=WITHDRAWAL_DAYS)
    while not is_working_day(last):
        last += timedelta(days=1)
    return last


def withdrawal_deadline(*, concluded_at: datetime, tz: ZoneInfo) -> datetime:
    """The first instant at which withdrawing is no longer possible: midnight (``tz``) at the
    end of the last day. Midnight always exists in Europe/Paris (its changes are at 2 and 3 h)."""
    next_day = withdrawal_last_day(concluded_at=concluded_at, tz=tz) + timedelta(days=1)
    return datetime.combine(next_day, time(0), tzinfo=tz)


def withdrawal_open(*, concluded_at: datetime, now: datetime, tz: ZoneInfo) -> bool:
    # Compared as instants: two datetimes sharing a tzinfo compare by wall clock.
    deadline = withdrawal_deadline(concluded_at=concluded_at, tz=tz).astimezone(UTC)
    return concluded_at.astimezone(UTC) <= now.astimezone(UTC) < deadline
