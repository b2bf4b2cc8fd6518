"""The cancellation table of DESIGN §8, row by row, at the boundaries of each row.

Windows are counted in calendar days on the Paris wall clock (``add_days``): a 14-day window
that crosses the March change lasts 14 × 24 h − 1 h.
"""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from subscriptions.periods import add_days, add_months, period_by_index
from subscriptions.policy import (
    CancellationTerms,
    PaidSoFar,
    PlanTerms,
    RefundScope,
    Rule,
    cancellation_terms,
    chatel_notice_window,
    effective_at_on,
    latest_effective_at,
)

PARIS = ZoneInfo("Europe/Paris")
SECOND = timedelta(seconds=1)
MONTHLY_TOTAL = 990  # 8.25 € + 20 % VAT
ANNUAL_TOTAL = 9900  # 82.50 € + 20 % VAT


def paris(*args, fold=0):
    return datetime(*args, tzinfo=PARIS, fold=fold)


def utc(instant):
    return instant.astimezone(UTC)


def plan_terms(interval="month", *, refund_window_days=14, renewal_refund_window_days=0,
               commitment_months=0):
    return PlanTerms(
        interval=interval,
        refund_window_days=refund_window_days,
        renewal_refund_window_days=renewal_refund_window_days,
        commitment_months=commitment_months,
    )


def paid_initial(total):
    """Only the initial charge was paid, nothing refunded yet."""
    return PaidSoFar(
        subscription_refundable_cents=total,
        last_renewal_charged_at=None,
        last_renewal_refundable_cents=0,
        period_total_cents=total,
        period_refundable_cents=total,
    )


def terms_for(*, plan, started_at, now, paid, period_index=0, billing_anchor=None,
              stored=False, **options):
    """``stored=True`` passes the instants in UTC, as they come back from the database."""
    anchor = billing_anchor or started_at
    period = period_by_index(anchor=anchor, interval=plan.interval, index=period_index,
                             tz=PARIS)
    assert utc(period.start) <= utc(now) < utc(period.end), "the test's period must hold now"
    as_given = utc if stored else (lambda instant: instant)
    if stored and paid.last_renewal_charged_at is not None:
        paid = replace(paid, last_renewal_charged_at=utc(paid.last_renewal_charged_at))
    return cancellation_terms(
        plan=plan,
        paid=paid,
        started_at=as_given(started_at),
        billing_anchor=as_given(anchor),
        current_period_start=as_given(period.start),
        current_period_end=as_given(period.end),
        now=now,
        tz=PARIS,
        **options,
    )


def assert_instant(actual, expected):
    assert utc(actual) == utc(expected), f"{actual.isoformat()} != {expected.isoformat()}"


# Row 1: within refund_window_days of started_at -------------------------------------------


@pytest.mark.parametrize(("interval", "total"), [("month", MONTHLY_TOTAL), ("year", ANNUAL_TOTAL)])
@pytest.mark.parametrize("as_utc", [False, True], ids=["paris-now", "utc-now"])
def test_refund_window_last_second_refunds_everything_immediately(interval, total, as_utc):
    # given
    started_at = paris(2026, 3, 1, 9, 30)
    now = paris(2026, 3, 15, 9, 29, 59)
    now = utc(now) if as_utc else now
    # when
    terms = terms_for(plan=plan_terms(interval), started_at=started_at, now=now,
                      paid=paid_initial(total))
    # then
    assert terms == CancellationTerms(
        rule=Rule.REFUND_WINDOW,
        immediate=True,
        access_ends_at=now,
        refund_scope=RefundScope.EVERYTHING_PAID,
        refund_cents=total,
    )


@pytest.mark.parametrize("as_utc", [False, True], ids=["paris-now", "utc-now"])
def test_refund_window_first_second_outside_falls_to_the_monthly_rule(as_utc):
    # given
    started_at = paris(2026, 3, 1, 9, 30)
    now = paris(2026, 3, 15, 9, 30)
    now = utc(now) if as_utc else now
    # when
    terms = terms_for(plan=plan_terms("month"), started_at=started_at, now=now,
                      paid=paid_initial(MONTHLY_TOTAL))
    # then
    assert terms.rule == Rule.MONTHLY
    assert terms.immediate is False
    assert terms.refund_cents == 0


def test_refund_window_refunds_what_remains_refundable_of_everything_paid():
    # given: support already refunded 2 € of the first charge
    started_at = paris(2026, 3, 1, 9, 30)
    paid = PaidSoFar(
        subscription_refundable_cents=ANNUAL_TOTAL - 200,
        last_renewal_charged_at=None,
        last_renewal_refundable_cents=0,
        period_total_cents=ANNUAL_TOTAL,
        period_refundable_cents=ANNUAL_TOTAL - 200,
    )
    # when
    terms = terms_for(plan=plan_terms("year"), started_at=started_at,
                      now=paris(2026, 3, 2, 12, 0), paid=paid)
    # then
    assert terms.rule == Rule.REFUND_WINDOW
    assert terms.refund_cents == ANNUAL_TOTAL - 200


