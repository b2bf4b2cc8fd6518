"""The read model of "Abonnement et facturation" (DESIGN §9): each subscription with its
prices, its open invoice and which actions apply, decided by the predicates of rules.py."""

from billing.models import Invoice
from billing.selectors import plan_price
from subscriptions.models import Status
from subscriptions.payment_links import confirm_link_path
from subscriptions.rules import (
    cancel_refusal,
    confirm_payment_refusal,
    pay_now_refusal,
    plan_change_refusal,
    reactivate_refusal,
    restart_refusal,
)
from subscriptions.selectors import cancellation_quote, customer_subscriptions


def billing_page(*, customer, now) -> list:
    """The customer's subscriptions, each annotated with what the page shows: ``price``,
    ``next_price``, ``open_invoice``, ``quote`` (the cancellation terms, when it can be
    cancelled) and ``can_change_plan``, ``can_reactivate``, ``can_pay_now``, ``can_restart``;
    ``confirm_payment_url``, the "Confirmer votre paiement" banner's link, when the open
    invoice waits for the customer's 3-D Secure."""
    subscriptions = list(customer_subscriptions(customer=customer))
    for subscription in subscriptions:
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
