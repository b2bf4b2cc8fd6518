"""The days an export covers, on the business time zone's calendar (BUSINESS_TIME_ZONE): a
document issued at 00:30 in Paris on 2 November belongs to 2 November, although it is still
1 November in UTC."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models.functions import TruncDate

from subscriptions.selectors import business_tz


@dataclass(frozen=True)
class Period:
    """From ``start`` to ``end``, both days included."""

    start: date
    end: date

    def __post_init__(self):
        if self.end < self.start:
            raise ValueError(f"the period ends ({self.end}) before it starts ({self.start})")

    @property
    def since(self) -> datetime:
        """The first instant of the period (midnight on its first day)."""
        return datetime.combine(self.start, time.min, business_tz())

    @property
    def until(self) -> datetime:
        """The first instant after the period (midnight after its last day)."""
        return datetime.combine(self.end + timedelta(days=1), time.min, business_tz())

    def within(self, field: str) -> dict:
        """Lookups keeping the rows whose ``field`` (an instant) falls in the period."""
        return {f"{field}__gte": self.since, f"{field}__lt": self.until}


def business_day(field: str) -> TruncDate:
    """The business time zone's day of the instant ``field``, computed by the database."""
    return TruncDate(field, tzinfo=business_tz())


def local_day(moment: datetime | None) -> date | None:
    return moment.astimezone(business_tz()).date() if moment is not None else None
