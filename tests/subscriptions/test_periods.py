"""Period arithmetic (DESIGN §4): anchor + k × interval on the Paris wall clock, day clamped.

Instants are compared in UTC on purpose: Python compares two datetimes that share a tzinfo
by their wall clock and ignores ``fold``, which would hide an error of one hour around the
October change.
"""

import calendar
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from subscriptions.periods import (
    Period,
    add_days,
    add_months,
    period_at,
    period_boundary,
    period_by_index,
)

PARIS = ZoneInfo("Europe/Paris")


def paris(*args, fold=0):
    return datetime(*args, tzinfo=PARIS, fold=fold)


def utc(instant):
    return instant.astimezone(UTC)


def local(instant):
    """The Paris wall clock of an instant, normalized through UTC (so a non-existent wall
    time shows the time it really stands for)."""
    return utc(instant).astimezone(PARIS)


def iso(instant):
    """Wall clock and offset: two different instants never print the same."""
    return local(instant).isoformat()


def wall_time_exists(naive, tz=PARIS):
    candidate = naive.replace(tzinfo=tz)
    return local(candidate).replace(tzinfo=None) == naive


def boundaries(anchor, interval, count):
    return [
        period_boundary(anchor=anchor, interval=interval, index=k, tz=PARIS)
        for k in range(count)
    ]


# add_months ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("months", "expected"),
    [
        (0, "2026-01-31T10:00:00+01:00"),
        (1, "2026-02-28T10:00:00+01:00"),
        (2, "2026-03-31T10:00:00+02:00"),
        (3, "2026-04-30T10:00:00+02:00"),
        (4, "2026-05-31T10:00:00+02:00"),
        (5, "2026-06-30T10:00:00+02:00"),
        (11, "2026-12-31T10:00:00+01:00"),
        (12, "2027-01-31T10:00:00+01:00"),
        (13, "2027-02-28T10:00:00+01:00"),
        (25, "2028-02-29T10:00:00+01:00"),
        (-1, "2025-12-31T10:00:00+01:00"),
        (-11, "2025-02-28T10:00:00+01:00"),
    ],
)
def test_add_months_clamps_the_31st_to_the_length_of_each_month(months, expected):
    # given
    anchor = paris(2026, 1, 31, 10, 0)
    # when
    result = add_months(anchor, months, tz=PARIS)
    # then
    assert iso(result) == expected


def test_add_months_from_a_utc_instant_works_on_the_paris_wall_clock():
    # given: 2026-01-31 23:30 UTC is already 2026-02-01 00:30 in Paris
    instant = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
    # when
    result = add_months(instant, 1, tz=PARIS)
    # then
    assert iso(result) == "2026-03-01T00:30:00+01:00"


def test_add_months_of_zero_is_the_same_instant_even_in_the_repeated_october_hour():
    # given: 02:30 on 2026-10-25 happens twice; this is the second time (CET, +01:00)
    anchor = paris(2026, 10, 25, 2, 30, fold=1)
    assert iso(anchor) == "2026-10-25T02:30:00+01:00"
    # when
    result = add_months(anchor, 0, tz=PARIS)
    # then
    assert utc(result) == utc(anchor)


# add_days --------------------------------------------------------------------------------


def test_add_days_counts_calendar_days_on_the_wall_clock_across_the_march_change():
    # given: the clocks go forward on 2026-03-29
    start = paris(2026, 3, 20, 9, 30)
    # when
    result = add_days(start, 14, tz=PARIS)
    # then
    assert iso(result) == "2026-04-03T09:30:00+02:00"
    assert utc(result) - utc(start) == timedelta(days=14) - timedelta(hours=1)


def test_add_days_counts_calendar_days_on_the_wall_clock_across_the_october_change():
    # given: the clocks go back on 2026-10-25
    start = paris(2026, 10, 20, 9, 30)
    # when
    result = add_days(start, 14, tz=PARIS)
    # then
    assert iso(result) == "2026-11-03T09:30:00+01:00"
    assert utc(result) - utc(start) == timedelta(days=14) + timedelta(hours=1)


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (0, "2026-02-27T09:30:00+01:00"),
        (1, "2026-02-28T09:30:00+01:00"),
        (2, "2026-03-01T09:30:00+01:00"),
        (-58, "2025-12-31T09:30:00+01:00"),
        (366, "2027-02-28T09:30:00+01:00"),
    ],
)
def test_add_days_crosses_month_and_year_ends(days, expected):
    # given
    start = paris(2026, 2, 27, 9, 30)
    # when
    result = add_days(start, days, tz=PARIS)
    # then
    assert iso(result) == expected


