"""The scheduled life of a subscription (DESIGN §5, §6): renew, retry, end. Each service
takes one id, locks the row, re-checks that the work is still due and is safe to run twice."""

from django.db import transaction
from django.utils.translation import gettext as _

from billing.gateways import PaymentError
from billing.models import Charge, Invoice
from billing.services import charge_prepare, invoice_create
from subscriptions.models import Actor, EndReason, Status
from subscriptions.periods import period_at
from subscriptions.rules import (
    confirm_payment_refusal,
    expiry_due,
    open_renewal_invoice,
    pay_now_refusal,
    renewal_collectable,
    require,
)
from subscriptions.selectors import business_tz, lock_subscription, renewal_due
from subscriptions.services import lifecycle
from subscriptions.services.payments import charge_resume_apply, charge_send
from subscriptions.services.settlement import renewal_authentication_required


class PaymentNotPossible(Exception):
    """Shown to the customer as is."""


def subscription_renew(*, subscription_id: int, now) -> Charge | None:
    """Invoice the next period (the scheduled plan if any) and charge it: attempt 1."""
    with transaction.atomic():
        subscription = lock_subscription(subscription_id)
        if not renewal_due(subscription, now=now):
            return None
        plan = subscription.pending_plan or subscription.plan
        # An interval switch (annual → monthly) starts the new interval at the switch.
        anchor = (subscription.billing_anchor if plan.interval == subscription.plan.interval
                  else subscription.current_period_end)
        period = period_at(anchor=anchor, interval=plan.interval,
                           instant=subscription.current_period_end, tz=business_tz())
        if subscription.invoices.filter(kind=Invoice.Kind.RENEWAL,
                                        period_start=period.start).exists():
            return None
        invoice = invoice_create(
            customer=subscription.customer,
            plan=plan,
            kind=Invoice.Kind.RENEWAL,
            subscription=subscription,
            period_start=period.start,
            period_end=period.end,
            description=_("Renouvellement %(plan)s") % {"plan": plan},
            now=now,
        )
        charge = charge_prepare(invoice=invoice, now=now)
    return charge_send(charge=charge, now=now)


def subscription_retry_payment(*, invoice_id: int, now) -> Charge | None:
    """A scheduled retry of an open renewal invoice (attempts 2–4).

    A charge of the invoice still waiting for the customer's 3-D Secure is not doubled by a
    new one (both could move money): the provider is asked about it; paid or refused
    meanwhile, it settles (refused: the retry charges the card again); still waiting, this
    scheduled attempt is one more authentication request (email, schedule, suspension)."""
    with transaction.atomic():
        invoice = Invoice.objects.get(pk=invoice_id)
        subscription = lock_subscription(invoice.subscription_id)
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if not _retry_due(subscription, invoice, now=now):
            return None
        awaiting = _awaiting_charge(invoice)
    if awaiting is not None:
        charge_resume_apply(charge_id=awaiting.pk, now=now)
        with transaction.atomic():
            subscription = lock_subscription(invoice.subscription_id)
            invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
            awaiting.refresh_from_db()
            if awaiting.status == Charge.Status.REQUIRES_ACTION and _retry_due(
                subscription, invoice, now=now
            ):
                invoice.next_retry_at = None
                invoice.save(update_fields=["next_retry_at"])
                renewal_authentication_required(invoice=invoice, charge=awaiting,
                                                subscription=subscription, now=now)
                return awaiting
            if awaiting.status != Charge.Status.FAILED:
                return None  # paid meanwhile (settled just now)
    with transaction.atomic():
        subscription = lock_subscription(invoice.subscription_id)
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if not _retry_due(subscription, invoice, now=now):
            return None
        try:
            charge = charge_prepare(invoice=invoice, now=now)
        except PaymentError:
            return None  # a charge of it is still in progress: the retry waits for it
        invoice.next_retry_at = None
        invoice.save(update_fields=["next_retry_at"])
    return charge_send(charge=charge, now=now)


