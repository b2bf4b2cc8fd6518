"""What an invoice or a credit note says, for its page, its PDF and its Factur-X XML alike
(DESIGN §14): the mentions of CGI annexe II art. 242 nonies A gathered once, so that the three
never disagree.

The customer is the one copied onto the invoice when it was issued (a credit note names the
customer of the invoice it corrects); the seller is ``settings.VENDOR``. Amounts are signed as
the customer reads them: a credit note's are negative, everywhere. Labels are translated when
they are read, in the language of the page or of the PDF being made."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_countries import countries

from accounts.models import CustomerType
from billing.models import Charge, CreditNote, Invoice, Refund
from billing.templatetags.money import money
from formats.dates import long_date

INVOICE, CREDIT_NOTE = "invoice", "credit_note"
# The credit note of an issued invoice cancelled before it was paid (services.invoice_void).
UNCOLLECTED_INVOICE = gettext_lazy("Facture annulée avant paiement")


@dataclass(frozen=True)
class Customer:
    name: str
    company: str
    address_lines: tuple[str, ...]
    country: str  # ISO 3166 code
    siren: str
    vat_number: str
    customer_number: str

    @property
    def country_name(self) -> str:
        return str(countries.name(self.country)) if self.country else ""


@dataclass(frozen=True)
class Line:
    description: str
    net_cents: int
    vat_rate: Decimal
    vat_cents: int
    total_cents: int


@dataclass(frozen=True)
class VatAmount:
    """The VAT of one rate: the net it applies to and the tax."""

    rate: Decimal
    net_cents: int
    vat_cents: int


@dataclass(frozen=True)
class Payment:
    """The card payment that settled an invoice, or the refund a credit note paid back."""

    at: datetime
    brand: str
    last4: str

    @property
    def method(self) -> str:
        if not self.last4:
            return _("Carte bancaire")
        return _("Carte %(brand)s se terminant par %(last4)s") % {"brand": self.brand,
                                                                  "last4": self.last4}


@dataclass(frozen=True)
class Related:
    """A document named on another: an invoice's credit note, a credit note's invoice."""

    number: str
    issued_at: datetime
    total_cents: int  # signed


@dataclass(frozen=True)
class Document:
    kind: str  # INVOICE or CREDIT_NOTE
    number: str
    issued_at: datetime
    currency: str
    customer: Customer
    business: bool
    reverse_charge: bool
    period_start: datetime
    period_end: datetime
    lines: tuple[Line, ...]
    vat_amounts: tuple[VatAmount, ...]
    net_cents: int
    vat_cents: int
    total_cents: int
    payment: Payment | None
    status: str = ""  # an invoice's Invoice.Status
    reason: str = ""  # why a credit note was made (a lazy label)
    corrects: Related | None = None  # the invoice a credit note corrects
    credit_notes: tuple[Related, ...] = field(default_factory=tuple)  # an invoice's
    seller: dict = field(default_factory=lambda: settings.VENDOR)

    @property
    def is_credit_note(self) -> bool:
        return self.kind == CREDIT_NOTE

    @property
    def title(self) -> str:
        if self.is_credit_note:
            return _("Avoir %(number)s") % {"number": self.number}
        return _("Facture %(number)s") % {"number": self.number}

    @property
    def status_label(self) -> str:
        return str(Invoice.Status(self.status).label) if self.status else ""

    @property
    def paid(self) -> bool:
        return self.payment is not None

    @property
    def seller_identity(self) -> str:
        """"SAS au capital de 10 000 €": the legal form and share capital (C. com. R123-238)."""
        return _("%(form)s au capital de %(capital)s") % {
            "form": self.seller["legal_form"], "capital": self.seller["share_capital"]}

    @property
    def reverse_charge_mention(self) -> str:
        return _("Autoliquidation — article 196 de la directive 2006/112/CE")

    @property
    def seller_lines(self) -> list[str]:
        """Under the seller's legal name: its form and capital, address and identifiers."""
        seller = self.seller
        return [
            self.seller_identity,
            seller["address"],
            f"SIREN {seller['siren']} — {seller['rcs']}",
            f"SIRET {seller['siret']}",
            f"{_('TVA intracommunautaire')} {seller['vat_number']}",
        ]

    @property
    def customer_heading(self) -> str:
        return self.customer.company or self.customer.name

    @property
    def customer_lines(self) -> list[str]:
        """Under the customer's company (or name): the billing address and, for a
        professional, the SIREN/SIRET and VAT number, as they were when the invoice was
        issued."""
        customer = self.customer
        lines = [customer.name] if customer.company else []
        lines += [*customer.address_lines, customer.country_name]
        if customer.siren:
            lines.append(f"SIREN / SIRET {customer.siren}")
        if customer.vat_number:
            lines.append(f"{_('TVA intracommunautaire')} {customer.vat_number}")
        lines.append(f"{_('Numéro client')} {customer.customer_number}")
        return [line for line in lines if line]

    @property
    def facts(self) -> list[tuple[str, str]]:
        """(label, value) of the head of the document: dates, nature, period, payment."""
        facts = [(_("Date d'émission"), long_date(self.issued_at))]
        if self.corrects is not None:
            facts.append((_("Facture corrigée"), _("%(number)s du %(date)s") % {
                "number": self.corrects.number, "date": long_date(self.corrects.issued_at)}))
        facts += [
            (_("Nature de l'opération"), _("Prestation de services")),
            (_("Période couverte"),
             f"{long_date(self.period_start)} – {long_date(self.period_end)}"),
        ]
        if self.status:
            facts.append((_("Statut"), self.status_label))
        if self.reason:
            facts.append((_("Motif"), str(self.reason)))
        if not self.is_credit_note and (self.business or self.status == Invoice.Status.OPEN):
            facts.append((_("Date d'échéance"), long_date(self.issued_at)))
        if self.payment is not None:
            if self.is_credit_note:
                facts += [(_("Date de remboursement"), long_date(self.payment.at)),
                          (_("Remboursé sur"), self.payment.method)]
            else:
                facts += [(_("Date de paiement"), long_date(self.payment.at)),
                          (_("Moyen de paiement"), self.payment.method)]
        elif not self.is_credit_note and self.status == Invoice.Status.OPEN:
            facts.append((_("Moyen de paiement"), _("Carte bancaire")))
        return facts

    @property
    def notes(self) -> list[tuple[str, str]]:
        """The texts at the foot of the document, each with its UNTDID 4451 subject (the
        Factur-X XML's notes). Between professionals the Code de commerce (art. L441-9, the
        rate and amount from L441-10 and D441-5) also asks for the payment terms, the
        late-payment penalties and the 40 € recovery indemnity; a consumer owes neither, so
        a consumer's document does not mention them."""
        notes = []
        if self.reverse_charge:
            notes.append(("", self.reverse_charge_mention))
        if self.business:
            notes += [
                ("AAB", _("Paiement par carte bancaire à l'émission de la facture ; pas "
                          "d'escompte pour paiement anticipé.")),
                ("PMD", _("En cas de retard de paiement, pénalités au taux de la Banque "
                          "centrale européenne à son opération de refinancement la plus "
                          "récente majoré de 10 points (article L441-10 du Code de "
                          "commerce).")),
                ("PMT", _("Indemnité forfaitaire pour frais de recouvrement en cas de retard "
                          "de paiement : 40 € (articles L441-10 et D441-5 du Code de "
                          "commerce).")),
            ]
        return notes

    @property
    def legal_mentions(self) -> list[str]:
        return [text for _subject, text in self.notes]

    def amount(self, cents) -> str:
        return money(cents, self.currency)


