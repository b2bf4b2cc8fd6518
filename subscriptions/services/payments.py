"""Sending a subscription's charges and applying their answers (DESIGN §5, §6).

Every charge is prepared (committed with its idempotency key) before it is sent, and is sent
while the subscription row is locked, so a cancellation that committed first is always seen:
nothing is charged after a cancel."""

from django.db import transaction

from billing.models import Charge, Invoice
from billing.services import (
    charge_abandon,
    charge_attempt,
    charge_challenge_cancel,
    charge_resume,
)
from subscriptions.rules import invoice_collectable
from subscriptions.selectors import lock_subscription
from subscriptions.services.settlement import charge_settled


class ChallengeRequired(Exception):
    """The bank asks the customer, who is there, to authenticate this payment (3-D Secure):
    their flow sends them to the challenge ("Confirmer votre paiement"), and the charge
    settles when they come back, or later by reconciliation (or is given up)."""

    def __init__(self, charge: Charge):
        super().__init__("authentication required")
        self.charge = charge


def _locked_subscription_of(invoice):
    return lock_subscription(invoice.subscription_id) if invoice.subscription_id else None


def charge_send(*, charge: Charge, now) -> Charge:
    """Send a prepared charge and apply its outcome, under the subscription's lock."""
    with transaction.atomic():
        invoice = Invoice.objects.select_related("customer").get(pk=charge.invoice_id)
        subscription = _locked_subscription_of(invoice)
        if not invoice_collectable(subscription, invoice):
            sent = charge_abandon(charge=charge, now=now)
        else:
            sent = charge_attempt(charge=charge, now=now)
        if sent is None:
            return Charge.objects.get(pk=charge.pk)
        charge_settled(charge=sent, subscription=subscription, now=now)
        return sent


def charge_resume_apply(*, charge_id: int, now) -> Charge | None:
    """A charge to reconcile or send again (billing.dunning.charges_to_resume): the provider
    is asked first, and the outcome applied exactly as if it had answered at once."""
    with transaction.atomic():
        charge = Charge.objects.select_related("invoice__customer").get(pk=charge_id)
        subscription = _locked_subscription_of(charge.invoice)
        settled = charge_resume(charge=charge, now=now,
                                send=invoice_collectable(subscription, charge.invoice))
        if settled is not None:
            charge_settled(charge=settled, subscription=subscription, now=now)
        return settled


def charge_challenge_cancel_apply(*, charge_id: int, now) -> Charge | None:
    """The customer starts a payment again instead of finishing the 3-D Secure of the one
    waiting (billing.services.charge_challenge_cancel): cancelled at the provider, then
    settled as any answer (refused: the draft is dropped; paid meanwhile: it counts)."""
    with transaction.atomic():
        charge = Charge.objects.select_related("invoice").get(pk=charge_id)
        subscription = _locked_subscription_of(charge.invoice)
        settled = charge_challenge_cancel(charge=charge, now=now)
        if settled is not None:
            charge_settled(charge=settled, subscription=subscription, now=now)
        return settled
