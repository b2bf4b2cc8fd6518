"""The link of the "authentication required" email (DESIGN §6, §9): ``/compte/paiement/<token>/``
leads to "Confirmer votre paiement" for one renewal invoice, where the customer completes
3-D Secure. The same token, made for any invoice of the customer's, leads to the challenge
and return pages of their own payments the bank wants authenticated at once (a first
payment, a plan change): those pages check only that it is genuine and the customer's, not
its expiry. Made and checked like the cancellation link (``email_links``):

- signed with SECRET_KEY under a salt of its own, so no other signed value of the project
  verifies as one (not encrypted: the numbers it carries are readable, never forgeable);
- scoped to the invoice: the URL has no other id;
- expiring at the invoice's period end (carried in the token, to the microsecond, checked
  against the ``now`` passed in, not the signer's clock): past it, the period is unpaid and
  nothing may be paid for it any more.

Decision: the page requires the customer to be logged in, as the owner of the invoice. The
link only points at the invoice; paying charges the account's saved card and the challenge is
the cardholder's, so a forwarded email, or another customer's session, must not reach it. A
logged-out customer signs in and comes back to the page (``next``); another customer is
refused and nothing changes.

Opening the link only reads (mail scanners open links): the challenge starts on the page's
POST. The same page serves the billing page's banner (its link is made the same way)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.core import signing
from django.urls import reverse

from billing.models import Invoice
from subscriptions.rules import confirm_payment_refusal

SALT = "subscriptions.payment-confirmation"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class LinkRefusal(StrEnum):
    INVALID = "invalid"  # tampered, truncated, not one of ours
    OTHER_CUSTOMER = "other_customer"  # the invoice is another customer's
    PAID = "paid"  # nothing left to confirm
    EXPIRED = "expired"  # the invoice's period is over
    REFUSED = "refused"  # the confirmation predicate said no (rules.confirm_payment_refusal)


class ConfirmLinkRefused(Exception):
    def __init__(self, reason: LinkRefusal, *, invoice=None, claims=None, refusal=None):
        super().__init__(reason)
        self.reason = reason
        self.invoice = invoice
        self.claims = claims
        self.refusal = refusal  # the rules.Refusal, for REFUSED


@dataclass(frozen=True)
class ConfirmLinkClaims:
    invoice_id: int
    expires_at: datetime


def confirm_link_token(*, invoice) -> str:
    payload = {"i": invoice.pk, "e": (invoice.period_end - _EPOCH) // _MICROSECOND}
    return signing.Signer(salt=SALT).sign_object(payload, compress=True)


def confirm_link_path(*, invoice) -> str:
    return reverse("subscriptions:confirm_payment", args=[confirm_link_token(invoice=invoice)])


def confirm_link_url(*, invoice) -> str:
    return settings.SITE_URL + confirm_link_path(invoice=invoice)


def confirm_link_claims(token: str) -> ConfirmLinkClaims:
    try:
        payload = signing.Signer(salt=SALT).unsign_object(token)
        return ConfirmLinkClaims(invoice_id=int(payload["i"]),
                                 expires_at=_EPOCH + int(payload["e"]) * _MICROSECOND)
    except (signing.BadSignature, KeyError, TypeError, ValueError) as error:
        raise ConfirmLinkRefused(LinkRefusal.INVALID) from error


def confirm_link_invoice(*, token: str, customer, now, reconciling: bool = False) -> Invoice:
    """The invoice the link lets ``customer`` confirm at ``now``, or ConfirmLinkRefused saying
    why. ``reconciling`` (the challenge and the return from it) only checks that the link is
    genuine and the customer's: it also serves the customer's own payments waiting for the
    challenge (a first payment, a plan change), and learning what the provider did is always
    allowed."""
    claims = confirm_link_claims(token)
    invoice = (Invoice.objects.select_related("subscription__plan", "customer", "plan")
               .filter(pk=claims.invoice_id).first())
    if invoice is None:
        raise ConfirmLinkRefused(LinkRefusal.INVALID, claims=claims)
    if invoice.customer_id != customer.pk:
        raise ConfirmLinkRefused(LinkRefusal.OTHER_CUSTOMER, claims=claims)
    if reconciling:
        return invoice
    if invoice.subscription is None or invoice.kind != Invoice.Kind.RENEWAL:
        raise ConfirmLinkRefused(LinkRefusal.INVALID, claims=claims)
    if invoice.status == Invoice.Status.PAID:
        raise ConfirmLinkRefused(LinkRefusal.PAID, invoice=invoice, claims=claims)
    if now >= claims.expires_at or invoice.period_end != claims.expires_at:
        raise ConfirmLinkRefused(LinkRefusal.EXPIRED, invoice=invoice, claims=claims)
    refusal = confirm_payment_refusal(invoice.subscription, now=now, invoice=invoice)
    if refusal is not None:
        raise ConfirmLinkRefused(LinkRefusal.REFUSED, invoice=invoice, claims=claims,
                                 refusal=refusal)
    return invoice