def test_add_days_of_zero_is_the_same_instant_even_in_the_repeated_october_hour():
    # given
    start = paris(2026, 10, 25, 2, 30, fold=1)
    # when
    result = add_days(start, 0, tz=PARIS)
    # then
    assert utc(result) == utc(start)


# period_boundary / period_by_index -------------------------------------------------------


def test_monthly_anchor_on_jan_31_never_drifts():
    # given: 2028 is a leap year
    anchor = paris(2028, 1, 31, 9, 30)
    # when
    result = [iso(b) for b in boundaries(anchor, "month", 6)]
    # then
    assert result == [
        "2028-01-31T09:30:00+01:00",
        "2028-02-29T09:30:00+01:00",
        "2028-03-31T09:30:00+02:00",
        "2028-04-30T09:30:00+02:00",
        "2028-05-31T09:30:00+02:00",
        "2028-06-30T09:30:00+02:00",
    ]


def test_monthly_anchor_on_jan_31_in_a_common_year_renews_feb_28_then_mar_31():
    # given
    anchor = paris(2026, 1, 31, 9, 30)
    # when
    result = [iso(b) for b in boundaries(anchor, "month", 5)]
    # then
    assert result == [
        "2026-01-31T09:30:00+01:00",
        "2026-02-28T09:30:00+01:00",
        "2026-03-31T09:30:00+02:00",
        "2026-04-30T09:30:00+02:00",
        "2026-05-31T09:30:00+02:00",
    ]


def test_yearly_anchor_on_feb_29_renews_feb_28_in_common_years_and_feb_29_in_leap_years():
    # given
    anchor = paris(2028, 2, 29, 9, 30)
    # when
    result = [iso(b) for b in boundaries(anchor, "year", 5)]
    # then
    assert result == [
        "2028-02-29T09:30:00+01:00",
        "2029-02-28T09:30:00+01:00",
        "2030-02-28T09:30:00+01:00",
        "2031-02-28T09:30:00+01:00",
        "2032-02-29T09:30:00+01:00",
    ]


def test_local_time_of_day_survives_both_daylight_saving_changes():
    # given: 09:30 on 2026-03-10 (CET); the clocks change on 2026-03-29 and 2026-10-25
    anchor = paris(2026, 3, 10, 9, 30)
    # when
    result = [iso(b) for b in boundaries(anchor, "month", 10)]
    # then
    assert result == [
        "2026-03-10T09:30:00+01:00",
        "2026-04-10T09:30:00+02:00",
        "2026-05-10T09:30:00+02:00",
        "2026-06-10T09:30:00+02:00",
        "2026-07-10T09:30:00+02:00",
        "2026-08-10T09:30:00+02:00",
        "2026-09-10T09:30:00+02:00",
        "2026-10-10T09:30:00+02:00",
        "2026-11-10T09:30:00+01:00",
        "2026-12-10T09:30:00+01:00",
    ]


def test_a_period_across_the_march_change_is_one_hour_shorter_in_absolute_time():
    # given
    anchor = paris(2026, 3, 10, 9, 30)
    # when
    march = period_by_index(anchor=anchor, interval="month", index=0, tz=PARIS)
    october = period_by_index(anchor=anchor, interval="month", index=7, tz=PARIS)
    # then: 31 days minus the hour lost on 2026-03-29, 31 days plus the hour of 2026-10-25
    assert utc(march.end) - utc(march.start) == timedelta(days=31, hours=-1)
    assert utc(october.end) - utc(october.start) == timedelta(days=31, hours=1)


def test_a_yearly_period_across_both_changes_lasts_exactly_365_days():
    # given
    anchor = paris(2026, 3, 10, 9, 30)
    # when
    year = period_by_index(anchor=anchor, interval="year", index=0, tz=PARIS)
    # then
    assert utc(year.end) - utc(year.start) == timedelta(days=365)