@pytest.mark.parametrize("stored", [False, True], ids=["paris", "stored-utc"])
def test_refund_window_across_the_march_change_counts_wall_clock_days(stored):
    # given: 14 calendar days from 2026-03-20 09:30 CET end on 2026-04-03 09:30 CEST,
    # which is 14 × 24 h − 1 h later
    started_at = paris(2026, 3, 20, 9, 30)
    plan = plan_terms("month")
    paid = paid_initial(MONTHLY_TOTAL)
    last_second = paris(2026, 4, 3, 9, 29, 59)
    first_second_outside = paris(2026, 4, 3, 9, 30)
    absolute_14_days_minus_1s = utc(started_at) + timedelta(days=14) - SECOND
    # when
    inside = terms_for(plan=plan, started_at=started_at, now=last_second, paid=paid,
                       stored=stored)
    outside = terms_for(plan=plan, started_at=started_at, now=first_second_outside, paid=paid,
                        stored=stored)
    absolute = terms_for(plan=plan, started_at=started_at, now=absolute_14_days_minus_1s,
                         paid=paid, stored=stored)
    # then
    assert inside.rule == Rule.REFUND_WINDOW
    assert outside.rule == Rule.MONTHLY
    assert absolute.rule == Rule.MONTHLY


@pytest.mark.parametrize("stored", [False, True], ids=["paris", "stored-utc"])
def test_refund_window_across_the_october_change_counts_wall_clock_days(stored):
    # given: 14 calendar days from 2026-10-20 09:30 CEST end on 2026-11-03 09:30 CET,
    # which is 14 × 24 h + 1 h later
    started_at = paris(2026, 10, 20, 9, 30)
    plan = plan_terms("month")
    paid = paid_initial(MONTHLY_TOTAL)
    absolute_14_days = utc(started_at) + timedelta(days=14)
    # when
    inside = terms_for(plan=plan, started_at=started_at, now=absolute_14_days, paid=paid,
                       stored=stored)
    last_second = terms_for(plan=plan, started_at=started_at,
                            now=paris(2026, 11, 3, 9, 29, 59), paid=paid, stored=stored)
    outside = terms_for(plan=plan, started_at=started_at, now=paris(2026, 11, 3, 9, 30),
                        paid=paid, stored=stored)
    # then
    assert inside.rule == Rule.REFUND_WINDOW
    assert last_second.rule == Rule.REFUND_WINDOW
    assert outside.rule == Rule.MONTHLY


@pytest.mark.parametrize("as_utc", [False, True], ids=["paris-now", "utc-now"])
def test_refund_window_ending_in_the_repeated_october_hour_is_compared_as_instants(as_utc):
    # given: the window ends at the first 02:30 of 2026-10-25 (00:30 UTC); the second 02:15
    # (01:15 UTC) comes 45 minutes after it
    started_at = paris(2026, 10, 11, 2, 30)
    now = paris(2026, 10, 25, 2, 15, fold=1)
    now = utc(now) if as_utc else now
    # when
    terms = terms_for(plan=plan_terms("month"), started_at=started_at, now=now,
                      paid=paid_initial(MONTHLY_TOTAL))
    # then
    assert terms.rule == Rule.MONTHLY


def test_a_longer_refund_window_of_the_plan_is_honoured():
    # given
    started_at = paris(2026, 3, 1, 9, 30)
    plan = plan_terms("month", refund_window_days=30)
    paid = paid_initial(MONTHLY_TOTAL)
    # when
    inside = terms_for(plan=plan, started_at=started_at, now=paris(2026, 3, 31, 9, 29, 59),
                       paid=paid, period_index=0)
    outside = terms_for(plan=plan, started_at=started_at, now=paris(2026, 3, 31, 9, 30),
                        paid=paid, period_index=0)
    # then
    assert inside.rule == Rule.REFUND_WINDOW
    assert outside.rule == Rule.MONTHLY


def test_a_refund_window_of_zero_days_never_refunds():
    # given
    started_at = paris(2026, 3, 1, 9, 30)
    # when
    terms = terms_for(plan=plan_terms("month", refund_window_days=0), started_at=started_at,
                      now=started_at, paid=paid_initial(MONTHLY_TOTAL))
    # then
    assert terms.rule == Rule.MONTHLY
    assert terms.refund_cents == 0


# Row 2: within renewal_refund_window_days of the last renewal charge -----------------------


def paid_after_renewal(*, total, charged_at, renewal_refundable=None):
    renewal_refundable = total if renewal_refundable is None else renewal_refundable
    return PaidSoFar(
        subscription_refundable_cents=total + renewal_refundable,
        last_renewal_charged_at=charged_at,
        last_renewal_refundable_cents=renewal_refundable,
        period_total_cents=total,
        period_refundable_cents=renewal_refundable,
    )


