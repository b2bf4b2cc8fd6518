"""Proration (DESIGN §7): pure functions of integer cents and whole seconds, rounded once,
half-up. Totals are tax-inclusive; ``remaining`` is the time left in a period of ``period``
seconds (``remaining == period`` at its first second, ``0`` at its end)."""

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from billing.amounts import (
    annual_switch_charge_cents,
    prorated_difference_cents,
    unused_credit_cents,
)
from subscriptions.periods import period_by_index, whole_seconds

PARIS = ZoneInfo("Europe/Paris")
MONTH_SECONDS = 28 * 86400  # the shortest period there is
YEAR_SECONDS = 366 * 86400 + 3600
MANY = hypothesis_settings(max_examples=1000, deadline=None)

totals = st.integers(min_value=0, max_value=10_000_000)  # up to 100 000,00 €


@st.composite
def periods(draw, *, min_seconds=1):
    """(period, remaining): a period length in seconds and a remaining time inside it."""
    period = draw(st.integers(min_value=min_seconds, max_value=YEAR_SECONDS))
    remaining = draw(st.integers(min_value=0, max_value=period))
    return period, remaining


def charge(old, new, remaining, period):
    return prorated_difference_cents(old_total_cents=old, new_total_cents=new,
                                     remaining_seconds=remaining, period_seconds=period)


def credit(total, remaining, period):
    return unused_credit_cents(total_cents=total, remaining_seconds=remaining,
                               period_seconds=period)


# Properties (1 000 examples each) ------------------------------------------------------------


@MANY
@given(old=totals, new=totals, times=periods())
@example(old=1500, new=990, times=(2674800, 2674800))  # a downgrade is never a refund here
def test_the_upgrade_charge_is_never_negative_nor_more_than_the_difference(old, new, times):
    # given
    period, remaining = times
    # when
    amount = charge(old, new, remaining, period)
    # then
    assert 0 <= amount <= max(0, new - old)


@MANY
@given(old=totals, new=totals, period=st.integers(min_value=1, max_value=YEAR_SECONDS))
def test_at_the_first_second_the_charge_is_the_full_tax_inclusive_difference(old, new, period):
    # when: the whole period is left
    amount = charge(old, new, period, period)
    # then
    assert amount == max(0, new - old)


@MANY
@given(old=totals, new=totals, period=st.integers(min_value=1, max_value=YEAR_SECONDS))
def test_at_the_end_of_the_period_the_charge_is_zero(old, new, period):
    # when: nothing is left
    amount = charge(old, new, 0, period)
    # then
    assert amount == 0