def test_a_wall_time_that_does_not_exist_resolves_one_hour_later():
    # given: 02:30 on 2027-03-28 does not exist in Paris (02:00 → 03:00)
    anchor = paris(2027, 1, 28, 2, 30)
    # when
    result = [iso(b) for b in boundaries(anchor, "month", 4)]
    # then: only the boundary that falls on the change day moves, the next one comes back
    assert result == [
        "2027-01-28T02:30:00+01:00",
        "2027-02-28T02:30:00+01:00",
        "2027-03-28T03:30:00+02:00",
        "2027-04-28T02:30:00+02:00",
    ]


def test_a_repeated_wall_time_resolves_to_its_first_occurrence():
    # given: 02:30 on 2026-10-25 happens twice in Paris
    anchor = paris(2026, 9, 25, 2, 30)
    # when
    boundary = period_boundary(anchor=anchor, interval="month", index=1, tz=PARIS)
    # then
    assert iso(boundary) == "2026-10-25T02:30:00+02:00"


def test_period_by_index_returns_the_index_and_both_boundaries():
    # given
    anchor = paris(2026, 1, 31, 9, 30)
    # when
    period = period_by_index(anchor=anchor, interval="month", index=1, tz=PARIS)
    # then
    assert isinstance(period, Period)
    assert period.index == 1
    assert iso(period.start) == "2026-02-28T09:30:00+01:00"
    assert iso(period.end) == "2026-03-31T09:30:00+02:00"


def test_period_by_index_works_for_negative_indexes():
    # given
    anchor = paris(2026, 3, 31, 9, 30)
    # when
    period = period_by_index(anchor=anchor, interval="month", index=-1, tz=PARIS)
    # then
    assert iso(period.start) == "2026-02-28T09:30:00+01:00"
    assert iso(period.end) == "2026-03-31T09:30:00+02:00"


def test_an_unknown_interval_is_refused():
    # given
    anchor = paris(2026, 3, 10, 9, 30)
    # when / then
    with pytest.raises(KeyError):
        period_boundary(anchor=anchor, interval="week", index=1, tz=PARIS)


CONTIGUITY_ANCHORS = [
    paris(2026, 1, 29, 9, 30),
    paris(2026, 1, 30, 23, 59, 59),
    paris(2026, 1, 31, 0, 0),
    paris(2026, 8, 31, 12, 0),
    paris(2028, 2, 29, 9, 30),
    paris(2026, 3, 29, 3, 0),  # the March change day, first wall time after the gap
    paris(2026, 3, 28, 2, 30),  # repeats on the 28th: 2027-03-28 is a change day
    paris(2026, 10, 25, 2, 30),  # the October change day, first occurrence
    paris(2026, 10, 25, 2, 30, fold=1),  # ... second occurrence
    paris(2026, 3, 10, 9, 30),
]


@pytest.mark.parametrize("interval", ["month", "year"])
@pytest.mark.parametrize("anchor", CONTIGUITY_ANCHORS, ids=iso)
def test_24_consecutive_periods_are_contiguous_and_strictly_increasing(anchor, interval):
    # given
    indexes = range(24)
    # when
    periods = [
        period_by_index(anchor=anchor, interval=interval, index=k, tz=PARIS) for k in indexes
    ]
    # then
    assert utc(periods[0].start) == utc(anchor)
    for period, following in zip(periods, periods[1:], strict=False):
        assert utc(period.end) == utc(following.start)
    for period in periods:
        assert utc(period.start) < utc(period.end)
        assert local(period.start).day == min(
            local(anchor).day, calendar.monthrange(local(period.start).year,
                                                   local(period.start).month)[1]
        )


# period_at -------------------------------------------------------------------------------


def test_period_at_an_instant_inside_a_period():
    # given
    anchor = paris(2026, 1, 31, 9, 30)
    # when
    period = period_at(
        anchor=anchor, interval="month", instant=paris(2026, 3, 15, 12, 0), tz=PARIS
    )
    # then
    assert period.index == 1
    assert iso(period.start) == "2026-02-28T09:30:00+01:00"
    assert iso(period.end) == "2026-03-31T09:30:00+02:00"