@pytest.mark.parametrize("as_utc", [False, True], ids=["paris-now", "utc-now"])
def test_renewal_window_last_second_refunds_that_renewal_immediately(as_utc):
    # given: a yearly plan renewed on 2026-03-10, charged 5 s after the period started;
    # 60 days later on the wall clock is 2026-05-09 09:30:05 CEST
    started_at = paris(2025, 3, 10, 9, 30)
    charged_at = paris(2026, 3, 10, 9, 30, 5)
    plan = plan_terms("year", renewal_refund_window_days=60)
    now = paris(2026, 5, 9, 9, 30, 4)
    now = utc(now) if as_utc else now
    # when
    terms = terms_for(plan=plan, started_at=started_at, now=now, period_index=1,
                      paid=paid_after_renewal(total=ANNUAL_TOTAL, charged_at=charged_at))
    # then
    assert terms == CancellationTerms(
        rule=Rule.RENEWAL_REFUND_WINDOW,
        immediate=True,
        access_ends_at=now,
        refund_scope=RefundScope.LAST_RENEWAL,
        refund_cents=ANNUAL_TOTAL,
    )


def test_renewal_window_first_second_outside_falls_to_the_annual_rule():
    # given
    started_at = paris(2025, 3, 10, 9, 30)
    charged_at = paris(2026, 3, 10, 9, 30, 5)
    plan = plan_terms("year", renewal_refund_window_days=60)
    now = add_days(charged_at, 60, tz=PARIS)
    assert_instant(now, paris(2026, 5, 9, 9, 30, 5))
    # when
    terms = terms_for(plan=plan, started_at=started_at, now=now, period_index=1,
                      paid=paid_after_renewal(total=ANNUAL_TOTAL, charged_at=charged_at))
    # then: slice 1 of the second year (2026-04-10 → 2026-05-10) is the current one
    assert terms.rule == Rule.ANNUAL
    assert terms.immediate is False
    assert_instant(terms.access_ends_at, paris(2026, 5, 10, 9, 30))
    assert terms.refund_cents == 8250  # 99.00 € × 10 / 12


def test_renewal_window_refunds_only_what_remains_of_the_renewal_charge():
    # given: support already refunded 10 € of the renewal
    started_at = paris(2025, 3, 10, 9, 30)
    charged_at = paris(2026, 3, 10, 9, 30)
    plan = plan_terms("year", renewal_refund_window_days=60)
    # when
    terms = terms_for(
        plan=plan, started_at=started_at, now=paris(2026, 3, 20, 9, 30), period_index=1,
        paid=paid_after_renewal(total=ANNUAL_TOTAL, charged_at=charged_at,
                                renewal_refundable=ANNUAL_TOTAL - 1000),
    )
    # then
    assert terms.rule == Rule.RENEWAL_REFUND_WINDOW
    assert terms.refund_cents == ANNUAL_TOTAL - 1000


def test_renewal_window_of_a_monthly_plan():
    # given
    started_at = paris(2026, 1, 10, 9, 30)
    charged_at = paris(2026, 2, 10, 9, 30)
    plan = plan_terms("month", renewal_refund_window_days=7)
    paid = paid_after_renewal(total=MONTHLY_TOTAL, charged_at=charged_at)
    # when
    inside = terms_for(plan=plan, started_at=started_at, now=paris(2026, 2, 17, 9, 29, 59),
                       paid=paid, period_index=1)
    outside = terms_for(plan=plan, started_at=started_at, now=paris(2026, 2, 17, 9, 30),
                        paid=paid, period_index=1)
    # then
    assert inside.rule == Rule.RENEWAL_REFUND_WINDOW
    assert inside.refund_cents == MONTHLY_TOTAL
    assert outside == CancellationTerms(
        rule=Rule.MONTHLY,
        immediate=False,
        access_ends_at=paris(2026, 3, 10, 9, 30),
        refund_scope=RefundScope.NONE,
        refund_cents=0,
    )


def test_renewal_window_of_zero_days_never_refunds_a_renewal():
    # given
    started_at = paris(2025, 3, 10, 9, 30)
    charged_at = paris(2026, 3, 10, 9, 30)
    plan = plan_terms("year", renewal_refund_window_days=0)
    # when
    terms = terms_for(plan=plan, started_at=started_at, now=charged_at, period_index=1,
                      paid=paid_after_renewal(total=ANNUAL_TOTAL, charged_at=charged_at))
    # then
    assert terms.rule == Rule.ANNUAL
    assert terms.refund_cents == 9075  # slice 0 of the second year


def test_renewal_window_needs_a_renewal_charge():
    # given: a renewal window on the plan, but no renewal yet
    started_at = paris(2026, 3, 1, 9, 30)
    plan = plan_terms("month", renewal_refund_window_days=60)
    # when
    terms = terms_for(plan=plan, started_at=started_at, now=paris(2026, 3, 20, 9, 30),
                      paid=paid_initial(MONTHLY_TOTAL))
    # then
    assert terms.rule == Rule.MONTHLY


@pytest.mark.parametrize("stored", [False, True], ids=["paris", "stored-utc"])
def test_renewal_window_across_the_march_change_counts_wall_clock_days(stored):
    # given
    started_at = paris(2025, 3, 10, 9, 30)
    charged_at = paris(2026, 3, 10, 9, 30)
    plan = plan_terms("year", renewal_refund_window_days=60)
    paid = paid_after_renewal(total=ANNUAL_TOTAL, charged_at=charged_at)
    # when: 60 × 24 h − 1 s is already past the window, which lost an hour on 2026-03-29
    absolute = terms_for(plan=plan, started_at=started_at, period_index=1, paid=paid,
                         now=utc(charged_at) + timedelta(days=60) - SECOND, stored=stored)
    wall_clock = terms_for(plan=plan, started_at=started_at, period_index=1, paid=paid,
                           now=paris(2026, 5, 9, 9, 29, 59), stored=stored)
    # then
    assert absolute.rule == Rule.ANNUAL
    assert wall_clock.rule == Rule.RENEWAL_REFUND_WINDOW