def _retry_due(subscription, invoice, *, now) -> bool:
    return (
        subscription.status == Status.PAST_DUE
        and invoice.status == Invoice.Status.OPEN
        and invoice.next_retry_at is not None
        and invoice.next_retry_at <= now
        and renewal_collectable(subscription, invoice)
    )


def _awaiting_charge(invoice) -> Charge | None:
    """The invoice's charge waiting for the customer's 3-D Secure, if any (at most one: no
    charge is prepared while one may still move money)."""
    return invoice.charges.filter(status=Charge.Status.REQUIRES_ACTION).order_by(
        "-attempt").first()


def subscription_pay_now(*, subscription, now, initiated_by: str = Actor.CUSTOMER) -> Charge:
    """"Payer maintenant": the customer (or support, ``initiated_by`` staff) pays the open
    renewal invoice on the default card. Success reactivates at once with the period unchanged;
    a refusal is shown, and does not count as one of the scheduled attempts.

    The bank may ask for 3-D Secure: the charge is returned waiting (requires_action) and the
    customer is sent to the challenge ("Confirmer votre paiement"). A charge of the invoice
    already waiting for it is not doubled: it is asked about first, and returned while it
    still waits (paid meanwhile: returned paid; refused meanwhile: a new charge is made)."""
    return _pay_open_invoice(subscription=subscription, now=now, initiated_by=initiated_by,
                             refusal=pay_now_refusal)


def subscription_confirm_payment(*, subscription, now) -> Charge:
    """"Confirmer votre paiement" (DESIGN §6): the customer starts paying the renewal invoice
    that waits for their 3-D Secure, as "Payer maintenant" does, if confirm_payment_refusal
    allows it. The returned charge is usually waiting for the challenge (requires_action)."""
    return _pay_open_invoice(subscription=subscription, now=now, initiated_by=Actor.CUSTOMER,
                             refusal=confirm_payment_refusal)


def _pay_open_invoice(*, subscription, now, initiated_by, refusal) -> Charge:
    with transaction.atomic():
        subscription = lock_subscription(subscription.pk)
        invoice = open_renewal_invoice(subscription)
        require(refusal(subscription, now=now, invoice=invoice), subscription,
                PaymentNotPossible)
        awaiting = _awaiting_charge(invoice)
    if awaiting is not None:
        charge_resume_apply(charge_id=awaiting.pk, now=now)
        awaiting.refresh_from_db()
        if awaiting.status != Charge.Status.FAILED:
            return awaiting
    with transaction.atomic():
        subscription = lock_subscription(subscription.pk)
        invoice = open_renewal_invoice(subscription)
        require(refusal(subscription, now=now, invoice=invoice), subscription,
                PaymentNotPossible)
        try:
            charge = charge_prepare(invoice=invoice, now=now, initiated_by=initiated_by)
        except PaymentError as error:
            raise PaymentNotPossible(
                _("Un paiement de cette facture est déjà en cours de traitement.")
            ) from error
    return charge_send(charge=charge, now=now)


def subscription_expire(*, subscription_id: int, now) -> bool:
    """Auto-renewal off and ``ends_at`` passed: the subscription ends (``expired``)."""
    with transaction.atomic():
        subscription = lock_subscription(subscription_id)
        if not expiry_due(subscription, now=now):
            return False
        lifecycle.end(subscription, reason=EndReason.EXPIRED, at=subscription.ends_at, now=now)
        return True


def subscription_end_unpaid(*, subscription_id: int, now) -> bool:
    """Suspended and the unpaid period is over: the subscription ends (``unpaid``)."""
    with transaction.atomic():
        subscription = lock_subscription(subscription_id)
        invoice = open_renewal_invoice(subscription)
        if subscription.status != Status.SUSPENDED or invoice is None or invoice.period_end > now:
            return False
        if invoice.charges.filter(status__in=[Charge.Status.PENDING,
                                              Charge.Status.UNKNOWN]).exists():
            return False  # a payment made in time is still on its way: its outcome decides
        lifecycle.end(subscription, reason=EndReason.UNPAID, at=invoice.period_end, now=now)
        return True
