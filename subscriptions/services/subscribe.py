from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from billing.messages import decline_message
from billing.models import Charge, Invoice
from billing.selectors import first_payment_awaiting_authentication, first_payment_in_progress
from billing.services import (
    card_setup,
    charge_prepare,
    invoice_create,
    payment_method_save,
)
from subscriptions.models import RUNNING_STATUSES, Actor, Subscription
from subscriptions.periods import period_by_index
from subscriptions.rules import require, restart_refusal
from subscriptions.selectors import business_tz
from subscriptions.services.payments import (
    ChallengeRequired,
    charge_challenge_cancel_apply,
    charge_send,
)
from subscriptions.services.renew import subscription_expire


class SubscribeError(Exception):
    """Shown to the customer as is."""


class PaymentUnconfirmed(SubscribeError):
    """The provider did not answer: the charge may have gone through and is reconciled
    later, on the card it was made with."""


def subscription_subscribe(*, customer, plan, card_token: str | None = None, now=None):
    """Charge the first period and, once paid, open the subscription.

    ``card_token`` is a new card (tokenized by the provider's fields) to set up, save and
    charge; without it the default card is charged. A declined card leaves no subscription and
    no numbered invoice, and a new card that was refused does not stay the default. Raises
    SubscribeError, CardDeclined (the provider refused to set the card up),
    SetupAuthenticationRequired (the bank wants the new card authenticated before it is
    saved: nothing else was done) or ChallengeRequired (the bank wants this payment
    authenticated: the subscription opens once it is)."""
    now = now or timezone.now()
    if not plan.is_active:
        raise SubscribeError(_("Cette formule n'est plus proposée."))
    return _pay_first_period(customer=customer, plan=plan, card_token=card_token, now=now)


def subscription_restart(*, subscription, card_token: str | None = None, now=None):
    """"Renouveler" after the end (DESIGN §5): a new paid period of the same plan starting
    now, on the same subscription and licence key, paid like a new subscription."""
    now = now or timezone.now()
    require(restart_refusal(subscription, now=now), subscription, SubscribeError)
    subscription_expire(subscription_id=subscription.pk, now=now)
    return _pay_first_period(customer=subscription.customer, plan=subscription.plan,
                             card_token=card_token, subscription=subscription, now=now)


def _pay_first_period(*, customer, plan, card_token, now, subscription=None) -> Subscription:
    setup = card_setup(customer=customer, token=card_token) if card_token else None
    # Paying again rather than finishing the bank's confirmation of the previous attempt:
    # that one is cancelled at the provider first (if it was paid meanwhile, it opened the
    # subscription and this checkout stops below).
    for waiting in first_payment_awaiting_authentication(customer=customer):
        charge_challenge_cancel_apply(charge_id=waiting.pk, now=now)
    with transaction.atomic():
        # One customer's concurrent checkouts are serialized here: the first prepares its
        # charge, the others find it (or the subscription it opened) and stop, saving nothing.
        User.objects.select_for_update().get(pk=customer.pk)
        if subscription is None and customer.subscriptions.filter(
            status__in=RUNNING_STATUSES
        ).exists():
            raise SubscribeError(_("Vous avez déjà un abonnement en cours."))
        if subscription is not None:
            subscription.refresh_from_db()
            if subscription.is_running:
                raise SubscribeError(_("Cet abonnement est toujours en cours."))
        if first_payment_in_progress(customer=customer):
            raise SubscribeError(
                _("Un paiement est déjà en cours de traitement. Merci de patienter quelques "
                  "minutes avant de réessayer.")
            )
        if setup is not None:
            payment_method_save(customer=customer, setup=setup, now=now)
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
    if charge.status == Charge.Status.REQUIRES_ACTION:
        raise ChallengeRequired(charge)
    if charge.status == Charge.Status.FAILED:
        raise SubscribeError(decline_message(charge.failure_code))
    if charge.status != Charge.Status.SUCCEEDED:
        raise PaymentUnconfirmed(
            _("Nous n'avons pas pu confirmer votre paiement. Ne le renouvelez pas : nous "
              "vérifions auprès de notre prestataire et vous écrirons dès que possible.")
        )
    return Subscription.objects.get(invoices=invoice)
