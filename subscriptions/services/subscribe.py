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
from subscriptions.models import RUNNING_STATUSES, Actor, Subscription, SubscriptionEvent
from subscriptions.periods import period_by_index
from subscriptions.selectors import business_tz
from subscriptions.services.events import subscription_event_record
from subscriptions.services.payments import charge_send


class SubscribeError(Exception):
    """Shown to the customer as is."""


def subscription_subscribe(*, customer, plan, card: CardDetails | None = None, now=None):
    """Charge the first period and, once paid, open the subscription.

    ``card`` is a new card to save and charge; without it the default card is charged. A
    declined card leaves no subscription (the invoice is voided) and a new card that was
    refused does not stay the default. Raises SubscribeError or CardDeclined (card refused
    by the provider's tokenizer)."""
    now = now or timezone.now()
    if not plan.is_active:
        raise SubscribeError(_("Cette formule n'est plus proposée."))
    new_card = payment_method_add(customer=customer, card=card, now=now) if card else None
    try:
        return _subscribe_with_default_card(customer=customer, plan=plan, now=now)
    except SubscribeError:
        if new_card is not None:
            payment_method_withdraw(payment_method=new_card)
        raise


def _subscribe_with_default_card(*, customer, plan, now) -> Subscription:
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
        raise SubscribeError(
            _("Nous n'avons pas pu confirmer votre paiement. Ne le renouvelez pas : nous "
              "vérifions auprès de notre prestataire et vous écrirons dès que possible.")
        )
    return Invoice.objects.get(pk=invoice.pk).subscription


def initial_charge_settled(*, invoice, charge, now) -> None:
    """A first payment is known (at once, or later by reconciliation): paid opens the
    subscription, refused voids the invoice."""
    if charge.status == Charge.Status.FAILED:
        invoice_void(invoice=invoice)
    elif charge.status == Charge.Status.SUCCEEDED and invoice.subscription_id is None:
        _subscription_open(invoice=invoice, now=now)


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
