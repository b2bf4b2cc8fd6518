"""Reads of the subscriptions app."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Prefetch, Q, Sum
from django.db.models.functions import Coalesce

from billing.amounts import price_paid_for_period_cents
from billing.models import Charge, Invoice, Refund
from billing.selectors import plan_price
from notifications.models import OutboxEmail
from subscriptions.models import (
    REFERENCE_PREFIX,
    RUNNING_STATUSES,
    Channel,
    Interval,
    Plan,
    Status,
    Subscription,
    SubscriptionEvent,
)
from subscriptions.periods import whole_seconds
from subscriptions.policy import (
    CancellationTerms,
    PaidSoFar,
    PlanTerms,
    RefundScope,
    Rule,
    cancellation_terms,
    chatel_notice_window,
    commitment_end,
    latest_effective_at,
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


def _plan_terms(plan) -> PlanTerms:
    return PlanTerms(
        interval=plan.interval,
        refund_window_days=plan.refund_window_days,
        renewal_refund_window_days=plan.renewal_refund_window_days,
        commitment_months=plan.commitment_months,
    )


def cancellation_quote(*, subscription, now, charges=None, effective_at=None
                       ) -> CancellationTerms:
    """What cancelling at ``now`` does, taking effect at the earliest date, or at the later
    ``effective_at`` the customer chose (see ``cancellation_effective_bounds``)."""
    plan = subscription.plan
    if charges is None:
        charges = succeeded_charges_with_refundable(subscription=subscription)
    renewal_total_cents = plan_price(
        plan=subscription.pending_plan or plan, customer=subscription.customer
    ).total_cents if plan.commitment_months else 0
    return cancellation_terms(
        plan=_plan_terms(plan),
        paid=paid_so_far(subscription=subscription, charges=charges),
        started_at=subscription.started_at,
        billing_anchor=subscription.billing_anchor,
        current_period_start=subscription.current_period_start,
        current_period_end=subscription.current_period_end,
        now=now,
        tz=business_tz(),
        chatel_free_exit=chatel_free_exit(subscription=subscription, now=now),
        renewal_total_cents=renewal_total_cents,
        effective_at=effective_at,
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


def cancellation_effective_bounds(*, subscription, quote) -> tuple[datetime, datetime]:
    """The effective dates a customer may choose (D215-2), from the earliest ``quote``."""
    return quote.access_ends_at, latest_effective_at(
        terms=quote, current_period_end=subscription.current_period_end)


# Loi Chatel (L215-1): the renewal notice, and what its absence allows.

CHATEL_NOTICE = "annual_renewal_notice"


def chatel_notice_occasion(*, subscription_id: int, renews_at: datetime,
                           commitment: bool) -> str:
    """The outbox occasion of the notice for the renewal at ``renews_at`` (the reminder scan
    computes the same in SQL): an annual renewal, or the end of a monthly commitment, after
    which the contract goes on tacitly."""
    if commitment:
        return f"subscription-{subscription_id}-commitment-end"
    return f"subscription-{subscription_id}-renewal-{renews_at.astimezone(UTC):%Y%m%dT%H%MZ}"


def chatel_renewal(subscription) -> tuple[datetime, bool] | None:
    """The tacit renewal the current period follows from, when the Loi Chatel covers it:
    ``(renewal date, is the end of a monthly commitment)``, or None.

    An annual plan's renewal (a paid renewal invoice starts the current period, outside any
    commitment), or the end of a monthly plan's commitment once a renewal carried the
    contract past it. Not the first period, a restart ("Renouveler") or an interval switch:
    those were paid by the customer's own act."""
    if subscription.channel != Channel.DIRECT or subscription.status not in RUNNING_STATUSES:
        return None
    plan, tz = subscription.plan, business_tz()
    committed_until = commitment_end(plan=_plan_terms(plan), started_at=subscription.started_at,
                                     billing_anchor=subscription.billing_anchor, tz=tz)
    if plan.interval == Interval.YEAR:
        renews_at, commitment = subscription.current_period_start, False
        if committed_until is not None and renews_at < committed_until:
            return None
    elif committed_until is not None and subscription.current_period_start >= committed_until:
        renews_at, commitment = committed_until, True
    else:
        return None
    renewed = subscription.invoices.filter(kind=Invoice.Kind.RENEWAL, status=Invoice.Status.PAID,
                                           period_start=renews_at).exists()
    return (renews_at, commitment) if renewed else None


