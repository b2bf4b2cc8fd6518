"""The scheduled life of a subscription (DESIGN §5, §6): renew, retry, end. Each service
takes one id, locks the row, re-checks that the work is still due and is safe to run twice."""

from django.db import transaction
from django.utils.translation import gettext as _

from billing.gateways import PaymentError
from billing.models import Charge, Invoice
from billing.services import charge_prepare, invoice_create, invoice_void
from subscriptions.models import Actor, EndReason, Status, SubscriptionEvent
from subscriptions.periods import period_at
from subscriptions.selectors import business_tz, renewal_due
from subscriptions.services.events import subscription_event_record
from subscriptions.services.payments import charge_send, lock_subscription, renewal_collectable


class PaymentNotPossible(Exception):
    """Shown to the customer as is."""


def subscription_renew(*, subscription_id: int, now) -> Charge | None:
    """Invoice the next period (the scheduled plan if any) and charge it: attempt 1."""
    with transaction.atomic():
        subscription = lock_subscription(subscription_id)
        if not renewal_due(subscription, now=now):
            return None
        plan = subscription.pending_plan or subscription.plan
        period = period_at(anchor=subscription.billing_anchor, interval=plan.interval,
                           instant=subscription.current_period_end, tz=business_tz())
        invoice = subscription.invoices.filter(
            kind=Invoice.Kind.RENEWAL, period_start=period.start
        ).first()
        if invoice is not None:
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
        try:
            charge = charge_prepare(invoice=invoice, now=now)
        except PaymentError:
            return None
    return charge_send(charge=charge, now=now)


def subscription_retry_payment(*, subscription_id: int, now) -> Charge | None:
    """A scheduled retry of the open renewal invoice (attempts 2–4)."""
    with transaction.atomic():
        subscription = lock_subscription(subscription_id)
        if (
            subscription.status != Status.PAST_DUE
            or subscription.next_retry_at is None
            or subscription.next_retry_at > now
        ):
            return None
        invoice = _open_renewal_invoice(subscription)
        if invoice is None or not renewal_collectable(subscription, invoice):
            return None
        try:
            charge = charge_prepare(invoice=invoice, now=now)
        except PaymentError:
            return None
        subscription.next_retry_at = None
        subscription.save(update_fields=["next_retry_at"])
    return charge_send(charge=charge, now=now)


def subscription_pay_now(*, subscription, now, initiated_by: str = Actor.CUSTOMER) -> Charge:
    """"Payer maintenant": the customer (or support, ``initiated_by`` staff) pays the open
    renewal invoice on the default card. Success reactivates at once with the period unchanged;
    a refusal is shown, and does not count as one of the scheduled attempts."""
    with transaction.atomic():
        subscription = lock_subscription(subscription.pk)
        invoice = _open_renewal_invoice(subscription)
        if subscription.status not in (Status.PAST_DUE, Status.SUSPENDED) or invoice is None:
            raise PaymentNotPossible(_("Aucune facture n'est à payer pour cet abonnement."))
        if not renewal_collectable(subscription, invoice):
            raise PaymentNotPossible(
                _("Cet abonnement a été résilié : la facture en attente ne sera pas prélevée.")
            )
        if invoice.period_end <= now:
            raise PaymentNotPossible(
                _("La période impayée est terminée : cet abonnement va prendre fin. Vous "
                  "pourrez souscrire à nouveau.")
            )
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
        subscription_end(subscription=subscription, reason=EndReason.EXPIRED,
                         at=subscription.ends_at, now=now)
        return True


def subscription_end_unpaid(*, subscription_id: int, now) -> bool:
    """Suspended and the unpaid period is over: the subscription ends (``unpaid``)."""
    with transaction.atomic():
        subscription = lock_subscription(subscription_id)
        invoice = _open_renewal_invoice(subscription)
        if subscription.status != Status.SUSPENDED or invoice is None or invoice.period_end > now:
            return False
        subscription_end(subscription=subscription, reason=EndReason.UNPAID,
                         at=invoice.period_end, now=now)
        return True


def _open_renewal_invoice(subscription):
    return (
        subscription.invoices.filter(kind=Invoice.Kind.RENEWAL, status=Invoice.Status.OPEN)
        .order_by("-period_start")
        .first()
    )


def subscription_end(
    *, subscription, reason, at, now, actor=Actor.SYSTEM, actor_user=None, amount_cents=None,
    data=None,
) -> None:
    """End a subscription (locked by the caller) as of ``at``: open invoices voided, licence
    off, nothing more renewed, retried or scheduled."""
    for invoice in subscription.invoices.filter(status=Invoice.Status.OPEN):
        invoice_void(invoice=invoice)
    subscription.status = Status.ENDED
    subscription.end_reason = reason
    subscription.ended_at = at
    subscription.ends_at = at
    subscription.auto_renew = False
    subscription.licence_active = False
    subscription.next_retry_at = None
    subscription.pending_plan = None
    subscription.save()
    subscription_event_record(
        subscription=subscription,
        kind=SubscriptionEvent.Kind.ENDED,
        actor=actor,
        actor_user=actor_user,
        at=now,
        amount_cents=amount_cents,
        data={"reason": reason, "ended_at": at.isoformat(), **(data or {})},
    )
