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
    open_renewal_invoice,
    pay_now_refusal,
    renewal_collectable,
    require,
)
from subscriptions.selectors import business_tz, lock_subscription, renewal_due
from subscriptions.services import lifecycle
from subscriptions.services.payments import charge_send


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
    """A scheduled retry of an open renewal invoice (attempts 2–4)."""
    with transaction.atomic():
        invoice = Invoice.objects.get(pk=invoice_id)
        subscription = lock_subscription(invoice.subscription_id)
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if (
            subscription.status != Status.PAST_DUE
            or invoice.status != Invoice.Status.OPEN
            or invoice.next_retry_at is None
            or invoice.next_retry_at > now
            or not renewal_collectable(subscription, invoice)
        ):
            return None
        try:
            charge = charge_prepare(invoice=invoice, now=now)
        except PaymentError:
            return None  # a charge of it is still in progress: the retry waits for it
        invoice.next_retry_at = None
        invoice.save(update_fields=["next_retry_at"])
    return charge_send(charge=charge, now=now)


def subscription_pay_now(*, subscription, now, initiated_by: str = Actor.CUSTOMER) -> Charge:
    """"Payer maintenant": the customer (or support, ``initiated_by`` staff) pays the open
    renewal invoice on the default card. Success reactivates at once with the period unchanged;
    a refusal is shown, and does not count as one of the scheduled attempts."""
    with transaction.atomic():
        subscription = lock_subscription(subscription.pk)
        invoice = open_renewal_invoice(subscription)
        require(pay_now_refusal(subscription, now=now, invoice=invoice), subscription,
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
        if (
            subscription.status == Status.ENDED
            or subscription.auto_renew
            or subscription.ends_at is None
            or subscription.ends_at > now
        ):
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
