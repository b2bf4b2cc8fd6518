"""What cancelling does, by when it happens (DESIGN §8), and what a withdrawal does: pure
functions of their inputs.

The effective date (D215-2): by default the earliest the table of §8 allows; the customer may
choose a later one, up to the end of the current period. A later date gives access until it
and the refund of the ordinary row for that date: on an annual plan the full monthly slices
after the one the date falls in, on a monthly plan nothing; the refund windows' 100 % is for
leaving now, and is not carried to a later date. For a subscription free to leave under the
Loi Chatel, the days of the period after the date.

Loi Chatel (L215-1): without a renewal notice sent in time, the customer may end the contract
at any time after the renewal at no cost; the unused part of the paid period is refunded, per
day: of the period's N local calendar days, those after the day the contract ends (that day
counts as used), ``round_half_up(paid × unused days / N)``, capped at what is refundable."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from billing.amounts import annual_remaining_months_refund, unused_days_refund
from subscriptions.periods import add_days, add_months, period_at

# Loi Chatel (article L215-1 du Code de la consommation): the notice must reach the customer
# at the earliest 3 months and at the latest 1 month before the renewal date.
CHATEL_EARLIEST_MONTHS = 3
CHATEL_LATEST_MONTHS = 1
_JUST_BEFORE = timedelta(microseconds=1)


class Rule:
    WITHDRAWAL = "withdrawal"
    REFUND_WINDOW = "refund_window"
    RENEWAL_REFUND_WINDOW = "renewal_refund_window"
    CHATEL = "chatel"
    COMMITMENT = "commitment"
    MONTHLY = "monthly"
    ANNUAL = "annual"


class RefundScope:
    NONE = "none"
    EVERYTHING_PAID = "everything_paid"
    LAST_RENEWAL = "last_renewal"
    CURRENT_PERIOD = "current_period"


@dataclass(frozen=True)
class CancellationTerms:
    rule: str
    immediate: bool
    access_ends_at: datetime
    refund_scope: str
    refund_cents: int
    # Inside a commitment: the renewals still charged until access ends, and their total.
    renewals_due: int = 0
    renewals_due_cents: int = 0


@dataclass(frozen=True)
class PlanTerms:
    interval: str
    refund_window_days: int
    renewal_refund_window_days: int
    commitment_months: int


@dataclass(frozen=True)
class PaidSoFar:
    """What was paid and is still refundable, in cents."""

    subscription_refundable_cents: int
    last_renewal_charged_at: datetime | None
    last_renewal_refundable_cents: int
    period_total_cents: int
    period_refundable_cents: int


def cancellation_terms(
    *,
    plan: PlanTerms,
    paid: PaidSoFar,
    started_at: datetime,
    billing_anchor: datetime,
    current_period_start: datetime,
    current_period_end: datetime,
    now: datetime,
    tz: ZoneInfo,
    chatel_free_exit: bool = False,
    renewal_total_cents: int = 0,
    effective_at: datetime | None = None,
) -> CancellationTerms:
    """The terms of a cancellation confirmed at ``now``, taking effect at the earliest date
    the table allows, or at ``effective_at`` if the customer chose a later one (at most
    ``latest_effective_at``). ``renewal_total_cents``: the price of each renewal still due
    inside a commitment."""
    periods = _Periods(billing_anchor, current_period_start, current_period_end, plan.interval,
                       tz)
    earliest = _earliest_terms(plan=plan, paid=paid, started_at=started_at, periods=periods,
                               now=now, tz=tz, chatel_free_exit=chatel_free_exit,
                               renewal_total_cents=renewal_total_cents)
    if effective_at is None or _utc(effective_at) <= _utc(earliest.access_ends_at):
        return earliest
    if _utc(effective_at) > _utc(latest_effective_at(terms=earliest,
                                                     current_period_end=current_period_end)):
        raise ValueError(f"effective date {effective_at.isoformat()} after the current period")
    if chatel_free_exit:
        rule, refund_cents = Rule.CHATEL, _unused_days_refund(paid, periods, effective_at, tz)
    elif plan.interval == "year":
        # The slice the date falls in is used; a date on a slice boundary ends the one before.
        rule = Rule.ANNUAL
        refund_cents = _annual_refund(paid, periods, at=effective_at - _JUST_BEFORE)
    else:
        rule, refund_cents = Rule.MONTHLY, 0
    return CancellationTerms(
        rule, False, effective_at,
        RefundScope.CURRENT_PERIOD if refund_cents else RefundScope.NONE, refund_cents,
    )


def latest_effective_at(*, terms: CancellationTerms, current_period_end: datetime) -> datetime:
    """The latest effective date a customer may choose: the end of the current period (or the
    earliest date, when that is later: a commitment)."""
    return max(terms.access_ends_at, current_period_end, key=_utc)


def effective_at_on(day: date, *, earliest: datetime, latest: datetime,
                    tz: ZoneInfo) -> datetime | None:
    """The instant a résiliation chosen for the local ``day`` takes effect, or None if that
    day is outside [earliest, latest]: the earliest instant on its own day, otherwise the time
    of day of the period's end (the latest instant on the last day)."""
    first, last = earliest.astimezone(tz).date(), latest.astimezone(tz).date()
    if day == first:
        return earliest
    if not first < day <= last:
        return None
    return add_days(latest, -(last - day).days, tz=tz)


