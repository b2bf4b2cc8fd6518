"""Dates and times as the customer reads them, in the active language (issue 10, DESIGN §9):
the one place that writes a date for a page, an email, a PDF, the admin or an export.

French: "1er juin 2027" (the first of the month is "1er"), "10 mai 2027 à 15 h 00",
"01/06/2027" where a column needs a short form, "juin 2027"; never an abbreviated month
("Jui" reads as juin or juillet). English: "June 1, 2027", "May 10, 2027 at 3:00 PM",
"2027-06-01" (numeric, never an abbreviated month), "June 2027".

Aware datetimes are shown in the business time zone (BUSINESS_TIME_ZONE), whatever the
process's current zone; dates are shown as they are."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from django.utils.dates import MONTHS
from django.utils.translation import get_language


def _english() -> bool:
    return (get_language() or settings.LANGUAGE_CODE).startswith("en")


def _local(value):
    """The day (and time) ``value`` falls on in the business time zone."""
    if isinstance(value, datetime) and timezone.is_aware(value):
        return timezone.localtime(value, ZoneInfo(settings.BUSINESS_TIME_ZONE))
    return value


def long_date(value) -> str:
    if not isinstance(value, date):
        return ""
    day = _local(value)
    month = str(MONTHS[day.month])
    if _english():
        return f"{month} {day.day}, {day.year}"
    return f"{'1er' if day.day == 1 else day.day} {month} {day.year}"


def long_datetime(value) -> str:
    if not isinstance(value, date):
        return ""
    moment = _local(value)
    if not isinstance(moment, datetime):
        return long_date(moment)
    if _english():
        hour = moment.hour % 12 or 12
        return (f"{long_date(moment)} at {hour}:{moment.minute:02d} "
                f"{'AM' if moment.hour < 12 else 'PM'}")
    return f"{long_date(moment)} à {moment.hour} h {moment.minute:02d}"


def short_date(value) -> str:
    if not isinstance(value, date):
        return ""
    day = _local(value)
    if _english():
        return f"{day.year}-{day.month:02d}-{day.day:02d}"
    return f"{day.day:02d}/{day.month:02d}/{day.year}"


def short_datetime(value) -> str:
    if not isinstance(value, date):
        return ""
    moment = _local(value)
    if not isinstance(moment, datetime):
        return short_date(moment)
    return f"{short_date(moment)} {moment.hour:02d}:{moment.minute:02d}"


def month_year(value) -> str:
    if not isinstance(value, date):
        return ""
    day = _local(value)
    return f"{MONTHS[day.month]} {day.year}"
