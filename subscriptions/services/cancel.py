from django.db import transaction
from django.utils import timezone

from billing.models import Refund
from billing.services import refund_create
from notifications.services import email_enqueue
from subscriptions.models import Actor, EndReason, Subscription, SubscriptionEvent
from subscriptions.policy import CancellationTerms, RefundScope
from subscriptions.rules import Refusal, cancel_refusal, reactivate_refusal, require
from subscriptions.selectors import (
    cancellation_quote,
    lock_subscription,
    paid_for_current_period,
    succeeded_charges_with_refundable,
)
from subscriptions.services import lifecycle
from subscriptions.services.lifecycle import Who


class CancellationError(Exception):
    """Shown to the customer as is."""


def subscription_cancel(
    *,
    subscription,
    reason: str = "",
    reason_detail: str = "",
    actor: str = Actor.CUSTOMER,
    actor_user=None,
    now=None,
) -> tuple[Subscription, CancellationTerms | None]:
    """Turn auto-renewal off (DESIGN §8), refunding what the policy promises; inside a refund
    window the subscription ends at once.

    Idempotent: cancelling what is already cancelled returns ``(subscription, None)`` and
    refunds or emails nothing, so a double click or a second tab is harmless."""
    now = now or timezone.now()
    with transaction.atomic():
        subscription = lock_subscription(subscription.pk)
        refusal = cancel_refusal(subscription, now=now)
        if refusal in (Refusal.ALREADY_CANCELLED, Refusal.ENDED):
            return subscription, None
        require(refusal, subscription, CancellationError)
        charges = succeeded_charges_with_refundable(subscription=subscription)
        terms = cancellation_quote(subscription=subscription, now=now, charges=charges)
        who = Who(actor, actor_user)
        cancellations = subscription.events.filter(kind=SubscriptionEvent.Kind.CANCELLED).count()
        lifecycle.schedule_end(subscription, ends_at=terms.access_ends_at, reason=reason,
                               reason_detail=reason_detail, rule=terms.rule,
                               refund_cents=terms.refund_cents, who=who, now=now)
        refund_charges(charges=charges_in_scope(subscription, charges, terms.refund_scope),
                       amount_cents=terms.refund_cents, reason=Refund.Reason.CANCELLATION,
                       now=now)
        if terms.immediate:
            lifecycle.end(subscription, reason=EndReason.REFUNDED, at=now, now=now, who=who,
                          amount_cents=terms.refund_cents, data={"rule": terms.rule})
        email_enqueue(
            kind="cancellation_confirmation",
            occasion=f"subscription-{subscription.pk}-cancellation-{cancellations + 1}",
            customer=subscription.customer,
            subscription=subscription,
            context={"terms": terms, "received_at": now, "plan": subscription.plan},
            now=now,
        )
    return subscription, terms


def charges_in_scope(subscription, charges, scope):
    """The charges a refund of this scope is taken from (also a withdrawal's)."""
    if scope == RefundScope.EVERYTHING_PAID:
        return charges
    if scope == RefundScope.LAST_RENEWAL:
        renewals = [c for c in charges if c.invoice.kind == "renewal"]
        return renewals[-1:]
    if scope == RefundScope.CURRENT_PERIOD:
        return [c for c in charges if paid_for_current_period(subscription, c)]
    return []


def refund_charges(*, charges, amount_cents, reason, now) -> None:
    """Refund ``amount_cents`` from these charges, latest first, each at most its refundable
    remainder; inside the caller's transaction (refund_create locks each charge)."""
    remaining = amount_cents
    for charge in reversed(charges):
        amount = min(remaining, charge.refundable_cents)
        if amount > 0:
            refund_create(charge=charge, amount_cents=amount, reason=reason, now=now)
            remaining -= amount


def subscription_auto_renew_reactivate(
    *, subscription, actor: str = Actor.CUSTOMER, actor_user=None, now=None
) -> Subscription:
    """Undo a cancellation until ``ends_at``, unless a refund was paid for it."""
    now = now or timezone.now()
    with transaction.atomic():
        subscription = lock_subscription(subscription.pk)
        refusal = reactivate_refusal(subscription, now=now)
        if refusal == Refusal.NOT_CANCELLED:
            return subscription
        require(refusal, subscription, CancellationError)
        lifecycle.resume_renewal(subscription, who=Who(actor, actor_user), now=now)
    return subscription