def _customer(invoice: Invoice) -> Customer:
    return Customer(
        name=invoice.customer_name,
        company=invoice.customer_company,
        address_lines=tuple(line for line in invoice.customer_address.splitlines() if line),
        country=invoice.billing_country,
        siren=invoice.customer_siren,
        vat_number=invoice.customer_vat_number,
        customer_number=invoice.customer.customer_number,
    )


def _card(charge: Charge | None) -> tuple[str, str]:
    card = charge.payment_method if charge is not None else None
    return (card.brand, card.last4) if card is not None else ("", "")


def _invoice_payment(invoice: Invoice) -> Payment | None:
    if invoice.paid_at is None:
        return None
    charge = next((charge for charge in invoice.charges.all()
                   if charge.status == Charge.Status.SUCCEEDED), None)
    return Payment(invoice.paid_at, *_card(charge))


def is_business(invoice: Invoice) -> bool:
    """A professional's when it was issued: their invoices and credit notes are Factur-X."""
    return invoice.customer_type == CustomerType.BUSINESS


def invoice_document(invoice: Invoice) -> Document:
    lines = tuple(
        Line(line.description, line.net_cents, invoice.vat_rate, line.vat_cents,
             line.total_cents)
        for line in invoice.lines.all()
    )
    return Document(
        kind=INVOICE,
        number=invoice.number,
        issued_at=invoice.issued_at,
        currency=invoice.currency,
        customer=_customer(invoice),
        business=is_business(invoice),
        reverse_charge=invoice.reverse_charge,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        lines=lines,
        vat_amounts=(VatAmount(invoice.vat_rate, invoice.net_cents, invoice.vat_cents),),
        net_cents=invoice.net_cents,
        vat_cents=invoice.vat_cents,
        total_cents=invoice.total_cents,
        payment=_invoice_payment(invoice),
        status=invoice.status,
        credit_notes=tuple(Related(note.number, note.issued_at, -note.total_cents)
                           for note in invoice.credit_notes.all()),
    )


def credit_note_document(credit_note: CreditNote) -> Document:
    invoice = credit_note.invoice
    refund = credit_note.refund
    # What it credits: the invoice's service, for the credit note's amount.
    line = Line(", ".join(item.description for item in invoice.lines.all()),
                -credit_note.net_cents, invoice.vat_rate, -credit_note.vat_cents,
                -credit_note.total_cents)
    payment = None
    if refund is not None and refund.refunded_at is not None:
        payment = Payment(refund.refunded_at, *_card(refund.charge))
    return Document(
        kind=CREDIT_NOTE,
        number=credit_note.number,
        issued_at=credit_note.issued_at,
        currency=invoice.currency,
        customer=_customer(invoice),
        business=is_business(invoice),
        reverse_charge=invoice.reverse_charge,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        lines=(line,),
        vat_amounts=(VatAmount(invoice.vat_rate, -credit_note.net_cents,
                               -credit_note.vat_cents),),
        net_cents=-credit_note.net_cents,
        vat_cents=-credit_note.vat_cents,
        total_cents=-credit_note.total_cents,
        payment=payment,
        reason=(Refund.Reason(refund.reason).label if refund is not None
                else UNCOLLECTED_INVOICE),
        corrects=Related(invoice.number, invoice.issued_at, invoice.total_cents),
    )
