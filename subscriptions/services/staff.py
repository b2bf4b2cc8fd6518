"""What support staff do to a subscription from the admin (DESIGN §11). Each service refuses
subscriptions bought elsewhere, changes nothing on bad input (StaffActionError, shown as is)
and records a SubscriptionEvent with the staff user."""


from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Charge, Refund
from billing.services import RefundNotAllowed, refund_create
from notifications.models import OutboxEmail
from notifications.services import email_resend
from subscriptions.licences import new_licence_key
from subscriptions.models import Actor, Channel, EndReason, Status, Subscription, SubscriptionEvent
from subscriptions.periods import add_days
from subscriptions.selectors import (
    business_tz,
    paid_for_current_period,
    succeeded_charges_with_refundable,
)
from subscriptions.services.events import subscription_event_record
from subscriptions.services.payments import lock_subscription
from subscriptions.services.renew import (
    PaymentNotPossible,
    subscription_end,
    subscription_pay_now,
)

EXTEND_MAX_DAYS = 365


class StaffActionError(Exception):
    """Shown to the staff member as is; nothing was changed."""


def _require_direct(subscription) -> None:
    if subscription.channel != Channel.DIRECT:
        raise StaffActionError(
            _("Cet abonnement a été souscrit via %(channel)s : il se gère auprès de lui, "
              "aucune action n'est possible ici.")
            % {"channel": subscription.get_channel_display()}
        )


def _locked_direct(subscription) -> Subscription:
    subscription = lock_subscription(subscription.pk)
    _require_direct(subscription)
    return subscription


def current_period_charges(*, subscription) -> list[Charge]:
    """Paid charges of the current period, each annotated with ``refundable_cents``."""
    return [
        charge
        for charge in succeeded_charges_with_refundable(subscription=subscription)
        if paid_for_current_period(subscription, charge)
    ]


def staff_charge_refund(
    *, subscription, charge, amount_cents: int, staff_user, now=None, data=None
) -> Refund:
    """A full or partial refund of one of the subscription's charges, within what remains
    refundable on it."""
    now = now or timezone.now()
    with transaction.atomic():
        subscription = _locked_direct(subscription)
        charge = Charge.objects.select_related("invoice").filter(
            pk=charge.pk, invoice__subscription=subscription
        ).first()
        if charge is None:
            raise StaffActionError(_("Ce paiement n'appartient pas à cet abonnement."))
        try:
            refund = refund_create(charge=charge, amount_cents=amount_cents,
                                   reason=Refund.Reason.STAFF, now=now)
        except RefundNotAllowed as error:
            raise StaffActionError(str(error)) from error
        subscription_event_record(
            subscription=subscription,
            kind=SubscriptionEvent.Kind.STAFF_REFUND,
            actor=Actor.STAFF,
            actor_user=staff_user,
            at=now,
            amount_cents=amount_cents,
            data={"charge": charge.pk, "invoice": charge.invoice.number, "refund": refund.pk,
                  **(data or {})},
        )
    return refund


def end_now_refundable_cents(*, subscription) -> int:
    return sum(c.refundable_cents for c in current_period_charges(subscription=subscription))


def staff_subscription_end_now(*, subscription, refund: bool, staff_user, now=None) -> int:
    """End at once (``terminated_by_support``): licence off, open invoices voided, and if asked
    the current period's refundable remainder refunded. Returns the amount refunded."""
    now = now or timezone.now()
    with transaction.atomic():
        subscription = _locked_direct(subscription)
        if subscription.status == Status.ENDED:
            raise StaffActionError(_("Cet abonnement est déjà terminé."))
        refunded = 0
        if refund:
            for charge in current_period_charges(subscription=subscription):
                if charge.refundable_cents > 0:
                    refund_create(charge=charge, amount_cents=charge.refundable_cents,
                                  reason=Refund.Reason.STAFF, now=now)
                    refunded += charge.refundable_cents
        subscription_end(subscription=subscription, reason=EndReason.TERMINATED_BY_SUPPORT,
                         at=now, now=now, actor=Actor.STAFF, actor_user=staff_user,
                         amount_cents=refunded, data={"refund": refund})
    return refunded


