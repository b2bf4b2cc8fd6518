"""The accountant's export (issue 11 scope 8): every invoice and credit note issued in a
period, consumers and businesses alike, one row per document and VAT rate (a document here has
one rate, so one row), in the order they were issued; credit notes as negative amounts.

The customer is the one the invoice recorded at issue (name, company, VAT number); an invoice
issued before those were recorded shows the customer's current profile. The payment is the
invoice's payment date and the card of the charge that paid it; for a credit note, the day
its refund was paid back and that card (a credit note cancelling an invoice nobody paid has
none). A voided invoice stays in the list: its credit note cancels it."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Prefetch

from accounts.models import CustomerType
from billing.exports.period import Period, local_day
from billing.exports.spreadsheet import amount, csv_text, rate, text
from billing.models import Charge, CreditNote, Invoice

INVOICE, CREDIT_NOTE = "Facture", "Avoir"


@dataclass(frozen=True)
class AccountingRow:
    kind: str
    number: str
    day: date
    invoice_number: str  # the invoice a credit note corrects; "" for an invoice
    customer_number: str
    customer_name: str
    company: str
    vat_number: str
    billing_country: str
    reverse_charge: bool
    currency: str
    vat_rate: Decimal
    net_cents: int
    vat_cents: int
    total_cents: int
    paid_on: date | None
    payment_method: str


def _card(charge: Charge | None) -> str:
    method = charge.payment_method if charge is not None else None
    return f"{method.brand} •••• {method.last4}" if method is not None else ""


def _customer(invoice: Invoice) -> dict:
    """The customer as the invoice recorded them, else as they are today."""
    customer = invoice.customer
    business = customer.customer_type == CustomerType.BUSINESS
    return {
        "customer_number": customer.customer_number,
        "customer_name": (invoice.customer_name or customer.get_full_name()
                          or customer.email),
        "company": invoice.customer_company or (customer.company_name if business else ""),
        "vat_number": invoice.customer_vat_number or (customer.vat_number if business else ""),
        "billing_country": invoice.billing_country,
        "reverse_charge": invoice.reverse_charge,
        "currency": invoice.currency,
        "vat_rate": invoice.vat_rate,
    }


def _invoice_row(invoice: Invoice) -> AccountingRow:
    paying = invoice.paying_charges[0] if invoice.paying_charges else None
    card = _card(paying) if invoice.paid_at else ""
    return AccountingRow(
        kind=INVOICE, number=invoice.number, day=local_day(invoice.issued_at),
        invoice_number="", **_customer(invoice),
        net_cents=invoice.net_cents, vat_cents=invoice.vat_cents,
        total_cents=invoice.total_cents,
        paid_on=local_day(invoice.paid_at),
        payment_method=f"Carte {card}" if card else "",
    )


def _credit_note_row(note: CreditNote) -> AccountingRow:
    refund = note.refund
    card = _card(refund.charge) if refund is not None else ""
    return AccountingRow(
        kind=CREDIT_NOTE, number=note.number, day=local_day(note.issued_at),
        invoice_number=note.invoice.number, **_customer(note.invoice),
        net_cents=-note.net_cents, vat_cents=-note.vat_cents, total_cents=-note.total_cents,
        paid_on=local_day(refund.refunded_at) if refund is not None else None,
        payment_method=f"Remboursement sur carte {card}" if card else "",
    )


def accounting_rows(period: Period) -> list[AccountingRow]:
    paying = Charge.objects.filter(status=Charge.Status.SUCCEEDED).select_related(
        "payment_method")
    invoices = (Invoice.objects.filter(number__isnull=False, **period.within("issued_at"))
                .select_related("customer")
                .prefetch_related(Prefetch("charges", queryset=paying,
                                           to_attr="paying_charges")))
    notes = (CreditNote.objects.filter(**period.within("issued_at"))
             .select_related("invoice__customer", "refund__charge__payment_method"))
    documents = ([(invoice.issued_at, 0, invoice.number, _invoice_row(invoice))
                  for invoice in invoices]
                 + [(note.issued_at, 1, note.number, _credit_note_row(note)) for note in notes])
    return [document[-1] for document in sorted(documents, key=lambda item: item[:3])]


CSV_HEADER = ["Type", "Numéro", "Date", "Facture d'origine", "N° client", "Client",
              "Raison sociale", "N° TVA client", "Pays de facturation", "Autoliquidation",
              "Devise", "Taux de TVA (%)", "HT", "TVA", "TTC", "Date de paiement",
              "Moyen de paiement"]


def accounting_csv(period: Period) -> str:
    return csv_text(CSV_HEADER, (
        [row.kind, row.number, row.day.isoformat(), row.invoice_number, row.customer_number,
         text(row.customer_name), text(row.company), row.vat_number, row.billing_country,
         "oui" if row.reverse_charge else "non", row.currency, rate(row.vat_rate),
         amount(row.net_cents), amount(row.vat_cents), amount(row.total_cents),
         row.paid_on.isoformat() if row.paid_on else "", row.payment_method]
        for row in accounting_rows(period)))