# Row 3: monthly plan, otherwise ------------------------------------------------------------


@pytest.mark.parametrize(
    "now",
    [
        paris(2026, 2, 14, 9, 30),  # first second after the refund window
        paris(2026, 2, 20, 18, 0),
        paris(2026, 2, 28, 9, 29, 59),  # last second of the period
    ],
)
def test_monthly_plan_ends_at_the_end_of_the_current_period_without_refund(now):
    # given: anchored on Jan 31, the first period ends on Feb 28
    started_at = paris(2026, 1, 31, 9, 30)
    # when
    terms = terms_for(plan=plan_terms("month"), started_at=started_at, now=now,
                      paid=paid_initial(MONTHLY_TOTAL))
    # then
    assert terms == CancellationTerms(
        rule=Rule.MONTHLY,
        immediate=False,
        access_ends_at=paris(2026, 2, 28, 9, 30),
        refund_scope=RefundScope.NONE,
        refund_cents=0,
    )


def test_monthly_plan_in_a_later_period_ends_at_that_period_end():
    # given
    started_at = paris(2026, 1, 31, 9, 30)
    paid = paid_after_renewal(total=MONTHLY_TOTAL, charged_at=paris(2026, 3, 31, 9, 30))
    # when
    terms = terms_for(plan=plan_terms("month"), started_at=started_at,
                      now=paris(2026, 4, 15, 9, 30), period_index=2, paid=paid)
    # then
    assert terms.rule == Rule.MONTHLY
    assert_instant(terms.access_ends_at, paris(2026, 4, 30, 9, 30))
    assert terms.refund_cents == 0


# Row 4: annual plan, otherwise -------------------------------------------------------------

ANNUAL_ANCHOR = paris(2026, 1, 31, 9, 30)


def annual_terms(now, *, paid=None, anchor=ANNUAL_ANCHOR, stored=False):
    return terms_for(plan=plan_terms("year"), started_at=anchor, now=now,
                     paid=paid or paid_initial(ANNUAL_TOTAL), stored=stored)


@pytest.mark.parametrize(
    ("k", "refund"),
    [(0, 9075), (1, 8250), (5, 4950), (10, 825), (11, 0)],
)
@pytest.mark.parametrize("stored", [False, True], ids=["paris", "stored-utc"])
def test_annual_plan_last_second_of_slice_k(k, refund, stored):
    # given: k full months have elapsed until the last second of slice k
    now = add_months(ANNUAL_ANCHOR, k + 1, tz=PARIS) - SECOND
    # when
    terms = annual_terms(now, stored=stored)
    # then
    assert terms == CancellationTerms(
        rule=Rule.ANNUAL,
        immediate=False,
        access_ends_at=add_months(ANNUAL_ANCHOR, k + 1, tz=PARIS),
        refund_scope=RefundScope.CURRENT_PERIOD if refund else RefundScope.NONE,
        refund_cents=refund,
    )


@pytest.mark.parametrize(
    ("k", "refund"),
    [(1, 8250), (5, 4950), (10, 825), (11, 0)],
)
def test_annual_plan_first_second_of_slice_k(k, refund):
    # given
    now = add_months(ANNUAL_ANCHOR, k, tz=PARIS)
    # when
    terms = annual_terms(now)
    # then
    assert terms.rule == Rule.ANNUAL
    assert_instant(terms.access_ends_at, add_months(ANNUAL_ANCHOR, k + 1, tz=PARIS))
    assert terms.refund_cents == refund


@pytest.mark.parametrize(
    ("now", "access_ends_at", "refund"),
    [
        (paris(2026, 2, 14, 9, 30), paris(2026, 2, 28, 9, 30), 9075),  # after the window
        (paris(2026, 2, 28, 9, 29, 59), paris(2026, 2, 28, 9, 30), 9075),
        (paris(2026, 2, 28, 9, 30), paris(2026, 3, 31, 9, 30), 8250),
        (paris(2026, 3, 31, 9, 29, 59), paris(2026, 3, 31, 9, 30), 8250),
        (paris(2026, 3, 31, 9, 30), paris(2026, 4, 30, 9, 30), 7425),
        (paris(2026, 7, 30, 12, 0), paris(2026, 7, 31, 9, 30), 4950),
        (paris(2026, 12, 31, 9, 30), paris(2027, 1, 31, 9, 30), 0),
        (paris(2027, 1, 31, 9, 29, 59), paris(2027, 1, 31, 9, 30), 0),
    ],
)
def test_annual_plan_slices_follow_the_anchor_clamped_to_month_length(now, access_ends_at,
                                                                      refund):
    # given: anchored on Jan 31, slices end Feb 28, Mar 31, Apr 30, ...
    # when
    terms = annual_terms(now)
    # then
    assert_instant(terms.access_ends_at, access_ends_at)
    assert terms.refund_cents == refund