def test_period_at_a_boundary_belongs_to_the_period_that_starts_there():
    # given
    anchor = paris(2026, 1, 31, 9, 30)
    boundary = paris(2026, 3, 31, 9, 30)
    # when
    at_boundary = period_at(anchor=anchor, interval="month", instant=boundary, tz=PARIS)
    just_before = period_at(
        anchor=anchor, interval="month", instant=boundary - timedelta(microseconds=1), tz=PARIS
    )
    # then
    assert at_boundary.index == 2
    assert utc(at_boundary.start) == utc(boundary)
    assert just_before.index == 1
    assert utc(just_before.end) == utc(boundary)


def test_period_at_with_an_instant_given_in_utc():
    # given: 2026-03-31 07:30 UTC is 09:30 CEST, the boundary itself
    anchor = paris(2026, 1, 31, 9, 30)
    # when
    at_boundary = period_at(
        anchor=anchor, interval="month", instant=datetime(2026, 3, 31, 7, 30, tzinfo=UTC),
        tz=PARIS,
    )
    before = period_at(
        anchor=anchor, interval="month", instant=datetime(2026, 3, 31, 7, 29, 59, tzinfo=UTC),
        tz=PARIS,
    )
    # then
    assert at_boundary.index == 2
    assert before.index == 1


def test_period_at_early_in_a_month_before_the_clamped_boundary():
    # given: the estimate by calendar month (March) is one period too far
    anchor = paris(2026, 1, 31, 9, 30)
    # when
    period = period_at(
        anchor=anchor, interval="month", instant=paris(2026, 3, 1, 0, 0), tz=PARIS
    )
    # then
    assert period.index == 1


def test_period_at_before_the_anchor_has_a_negative_index():
    # given
    anchor = paris(2026, 3, 10, 9, 30)
    # when
    period = period_at(
        anchor=anchor, interval="month", instant=paris(2026, 3, 10, 9, 29, 59), tz=PARIS
    )
    # then
    assert period.index == -1
    assert iso(period.start) == "2026-02-10T09:30:00+01:00"


def test_period_at_for_a_yearly_plan():
    # given
    anchor = paris(2028, 2, 29, 9, 30)
    # when
    last_second = period_at(
        anchor=anchor, interval="year", instant=paris(2029, 2, 28, 9, 29, 59), tz=PARIS
    )
    renewal = period_at(
        anchor=anchor, interval="year", instant=paris(2029, 2, 28, 9, 30), tz=PARIS
    )
    # then
    assert last_second.index == 0
    assert renewal.index == 1
    assert iso(renewal.end) == "2030-02-28T09:30:00+01:00"


def test_period_at_in_the_repeated_october_hour_after_a_boundary_in_its_first_occurrence():
    # given: the boundary is 02:30 CEST (00:30 UTC); 02:15 CET (01:15 UTC) comes 45 min later
    anchor = paris(2026, 9, 25, 2, 30)
    instant = paris(2026, 10, 25, 2, 15, fold=1)
    assert utc(instant) > utc(paris(2026, 10, 25, 2, 30))
    # when
    period = period_at(anchor=anchor, interval="month", instant=instant, tz=PARIS)
    # then
    assert period.index == 1
    assert utc(period.start) <= utc(instant) < utc(period.end)


def test_period_at_just_after_the_march_gap_before_a_boundary_moved_out_of_it():
    # given: the boundary 2027-03-28 02:30 does not exist and stands for 03:30 CEST;
    # 03:15 CEST comes before it
    anchor = paris(2027, 1, 28, 2, 30)
    instant = paris(2027, 3, 28, 3, 15)
    # when
    period = period_at(anchor=anchor, interval="month", instant=instant, tz=PARIS)
    # then
    assert period.index == 1
    assert utc(period.start) <= utc(instant) < utc(period.end)


# properties ------------------------------------------------------------------------------

# Real instants between 2000 and 2040, seen on the Paris wall clock (which includes the
# second occurrence of the repeated October hour, fold=1).
instants = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 (bounds of a strategy, made aware below)
    max_value=datetime(2040, 12, 31),  # noqa: DTZ001
).map(lambda naive: naive.replace(tzinfo=UTC).astimezone(PARIS))
intervals = st.sampled_from(["month", "year"])
indexes = st.integers(min_value=-60, max_value=240)

OCTOBER_SECOND_0230 = paris(2026, 10, 25, 2, 30, fold=1)
MARCH_GAP_ANCHOR = paris(2027, 1, 28, 2, 30)


