"""Bulk seeding shared by the benchmarks: subscriptions whose first period was paid, written
the way the portal writes them (invoice, line, charge, provider ledger row, event), without
going through the services. Call after Django is configured."""

LICENCE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


# The billing countries of the seeded customers (their VAT rates come from billing.vat).
BENCH_COUNTRIES = ["FR", "BE", "DE", "ES", "IT", "LU", "NL", "FI"]


def licence_key(tag: str, index: int) -> str:
    """A distinct, well-formed key per (tag, index): no collision across seeded sets."""
    digits = []
    for _ in range(24):
        index, digit = divmod(index, len(LICENCE_ALPHABET))
        digits.append(LICENCE_ALPHABET[digit])
    raw = tag + "".join(reversed(digits))
    return "-".join(raw[k:k + 5] for k in range(0, 25, 5))


def paid_first_periods(*, plan, users, tokens, periods, indexes, tag, amounts, counters,
                       card, reference_prefix, tz):
    """For each user: a default card on ``tokens`` (``card`` = brand, last 4, expiry year), a
    subscription over its period and that period's paid initial invoice. ``counters`` (year →
    last invoice number) is advanced in place. Returns the subscriptions."""
    from billing.models import (
        Charge,
        Invoice,
        InvoiceLine,
        PaymentMethod,
        SimulatedProviderOperation,
    )
    from subscriptions.models import Actor, Subscription, SubscriptionEvent

    brand, last4, exp_year = card
    cards = PaymentMethod.objects.bulk_create([
        PaymentMethod(customer=u, provider_token=t, brand=brand, last4=last4, exp_month=12,
                      exp_year=exp_year, is_default=True, created_at=start)
        for u, t, (start, _end) in zip(users, tokens, periods, strict=True)
    ])
    subscriptions = Subscription.objects.bulk_create([
        Subscription(customer=u, plan=plan, started_at=start, billing_anchor=start,
                     current_period_start=start, current_period_end=end,
                     licence_key=licence_key(tag, i))
        for u, i, (start, end) in zip(users, indexes, periods, strict=True)
    ])
    invoices = []
    for u, s, (start, end) in zip(users, subscriptions, periods, strict=True):
        year = start.astimezone(tz).year
        counters[year] = counters.get(year, 0) + 1
        amount = amounts[u.billing_country]
        invoices.append(Invoice(
            number=f"F{year}-{counters[year]:06d}", customer=u, subscription=s,
            plan=plan, kind=Invoice.Kind.INITIAL, status=Invoice.Status.PAID,
            period_start=start, period_end=end, currency=plan.currency,
            vat_rate=amount.vat_rate, billing_country=u.billing_country,
            net_cents=amount.net_cents, vat_cents=amount.vat_cents,
            total_cents=amount.total_cents, created_at=start, issued_at=start,
            paid_at=start,
        ))
    Invoice.objects.bulk_create(invoices)
    InvoiceLine.objects.bulk_create([
        InvoiceLine(invoice=inv, description=f"Abonnement {plan}", net_cents=inv.net_cents,
                    vat_cents=inv.vat_cents, total_cents=inv.total_cents) for inv in invoices
    ])
    Charge.objects.bulk_create([
        Charge(invoice=inv, customer=inv.customer, payment_method=card, attempt=1,
               initiated_by=Actor.CUSTOMER, amount_cents=inv.total_cents,
               currency=inv.currency, status=Charge.Status.SUCCEEDED,
               idempotency_key=f"invoice-{inv.pk}-attempt-1",
               provider_reference=f"{reference_prefix}{inv.pk}", created_at=inv.issued_at,
               settled_at=inv.issued_at)
        for inv, card in zip(invoices, cards, strict=True)
    ])
    SimulatedProviderOperation.objects.bulk_create([
        SimulatedProviderOperation(
            idempotency_key=f"invoice-{inv.pk}-attempt-1", kind="charge",
            reference=f"{reference_prefix}{inv.pk}", amount_cents=inv.total_cents,
            currency=inv.currency, status="success")
        for inv in invoices
    ])
    SubscriptionEvent.objects.bulk_create([
        SubscriptionEvent(subscription=s, kind=SubscriptionEvent.Kind.SUBSCRIBED,
                          actor=Actor.CUSTOMER, actor_user=s.customer, at=s.started_at,
                          amount_cents=inv.total_cents,
                          data={"plan": plan.code, "invoice": inv.number})
        for s, inv in zip(subscriptions, invoices, strict=True)
    ])
    return subscriptions