@pytest.mark.parametrize("stored", [False, True], ids=["paris", "stored-utc"])
def test_annual_slices_across_the_march_change_keep_the_local_time(stored):
    # given: anchored 2026-03-10 09:30 CET; slice 0 ends 2026-04-10 09:30 CEST
    anchor = paris(2026, 3, 10, 9, 30)
    # when
    last_second = annual_terms(paris(2026, 4, 10, 9, 29, 59), anchor=anchor, stored=stored)
    first_second = annual_terms(paris(2026, 4, 10, 9, 30), anchor=anchor, stored=stored)
    absolute_month = annual_terms(utc(anchor) + timedelta(days=31) - SECOND, anchor=anchor,
                                  stored=stored)
    # then
    assert_instant(last_second.access_ends_at, paris(2026, 4, 10, 9, 30))
    assert last_second.refund_cents == 9075
    assert_instant(first_second.access_ends_at, paris(2026, 5, 10, 9, 30))
    assert first_second.refund_cents == 8250
    assert absolute_month.refund_cents == 8250  # 31 × 24 h − 1 s is already in slice 1


def test_annual_refund_rounds_half_up():
    # given: 82.55 € + 20 % = 99.06 €; 11/12 of it is 90.805 €
    paid = paid_initial(9906)
    # when
    terms = annual_terms(paris(2026, 2, 20, 9, 30), paid=paid)
    # then
    assert terms.refund_cents == 9081


def test_annual_refund_is_capped_at_what_remains_refundable_for_the_period():
    # given: support already refunded 20 € of this year's charge
    paid = PaidSoFar(
        subscription_refundable_cents=ANNUAL_TOTAL - 2000,
        last_renewal_charged_at=None,
        last_renewal_refundable_cents=0,
        period_total_cents=ANNUAL_TOTAL,
        period_refundable_cents=ANNUAL_TOTAL - 2000,
    )
    # when
    early = annual_terms(paris(2026, 2, 20, 9, 30), paid=paid)
    later = annual_terms(paris(2026, 7, 30, 9, 30), paid=paid)
    # then
    assert early.refund_cents == ANNUAL_TOTAL - 2000
    assert early.refund_scope == RefundScope.CURRENT_PERIOD
    assert later.refund_cents == 4950


def test_annual_refund_when_nothing_remains_refundable_is_none():
    # given
    paid = PaidSoFar(
        subscription_refundable_cents=0,
        last_renewal_charged_at=None,
        last_renewal_refundable_cents=0,
        period_total_cents=ANNUAL_TOTAL,
        period_refundable_cents=0,
    )
    # when
    terms = annual_terms(paris(2026, 2, 20, 9, 30), paid=paid)
    # then
    assert terms.refund_cents == 0
    assert terms.refund_scope == RefundScope.NONE
    assert_instant(terms.access_ends_at, paris(2026, 2, 28, 9, 30))


def test_annual_plan_in_its_second_year_counts_months_from_the_period_start():
    # given: renewed on 2026-01-31; 2026-07-15 is 5 full months into the second year
    started_at = paris(2025, 1, 31, 9, 30)
    paid = paid_after_renewal(total=ANNUAL_TOTAL, charged_at=paris(2026, 1, 31, 9, 30))
    # when
    terms = terms_for(plan=plan_terms("year"), started_at=started_at, period_index=1,
                      now=paris(2026, 7, 15, 9, 30), paid=paid)
    # then
    assert terms.rule == Rule.ANNUAL
    assert_instant(terms.access_ends_at, paris(2026, 7, 31, 9, 30))
    assert terms.refund_cents == 4950


# commitment_months -------------------------------------------------------------------------


def test_monthly_commitment_ends_at_the_end_of_the_last_committed_period():
    # given: 12 months committed from 2026-01-31
    started_at = paris(2026, 1, 31, 9, 30)
    plan = plan_terms("month", commitment_months=12)
    paid = paid_after_renewal(total=MONTHLY_TOTAL, charged_at=paris(2026, 4, 30, 9, 30))
    # when
    terms = terms_for(plan=plan, started_at=started_at, now=paris(2026, 5, 15, 9, 30),
                      period_index=3, paid=paid)
    # then: the renewals of May 31 to December 31, 2026 remain due
    assert terms == CancellationTerms(
        rule=Rule.COMMITMENT,
        immediate=False,
        access_ends_at=paris(2027, 1, 31, 9, 30),
        refund_scope=RefundScope.NONE,
        refund_cents=0,
        renewals_due=8,
        renewals_due_cents=0,
    )


