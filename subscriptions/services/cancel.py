from dataclasses import dataclass
from datetime import UTC

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Refund
from billing.services import refund_create
from formats.dates import long_date
from notifications.services import email_enqueue
from subscriptions.models import Actor, EndReason, Subscription, SubscriptionEvent
from subscriptions.policy import CancellationTerms, RefundScope
from subscriptions.rules import Refusal, cancel_refusal, reactivate_refusal, require
from subscriptions.selectors import (
    business_tz,
    cancellation_acknowledgement,
    cancellation_effective_bounds,
    cancellation_quote,
    lock_subscription,
    paid_for_current_period,
    succeeded_charges_with_refundable,
)
from subscriptions.services import lifecycle
from subscriptions.services.lifecycle import Who


class CancellationError(Exception):
    """Shown to the customer as is."""


@dataclass(frozen=True)
class Requester:
    """Who asks for the résiliation, as they wrote it on the recap (D215-2): their name and
    the address the acknowledgement goes to."""

    name: str
    email: str


def effective_date_error(*, earliest, latest) -> str:
    """Why an effective date is refused, naming the dates that are possible."""
    tz = business_tz()
    if earliest.astimezone(tz).date() == latest.astimezone(tz).date():
        return _("La résiliation de ce contrat ne peut prendre effet que le %(date)s.") % {
            "date": long_date(earliest)}
    return _("Choisissez une date d'effet entre le %(earliest)s et le %(latest)s (fin de la "
             "période en cours).") % {"earliest": long_date(earliest),
                                      "latest": long_date(latest)}


def subscription_cancel(
    *,
    subscription,
    reason: str = "",
    reason_detail: str = "",
    actor: str = Actor.CUSTOMER,
    actor_user=None,
    now=None,
    effective_at=None,
    requester: Requester | None = None,
) -> tuple[Subscription, CancellationTerms | None]:
    """Turn auto-renewal off (DESIGN §8), refunding what the policy promises; inside a refund
    window, or free to leave under the Loi Chatel, the subscription ends at once.

    ``effective_at``: a later effective date the customer chose (D215-2), within the current
    period; the subscription runs until it and the refund is the policy's for that date.
    ``requester``: the name and acknowledgement address given on the recap (default: the
    account's). The acknowledgement email restates the request, its date and time, the
    effective date and the effects.

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
        if effective_at is not None:
            earliest, latest = cancellation_effective_bounds(subscription=subscription,
                                                             quote=terms)
            if not _utc(earliest) <= _utc(effective_at) <= _utc(latest):
                raise CancellationError(effective_date_error(earliest=earliest, latest=latest))
            terms = cancellation_quote(subscription=subscription, now=now, charges=charges,
                                       effective_at=effective_at)
        customer = subscription.customer
        requester = requester or Requester(customer.get_full_name() or customer.email,
                                           customer.email)
        who = Who(actor, actor_user)
        cancellations = subscription.events.filter(kind=SubscriptionEvent.Kind.CANCELLED).count()
        lifecycle.schedule_end(subscription, ends_at=terms.access_ends_at, reason=reason,
                               reason_detail=reason_detail, rule=terms.rule,
                               refund_cents=terms.refund_cents, who=who, now=now,
                               details=_acknowledged(subscription, terms, requester))
        refund_charges(charges=charges_in_scope(subscription, charges, terms.refund_scope),
                       amount_cents=terms.refund_cents, reason=Refund.Reason.CANCELLATION,
                       now=now)
        if terms.immediate:
            lifecycle.end(subscription, reason=EndReason.REFUNDED, at=now, now=now, who=who,
                          amount_cents=terms.refund_cents, data={"rule": terms.rule})
        email_enqueue(
            kind="cancellation_confirmation",
            occasion=f"subscription-{subscription.pk}-cancellation-{cancellations + 1}",
            customer=customer,
            subscription=subscription,
            recipient=requester.email,
            context={"terms": terms, "received_at": now, "plan": subscription.plan,
                     "acknowledgement": cancellation_acknowledgement(subscription=subscription)},
            now=now,
        )
    return subscription, terms


def _utc(instant):
    # Compared as instants: two datetimes sharing a tzinfo compare by wall clock, ignoring fold.
    return instant.astimezone(UTC)


def _acknowledged(subscription, terms, requester) -> dict:
    """What the cancellation event keeps for the acknowledgement (page and email)."""
    return {
        "immediate": terms.immediate,
        "refund_scope": terms.refund_scope,
        "renewals_due": terms.renewals_due,
        "renewals_due_cents": terms.renewals_due_cents,
        "plan_name": subscription.plan.name,
        "features": list(subscription.plan.features),
        "request": {
            "name": requester.name,
            "email": requester.email,
            "customer_number": subscription.customer.customer_number,
            "reference": subscription.reference,
        },
    }


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
