"""E-reporting of consumer sales (DESIGN §14, issue 11 scope 5): for each day of a period (on
the business time zone's calendar), each currency and each VAT rate, what was invoiced to
consumers and what they paid.

- **Consumer**: an invoice without reverse charge whose customer is an individual
  (``customer_type``). An invoice does not record the customer's type as it was at issue, so
  the customer's current type decides: a consumer who later became a professional moves
  their past sales out of this export. A reverse-charge invoice is always a business's.
- **Sales** (net, VAT, total): the numbered invoices issued that day, minus the credit notes
  issued that day for consumers' invoices (refunds, and cancellations of an issued invoice
  nobody collects: a voided invoice and its credit note cancel out). A credit note is at its
  invoice's rate.
- **Transactions**: every invoice and every credit note issued that day is one transaction
  (``transactions`` = ``invoices`` + ``credit_notes``; the amounts carry the credit notes'
  sign). A partial refund is a transaction of its own, not the undoing of a sale, so it is
  never counted as −1; both counts are given for whoever wants another convention.
- **Payments received**: for services VAT is due when the price is received (CGI art. 269,
  2-c), so the day's succeeded charges minus the refunds paid that day, at the rate of the
  invoice they pay, whatever the day of that invoice; the VAT they include is worked out once
  on the row's amount (``received_vat_cents``).

A day, currency and rate with nothing issued nor received has no row. Amounts are integer
cents (JSON) or euros with a decimal comma (CSV, ``spreadsheet``)."""

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, F, Q, Sum

from accounts.models import CustomerType
from billing.amounts import tax_from_total
from billing.exports.period import Period, business_day
from billing.exports.spreadsheet import amount, csv_text, rate
from billing.models import Charge, CreditNote, Invoice, Refund


@dataclass(frozen=True)
class EReportingRow:
    day: date
    currency: str
    vat_rate: Decimal
    net_cents: int = 0
    vat_cents: int = 0
    total_cents: int = 0
    invoices: int = 0
    credit_notes: int = 0
    received_cents: int = 0

    @property
    def transactions(self) -> int:
        return self.invoices + self.credit_notes

    @property
    def received_vat_cents(self) -> int:
        return tax_from_total(total_cents=self.received_cents, vat_rate=self.vat_rate).vat_cents


def consumer_invoices(prefix: str = "") -> Q:
    """The invoices of consumers (see the module's note), seen from a row reaching the invoice
    through ``prefix`` (e.g. ``"invoice__"``)."""
    return Q(**{f"{prefix}reverse_charge": False,
                f"{prefix}customer__customer_type": CustomerType.INDIVIDUAL})


def _grouped(queryset, *, at: str, invoice: str, **sums):
    """``(day, currency, rate) → sums`` of the rows of ``queryset``, the day being the business
    time zone's of their instant ``at``, the currency and rate their invoice's (reached
    through ``invoice``, e.g. ``"charge__invoice__"``)."""
    rows = (queryset.order_by()
            .values(day=business_day(at), money=F(f"{invoice}currency"),
                    rate=F(f"{invoice}vat_rate"))
            .annotate(**sums))
    return {(row.pop("day"), row.pop("money"), row.pop("rate")): row for row in rows}


def ereporting_rows(period: Period) -> list[EReportingRow]:
    invoices = _grouped(
        Invoice.objects.filter(consumer_invoices(), number__isnull=False,
                               **period.within("issued_at")),
        at="issued_at", invoice="",
        net=Sum("net_cents"), vat=Sum("vat_cents"), total=Sum("total_cents"), count=Count("pk"))
    credit_notes = _grouped(
        CreditNote.objects.filter(consumer_invoices("invoice__"), **period.within("issued_at")),
        at="issued_at", invoice="invoice__",
        net=Sum("net_cents"), vat=Sum("vat_cents"), total=Sum("total_cents"), count=Count("pk"))
    charges = _grouped(
        Charge.objects.filter(consumer_invoices("invoice__"), status=Charge.Status.SUCCEEDED,
                              **period.within("settled_at")),
        at="settled_at", invoice="invoice__", received=Sum("amount_cents"))
    refunds = _grouped(
        Refund.objects.filter(consumer_invoices("charge__invoice__"),
                              status=Refund.Status.SUCCEEDED, **period.within("refunded_at")),
        at="refunded_at", invoice="charge__invoice__", received=Sum("amount_cents"))

    nothing = {"net": 0, "vat": 0, "total": 0, "count": 0, "received": 0}
    rows = []
    for key in sorted(invoices.keys() | credit_notes.keys() | charges.keys() | refunds.keys()):
        sold, credited = invoices.get(key, nothing), credit_notes.get(key, nothing)
        day, currency, vat_rate = key
        rows.append(EReportingRow(
            day=day, currency=currency, vat_rate=vat_rate,
            net_cents=sold["net"] - credited["net"],
            vat_cents=sold["vat"] - credited["vat"],
            total_cents=sold["total"] - credited["total"],
            invoices=sold["count"], credit_notes=credited["count"],
            received_cents=(charges.get(key, nothing)["received"]
                            - refunds.get(key, nothing)["received"]),
        ))
    return rows


CSV_HEADER = ["Jour", "Devise", "Taux de TVA (%)", "Base HT", "TVA", "TTC", "Transactions",
              "Factures", "Avoirs", "Encaissements TTC", "TVA sur encaissements"]


def ereporting_csv(period: Period) -> str:
    return csv_text(CSV_HEADER, (
        [row.day.isoformat(), row.currency, rate(row.vat_rate), amount(row.net_cents),
         amount(row.vat_cents), amount(row.total_cents), row.transactions, row.invoices,
         row.credit_notes, amount(row.received_cents), amount(row.received_vat_cents)]
        for row in ereporting_rows(period)))


def ereporting_data(period: Period) -> dict:
    """The JSON document: integer cents, the rate as a decimal string ("25.50")."""
    return {
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "time_zone": settings.BUSINESS_TIME_ZONE,
        "rows": [{
            "day": row.day.isoformat(),
            "currency": row.currency,
            "vat_rate": f"{row.vat_rate:.2f}",
            "net_cents": row.net_cents,
            "vat_cents": row.vat_cents,
            "total_cents": row.total_cents,
            "transactions": row.transactions,
            "invoices": row.invoices,
            "credit_notes": row.credit_notes,
            "received_cents": row.received_cents,
            "received_vat_cents": row.received_vat_cents,
        } for row in ereporting_rows(period)],
    }


def ereporting_json(period: Period) -> str:
    return json.dumps(ereporting_data(period), ensure_ascii=False, indent=2) + "\n"
