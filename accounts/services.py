"""Writes about a customer's own account (DESIGN §2): account deletion."""

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import PaymentMethod
from billing.selectors import first_payment_in_progress
from subscriptions.models import (
    RUNNING_STATUSES,
    Actor,
    Channel,
    EndReason,
    Status,
)
from subscriptions.rules import Refusal, account_delete_refusal, require
from subscriptions.selectors import lock_subscription
from subscriptions.services import lifecycle, subscription_cancel
from subscriptions.services.lifecycle import Who


class AccountDeletionError(Exception):
    """Shown to the customer as is."""


def anonymised_email(pk) -> str:
    return f"supprime-{pk}@invalid.example"


def account_delete(*, customer, now=None):
    """Delete a customer's account at their request.

    Running subscriptions are cancelled (the usual cancellation, refund included) and ended
    now, but not while a commitment binds the customer to further periods: that contract runs
    to the commitment's end and its remaining instalments stay due, charged to the card that
    deletion would make unusable, so the account stays until then and the page says so
    (subscriptions.rules.account_delete_refusal; the personal data the contract needs are
    kept for it, GDPR art. 6(1)(b) and 17(1)(a)).

    What the law requires us to keep (invoices, credit notes, charges, refunds, events, the
    customer number) stays, attached to an anonymised customer who can no longer log in;
    saved cards keep their row but lose their provider token. All or nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        customer = get_user_model().objects.select_for_update().get(pk=customer.pk)
        if not customer.is_active:
            raise AccountDeletionError(_("Ce compte est déjà supprimé."))
        running = list(customer.subscriptions.filter(status__in=RUNNING_STATUSES))
        elsewhere = [s for s in running if s.channel != Channel.DIRECT]
        if elsewhere:
            raise AccountDeletionError(
                _("Votre abonnement souscrit via %(channel)s doit d'abord être résilié auprès "
                  "de lui ; vous pourrez ensuite supprimer votre compte.")
                % {"channel": elsewhere[0].get_channel_display()}
            )
        for subscription in running:
            refusal = account_delete_refusal(subscription, now=now)
            if refusal != Refusal.OTHER_CHANNEL:
                require(refusal, subscription, AccountDeletionError)
        if first_payment_in_progress(customer=customer):
            raise AccountDeletionError(
                _("Un paiement est en cours de traitement : réessayez dans quelques minutes.")
            )
        for subscription in running:
            subscription_cancel(subscription=subscription, actor=Actor.CUSTOMER,
                                actor_user=customer, now=now)
            _end_now(subscription_id=subscription.pk, customer=customer, now=now)
        _anonymise(customer)
    return customer


def _end_now(*, subscription_id, customer, now) -> None:
    subscription = lock_subscription(subscription_id)
    if subscription.status == Status.ENDED:
        return  # the cancellation already ended it (refund window)
    lifecycle.end(subscription, reason=EndReason.EXPIRED, at=now, now=now,
                  who=Who(Actor.CUSTOMER, customer), data={"account_deleted": True})


BILLING_IDENTITY_FIELDS = ["company_name", "address_line1", "address_line2", "postal_code",
                           "city", "siren", "vat_number"]


def _anonymise(customer) -> None:
    EmailAddress.objects.filter(user=customer).delete()
    for card in PaymentMethod.objects.filter(customer=customer):
        card.provider_token = f"deleted-{card.pk}"
        card.is_default = False
        card.save(update_fields=["provider_token", "is_default"])
    customer.email = anonymised_email(customer.pk)
    customer.first_name = ""
    customer.last_name = ""
    # The billing details go too; each issued invoice keeps its own copy, as the law requires.
    for field in BILLING_IDENTITY_FIELDS:
        setattr(customer, field, "")
    customer.is_active = False
    customer.set_unusable_password()
    customer.save()