def staff_subscription_extend(*, subscription, days: int, staff_user, now=None) -> Subscription:
    """Move the end of the current period (and ``ends_at`` if set) N days later: the renewal
    charge, or the end, comes that much later. Billing is re-anchored on the new end, so the
    next period starts there (from the old anchor it would start at the old boundary and the
    days given would be charged again)."""
    now = now or timezone.now()
    if not isinstance(days, int) or not 1 <= days <= EXTEND_MAX_DAYS:
        raise StaffActionError(
            _("Indiquez un nombre de jours entre 1 et %(max)s.") % {"max": EXTEND_MAX_DAYS}
        )
    with transaction.atomic():
        subscription = _locked_direct(subscription)
        if subscription.status == Status.ENDED:
            raise StaffActionError(_("Cet abonnement est terminé : il ne peut pas être prolongé."))
        if subscription.status != Status.ACTIVE:
            raise StaffActionError(
                _("Le renouvellement de cet abonnement est impayé : relancez le paiement ou "
                  "terminez l'abonnement plutôt que de le prolonger.")
            )
        previous_end, previous_ends_at = subscription.current_period_end, subscription.ends_at
        subscription.current_period_end = add_days(previous_end, days, tz=business_tz())
        subscription.billing_anchor = subscription.current_period_end
        if previous_ends_at is not None:
            subscription.ends_at = add_days(previous_ends_at, days, tz=business_tz())
        subscription.save(update_fields=["current_period_end", "billing_anchor", "ends_at"])
        subscription_event_record(
            subscription=subscription,
            kind=SubscriptionEvent.Kind.PERIOD_EXTENDED,
            actor=Actor.STAFF,
            actor_user=staff_user,
            at=now,
            data={
                "days": days,
                "from": previous_end.isoformat(),
                "to": subscription.current_period_end.isoformat(),
                "ends_at_from": previous_ends_at.isoformat() if previous_ends_at else "",
                "ends_at_to": subscription.ends_at.isoformat() if previous_ends_at else "",
            },
        )
    return subscription


def staff_payment_retry(*, subscription, staff_user, now=None) -> Charge:
    """Charge the open renewal invoice now (past due or suspended), like "Payer maintenant".
    A refusal does not count as one of the scheduled attempts."""
    now = now or timezone.now()
    _require_direct(subscription)
    try:
        charge = subscription_pay_now(subscription=subscription, now=now,
                                      initiated_by=Actor.STAFF)
    except PaymentNotPossible as error:
        raise StaffActionError(str(error)) from error
    charge = Charge.objects.select_related("invoice").get(pk=charge.pk)
    subscription_event_record(
        subscription=subscription,
        kind=SubscriptionEvent.Kind.PAYMENT_RETRIED,
        actor=Actor.STAFF,
        actor_user=staff_user,
        at=now,
        amount_cents=charge.amount_cents,
        data={"invoice": charge.invoice.number, "charge": charge.pk, "status": charge.status,
              "code": charge.failure_code},
    )
    return charge


def staff_email_resend(*, subscription, email, staff_user, now=None) -> OutboxEmail:
    """Queue a copy of one of the subscription's emails (the copy records the event)."""
    now = now or timezone.now()
    _require_direct(subscription)
    email = OutboxEmail.objects.filter(pk=email.pk, subscription=subscription).first()
    if email is None:
        raise StaffActionError(_("Cet e-mail n'appartient pas à cet abonnement."))
    return email_resend(email=email, staff_user=staff_user, now=now)


def staff_licence_regenerate(*, subscription, staff_user, now=None) -> Subscription:
    """A new licence key; the old one stops working and is kept in the event."""
    now = now or timezone.now()
    with transaction.atomic():
        subscription = _locked_direct(subscription)
        old_key = subscription.licence_key
        new_key = new_licence_key()
        while Subscription.objects.filter(licence_key=new_key).exists():
            new_key = new_licence_key()
        subscription.licence_key = new_key
        subscription.save(update_fields=["licence_key"])
        subscription_event_record(
            subscription=subscription,
            kind=SubscriptionEvent.Kind.LICENCE_REGENERATED,
            actor=Actor.STAFF,
            actor_user=staff_user,
            at=now,
            data={"old_key": old_key, "new_key": new_key},
        )
    return subscription
