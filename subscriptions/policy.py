"""What cancelling does, by when it happens (DESIGN §8), and what a withdrawal does: pure
functions of their inputs."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from billing.amounts import annual_remaining_months_refund
from subscriptions.periods import add_days, add_months, period_at


class Rule:
    WITHDRAWAL = "withdrawal"
    REFUND_WINDOW = "refund_window"
    RENEWAL_REFUND_WINDOW = "renewal_refund_window"
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
) -> CancellationTerms:
    # Compared as instants: two datetimes sharing a tzinfo compare by wall clock, ignoring fold.
    instant = now.astimezone(UTC)
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
    commitment_end = add_months(started_at, plan.commitment_months, tz=tz)
    if plan.commitment_months and instant < commitment_end:
        last_committed_period = period_at(
            anchor=billing_anchor,
            interval=plan.interval,
            instant=commitment_end - timedelta(microseconds=1),
            tz=tz,
        )
        return CancellationTerms(
            Rule.COMMITMENT, False, max(last_committed_period.end, current_period_end),
            RefundScope.NONE, 0,
        )
    if plan.interval == "month":
        return CancellationTerms(Rule.MONTHLY, False, current_period_end, RefundScope.NONE, 0)
    # Months are counted from the period's start; support's extension moves the anchor off
    # the grid the period was invoiced on.
    on_grid = period_at(anchor=billing_anchor, interval=plan.interval,
                        instant=current_period_start, tz=tz).start == current_period_start
    slices_anchor = billing_anchor if on_grid else current_period_start
    slice_now = period_at(anchor=slices_anchor, interval="month", instant=now, tz=tz)
    first_slice = period_at(
        anchor=slices_anchor, interval="month", instant=current_period_start, tz=tz
    )
    refund_cents = annual_remaining_months_refund(
        annual_total_cents=paid.period_total_cents,
        full_months_elapsed=slice_now.index - first_slice.index,
        refundable_cents=paid.period_refundable_cents,
    )
    # min(): while a renewal is unpaid (past due), "now" is already past the paid period.
    return CancellationTerms(
        Rule.ANNUAL, False, min(slice_now.end, current_period_end),
        RefundScope.CURRENT_PERIOD if refund_cents else RefundScope.NONE, refund_cents,
    )


def withdrawal_terms(*, paid: PaidSoFar, now: datetime) -> CancellationTerms:
    """A withdrawal (droit de rétractation, DESIGN §8) ends the contract now and refunds
    everything paid for it, as the 14-day row of the cancellation table does, whatever the
    plan's own refund window: the law promises it for the whole withdrawal period."""
    return CancellationTerms(Rule.WITHDRAWAL, True, now, RefundScope.EVERYTHING_PAID,
                             paid.subscription_refundable_cents)
