"""The 14-day withdrawal period (L221-18, L221-19; DESIGN §8) as pure date math: the day of
conclusion is not counted, the period ends at the end of the fourteenth day (Paris), and a
period ending on a Saturday, a Sunday or a public holiday runs to the end of the next
working day."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subscriptions.withdrawal_period import (
    easter_sunday,
    is_working_day,
    public_holidays,
    withdrawal_deadline,
    withdrawal_last_day,
    withdrawal_open,
)

PARIS = ZoneInfo("Europe/Paris")
SECOND = timedelta(seconds=1)


def paris(*args):
    return datetime(*args, tzinfo=PARIS)


@pytest.mark.parametrize(("year", "easter"), [
    (2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)), (2026, date(2026, 4, 5)),
    (2027, date(2027, 3, 28)), (2038, date(2038, 4, 25)), (2285, date(2285, 3, 22)),
])
def test_easter_sunday(year, easter):
    assert easter_sunday(year) == easter


def test_the_eleven_public_holidays_of_2026():
    assert sorted(public_holidays(2026)) == [
        date(2026, 1, 1), date(2026, 4, 6), date(2026, 5, 1), date(2026, 5, 8),
        date(2026, 5, 14), date(2026, 5, 25), date(2026, 7, 14), date(2026, 8, 15),
        date(2026, 11, 1), date(2026, 11, 11), date(2026, 12, 25),
    ]


@pytest.mark.parametrize(("concluded_at", "last_day"), [
    # Tuesday: the fourteenth day is a Tuesday
    (paris(2026, 3, 10, 9, 30), date(2026, 3, 24)),
    # the day of conclusion is not counted, however late in it
    (paris(2026, 3, 10, 0, 0), date(2026, 3, 24)),
    (paris(2026, 3, 10, 23, 59, 59), date(2026, 3, 24)),
    # on the Paris calendar: 23:30 UTC on the 10th is already the 11th in Paris
    (datetime(2026, 3, 10, 23, 30, tzinfo=UTC), date(2026, 3, 25)),
    # Saturday 28 March → Monday 30 March
    (paris(2026, 3, 14, 12, 0), date(2026, 3, 30)),
    # Sunday 29 March → Monday 30 March
    (paris(2026, 3, 15, 12, 0), date(2026, 3, 30)),
    # Easter Monday 6 April 2026 → Tuesday 7 April
    (paris(2026, 3, 23, 12, 0), date(2026, 4, 7)),
    # Friday 8 May (holiday), then the weekend → Monday 11 May
    (paris(2026, 4, 24, 12, 0), date(2026, 5, 11)),
    # Ascension, Thursday 14 May 2026 → Friday 15 May
    (paris(2026, 4, 30, 12, 0), date(2026, 5, 15)),
    # Christmas, Friday 25 December 2026 → Monday 28 December
    (paris(2026, 12, 11, 12, 0), date(2026, 12, 28)),
])
def test_the_last_day(concluded_at, last_day):
    assert withdrawal_last_day(concluded_at=concluded_at, tz=PARIS) == last_day


def test_offered_at_the_last_second_of_the_fourteenth_day_not_at_the_first_second_after():
    # given: concluded on Tuesday 10 March 2026 at 9:30 (Paris)
    concluded_at = paris(2026, 3, 10, 9, 30)
    # when / then
    assert withdrawal_deadline(concluded_at=concluded_at, tz=PARIS) == paris(2026, 3, 25, 0, 0)
    assert withdrawal_open(concluded_at=concluded_at, now=paris(2026, 3, 24, 23, 59, 59),
                           tz=PARIS)
    assert not withdrawal_open(concluded_at=concluded_at, now=paris(2026, 3, 25, 0, 0, 0),
                               tz=PARIS)
    # the same instants written in UTC
    assert withdrawal_open(concluded_at=concluded_at,
                           now=datetime(2026, 3, 24, 22, 59, 59, tzinfo=UTC), tz=PARIS)
    assert not withdrawal_open(concluded_at=concluded_at,
                               now=datetime(2026, 3, 24, 23, 0, 0, tzinfo=UTC), tz=PARIS)


def test_the_deadline_is_midnight_in_paris_across_the_change_to_summer_time():
    # given: concluded before the change of 29 March 2026, ending after it
    concluded_at = paris(2026, 3, 20, 18, 0)
    # when
    deadline = withdrawal_deadline(concluded_at=concluded_at, tz=PARIS)
    # then: Friday 3 April, to its end: 4 April at 0:00 summer time is 22:00 UTC
    assert deadline.astimezone(UTC) == datetime(2026, 4, 3, 22, 0, tzinfo=UTC)
    assert withdrawal_open(concluded_at=concluded_at, now=deadline - SECOND, tz=PARIS)
    assert not withdrawal_open(concluded_at=concluded_at, now=deadline, tz=PARIS)


def test_not_open_before_the_contract_is_concluded():
    concluded_at = paris(2026, 3, 10, 9, 30)
    assert withdrawal_open(concluded_at=concluded_at, now=concluded_at, tz=PARIS)
    assert not withdrawal_open(concluded_at=concluded_at, now=concluded_at - SECOND, tz=PARIS)


@settings(max_examples=300, deadline=None)
@given(st.datetimes(
    min_value=datetime(2020, 1, 1),  # noqa: DTZ001 (bounds of a strategy, made aware below)
    max_value=datetime(2040, 12, 31),  # noqa: DTZ001
).map(lambda naive: naive.replace(tzinfo=UTC)))
def test_the_last_day_is_the_first_working_day_from_the_fourteenth(concluded_at):
    # when
    last = withdrawal_last_day(concluded_at=concluded_at, tz=PARIS)
    # then
    fourteenth = concluded_at.astimezone(PARIS).date() + timedelta(days=14)
    assert is_working_day(last)
    assert fourteenth <= last <= fourteenth + timedelta(days=4)
    assert not any(is_working_day(fourteenth + timedelta(days=n))
                   for n in range((last - fourteenth).days))
