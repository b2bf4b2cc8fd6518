from dataclasses import dataclass

from django.db.models import Prefetch

from billing.amounts import TaxedAmount, tax_from_net
from billing.models import Charge, CreditNote, Invoice, PaymentMethod
from billing.vat import vat_rate, vat_treatment


@dataclass(frozen=True)
class PlanPrice(TaxedAmount):
    """A price as shown to a customer; under reverse charge it is net ("HT, autoliquidation")."""

    reverse_charge: bool = False


def plan_price(*, plan, customer=None, country: str | None = None, on=None) -> PlanPrice:
    """The plan's price for this customer (their VAT treatment: ``vat_treatment``), or, for
    a visitor, for a consumer of this billing country; at the rate of the day of ``on``
    (today by default)."""
    if (customer is None) == (country is None):
        raise TypeError("plan_price takes a customer or a country")
    if customer is not None:
        rate, reverse_charge = vat_treatment(customer, on=on)
    else:
        rate, reverse_charge = vat_rate(country, on=on), False
    amount = tax_from_net(net_cents=plan.price_cents, vat_rate=rate)
    return PlanPrice(amount.net_cents, amount.vat_cents, amount.total_cents, amount.vat_rate,
                     reverse_charge)


def first_payment_in_progress(*, customer) -> bool:
    """An unpaid first invoice is a subscription being paid for (its charge may be pending or
    unknown): nothing may start another one meanwhile."""
    return Invoice.objects.filter(
        customer=customer, kind=Invoice.Kind.INITIAL,
        status__in=[Invoice.Status.DRAFT, Invoice.Status.OPEN],
    ).exists()


def first_payment_awaiting_authentication(*, customer):
    """The customer's first-payment charges waiting for their 3-D Secure."""
    return Charge.objects.filter(invoice__customer=customer, invoice__kind=Invoice.Kind.INITIAL,
                                 status=Charge.Status.REQUIRES_ACTION)


def default_card(*, customer) -> PaymentMethod | None:
    return customer.payment_methods.filter(is_default=True).first()


def invoice_for_customer(*, customer, number: str) -> Invoice | None:
    """The customer's invoice of this number, whatever its status, with what its page and PDF
    show (billing.documents); None when there is none or it belongs to someone else."""
    return (
        Invoice.objects.filter(customer=customer, number=number)
        .select_related("customer")
        .prefetch_related(
            "lines", "credit_notes",
            Prefetch("charges", queryset=Charge.objects.select_related("payment_method")),
        )
        .first()
    )


def credit_note_for_customer(*, customer, number: str) -> CreditNote | None:
    """The customer's credit note of this number, with the invoice it corrects and the refund
    it paid; None when there is none or it belongs to someone else."""
    return (
        CreditNote.objects.filter(invoice__customer=customer, number=number)
        .select_related("invoice__customer", "refund__charge__payment_method")
        .prefetch_related("invoice__lines")
        .first()
    )