@MANY
@given(
    old=totals,
    # a difference below half a cent per second of a month: any real price list
    difference=st.integers(min_value=0, max_value=MONTH_SECONDS // 2 - 1),
    period=st.integers(min_value=MONTH_SECONDS, max_value=YEAR_SECONDS),
)
def test_at_the_last_second_the_charge_rounds_to_zero(old, difference, period):
    # when: one second is left
    amount = charge(old, old + difference, 1, period)
    # then
    assert amount == 0


@MANY
@given(old=totals, new=totals, times=periods(), more=st.integers(min_value=0))
def test_the_charge_is_monotone_in_the_remaining_time(old, new, times, more):
    # given: two instants of the same period, the second earlier (more time left)
    period, remaining = times
    later_remaining = min(period, remaining + more)
    # when / then
    assert charge(old, new, remaining, period) <= charge(old, new, later_remaining, period)


@MANY
@given(old=totals, extra=totals, times=periods())
@example(old=990, extra=510, times=(2674800, 1810800))
def test_credit_plus_charge_is_the_new_plans_value_for_the_time_left_within_a_cent(
    old, extra, times
):
    """Compared: the unused credit of the old plan plus the upgrade charge, against the new
    plan's prorated value for the same remaining time (each rounded once on its own). The
    three roundings are each within half a cent, so the two sides differ by at most 1 cent."""
    # given
    period, remaining = times
    new = old + extra
    # when
    old_credit = credit(old, remaining, period)
    upgrade = charge(old, new, remaining, period)
    # then
    assert abs(old_credit + upgrade - credit(new, remaining, period)) <= 1


@MANY
@given(monthly=totals, annual=totals, times=periods())
def test_switching_to_annual_charges_the_annual_total_minus_the_credit(monthly, annual, times):
    """Compared exactly: the monthly credit plus the switch charge is the annual total (when
    the credit does not exceed it); the charge is never negative."""
    # given
    period, remaining = times
    # when
    monthly_credit = credit(monthly, remaining, period)
    amount = annual_switch_charge_cents(annual_total_cents=annual, monthly_total_cents=monthly,
                                        remaining_seconds=remaining, period_seconds=period)
    # then
    assert amount >= 0
    if monthly_credit <= annual:
        assert monthly_credit + amount == annual
    else:
        assert amount == 0


@MANY
@given(total=totals, times=periods())
def test_the_credit_is_the_exact_share_rounded_once_half_up(total, times):
    # given
    period, remaining = times
    exact = Fraction(total * remaining, period)
    # when
    amount = credit(total, remaining, period)
    # then: within half a cent, halves going up
    assert -Fraction(1, 2) < amount - exact <= Fraction(1, 2)
    assert 0 <= amount <= total


# Rounding, by hand ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "remaining", "period", "expected"),
    [
        (990, 1500, 2, 4, 255),  # 255 exactly
        (990, 1500, 1, 4, 128),  # 127.5 → 128, half up
        (990, 1500, 3, 4, 383),  # 382.5 → 383, half up (banker's rounding would say 382)
        (990, 1000, 1, 4, 3),  # 2.5 → 3
        (990, 1000, 1, 3, 3),  # 3.33… → 3
        (990, 1000, 2, 3, 7),  # 6.66… → 7
        (0, 1, 1, 2, 1),  # 0.5 → 1
        (0, 1, 1, 3, 0),  # 0.33… → 0
        # Essentiel 9,90 € → Premium 15,00 € on March 20, 2026 09:30 (Paris), period March 10
        # → April 10: 21 days minus the hour lost on March 29 left out of 31 days minus it.
        # 510 × 1 810 800 / 2 674 800 = 345.26…
        (990, 1500, 21 * 86400 - 3600, 31 * 86400 - 3600, 345),
        (1500, 990, 5, 10, 0),  # lower: nothing
    ],
)
def test_prorated_difference_rounds_once_half_up(old, new, remaining, period, expected):
    # when
    result = charge(old, new, remaining, period)
    # then
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    ("total", "remaining", "period", "expected"),
    [(990, 1, 2, 495), (991, 1, 2, 496), (5, 1, 10, 1), (4, 1, 10, 0), (990, 0, 10, 0),
     (990, 10, 10, 990), (990, 21 * 86400 - 3600, 31 * 86400 - 3600, 670)],
)
def test_unused_credit_rounds_once_half_up(total, remaining, period, expected):
    assert credit(total, remaining, period) == expected


@pytest.mark.parametrize(("remaining", "period"), [(-1, 10), (11, 10), (0, 0), (1, -5)])
def test_a_time_outside_the_period_is_refused(remaining, period):
    with pytest.raises(ValueError):
        charge(990, 1500, remaining, period)
    with pytest.raises(ValueError):
        credit(990, remaining, period)


# Time in whole seconds --------------------------------------------------------------------


def test_whole_seconds_count_instants_across_daylight_saving():
    # given: March 10 → April 10, 2026 in Paris, over the change of March 29 (one hour less)
    period = period_by_index(anchor=datetime(2026, 3, 10, 9, 30, tzinfo=PARIS),
                             interval="month", index=0, tz=PARIS)
    # when / then: both ends share the Paris tzinfo, yet the hour lost is not counted
    assert whole_seconds(period.start, period.end) == 31 * 86400 - 3600


@MANY
@given(
    seconds=st.integers(min_value=0, max_value=YEAR_SECONDS),
    microseconds=st.integers(min_value=0, max_value=999_999),
)
def test_whole_seconds_are_floored(seconds, microseconds):
    # given
    start = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
    end = start + timedelta(seconds=seconds, microseconds=microseconds)
    # when / then
    assert whole_seconds(start, end) == seconds