@settings(max_examples=400, deadline=None)
@given(anchor=instants, interval=intervals, k=indexes)
@example(anchor=paris(2028, 2, 29, 9, 30), interval="year", k=1)
@example(anchor=paris(2026, 1, 31, 23, 59, 59), interval="month", k=1)
@example(anchor=OCTOBER_SECOND_0230, interval="month", k=0)
@example(anchor=MARCH_GAP_ANCHOR, interval="month", k=1)
def test_property_boundaries_are_strictly_increasing_and_contiguous(anchor, interval, k):
    # given
    period = period_by_index(anchor=anchor, interval=interval, index=k, tz=PARIS)
    # when
    following = period_by_index(anchor=anchor, interval=interval, index=k + 1, tz=PARIS)
    # then
    assert period.index == k and following.index == k + 1
    assert utc(period.start) < utc(period.end)
    assert utc(period.end) == utc(following.start)
    assert utc(following.start) < utc(following.end)
    shortest = timedelta(days=28 if interval == "month" else 365, hours=-1)
    assert utc(period.end) - utc(period.start) >= shortest


@settings(max_examples=400, deadline=None)
@given(anchor=instants, interval=intervals, k=indexes)
@example(anchor=paris(2028, 2, 29, 9, 30), interval="year", k=1)
@example(anchor=paris(2026, 1, 31, 9, 30), interval="month", k=1)
@example(anchor=OCTOBER_SECOND_0230, interval="month", k=0)
@example(anchor=OCTOBER_SECOND_0230, interval="month", k=12)
@example(anchor=MARCH_GAP_ANCHOR, interval="month", k=2)
def test_property_boundary_keeps_the_anchor_day_clamped_and_its_time_of_day(anchor, interval, k):
    # given
    anchor_local = local(anchor)
    # when
    boundary = period_boundary(anchor=anchor, interval=interval, index=k, tz=PARIS)
    # then
    months = k * (1 if interval == "month" else 12)
    year, month_zero = divmod(anchor_local.month - 1 + months, 12)
    year, month = anchor_local.year + year, month_zero + 1
    day = min(anchor_local.day, calendar.monthrange(year, month)[1])
    wall = datetime.combine(
        datetime(year, month, day).date(),  # noqa: DTZ001 (a naive wall time, on purpose)
        anchor_local.time(),
    )
    boundary_local = local(boundary)
    if k == 0:
        assert utc(boundary) == utc(anchor)
    elif wall_time_exists(wall):
        assert boundary_local.replace(tzinfo=None) == wall
    else:
        # the wall time falls in the March gap: it stands for one hour later
        assert boundary_local.replace(tzinfo=None) == wall + timedelta(hours=1)
    assert (boundary_local.year, boundary_local.month, boundary_local.day) == (year, month, day)


@settings(max_examples=400, deadline=None)
@given(
    anchor=instants,
    interval=intervals,
    offset_seconds=st.integers(min_value=-3 * 366 * 86400, max_value=20 * 366 * 86400),
    as_utc=st.booleans(),
)
@example(anchor=paris(2026, 9, 25, 2, 30), interval="month",
         offset_seconds=int((utc(paris(2026, 10, 25, 2, 15, fold=1))
                             - utc(paris(2026, 9, 25, 2, 30))).total_seconds()), as_utc=False)
@example(anchor=paris(2026, 1, 31, 9, 30), interval="month",
         offset_seconds=int((utc(paris(2026, 3, 31, 9, 30)) - utc(paris(2026, 1, 31, 9, 30)))
                            .total_seconds()), as_utc=False)
def test_property_period_at_contains_the_instant(anchor, interval, offset_seconds, as_utc):
    # given
    instant = utc(anchor) + timedelta(seconds=offset_seconds)
    if not as_utc:
        instant = instant.astimezone(PARIS)
    # when
    period = period_at(anchor=anchor, interval=interval, instant=instant, tz=PARIS)
    # then
    assert utc(period.start) <= utc(instant) < utc(period.end)
    expected = period_by_index(anchor=anchor, interval=interval, index=period.index, tz=PARIS)
    assert utc(expected.start) == utc(period.start)
    assert utc(expected.end) == utc(period.end)