@pytest.mark.parametrize("stored", [False, True], ids=["paris", "stored-utc"])
def test_monthly_commitment_last_second_then_first_second_after(stored):
    # given
    started_at = paris(2026, 1, 31, 9, 30)
    plan = plan_terms("month", commitment_months=12)
    paid = paid_after_renewal(total=MONTHLY_TOTAL, charged_at=paris(2026, 12, 31, 9, 30))
    paid_next = paid_after_renewal(total=MONTHLY_TOTAL, charged_at=paris(2027, 1, 31, 9, 30))
    # when
    last_second = terms_for(plan=plan, started_at=started_at, stored=stored,
                            now=paris(2027, 1, 31, 9, 29, 59), period_index=11, paid=paid)
    first_second_after = terms_for(plan=plan, started_at=started_at, stored=stored,
                                   now=paris(2027, 1, 31, 9, 30), period_index=12,
                                   paid=paid_next)
    # then
    assert last_second.rule == Rule.COMMITMENT
    assert_instant(last_second.access_ends_at, paris(2027, 1, 31, 9, 30))
    assert first_second_after.rule == Rule.MONTHLY
    assert_instant(first_second_after.access_ends_at, paris(2027, 2, 28, 9, 30))
    assert first_second_after.refund_cents == 0


def test_annual_commitment_gives_no_prorated_refund_inside_it():
    # given: two years committed from 2026-03-10
    started_at = paris(2026, 3, 10, 9, 30)
    plan = plan_terms("year", commitment_months=24)
    # when
    terms = terms_for(plan=plan, started_at=started_at, now=paris(2026, 6, 1, 9, 30),
                      paid=paid_initial(ANNUAL_TOTAL))
    # then
    assert terms.rule == Rule.COMMITMENT
    assert terms.immediate is False
    assert_instant(terms.access_ends_at, paris(2028, 3, 10, 9, 30))
    assert terms.refund_cents == 0
    assert terms.refund_scope == RefundScope.NONE


def test_annual_commitment_ending_mid_period_runs_to_the_end_of_that_period():
    # given: 18 months end on 2027-09-10, inside the second year
    started_at = paris(2026, 3, 10, 9, 30)
    plan = plan_terms("year", commitment_months=18)
    # when
    terms = terms_for(plan=plan, started_at=started_at, now=paris(2026, 6, 1, 9, 30),
                      paid=paid_initial(ANNUAL_TOTAL))
    # then
    assert terms.rule == Rule.COMMITMENT
    assert_instant(terms.access_ends_at, paris(2028, 3, 10, 9, 30))


def test_annual_commitment_over_follows_the_annual_rule():
    # given: one year committed, cancelled 5 full months into the second year
    started_at = paris(2026, 3, 10, 9, 30)
    plan = plan_terms("year", commitment_months=12)
    paid = paid_after_renewal(total=ANNUAL_TOTAL, charged_at=paris(2027, 3, 10, 9, 30))
    # when
    terms = terms_for(plan=plan, started_at=started_at, now=paris(2027, 8, 10, 9, 30),
                      period_index=1, paid=paid)
    # then
    assert terms.rule == Rule.ANNUAL
    assert_instant(terms.access_ends_at, paris(2027, 9, 10, 9, 30))
    assert terms.refund_cents == 4950


def test_commitment_shorter_than_the_current_period_never_shortens_access():
    # given: an annual plan with a 3-month commitment, cancelled in month 2
    started_at = paris(2026, 3, 10, 9, 30)
    plan = plan_terms("year", commitment_months=3)
    # when
    terms = terms_for(plan=plan, started_at=started_at, now=paris(2026, 5, 1, 9, 30),
                      paid=paid_initial(ANNUAL_TOTAL))
    # then: the commitment ends inside the paid year, so the year runs out
    assert terms.rule == Rule.COMMITMENT
    assert_instant(terms.access_ends_at, paris(2027, 3, 10, 9, 30))
    assert terms.refund_cents == 0


def test_refund_window_takes_precedence_over_the_commitment():
    # given
    started_at = paris(2026, 3, 1, 9, 30)
    plan = plan_terms("month", commitment_months=12)
    now = add_days(started_at, 14, tz=PARIS) - SECOND
    # when
    inside = terms_for(plan=plan, started_at=started_at, now=now,
                       paid=paid_initial(MONTHLY_TOTAL))
    outside = terms_for(plan=plan, started_at=started_at, now=now + SECOND,
                        paid=paid_initial(MONTHLY_TOTAL))
    # then
    assert inside.rule == Rule.REFUND_WINDOW
    assert inside.immediate is True
    assert inside.refund_cents == MONTHLY_TOTAL
    assert outside.rule == Rule.COMMITMENT
    assert_instant(outside.access_ends_at, paris(2027, 3, 1, 9, 30))


def test_renewal_window_comes_before_the_commitment_as_in_the_table_order():
    # given: two years committed, the first renewal refunded within 60 days (DESIGN §8 lists
    # the two windows before the commitment rule)
    started_at = paris(2025, 3, 10, 9, 30)
    charged_at = paris(2026, 3, 10, 9, 30)
    plan = plan_terms("year", renewal_refund_window_days=60, commitment_months=24)
    # when
    terms = terms_for(plan=plan, started_at=started_at, now=paris(2026, 3, 20, 9, 30),
                      period_index=1,
                      paid=paid_after_renewal(total=ANNUAL_TOTAL, charged_at=charged_at))
    # then
    assert terms.rule == Rule.RENEWAL_REFUND_WINDOW
    assert terms.refund_cents == ANNUAL_TOTAL


