"""Reads of the subscriptions app."""

from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Prefetch, Q, Sum
from django.db.models.functions import Coalesce

from billing.amounts import price_paid_for_period_cents
from billing.models import Charge, Invoice, Refund
from subscriptions.models import Channel, Plan, Status, Subscription, SubscriptionEvent
from subscriptions.periods import whole_seconds
from subscriptions.policy import (
    CancellationTerms,
    PaidSoFar,
    PlanTerms,
    cancellation_terms,
    withdrawal_terms,
)
from subscriptions.withdrawal_period import withdrawal_last_day


def business_tz() -> ZoneInfo:
    return ZoneInfo(settings.BUSINESS_TIME_ZONE)


def lock_subscription(pk) -> Subscription:
    """Lock the subscription row, then read it with its plans and customer.

    Locked alone: PostgreSQL re-checks a row it waited for against the joined rows it read
    before waiting, so locking through a join on a plan that a plan change replaced meanwhile
    would not find the row. Read after the lock, it is the committed state."""
    Subscription.objects.select_for_update().filter(pk=pk).values_list("pk", flat=True).get()
    return Subscription.objects.select_related("plan", "customer", "pending_plan").get(pk=pk)


# Renews here at the end of its period: bought here (other channels are billed by the store or
# partner), active, and auto-renewal on or a commitment still running.
RENEWING = Q(channel=Channel.DIRECT, status=Status.ACTIVE) & (
    Q(auto_renew=True) | Q(ends_at__gt=F("current_period_end"))
)


def renewals_due(*, now):
    return Subscription.objects.filter(RENEWING, current_period_end__lte=now)


def renewal_due(subscription, *, now) -> bool:
    return renewals_due(now=now).filter(pk=subscription.pk).exists()


def succeeded_charges_with_refundable(*, subscription):
    """The subscription's paid charges, each annotated with ``refundable_cents``."""
    committed = Coalesce(
        Sum("refunds__amount_cents", filter=~Q(refunds__status=Refund.Status.FAILED)), 0
    )
    charges = (
        Charge.objects.filter(invoice__subscription=subscription, status=Charge.Status.SUCCEEDED)
        .select_related("invoice")
        .annotate(committed_refunds=committed)
        .order_by("created_at", "id")
    )
    for charge in charges:
        charge.refundable_cents = charge.amount_cents - charge.committed_refunds
    return list(charges)


def paid_for_current_period(subscription, charge) -> bool:
    """Its invoice covers part of the current period: the period's own invoice and any
    proration (upgrade), also once support extended the period."""
    return (
        charge.invoice.period_start < subscription.current_period_end
        and charge.invoice.period_end > subscription.current_period_start
    )


def paid_so_far(*, subscription, charges) -> PaidSoFar:
    this_period = [c for c in charges if paid_for_current_period(subscription, c)]
    # The renewal refund window is about the renewal that pays for the current period, as
    # long as it is all that was paid for it (not after an upgrade or a switch to annual).
    renewals = [c for c in this_period if c.invoice.kind == Invoice.Kind.RENEWAL]
    if len(renewals) != len(this_period):
        renewals = []
    return PaidSoFar(
        subscription_refundable_cents=sum(c.refundable_cents for c in charges),
        last_renewal_charged_at=renewals[-1].settled_at if renewals else None,
        last_renewal_refundable_cents=renewals[-1].refundable_cents if renewals else 0,
        period_total_cents=_price_paid_for_period(subscription, this_period),
        period_refundable_cents=sum(c.refundable_cents for c in this_period),
    )


def _price_paid_for_period(subscription, charges) -> int:
    """The remaining months are refunded at the price invoiced for this period (after an
    upgrade, the higher one), never at the plan's or the country's price of today: the
    period's own invoice, plus the prorations running to its end (support may have extended
    the period beyond it)."""
    own = next((c.invoice for c in charges
                if c.invoice.period_start == subscription.current_period_start), None)
    if own is None:
        return 0
    parts = [
        (c.invoice.total_cents, whole_seconds(c.invoice.period_start, c.invoice.period_end))
        for c in charges
        if c.invoice.period_end == own.period_end and c.invoice.period_start >= own.period_start
    ]
    return price_paid_for_period_cents(
        parts=parts, period_seconds=whole_seconds(own.period_start, own.period_end)
    )


def cancellation_quote(*, subscription, now, charges=None) -> CancellationTerms:
    plan = subscription.plan
    if charges is None:
        charges = succeeded_charges_with_refundable(subscription=subscription)
    return cancellation_terms(
        plan=PlanTerms(
            interval=plan.interval,
            refund_window_days=plan.refund_window_days,
            renewal_refund_window_days=plan.renewal_refund_window_days,
            commitment_months=plan.commitment_months,
        ),
        paid=paid_so_far(subscription=subscription, charges=charges),
        started_at=subscription.started_at,
        billing_anchor=subscription.billing_anchor,
        current_period_start=subscription.current_period_start,
        current_period_end=subscription.current_period_end,
        now=now,
        tz=business_tz(),
    )


def withdrawal_quote(*, subscription, now, charges=None) -> CancellationTerms:
    """What withdrawing now does: the end now and the refund of everything paid."""
    if charges is None:
        charges = succeeded_charges_with_refundable(subscription=subscription)
    return withdrawal_terms(paid=paid_so_far(subscription=subscription, charges=charges), now=now)


def withdrawal_until(subscription):
    """The last day the customer may withdraw (inclusive), as the pages say it."""
    return withdrawal_last_day(concluded_at=subscription.started_at, tz=business_tz())


def withdrawal_events(*, customer):
    """The customer's withdrawal statements (their acknowledgements), latest first."""
    return SubscriptionEvent.objects.filter(
        kind=SubscriptionEvent.Kind.WITHDRAWN, subscription__customer=customer
    ).select_related("subscription__plan").order_by("-at", "-id")


def cancellation_refunded(*, subscription) -> bool:
    """Was a refund paid (or is one on its way) for the current cancellation?"""
    if subscription.cancel_requested_at is None:
        return False
    return (
        Refund.objects.filter(
            charge__invoice__subscription=subscription,
            reason=Refund.Reason.CANCELLATION,
            created_at__gte=subscription.cancel_requested_at,
        )
        .exclude(status=Refund.Status.FAILED)
        .exists()
    )


def sellable_plans():
    return Plan.objects.filter(is_active=True).order_by("tier", "interval")


def customer_subscriptions(*, customer):
    """Everything "Abonnement et facturation" shows, in a fixed number of queries."""
    invoices = Invoice.objects.filter(status__in=[Invoice.Status.OPEN, Invoice.Status.PAID]
                                      ).prefetch_related(
        "credit_notes"
    ).order_by("-issued_at", "-id")
    return (
        Subscription.objects.filter(customer=customer)
        .select_related("plan", "pending_plan")
        .prefetch_related(Prefetch("invoices", queryset=invoices))
        .order_by("-started_at")
    )


def open_dispute_events():
    """The "litige ouvert" events (a payment contested at the bank, DESIGN §13) that no
    "litige clos" event of the same dispute followed."""
    closed = SubscriptionEvent.objects.filter(
        kind=SubscriptionEvent.Kind.DISPUTE_CLOSED, subscription=OuterRef("subscription"),
        data__dispute=OuterRef("data__dispute"),
    )
    return SubscriptionEvent.objects.filter(kind=SubscriptionEvent.Kind.DISPUTE_OPENED).exclude(
        Exists(closed))
