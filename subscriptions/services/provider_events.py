"""What the payment provider's notifications (Stripe webhooks, DESIGN §13) do: one table,
``HANDLERS``, from the event type to the function that applies it.

An event is a hint, never the truth about a payment: a payment_intent.* event makes the portal
ask the provider for the charge's current state, by its idempotency key, and settle it through
the same settlement as a synchronous answer (charge_resume_apply, under the subscription's
lock). A charge already settled — by the synchronous answer, or by an earlier event — is left
alone, so a duplicate, late or out-of-order event (payment_failed after succeeded) changes
nothing, and one racing the synchronous answer waits for it and finds the charge settled.

Each event is stored once (billing.provider_events), processed by a task after commit, and
while unprocessed (its task lost, or processing raised: the error is kept on the row) retried
by the ``process_provider_events`` scan (subscriptions/jobs.py)."""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.urls import reverse

from billing.gateways import stripe_webhooks
from billing.gateways.stripe_webhooks import VerifiedEvent
from billing.models import Charge, ProviderEvent
from billing.provider_events import (
    charge_for_provider_payment,
    payment_method_card_refresh,
    provider_event_claim,
    provider_event_done,
    provider_event_failed,
    provider_event_record,
    provider_refunds_settle,
)
from billing.templatetags.money import money
from notifications.services import staff_email_enqueue
from subscriptions.models import SubscriptionEvent
from subscriptions.selectors import lock_subscription
from subscriptions.services.events import subscription_event_record
from subscriptions.services.payments import charge_resume_apply

logger = logging.getLogger(__name__)

PROCESSED = ProviderEvent.Outcome.PROCESSED
IGNORED = ProviderEvent.Outcome.IGNORED


@dataclass(frozen=True)
class Handled:
    outcome: str  # ProviderEvent.Outcome
    note: str


def provider_event_receive(*, event: VerifiedEvent, now,
                           provider: str = stripe_webhooks.PROVIDER) -> tuple[ProviderEvent, bool]:
    """Store a verified event and, if it is new, have it processed after commit. A duplicate
    (the provider delivers at least once) is acknowledged and ignored: (the row, whether new)."""
    from subscriptions.tasks import provider_event_process_task

    with transaction.atomic():
        stored, created = provider_event_record(provider=provider, event_id=event.event_id,
                                                type=event.type, payload=event.payload, now=now)
        if created:
            # robust: the event is committed; if enqueueing fails the scan processes it.
            transaction.on_commit(lambda: provider_event_process_task.delay(stored.pk),
                                  robust=True)
    return stored, created


def provider_event_process(*, event_id: int, now) -> ProviderEvent:
    """Apply a stored event once. Safe to run twice, or twice at once: the row is locked and
    an event processed already is left alone. A handler that raises leaves no trace but the
    error on the row, which stays due for the scan."""
    with transaction.atomic():
        event = provider_event_claim(event_id=event_id)
        if event is None:
            return ProviderEvent.objects.get(pk=event_id)
        handler = HANDLERS.get(event.type)
        if handler is None:
            provider_event_done(event, outcome=IGNORED, note="type d'événement non traité",
                                now=now)
            return event
        try:
            with transaction.atomic():
                handled = handler(event.payload, now=now)
        except Exception as error:
            logger.exception("provider event %s (%s) failed; retried later", event.event_id,
                             event.type)
            provider_event_failed(event, error=error, now=now)
            return event
        provider_event_done(event, outcome=handled.outcome, note=handled.note, now=now)
        return event


# -- payments ---------------------------------------------------------------------------------


def payment_intent_changed(payload, *, now) -> Handled:
    """payment_intent.succeeded / payment_failed / requires_action: whichever it says, the
    provider's current answer for the charge settles it, as the reconcile job would."""
    key, reference = stripe_webhooks.payment_intent_keys(stripe_webhooks.event_object(payload))
    charge = charge_for_provider_payment(idempotency_key=key, reference=reference)
    if charge is None:
        return Handled(IGNORED, f"aucun paiement du portail pour {key or reference or '?'}")
    settled = charge_resume_apply(charge_id=charge.pk, now=now)
    charge.refresh_from_db()
    if settled is None:
        note = f"{charge.idempotency_key} : déjà réglé ({charge.get_status_display()})"
        if (payload.get("type") == "payment_intent.succeeded"
                and charge.status == Charge.Status.FAILED):
            # Money taken for a charge the portal recorded as refused: staff must look.
            logger.error("provider reports charge %s succeeded; the portal recorded it failed",
                         charge.pk)
            note = (f"ÉCART : le prestataire indique {charge.idempotency_key} réussi, "
                    f"le portail l'a enregistré refusé ({charge.failure_code})")
        return Handled(PROCESSED, note)
    return Handled(PROCESSED, f"{charge.idempotency_key} : {charge.get_status_display()}")


