from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from billing.gateways import CardDetails
from billing.messages import decline_message
from billing.models import Charge, Invoice
from billing.services import (
    charge_prepare,
    invoice_create,
    invoice_void,
    payment_method_add,
    payment_method_withdraw,
)
from notifications.services import email_enqueue
from subscriptions.licences import new_licence_key
from subscriptions.models import (
    RUNNING_STATUSES,
    Actor,
    Channel,
    Status,
    Subscription,
    SubscriptionEvent,
)
from subscriptions.periods import period_by_index
from subscriptions.selectors import business_tz
from subscriptions.services.events import subscription_event_record
from subscriptions.services.payments import charge_send
from subscriptions.services.renew import subscription_expire


class SubscribeError(Exception):
    """Shown to the customer as is."""


class PaymentUnconfirmed(SubscribeError):
    """The provider did not answer: the charge may have gone through and is reconciled
    later, on the card it was made with."""


def subscription_subscribe(*, customer, plan, card: CardDetails | None = None, now=None):
    """Charge the first period and, once paid, open the subscription.

    ``card`` is a new card to save and charge; without it the default card is charged. A
    declined card leaves no subscription (the invoice is voided) and a new card that was
    refused does not stay the default. Raises SubscribeError or CardDeclined (card refused
    by the provider's tokenizer)."""
    now = now or timezone.now()
    if not plan.is_active:
        raise SubscribeError(_("Cette formule n'est plus proposée."))
    return _pay_first_period(customer=customer, plan=plan, card=card, now=now)


def subscription_restart(*, subscription, card: CardDetails | None = None, now=None):
    """"Renouveler" after the end (DESIGN §5): a new paid period of the same plan starting
    now, on the same subscription and licence key, paid like a new subscription."""
    now = now or timezone.now()
    if subscription.channel != Channel.DIRECT:
        raise SubscribeError(_("Cet abonnement se gère auprès de %(channel)s.")
                             % {"channel": subscription.get_channel_display()})
    subscription_expire(subscription_id=subscription.pk, now=now)
    subscription.refresh_from_db()
    if subscription.status != Status.ENDED:
        raise SubscribeError(_("Cet abonnement est toujours en cours."))
    if not subscription.plan.is_active:
        raise SubscribeError(_("Cette formule n'est plus proposée : choisissez une offre."))
    return _pay_first_period(customer=subscription.customer, plan=subscription.plan, card=card,
                             subscription=subscription, now=now)


def _pay_first_period(*, customer, plan, card, now, subscription=None) -> Subscription:
    new_card = payment_method_add(customer=customer, card=card, now=now) if card else None
    try:
        return _pay_first_period_with_default_card(
            customer=customer, plan=plan, subscription=subscription, now=now
        )
    except PaymentUnconfirmed:
        raise
    except SubscribeError:
        if new_card is not None:
            payment_method_withdraw(payment_method=new_card)
        raise


def _pay_first_period_with_default_card(*, customer, plan, subscription, now) -> Subscription:
    with transaction.atomic():
        User.objects.select_for_update().get(pk=customer.pk)
        if customer.subscriptions.filter(status__in=RUNNING_STATUSES).exists():
            raise SubscribeError(_("Vous avez déjà un abonnement en cours."))
        # An open initial invoice is a subscription being paid for (its charge may be pending,
        # unknown or not created yet): a second click must not create and charge another one.
        if Invoice.objects.filter(
            customer=customer, kind=Invoice.Kind.INITIAL, status=Invoice.Status.OPEN
        ).exists():
            raise SubscribeError(
                _("Un paiement est déjà en cours de traitement. Merci de patienter quelques "
                  "minutes avant de réessayer.")
            )
        period = period_by_index(anchor=now, interval=plan.interval, index=0, tz=business_tz())
        invoice = invoice_create(
            customer=customer,
            plan=plan,
            kind=Invoice.Kind.INITIAL,
            subscription=subscription,
            period_start=period.start,
            period_end=period.end,
            description=_("Abonnement %(plan)s") % {"plan": plan},
            now=now,
        )
        charge = charge_prepare(invoice=invoice, now=now, initiated_by=Actor.CUSTOMER)
    charge = charge_send(charge=charge, now=now)
    if charge.status == Charge.Status.FAILED:
        raise SubscribeError(decline_message(charge.failure_code))
    if charge.status != Charge.Status.SUCCEEDED:
        raise PaymentUnconfirmed(
            _("Nous n'avons pas pu confirmer votre paiement. Ne le renouvelez pas : nous "
              "vérifions auprès de notre prestataire et vous écrirons dès que possible.")
        )
    return Subscription.objects.get(invoices=invoice)


def initial_charge_settled(*, invoice, charge, now) -> None:
    """A first payment is known (at once, or later by reconciliation): paid opens the
    subscription (or restarts the ended one it was for), refused voids the invoice."""
    if charge.status == Charge.Status.FAILED:
        invoice_void(invoice=invoice)
    elif charge.status == Charge.Status.SUCCEEDED and invoice.subscription_id is None:
        _subscription_open(invoice=invoice, now=now)
    elif charge.status == Charge.Status.SUCCEEDED:
        _subscription_restarted(invoice=invoice, now=now)


def _subscription_restarted(*, invoice, now) -> None:
    subscription = invoice.subscription
    if subscription.status != Status.ENDED:
        return
    subscription.plan = invoice.plan
    subscription.status = Status.ACTIVE
    subscription.end_reason = ""
    subscription.ended_at = None
    subscription.billing_anchor = invoice.period_start
    subscription.current_period_start = invoice.period_start
    subscription.current_period_end = invoice.period_end
    subscription.auto_renew = True
    subscription.cancel_requested_at = None
    subscription.cancel_reason = ""
    subscription.cancel_reason_detail = ""
    subscription.ends_at = None
    subscription.pending_plan = None
    subscription.licence_active = True
    subscription.save()
    subscription_event_record(
        subscription=subscription,
        kind=SubscriptionEvent.Kind.SUBSCRIBED,
        actor=Actor.CUSTOMER,
        actor_user=subscription.customer,
        at=now,
        amount_cents=invoice.total_cents,
        data={"plan": invoice.plan.code, "invoice": invoice.number, "restart": True},
    )
    email_enqueue(
        kind="welcome",
        occasion=f"subscription-{subscription.pk}-restart-{invoice.pk}",
        customer=subscription.customer,
        subscription=subscription,
        context={"invoice": Invoice.objects.get(pk=invoice.pk), "plan": invoice.plan,
                 "restart": True},
        now=now,
    )


def _subscription_open(*, invoice, now) -> Subscription:
    customer, plan = invoice.customer, invoice.plan
    subscription = Subscription.objects.create(
        customer=customer,
        plan=plan,
        started_at=invoice.period_start,
        billing_anchor=invoice.period_start,
        current_period_start=invoice.period_start,
        current_period_end=invoice.period_end,
        licence_key=new_licence_key(),
    )
    invoice.subscription = subscription
    invoice.save(update_fields=["subscription"])
    subscription_event_record(
        subscription=subscription,
        kind=SubscriptionEvent.Kind.SUBSCRIBED,
        actor=Actor.CUSTOMER,
        actor_user=customer,
        at=now,
        amount_cents=invoice.total_cents,
        data={"plan": plan.code, "invoice": invoice.number},
    )
    email_enqueue(
        kind="welcome",
        occasion=f"subscription-{subscription.pk}",
        customer=customer,
        subscription=subscription,
        context={"invoice": Invoice.objects.get(pk=invoice.pk), "plan": plan},
        now=now,
    )
    return subscription