def chatel_notice_sent(*, subscription, renews_at: datetime, commitment: bool) -> bool:
    """Was the notice for this renewal queued between 3 months and 1 month before it (and
    not given up by the outbox)? The outbox row is the record of the send."""
    start, end = chatel_notice_window(renews_at=renews_at, tz=business_tz())
    occasion = chatel_notice_occasion(subscription_id=subscription.pk, renews_at=renews_at,
                                      commitment=commitment)
    return OutboxEmail.objects.filter(
        occasion_key=f"{CHATEL_NOTICE}:{occasion}", created_at__gte=start, created_at__lt=end,
    ).exclude(status=OutboxEmail.Status.FAILED).exists()


def chatel_free_exit(*, subscription, now) -> bool:
    """L215-1, third paragraph: renewed tacitly without the notice sent in time, the customer
    may end the contract at any time, at no cost, with the unused part refunded within 30
    days. The one place that decides it; the cancellation terms and the pages ask it."""
    renewal = chatel_renewal(subscription)
    if renewal is None or now < renewal[0]:
        return False
    renews_at, commitment = renewal
    return not chatel_notice_sent(subscription=subscription, renews_at=renews_at,
                                  commitment=commitment)


# The acknowledgement of a résiliation (D215-3): what the request said and what it does.


@dataclass(frozen=True)
class Acknowledgement:
    received_at: datetime
    name: str
    email: str
    customer_number: str
    reference: str
    plan_name: str
    features: list
    currency: str
    terms: CancellationTerms


def cancellation_acknowledgement(*, subscription) -> Acknowledgement | None:
    """The acknowledgement of the subscription's current cancellation (none once reactivated
    or restarted), from its event."""
    if subscription.cancel_requested_at is None:
        return None
    event = subscription.events.filter(
        kind=SubscriptionEvent.Kind.CANCELLED, at=subscription.cancel_requested_at,
    ).order_by("-id").first()
    if event is None:
        return None
    return acknowledgement_from_event(event, subscription=subscription)


def acknowledgement_from_event(event, *, subscription) -> Acknowledgement:
    data, customer = event.data, subscription.customer
    request = data.get("request", {})
    rule = data.get("rule", "")
    refund_cents = event.amount_cents or 0
    return Acknowledgement(
        received_at=event.at,
        name=request.get("name") or customer.get_full_name() or customer.email,
        email=request.get("email") or customer.email,
        customer_number=request.get("customer_number") or customer.customer_number,
        reference=request.get("reference") or subscription.reference,
        plan_name=data.get("plan_name") or subscription.plan.name,
        features=data.get("features", subscription.plan.features),
        currency=subscription.plan.currency,
        terms=CancellationTerms(
            rule=rule,
            immediate=data.get("immediate", rule in (Rule.REFUND_WINDOW,
                                                     Rule.RENEWAL_REFUND_WINDOW)),
            access_ends_at=datetime.fromisoformat(data["ends_at"]),
            refund_scope=data.get("refund_scope", RefundScope.NONE),
            refund_cents=refund_cents,
            renewals_due=data.get("renewals_due", 0),
            renewals_due_cents=data.get("renewals_due_cents", 0),
        ),
    )


def cancellable_by_reference(*, customer, customer_number: str, reference: str):
    """The customer's own subscription named by a contract reference as typed (case, spaces
    and dashes ignored), or None."""
    if _compact(customer_number) != _compact(customer.customer_number):
        return None
    match = re.fullmatch(rf"{REFERENCE_PREFIX}0*(\d+)", _compact(reference))
    if match is None:
        return None
    return (Subscription.objects.select_related("plan", "pending_plan", "customer")
            .filter(customer=customer, pk=int(match.group(1))).first())


def _compact(text: str) -> str:
    return re.sub(r"[\s\-_./]", "", text or "").upper()


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
