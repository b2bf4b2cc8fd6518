"""The read model of "Abonnement et facturation" (DESIGN §9): each subscription with its
prices, its open invoice and which actions apply, decided by the predicates of rules.py."""

from datetime import timedelta

from django.urls import reverse

from billing.models import Charge, Invoice
from billing.selectors import plan_price
from subscriptions.models import RUNNING_STATUSES, Channel, Status
from subscriptions.payment_links import confirm_link_path, confirm_link_token
from subscriptions.rules import (
    cancel_refusal,
    confirm_payment_refusal,
    pay_now_refusal,
    plan_change_refusal,
    reactivate_refusal,
    restart_refusal,
    withdrawal_refusal,
)
from subscriptions.selectors import (
    business_tz,
    cancellation_effective_bounds,
    cancellation_quote,
    customer_subscriptions,
    withdrawal_events,
    withdrawal_until,
)


def billing_page(*, customer, now) -> list:
    """The customer's subscriptions, each annotated with what the page shows: ``price``,
    ``next_price``, ``open_invoice``, ``quote`` (the cancellation terms, when it can be
    cancelled) and ``can_change_plan``, ``can_reactivate``, ``can_pay_now``, ``can_restart``;
    ``confirm_payment_url``, the "Confirmer votre paiement" banner's link, when the open
    invoice waits for the customer's 3-D Secure; ``withdrawal_until``, the last day of
    "Renoncer au contrat ici", while it may be withdrawn, and ``withdrawals``, its withdrawal
    statements (their acknowledgements, in the history)."""
    subscriptions = list(customer_subscriptions(customer=customer))
    withdrawals = list(withdrawal_events(customer=customer))
    for subscription in subscriptions:
        subscription.withdrawal_until = (
            withdrawal_until(subscription)
            if withdrawal_refusal(subscription, now=now) is None else None
        )
        subscription.withdrawals = [event for event in withdrawals
                                    if event.subscription_id == subscription.pk]
        subscription.price = plan_price(plan=subscription.plan, customer=customer)
        subscription.next_price = plan_price(
            plan=subscription.pending_plan or subscription.plan, customer=customer
        )
        subscription.open_invoice = (
            next((invoice for invoice in subscription.invoices.all()
                  if invoice.status == Invoice.Status.OPEN), None)
            if subscription.status in (Status.PAST_DUE, Status.SUSPENDED) else None
        )
        subscription.quote = (
            cancellation_quote(subscription=subscription, now=now)
            if cancel_refusal(subscription, now=now) is None else None
        )
        subscription.can_change_plan = plan_change_refusal(subscription, now=now) is None
        subscription.can_reactivate = reactivate_refusal(subscription, now=now) is None
        subscription.can_pay_now = subscription.open_invoice is not None and pay_now_refusal(
            subscription, now=now
        ) is None
        subscription.can_restart = restart_refusal(subscription, now=now) is None
        subscription.confirm_payment_url = (
            confirm_link_path(invoice=subscription.open_invoice)
            if subscription.open_invoice is not None and confirm_payment_refusal(
                subscription, now=now, invoice=subscription.open_invoice) is None
            else None
        )
    return subscriptions


def payments_awaiting_the_bank(*, customer) -> list:
    """The customer's own first payments and plan changes waiting for their 3-D Secure, each
    with ``challenge_url``: the billing page offers to finish them (until they are given up,
    billing.dunning.challenge_deadline)."""
    charges = list(Charge.objects.filter(
        invoice__customer=customer, status=Charge.Status.REQUIRES_ACTION,
        invoice__kind__in=[Invoice.Kind.INITIAL, Invoice.Kind.PRORATION],
    ).select_related("invoice__plan"))
    for charge in charges:
        charge.challenge_url = reverse("subscriptions:confirm_payment_challenge",
                                       args=[confirm_link_token(invoice=charge.invoice)])
    return charges


# Generous: the withdrawal period is 14 days, extended by a few over weekends and holidays.
WITHDRAWAL_LOOKBACK = timedelta(days=30)


def withdrawable_subscriptions(*, customer, now) -> list:
    """The customer's subscriptions that "Renoncer au contrat ici" may withdraw now."""
    recent = customer.subscriptions.filter(
        status__in=RUNNING_STATUSES, channel=Channel.DIRECT,
        started_at__gt=now - WITHDRAWAL_LOOKBACK,
    ).select_related("plan").order_by("-started_at")
    return [s for s in recent if withdrawal_refusal(s, now=now) is None]


def cancellable_subscriptions(*, customer, now) -> list:
    """What the footer's "Résilier mon contrat" may résilier, latest first (one at most,
    in practice: a second subscription cannot start while one runs)."""
    return [subscription for subscription in customer_subscriptions(customer=customer)
            if cancel_refusal(subscription, now=now) is None]


def resiliation_recap(*, subscription, now, chosen=None) -> dict:
    """The recap "Résilier votre contrat" (D215-2): the terms it states (``chosen``, those of
    the date the customer chose, or the earliest) and the effective dates that may be chosen."""
    earliest_quote = cancellation_quote(subscription=subscription, now=now)
    earliest, latest = cancellation_effective_bounds(subscription=subscription,
                                                     quote=earliest_quote)
    tz = business_tz()
    return {
        "subscription": subscription,
        "quote": chosen or earliest_quote,
        "earliest": earliest,
        "latest": latest,
        "earliest_day": earliest.astimezone(tz).date(),
        "latest_day": latest.astimezone(tz).date(),
    }

