from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Refund
from billing.services import refund_create
from notifications.services import email_enqueue
from subscriptions.models import Actor, Channel, EndReason, Status, Subscription, SubscriptionEvent
from subscriptions.policy import CancellationTerms, RefundScope
from subscriptions.selectors import (
    cancellation_quote,
    cancellation_refunded,
    paid_for_current_period,
    succeeded_charges_with_refundable,
)
from subscriptions.services.events import subscription_event_record
from subscriptions.services.payments import lock_subscription


class CancellationError(Exception):
    """Shown to the customer as is."""


def _locked(subscription) -> Subscription:
    return lock_subscription(subscription.pk)


def _require_direct(subscription) -> None:
    if subscription.channel != Channel.DIRECT:
        raise CancellationError(
            _("Cet abonnement a été souscrit via %(channel)s : il se gère auprès de lui.")
            % {"channel": subscription.get_channel_display()}
        )


def subscription_cancel(
    *,
    subscription,
    reason: str = "",
    reason_detail: str = "",
    actor: str = Actor.CUSTOMER,
    actor_user=None,
    now=None,
) -> tuple[Subscription, CancellationTerms | None]:
    """Turn auto-renewal off (DESIGN §8), refunding what the policy promises.

    Idempotent: cancelling what is already cancelled returns ``(subscription, None)`` and
    refunds or emails nothing, so a double click or a second tab is harmless."""
    now = now or timezone.now()
    with transaction.atomic():
        subscription = _locked(subscription)
        _require_direct(subscription)
        if not subscription.auto_renew or subscription.status == Status.ENDED:
            return subscription, None
        charges = succeeded_charges_with_refundable(subscription=subscription)
        terms = cancellation_quote(subscription=subscription, now=now, charges=charges)
        subscription.auto_renew = False
        subscription.cancel_requested_at = now
        subscription.cancel_reason = reason
        subscription.cancel_reason_detail = reason_detail
        subscription.ends_at = terms.access_ends_at
        if terms.immediate:
            subscription.status = Status.ENDED
            subscription.end_reason = EndReason.REFUNDED
            subscription.ended_at = now
            subscription.licence_active = False
        subscription.save()
        _refund(charges=_charges_in_scope(subscription, charges, terms.refund_scope),
                amount_cents=terms.refund_cents, now=now)
        cancellations = subscription.events.filter(kind=SubscriptionEvent.Kind.CANCELLED).count()
        subscription_event_record(
            subscription=subscription,
            kind=SubscriptionEvent.Kind.CANCELLED,
            actor=actor,
            actor_user=actor_user,
            at=now,
            amount_cents=terms.refund_cents,
            data={
                "rule": terms.rule,
                "ends_at": terms.access_ends_at.isoformat(),
                "reason": reason,
                "reason_detail": reason_detail,
            },
        )
        email_enqueue(
            kind="cancellation_confirmation",
            occasion=f"subscription-{subscription.pk}-cancellation-{cancellations + 1}",
            customer=subscription.customer,
            subscription=subscription,
            context={"terms": terms, "received_at": now, "plan": subscription.plan},
            now=now,
        )
    return subscription, terms


def _charges_in_scope(subscription, charges, scope):
    if scope == RefundScope.EVERYTHING_PAID:
        return charges
    if scope == RefundScope.LAST_RENEWAL:
        renewals = [c for c in charges if c.invoice.kind == "renewal"]
        return renewals[-1:]
    if scope == RefundScope.CURRENT_PERIOD:
        return [c for c in charges if paid_for_current_period(subscription, c)]
    return []


def _refund(*, charges, amount_cents, now) -> None:
    remaining = amount_cents
    for charge in reversed(charges):
        amount = min(remaining, charge.refundable_cents)
        if amount > 0:
            refund_create(charge=charge, amount_cents=amount, reason=Refund.Reason.CANCELLATION,
                          now=now)
            remaining -= amount


def subscription_auto_renew_reactivate(
    *, subscription, actor: str = Actor.CUSTOMER, actor_user=None, now=None
) -> Subscription:
    """Undo a cancellation until ``ends_at``, unless a refund was paid for it."""
    now = now or timezone.now()
    with transaction.atomic():
        subscription = _locked(subscription)
        _require_direct(subscription)
        if subscription.auto_renew:
            return subscription
        if subscription.status == Status.ENDED or (
            subscription.ends_at is not None and now >= subscription.ends_at
        ):
            raise CancellationError(
                _("Cet abonnement est terminé : vous pouvez souscrire à nouveau.")
            )
        if cancellation_refunded(subscription=subscription):
            raise CancellationError(
                _("Un remboursement a été effectué pour cette résiliation : le renouvellement "
                  "automatique ne peut plus être réactivé. Vous pourrez souscrire à nouveau à "
                  "la fin de la période.")
            )
        subscription.auto_renew = True
        subscription.cancel_requested_at = None
        subscription.cancel_reason = ""
        subscription.cancel_reason_detail = ""
        subscription.ends_at = None
        subscription.save()
        subscription_event_record(
            subscription=subscription,
            kind=SubscriptionEvent.Kind.AUTO_RENEW_REACTIVATED,
            actor=actor,
            actor_user=actor_user,
            at=now,
        )
    return subscription
