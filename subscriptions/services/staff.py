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
from subscriptions.models import Actor, EndReason, Subscription, SubscriptionEvent
from subscriptions.periods import add_days
from subscriptions.rules import (
    direct_refusal,
    end_now_refusal,
    extend_refusal,
    require,
)
from subscriptions.selectors import (
    business_tz,
    lock_subscription,
    paid_for_current_period,
    succeeded_charges_with_refundable,
)
from subscriptions.services import lifecycle
from subscriptions.services.events import subscription_event_record
from subscriptions.services.lifecycle import Who
from subscriptions.services.renew import PaymentNotPossible, subscription_pay_now

EXTEND_MAX_DAYS = 365


class StaffActionError(Exception):
    """Shown to the staff member as is; nothing was changed."""


def _locked(subscription, refusal_of, *, now) -> Subscription:
    subscription = lock_subscription(subscription.pk)
    require(refusal_of(subscription, now=now), subscription, StaffActionError)
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
        subscription = _locked(subscription, direct_refusal, now=now)
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
        subscription = _locked(subscription, end_now_refusal, now=now)
        refunded = 0
        if refund:
            for charge in current_period_charges(subscription=subscription):
                if charge.refundable_cents > 0:
                    refund_create(charge=charge, amount_cents=charge.refundable_cents,
                                  reason=Refund.Reason.STAFF, now=now)
                    refunded += charge.refundable_cents
        lifecycle.end(subscription, reason=EndReason.TERMINATED_BY_SUPPORT, at=now, now=now,
                      who=Who(Actor.STAFF, staff_user), amount_cents=refunded,
                      data={"refund": refund})
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
        subscription = _locked(subscription, extend_refusal, now=now)
        ends_at = subscription.ends_at
        lifecycle.extend(
            subscription,
            period_end=add_days(subscription.current_period_end, days, tz=business_tz()),
            ends_at=add_days(ends_at, days, tz=business_tz()) if ends_at else None,
            days=days, who=Who(Actor.STAFF, staff_user), now=now,
        )
    return subscription


def staff_payment_retry(*, subscription, staff_user, now=None) -> Charge:
    """Charge the open renewal invoice now (past due or suspended), like "Payer maintenant".
    A refusal does not count as one of the scheduled attempts."""
    now = now or timezone.now()
    require(direct_refusal(subscription), subscription, StaffActionError)
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
    """Queue a copy of one of the subscription's emails, from its admin page."""
    require(direct_refusal(subscription), subscription, StaffActionError)
    email = OutboxEmail.objects.filter(pk=email.pk, subscription=subscription).first()
    if email is None:
        raise StaffActionError(_("Cet e-mail n'appartient pas à cet abonnement."))
    return email_resend_recorded(email=email, staff_user=staff_user, now=now)


def email_resend_recorded(*, email, staff_user, now=None) -> OutboxEmail:
    """Queue a copy of an email; one of a subscription's records the resend on its timeline."""
    now = now or timezone.now()
    with transaction.atomic():
        copy = email_resend(email=email, now=now)
        if copy.subscription_id is not None:
            subscription_event_record(
                subscription=copy.subscription,
                kind=SubscriptionEvent.Kind.EMAIL_RESENT,
                actor=Actor.STAFF,
                actor_user=staff_user,
                at=now,
                data={"email": email.pk, "copy": copy.pk, "kind": copy.kind,
                      "occasion_key": copy.occasion_key},
            )
    return copy


def staff_licence_regenerate(*, subscription, staff_user, now=None) -> Subscription:
    """A new licence key; the old one stops working and is kept in the event."""
    now = now or timezone.now()
    with transaction.atomic():
        subscription = _locked(subscription, direct_refusal, now=now)
        lifecycle.regenerate_licence(subscription, who=Who(Actor.STAFF, staff_user), now=now)
    return subscription
