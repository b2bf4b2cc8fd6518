"""Reads about a customer's own account (DESIGN §2)."""

from django.apps import apps
from django.db.models import Prefetch

from billing.models import Charge, CreditNote, Invoice, InvoiceLine
from billing.selectors import plan_price
from subscriptions.models import RUNNING_STATUSES, Subscription, SubscriptionEvent
from subscriptions.rules import (
    Refusal,
    account_delete_refusal,
    cancel_refusal,
    withdrawal_refusal,
)
from subscriptions.selectors import cancellation_quote, withdrawal_until

EXPORT_FORMAT_VERSION = 1


def running_subscriptions(*, customer):
    return customer.subscriptions.filter(status__in=RUNNING_STATUSES).select_related("plan")


def deletion_page(*, customer, now) -> list:
    """The running subscriptions as "Supprimer mon compte" describes them, each with
    ``runs_until``: the end of the contract when a commitment makes it run on (the account
    cannot be deleted before; None otherwise), ``instalment`` (its price per period, due
    until then), ``can_cancel`` and ``withdrawal_until`` (the last day of withdrawal, if
    open)."""
    subscriptions = list(running_subscriptions(customer=customer))
    for subscription in subscriptions:
        blocked = account_delete_refusal(subscription, now=now) == Refusal.COMMITMENT_RUNNING
        subscription.runs_until = (
            cancellation_quote(subscription=subscription, now=now).access_ends_at
            if blocked else None
        )
        subscription.instalment = plan_price(plan=subscription.plan, customer=customer)
        subscription.can_cancel = cancel_refusal(subscription, now=now) is None
        subscription.withdrawal_until = (
            withdrawal_until(subscription)
            if withdrawal_refusal(subscription, now=now) is None else None
        )
    return subscriptions


def customer_data_export(*, customer) -> dict:
    """Everything we hold about the customer, as JSON-ready data (personal data export).

    Cards are masked (brand, last 4 digits, expiry): never a token or a card number."""
    return {
        "format_version": EXPORT_FORMAT_VERSION,
        "profile": _profile(customer),
        "subscriptions": _subscriptions(customer),
        "invoices": _invoices(customer),
        "payment_methods": _payment_methods(customer),
        "emails": _emails(customer),
        "terms_acceptances": _terms_acceptances(customer),
        "support_requests": _support_requests(customer),
    }


def _profile(customer):
    return {
        "customer_number": customer.customer_number,
        "email": customer.email,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "customer_type": customer.customer_type,
        "company_name": customer.company_name,
        "address_line1": customer.address_line1,
        "address_line2": customer.address_line2,
        "postal_code": customer.postal_code,
        "city": customer.city,
        "billing_country": customer.billing_country,
        "siren": customer.siren,
        "vat_number": customer.vat_number,
        "preferred_language": customer.preferred_language,
        "date_joined": customer.date_joined,
        "last_login": customer.last_login,
    }


def _subscriptions(customer):
    subscriptions = Subscription.objects.filter(customer=customer).select_related(
        "plan", "pending_plan"
    ).prefetch_related(
        Prefetch("events", queryset=SubscriptionEvent.objects.order_by("at", "id"))
    ).order_by("started_at", "id")
    return [
        {
            "plan": {"code": s.plan.code, "name": s.plan.name, "interval": s.plan.interval},
            "status": s.status,
            "end_reason": s.end_reason,
            "channel": s.channel,
            "started_at": s.started_at,
            "current_period_start": s.current_period_start,
            "current_period_end": s.current_period_end,
            "auto_renew": s.auto_renew,
            "cancel_requested_at": s.cancel_requested_at,
            "cancel_reason": s.cancel_reason,
            "cancel_reason_detail": s.cancel_reason_detail,
            "ends_at": s.ends_at,
            "ended_at": s.ended_at,
            "pending_plan": s.pending_plan.code if s.pending_plan else None,
            "licence_key": s.licence_key,
            "licence_active": s.licence_active,
            "events": [
                {"kind": e.kind, "at": e.at, "actor": e.actor,
                 "amount_cents": e.amount_cents, "data": e.data}
                for e in s.events.all()
            ],
        }
        for s in subscriptions
    ]


def _invoices(customer):
    invoices = Invoice.objects.filter(customer=customer).select_related("plan").prefetch_related(
        Prefetch("lines", queryset=InvoiceLine.objects.order_by("id")),
        Prefetch("credit_notes", queryset=CreditNote.objects.order_by("issued_at", "id")),
        Prefetch("charges", queryset=Charge.objects.order_by("created_at", "id")),
    ).order_by("issued_at", "id")
    return [
        {
            "number": i.number,
            "kind": i.kind,
            "status": i.status,
            "plan": i.plan.code,
            "period_start": i.period_start,
            "period_end": i.period_end,
            "currency": i.currency,
            "billing_country": i.billing_country,
            "vat_rate": i.vat_rate,
            "net_cents": i.net_cents,
            "vat_cents": i.vat_cents,
            "total_cents": i.total_cents,
            "issued_at": i.issued_at,
            "paid_at": i.paid_at,
            "lines": [
                {"description": line.description, "net_cents": line.net_cents,
                 "vat_cents": line.vat_cents, "total_cents": line.total_cents}
                for line in i.lines.all()
            ],
            # Negative, as the customer reads a credit note everywhere (billing.documents).
            "credit_notes": [
                {"number": c.number, "net_cents": -c.net_cents, "vat_cents": -c.vat_cents,
                 "total_cents": -c.total_cents, "issued_at": c.issued_at}
                for c in i.credit_notes.all()
            ],
            "payments": [
                {"attempt": c.attempt, "amount_cents": c.amount_cents, "currency": c.currency,
                 "status": c.status, "created_at": c.created_at, "settled_at": c.settled_at}
                for c in i.charges.all()
            ],
        }
        for i in invoices
    ]


def _payment_methods(customer):
    return [
        {"brand": card.brand, "last4": card.last4, "exp_month": card.exp_month,
         "exp_year": card.exp_year, "is_default": card.is_default, "added_at": card.created_at}
        for card in customer.payment_methods.order_by("created_at", "id")
    ]


def _emails(customer):
    return [
        {"kind": email.kind, "subject": email.subject, "date": email.created_at,
         "sent_at": email.sent_at, "status": email.status}
        for email in customer.emails.order_by("created_at", "id")
    ]


def _terms_acceptances(customer):
    if not apps.is_installed("legal"):
        return []
    return [
        {"version": a.version.version, "title": a.version.title, "accepted_at": a.accepted_at}
        for a in customer.terms_acceptances.select_related("version").order_by("accepted_at")
    ]


def _support_requests(customer):
    if not apps.is_installed("support"):
        return []
    requests = customer.support_requests.select_related("subscription").prefetch_related(
        "messages"
    ).order_by("created_at", "id")
    return [
        {
            "reference": r.reference,
            "subject": r.subject,
            "category": r.category,
            "status": r.status,
            "created_at": r.created_at,
            "subscription": r.subscription.licence_key if r.subscription_id else None,
            "refund_decision": r.refund_decision,
            "messages": [
                {"author": m.author, "body": m.body, "created_at": m.created_at}
                for m in r.messages.all()
            ],
        }
        for r in requests
    ]
