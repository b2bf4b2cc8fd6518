"""Stripe's webhooks (DESIGN §13), the provider's side: the signature is checked with the
official library, and the objects an event carries are read into the portal's terms. What the
portal does with an event is decided elsewhere (subscriptions/services/provider_events.py).

Convention with the Stripe adapter (stripe.py): every PaymentIntent and Refund it creates
carries ``metadata["idempotency_key"]``, our Charge's or Refund's key, and a PaymentIntent's
id is the Charge's ``provider_reference``."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import stripe
from django.conf import settings

from .base import CardToken

PROVIDER = "stripe"

# Stripe's card brands, as the portal shows them (the simulated provider's spelling).
BRANDS = {
    "amex": "American Express",
    "cartes_bancaires": "CB",
    "diners": "Diners Club",
    "discover": "Discover",
    "eftpos_au": "eftpos",
    "jcb": "JCB",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "visa": "Visa",
}

# Why the cardholder contested the payment (Stripe's dispute reasons), for staff.
DISPUTE_REASONS = {
    "bank_cannot_process": "la banque ne peut pas traiter le paiement",
    "check_returned": "chèque retourné",
    "credit_not_processed": "remboursement promis non reçu",
    "customer_initiated": "contestation à l'initiative du client",
    "debit_not_authorized": "prélèvement non autorisé",
    "duplicate": "paiement en double",
    "fraudulent": "fraude (paiement non reconnu)",
    "general": "motif général",
    "incorrect_account_details": "coordonnées bancaires erronées",
    "insufficient_funds": "fonds insuffisants",
    "noncompliant": "non conforme",
    "product_not_received": "service non reçu",
    "product_unacceptable": "service non conforme",
    "subscription_canceled": "abonnement résilié",
    "unrecognized": "paiement non reconnu",
}

# Where a dispute stands (a closed one: won or lost).
DISPUTE_STATUSES = {
    "lost": "perdu",
    "needs_response": "réponse attendue",
    "prevented": "évité",
    "under_review": "en cours d'examen",
    "warning_closed": "clos sans litige",
    "warning_needs_response": "demande de renseignements",
    "warning_under_review": "demande de renseignements en cours d'examen",
    "won": "gagné",
}


class InvalidWebhook(Exception):
    """Not a webhook Stripe signed with our secret (or not one at all): refused, not stored."""


@dataclass(frozen=True)
class VerifiedEvent:
    event_id: str
    type: str
    payload: dict


@dataclass(frozen=True)
class Dispute:
    reference: str  # dp_…
    payment_reference: str  # the PaymentIntent (pi_…), our Charge's provider_reference
    amount_cents: int
    currency: str
    reason: str
    reason_label: str
    status: str
    status_label: str
    respond_by: datetime | None  # when the evidence is due at the bank


def verify_event(*, payload: bytes, signature: str | None) -> VerifiedEvent:
    """The event in a webhook's body, once the library has checked its ``Stripe-Signature``
    header against STRIPE_WEBHOOK_SECRET (and that it is recent: a replayed old request is
    refused). Raises InvalidWebhook."""
    try:
        stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)
        body = json.loads(payload)  # stored as Stripe sent it
    except stripe.SignatureVerificationError as error:
        raise InvalidWebhook("signature invalide") from error
    except ValueError as error:  # not JSON, not UTF-8
        raise InvalidWebhook("contenu illisible") from error
    event_id = body.get("id") if isinstance(body, dict) else None
    event_type = body.get("type") if isinstance(body, dict) else None
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
        raise InvalidWebhook("ce n'est pas un événement")
    return VerifiedEvent(event_id=event_id, type=event_type, payload=body)


def event_object(payload: dict) -> dict:
    """The object an event is about (its snapshot when the event happened)."""
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    return obj if isinstance(obj, dict) else {}


def idempotency_key(obj: dict) -> str:
    metadata = obj.get("metadata")
    key = metadata.get("idempotency_key") if isinstance(metadata, dict) else None
    return key if isinstance(key, str) else ""


def _reference(value) -> str:
    """An id, whether Stripe sent it as is or expanded into its object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def payment_intent_keys(obj: dict) -> tuple[str, str]:
    """(our Charge's idempotency key, the PaymentIntent's id) of a payment_intent.* event."""
    return idempotency_key(obj), _reference(obj.get("id"))


def refunded_charge_keys(obj: dict) -> tuple[list[str], str, str]:
    """What a charge.refunded event (its object is a Stripe Charge) tells about our records:
    the idempotency keys of the refunds it lists (recent API versions no longer include them),
    our Charge's key if the Charge carries it in its own metadata, and the PaymentIntent's id
    (our Charge's provider_reference), which it always names."""
    refunds = obj.get("refunds")
    listed = refunds.get("data") if isinstance(refunds, dict) else None
    keys = [key for refund in listed or [] if isinstance(refund, dict)
            if (key := idempotency_key(refund))]
    return keys, idempotency_key(obj), _reference(obj.get("payment_intent"))


def dispute(obj: dict) -> Dispute:
    reason = obj.get("reason") if isinstance(obj.get("reason"), str) else ""
    evidence = obj.get("evidence_details")
    due_by = evidence.get("due_by") if isinstance(evidence, dict) else None
    amount = obj.get("amount")
    currency = obj.get("currency")
    status = obj.get("status") if isinstance(obj.get("status"), str) else ""
    return Dispute(
        reference=_reference(obj.get("id")),
        payment_reference=_reference(obj.get("payment_intent")),
        amount_cents=amount if isinstance(amount, int) else 0,
        currency=currency.upper() if isinstance(currency, str) else "",
        reason=reason,
        reason_label=DISPUTE_REASONS.get(reason, reason),
        status=status,
        status_label=DISPUTE_STATUSES.get(status, status),
        respond_by=(datetime.fromtimestamp(due_by, tz=UTC)
                    if isinstance(due_by, int) else None),
    )


def card_details(obj: dict) -> CardToken | None:
    """A PaymentMethod object's card (payment_method.automatically_updated: the bank gave the
    card a new number or expiry), or None if it is not a card."""
    card = obj.get("card")
    token = _reference(obj.get("id"))
    if not isinstance(card, dict) or not token:
        return None
    try:
        exp_month, exp_year = int(card["exp_month"]), int(card["exp_year"])
        last4 = str(card["last4"])
    except (KeyError, TypeError, ValueError):
        return None
    brand = str(card.get("brand") or "")
    return CardToken(token=token, brand=BRANDS.get(brand, brand.title() or "Carte"),
                     last4=last4, exp_month=exp_month, exp_year=exp_year)