def charge_refunded(payload, *, now) -> Handled:
    """charge.refunded: our refunds of that charge are settled (credit note included), once."""
    refund_keys, charge_key, reference = stripe_webhooks.refunded_charge_keys(
        stripe_webhooks.event_object(payload))
    charge = charge_for_provider_payment(idempotency_key=charge_key, reference=reference)
    refunds = provider_refunds_settle(refund_keys=refund_keys, charge=charge, now=now)
    if not refunds:
        logger.warning("provider refunded %s outside the portal", reference or charge_key)
        return Handled(IGNORED, f"remboursement fait hors du portail ({reference or '?'}) : "
                                f"aucun remboursement ni avoir enregistré ici")
    return Handled(PROCESSED, ", ".join(f"{refund.idempotency_key} : "
                                        f"{refund.get_status_display()}" for refund in refunds))


# -- disputes (chargebacks) -------------------------------------------------------------------


def dispute_opened(payload, *, now) -> Handled:
    """charge.dispute.created: on the subscription's timeline (the admin flags it as "litige
    ouvert"), and an email to the support team, who answer it at the provider."""
    dispute = stripe_webhooks.dispute(stripe_webhooks.event_object(payload))
    charge = _disputed_charge(dispute)
    subscription = _record_dispute_event(
        charge, dispute, kind=SubscriptionEvent.Kind.DISPUTE_OPENED, now=now,
        data={"reason": dispute.reason, "reason_label": dispute.reason_label,
              "respond_by": dispute.respond_by.isoformat() if dispute.respond_by else ""},
    )
    admin_url = (reverse("admin:subscriptions_subscription_change", args=[subscription.pk])
                 if subscription else "")
    invoice = charge.invoice if charge else None
    staff_email_enqueue(
        kind="dispute_opened", occasion=f"dispute-{dispute.reference}",
        subscription=subscription, now=now,
        context={"dispute": dispute, "charge": charge, "invoice": invoice,
                 "admin_url": admin_url},
    )
    amount = money(dispute.amount_cents, dispute.currency)
    if charge is None:
        return Handled(PROCESSED, f"litige {dispute.reference} ({amount}) sur un paiement "
                                  f"inconnu du portail : support prévenu")
    return Handled(PROCESSED, f"litige {dispute.reference} ({amount}, {dispute.reason_label}) "
                              f"sur {charge.idempotency_key}")


def dispute_closed(payload, *, now) -> Handled:
    """charge.dispute.closed: won or lost, it is no longer open."""
    dispute = stripe_webhooks.dispute(stripe_webhooks.event_object(payload))
    charge = _disputed_charge(dispute)
    subscription = _record_dispute_event(charge, dispute,
                                         kind=SubscriptionEvent.Kind.DISPUTE_CLOSED, now=now,
                                         data={"status": dispute.status,
                                               "status_label": dispute.status_label})
    if subscription is None:
        return Handled(IGNORED, f"litige {dispute.reference} sur un paiement inconnu du portail")
    return Handled(PROCESSED, f"litige {dispute.reference} clos ({dispute.status_label})")


def _disputed_charge(dispute) -> Charge | None:
    charge = charge_for_provider_payment(reference=dispute.payment_reference)
    if charge is None:
        return None
    return Charge.objects.select_related("invoice__subscription", "customer").get(pk=charge.pk)


def _record_dispute_event(charge, dispute, *, kind, data, now):
    """The dispute's event on the subscription of the charge, once per dispute and kind (the
    subscription is locked: two events about one dispute at once record one). Returns the
    subscription, None if the charge is not a subscription's."""
    if charge is None or charge.invoice.subscription_id is None:
        return None
    subscription = lock_subscription(charge.invoice.subscription_id)
    if not subscription.events.filter(kind=kind, data__dispute=dispute.reference).exists():
        subscription_event_record(
            subscription=subscription, kind=kind, at=now, amount_cents=dispute.amount_cents,
            data={"dispute": dispute.reference, "currency": dispute.currency,
                  "invoice": charge.invoice.number or "", "charge": charge.idempotency_key,
                  **data},
        )
    return subscription


# -- cards ------------------------------------------------------------------------------------


def card_updated(payload, *, now) -> Handled:
    """payment_method.automatically_updated: the bank issued the card a new number or expiry;
    the saved card's brand, last 4 and expiry follow (its token is unchanged)."""
    card = stripe_webhooks.card_details(stripe_webhooks.event_object(payload))
    if card is None:
        return Handled(IGNORED, "pas une carte")
    if not payment_method_card_refresh(card=card):
        return Handled(IGNORED, "carte inconnue du portail")
    return Handled(PROCESSED, f"carte mise à jour : {card.brand} •••• {card.last4} "
                              f"({card.exp_month:02d}/{card.exp_year})")


# The event types the portal acts on (Stripe's names); any other is stored and ignored.
HANDLERS: dict[str, Callable[..., Handled]] = {
    "payment_intent.succeeded": payment_intent_changed,
    "payment_intent.payment_failed": payment_intent_changed,
    "payment_intent.requires_action": payment_intent_changed,
    "charge.refunded": charge_refunded,
    "charge.dispute.created": dispute_opened,
    "charge.dispute.closed": dispute_closed,
    "payment_method.automatically_updated": card_updated,
}