def chatel_notice_window(*, renews_at: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the Loi Chatel notice: between 3 months and 1 month before the renewal
    date, counted on the local calendar from that date."""
    return (add_months(renews_at, -CHATEL_EARLIEST_MONTHS, tz=tz),
            add_months(renews_at, -CHATEL_LATEST_MONTHS, tz=tz))


def commitment_end(*, plan: PlanTerms, started_at: datetime, billing_anchor: datetime,
                   tz: ZoneInfo) -> datetime | None:
    """When the last committed period ends, or None without a commitment."""
    if not plan.commitment_months:
        return None
    end = add_months(started_at, plan.commitment_months, tz=tz)
    return period_at(anchor=billing_anchor, interval=plan.interval, instant=end - _JUST_BEFORE,
                     tz=tz).end


@dataclass(frozen=True)
class _Periods:
    anchor: datetime
    start: datetime
    end: datetime
    interval: str
    tz: ZoneInfo


def _utc(instant: datetime) -> datetime:
    # Compared as instants: two datetimes sharing a tzinfo compare by wall clock, ignoring fold.
    return instant.astimezone(UTC)


def _earliest_terms(*, plan, paid, started_at, periods, now, tz, chatel_free_exit,
                    renewal_total_cents) -> CancellationTerms:
    instant = _utc(now)
    if instant < add_days(started_at, plan.refund_window_days, tz=tz):
        return CancellationTerms(
            Rule.REFUND_WINDOW, True, now, RefundScope.EVERYTHING_PAID,
            paid.subscription_refundable_cents,
        )
    if paid.last_renewal_charged_at is not None and instant < add_days(
        paid.last_renewal_charged_at, plan.renewal_refund_window_days, tz=tz
    ):
        return CancellationTerms(
            Rule.RENEWAL_REFUND_WINDOW, True, now, RefundScope.LAST_RENEWAL,
            paid.last_renewal_refundable_cents,
        )
    if chatel_free_exit:
        refund_cents = _unused_days_refund(paid, periods, now, tz)
        return CancellationTerms(
            Rule.CHATEL, True, now,
            RefundScope.CURRENT_PERIOD if refund_cents else RefundScope.NONE, refund_cents,
        )
    if plan.commitment_months and instant < add_months(started_at, plan.commitment_months,
                                                       tz=tz):
        ends_at = max(commitment_end(plan=plan, started_at=started_at,
                                     billing_anchor=periods.anchor, tz=tz),
                      periods.end, key=_utc)
        renewals_due = _renewals_before(periods, ends_at)
        return CancellationTerms(
            Rule.COMMITMENT, False, ends_at, RefundScope.NONE, 0,
            renewals_due=renewals_due, renewals_due_cents=renewals_due * renewal_total_cents,
        )
    if plan.interval == "month":
        return CancellationTerms(Rule.MONTHLY, False, periods.end, RefundScope.NONE, 0)
    refund_cents = _annual_refund(paid, periods, at=now)
    # min(): while a renewal is unpaid (past due), "now" is already past the paid period.
    return CancellationTerms(
        Rule.ANNUAL, False, min(_slice_at(periods, now).end, periods.end, key=_utc),
        RefundScope.CURRENT_PERIOD if refund_cents else RefundScope.NONE, refund_cents,
    )


def withdrawal_terms(*, paid: PaidSoFar, now: datetime) -> CancellationTerms:
    """A withdrawal (droit de rétractation, DESIGN §8) ends the contract now and refunds
    everything paid for it, as the 14-day row of the cancellation table does, whatever the
    plan's own refund window: the law promises it for the whole withdrawal period."""
    return CancellationTerms(Rule.WITHDRAWAL, True, now, RefundScope.EVERYTHING_PAID,
                             paid.subscription_refundable_cents)


def _slices_anchor(periods: _Periods) -> datetime:
    # Months are counted from the period's start; support's extension moves the anchor off
    # the grid the period was invoiced on.
    on_grid = period_at(anchor=periods.anchor, interval=periods.interval,
                        instant=periods.start, tz=periods.tz).start == periods.start
    return periods.anchor if on_grid else periods.start


def _slice_at(periods: _Periods, instant: datetime):
    return period_at(anchor=_slices_anchor(periods), interval="month", instant=instant,
                     tz=periods.tz)


def _annual_refund(paid: PaidSoFar, periods: _Periods, *, at: datetime) -> int:
    """DESIGN §8, annual row: the full months after the monthly slice ``at`` falls in."""
    first_slice = _slice_at(periods, periods.start)
    return annual_remaining_months_refund(
        annual_total_cents=paid.period_total_cents,
        full_months_elapsed=_slice_at(periods, at).index - first_slice.index,
        refundable_cents=paid.period_refundable_cents,
    )


def _unused_days_refund(paid: PaidSoFar, periods: _Periods, ends_at: datetime, tz) -> int:
    first_day, last_day = (periods.start.astimezone(tz).date(),
                           periods.end.astimezone(tz).date())
    period_days = (last_day - first_day).days
    unused_days = (last_day - ends_at.astimezone(tz).date()).days - 1
    return unused_days_refund(
        paid_cents=paid.period_total_cents, period_days=period_days,
        unused_days=max(0, min(unused_days, period_days)),
        refundable_cents=paid.period_refundable_cents,
    )


def _renewals_before(periods: _Periods, ends_at: datetime) -> int:
    """How many periods start from the current period's end until ``ends_at``: the renewals
    still charged (the first one, if unpaid, included)."""
    if _utc(ends_at) <= _utc(periods.end):
        return 0
    first = period_at(anchor=periods.anchor, interval=periods.interval, instant=periods.end,
                      tz=periods.tz)
    last = period_at(anchor=periods.anchor, interval=periods.interval,
                     instant=ends_at - _JUST_BEFORE, tz=periods.tz)
    return last.index - first.index + 1