def test_commitment_states_the_renewals_still_due_at_the_price_given():
    # given: 12 months from 2026-01-31, cancelled in the fourth period
    started_at = paris(2026, 1, 31, 9, 30)
    plan = plan_terms("month", commitment_months=12)
    paid = paid_after_renewal(total=MONTHLY_TOTAL, charged_at=paris(2026, 4, 30, 9, 30))
    # when
    terms = terms_for(plan=plan, started_at=started_at, now=paris(2026, 5, 15, 9, 30),
                      period_index=3, paid=paid, renewal_total_cents=840)
    # then: May 31 to December 31, eight renewals
    assert (terms.renewals_due, terms.renewals_due_cents) == (8, 8 * 840)


def test_commitment_in_its_last_period_has_nothing_left_due():
    # given
    started_at = paris(2026, 1, 31, 9, 30)
    plan = plan_terms("month", commitment_months=12)
    paid = paid_after_renewal(total=MONTHLY_TOTAL, charged_at=paris(2026, 12, 31, 9, 30))
    # when
    terms = terms_for(plan=plan, started_at=started_at, now=paris(2027, 1, 15, 9, 30),
                      period_index=11, paid=paid, renewal_total_cents=840)
    # then
    assert terms.rule == Rule.COMMITMENT
    assert (terms.renewals_due, terms.renewals_due_cents) == (0, 0)


# A later effective date chosen by the customer (D215-2) ---------------------------------------


@pytest.mark.parametrize(("effective_at", "refund_cents"), [
    # the earliest date: the annual row as it is (10 months)
    (paris(2026, 4, 10, 9, 30), 8250),
    # inside the seventh slice (10 July – 10 August): six months after it
    (paris(2026, 7, 20, 9, 30), 4950),
    # on a slice boundary: the slice it closes is the last one used
    (paris(2026, 8, 10, 9, 30), 4950),
    (paris(2026, 8, 10, 9, 30) + SECOND, 4125),
    # the end of the period: nothing left
    (paris(2027, 2, 10, 9, 30), 0),
])
def test_a_later_date_on_an_annual_plan_refunds_the_full_months_after_it(effective_at,
                                                                          refund_cents):
    # given: bought 2026-02-10, one full month elapsed
    started_at = paris(2026, 2, 10, 9, 30)
    # when
    terms = terms_for(plan=plan_terms("year"), started_at=started_at,
                      now=paris(2026, 3, 10, 9, 30), paid=paid_initial(ANNUAL_TOTAL),
                      effective_at=effective_at)
    # then
    assert terms.rule == Rule.ANNUAL
    assert terms.immediate is False
    assert_instant(terms.access_ends_at, effective_at)
    assert terms.refund_cents == refund_cents
    assert terms.refund_scope == (RefundScope.CURRENT_PERIOD if refund_cents
                                  else RefundScope.NONE)


def test_a_later_date_in_the_refund_window_forgoes_the_full_refund():
    # given: monthly, 3 days old: leaving now refunds everything
    started_at = paris(2026, 3, 7, 9, 30)
    now = paris(2026, 3, 10, 9, 30)
    # when
    now_terms = terms_for(plan=plan_terms("month"), started_at=started_at, now=now,
                          paid=paid_initial(MONTHLY_TOTAL))
    later = terms_for(plan=plan_terms("month"), started_at=started_at, now=now,
                      paid=paid_initial(MONTHLY_TOTAL), effective_at=paris(2026, 3, 20, 9, 30))
    # then
    assert (now_terms.rule, now_terms.refund_cents) == (Rule.REFUND_WINDOW, MONTHLY_TOTAL)
    assert later == CancellationTerms(Rule.MONTHLY, False, paris(2026, 3, 20, 9, 30),
                                      RefundScope.NONE, 0)


def test_a_date_after_the_current_period_is_not_a_possible_effective_date():
    # given
    started_at = paris(2026, 2, 10, 9, 30)
    # when / then
    with pytest.raises(ValueError):
        terms_for(plan=plan_terms("year"), started_at=started_at,
                  now=paris(2026, 3, 10, 9, 30), paid=paid_initial(ANNUAL_TOTAL),
                  effective_at=paris(2027, 2, 10, 9, 30) + SECOND)


def test_the_latest_effective_date_is_the_period_end_or_a_commitments_end():
    # given
    annual = CancellationTerms(Rule.ANNUAL, False, paris(2026, 4, 10, 9, 30),
                               RefundScope.NONE, 0)
    committed = CancellationTerms(Rule.COMMITMENT, False, paris(2027, 1, 31, 9, 30),
                                  RefundScope.NONE, 0)
    # then
    assert_instant(latest_effective_at(terms=annual,
                                       current_period_end=paris(2027, 2, 10, 9, 30)),
                   paris(2027, 2, 10, 9, 30))
    assert_instant(latest_effective_at(terms=committed,
                                       current_period_end=paris(2026, 5, 31, 9, 30)),
                   paris(2027, 1, 31, 9, 30))


