"""The withdrawal (droit de rétractation, DESIGN §8): "Renoncer au contrat ici", then
"Confirmer la rétractation".

The statement ends the contract now and refunds everything paid for it (the 14-day row of the
cancellation table, with the cancellation's own refund code), records the statement as a
"withdrawn" event with the instant it was received, and queues one acknowledgement email to
the address the customer gave."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from billing.models import Refund
from notifications.services import email_enqueue
from subscriptions.models import Actor, EndReason, SubscriptionEvent
from subscriptions.periods import add_days
from subscriptions.rules import require, withdrawal_refusal
from subscriptions.selectors import (
    business_tz,
    lock_subscription,
    succeeded_charges_with_refundable,
    withdrawal_quote,
)
from subscriptions.services import lifecycle
from subscriptions.services.cancel import charges_in_scope, refund_charges
from subscriptions.services.events import subscription_event_record
from subscriptions.services.lifecycle import Who

# The refund is paid "sans retard excessif et au plus tard dans les quatorze jours"
# (L221-24) from the day the withdrawal was received.
REFUND_DEADLINE_DAYS = 14


class WithdrawalError(Exception):
    """Shown to the customer as is."""


@dataclass(frozen=True)
class Withdrawal:
    """A withdrawal as its acknowledgement restates it (page, email, history)."""

    event: SubscriptionEvent
    received_at: datetime
    name: str
    email: str
    customer_number: str
    reference: str
    plan_name: str
    concluded_at: datetime
    refund_cents: int
    currency: str
    refund_by: datetime


def withdrawal_from_event(event: SubscriptionEvent) -> Withdrawal:
    data, subscription = event.data, event.subscription
    return Withdrawal(
        event=event,
        received_at=event.at,
        name=data.get("name", ""),
        email=data.get("email", ""),
        customer_number=data.get("customer_number", ""),
        reference=data.get("reference", subscription.reference),
        plan_name=data.get("plan_name", subscription.plan.name),
        concluded_at=subscription.started_at,
        refund_cents=event.amount_cents or 0,
        currency=subscription.plan.currency,
        refund_by=add_days(event.at, REFUND_DEADLINE_DAYS, tz=business_tz()),
    )


def acknowledgement_url(event) -> str:
    return settings.SITE_URL + reverse("subscriptions:withdrawal_acknowledgement",
                                       args=[event.pk])


def subscription_withdraw(
    *,
    subscription,
    name: str,
    email: str,
    actor: str = Actor.CUSTOMER,
    actor_user=None,
    now=None,
) -> tuple[Withdrawal, bool]:
    """Withdraw from the contract: returns its acknowledgement and whether it was made now.

    The subscription row is locked first, so two confirmations at once (double click, two
    tabs) make one withdrawal: the second finds it withdrawn and returns the same
    acknowledgement with ``False``, refunding and emailing nothing. Refused (WithdrawalError)
    after the withdrawal period, once ended otherwise, and for a contract concluded through
    another channel (withdrawal_refusal)."""
    now = now or timezone.now()
    with transaction.atomic():
        subscription = lock_subscription(subscription.pk)
        if subscription.end_reason == EndReason.WITHDRAWN:
            previous = subscription.events.filter(kind=SubscriptionEvent.Kind.WITHDRAWN).last()
            return withdrawal_from_event(previous), False
        require(withdrawal_refusal(subscription, now=now), subscription, WithdrawalError)
        charges = succeeded_charges_with_refundable(subscription=subscription)
        terms = withdrawal_quote(subscription=subscription, now=now, charges=charges)
        who = Who(actor, actor_user)
        customer = subscription.customer
        event = subscription_event_record(
            subscription=subscription, kind=SubscriptionEvent.Kind.WITHDRAWN, at=now,
            actor=who.actor, actor_user=who.user, amount_cents=terms.refund_cents,
            data={"received_at": now.isoformat(), "name": name, "email": email,
                  "customer_number": customer.customer_number,
                  "reference": subscription.reference, "plan_name": subscription.plan.name,
                  "rule": terms.rule},
        )
        refund_charges(charges=charges_in_scope(subscription, charges, terms.refund_scope),
                       amount_cents=terms.refund_cents, reason=Refund.Reason.WITHDRAWAL,
                       now=now)
        lifecycle.end(subscription, reason=EndReason.WITHDRAWN, at=now, now=now, who=who,
                      amount_cents=terms.refund_cents, data={"rule": terms.rule})
        withdrawal = withdrawal_from_event(event)
        email_enqueue(
            kind="withdrawal_confirmation",
            occasion=f"withdrawal-{event.pk}",
            customer=customer,
            subscription=subscription,
            recipient=email,
            context={"withdrawal": withdrawal, "plan": subscription.plan,
                     "acknowledgement_url": acknowledgement_url(event)},
            now=now,
        )
    return withdrawal, True