@pytest.mark.parametrize(("day", "expected"), [
    (date(2026, 3, 10), paris(2026, 3, 10, 14, 5)),  # today: the earliest instant itself
    (date(2026, 3, 11), paris(2026, 3, 11, 9, 30)),  # later: at the period's time of day
    (date(2026, 3, 29), paris(2026, 3, 29, 9, 30)),  # across the change to summer time
    (date(2026, 4, 7), paris(2026, 4, 7, 9, 30)),  # the last day: the period's end
    (date(2026, 4, 8), None),
    (date(2026, 3, 9), None),
])
def test_an_effective_day_becomes_an_instant_inside_the_bounds(day, expected):
    # given: leaving now (14 h 05) is possible, or any day up to the period's end
    earliest, latest = paris(2026, 3, 10, 14, 5), utc(paris(2026, 4, 7, 9, 30))
    # when
    instant = effective_at_on(day, earliest=earliest, latest=latest, tz=PARIS)
    # then
    if expected is None:
        assert instant is None
    else:
        assert_instant(instant, expected)


# Loi Chatel: free to leave, the unused days refunded ------------------------------------------


def test_free_to_leave_under_the_loi_chatel_ends_now_with_the_unused_days_refunded():
    # given: renewed on 2027-03-10 (a 366-day year), cancelled on 2027-03-20 at 15 h
    started_at = paris(2026, 3, 10, 9, 30)
    paid = paid_after_renewal(total=ANNUAL_TOTAL, charged_at=paris(2027, 3, 10, 9, 30))
    now = paris(2027, 3, 20, 15, 0)
    # when
    terms = terms_for(plan=plan_terms("year"), started_at=started_at, now=now,
                      period_index=1, paid=paid, chatel_free_exit=True)
    # then: 10 days used (10 to 20 March), 355 of 366 unused
    assert terms == CancellationTerms(Rule.CHATEL, True, now, RefundScope.CURRENT_PERIOD,
                                      round(9900 * 355 / 366))
    assert terms.refund_cents == 9602


@pytest.mark.parametrize(("now", "unused_days"), [
    (paris(2026, 4, 10, 9, 30), 29),  # the first instant: that day is used
    (paris(2026, 5, 9, 23, 59), 0),  # the last full day
    (paris(2026, 5, 10, 9, 0), 0),  # the morning of the end
])
def test_loi_chatel_refund_counts_the_days_after_the_day_it_ends(now, unused_days):
    # given: a monthly contract gone on after a one-month commitment, renewed on 10 April
    started_at = paris(2026, 3, 10, 9, 30)
    plan = plan_terms("month", commitment_months=1)
    paid = paid_after_renewal(total=MONTHLY_TOTAL, charged_at=paris(2026, 4, 10, 9, 30))
    # when
    terms = terms_for(plan=plan, started_at=started_at, now=now, period_index=1, paid=paid,
                      chatel_free_exit=True)
    # then
    assert terms.rule == Rule.CHATEL
    assert terms.refund_cents == round(MONTHLY_TOTAL * unused_days / 30)


def test_loi_chatel_refund_is_capped_at_what_remains_refundable():
    # given: support already refunded all but 1 € of the renewal
    started_at = paris(2026, 3, 10, 9, 30)
    paid = paid_after_renewal(total=ANNUAL_TOTAL, charged_at=paris(2027, 3, 10, 9, 30),
                              renewal_refundable=100)
    # when
    terms = terms_for(plan=plan_terms("year"), started_at=started_at,
                      now=paris(2027, 3, 20, 9, 30), period_index=1, paid=paid,
                      chatel_free_exit=True)
    # then
    assert terms.refund_cents == 100


def test_loi_chatel_later_date_refunds_the_days_after_it():
    # given
    started_at = paris(2026, 3, 10, 9, 30)
    paid = paid_after_renewal(total=ANNUAL_TOTAL, charged_at=paris(2027, 3, 10, 9, 30))
    # when: the customer keeps it until 10 June 2027
    terms = terms_for(plan=plan_terms("year"), started_at=started_at,
                      now=paris(2027, 3, 20, 9, 30), period_index=1, paid=paid,
                      chatel_free_exit=True, effective_at=paris(2027, 6, 10, 9, 30))
    # then: 10 June 2027 to 10 March 2028 is 274 days, 273 after 10 June
    assert (terms.rule, terms.immediate) == (Rule.CHATEL, False)
    assert terms.refund_cents == round(9900 * 273 / 366)


def test_the_renewal_refund_window_still_comes_before_the_loi_chatel():
    # given: a 60-day renewal window gives the whole renewal back
    started_at = paris(2026, 3, 10, 9, 30)
    paid = paid_after_renewal(total=ANNUAL_TOTAL, charged_at=paris(2027, 3, 10, 9, 30))
    # when
    terms = terms_for(plan=plan_terms("year", renewal_refund_window_days=60),
                      started_at=started_at, now=paris(2027, 3, 20, 9, 30), period_index=1,
                      paid=paid, chatel_free_exit=True)
    # then
    assert (terms.rule, terms.refund_cents) == (Rule.RENEWAL_REFUND_WINDOW, ANNUAL_TOTAL)


def test_the_chatel_window_is_three_months_to_one_month_before():
    # when
    start, end = chatel_notice_window(renews_at=paris(2027, 5, 31, 9, 30), tz=PARIS)
    # then: clamped to the months' lengths
    assert_instant(start, paris(2027, 2, 28, 9, 30))
    assert_instant(end, paris(2027, 4, 30, 9, 30))
