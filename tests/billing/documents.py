"""Invoices of each kind a French accountant reads (DESIGN §14), for the tests of their pages,
PDFs and Factur-X XML; and those documents as plain text."""

import html
import re
from io import BytesIO

from pypdf import PdfReader

from billing.models import Invoice
from tests.factories import PlanFactory, UserFactory, days, subscribed


def consumer():
    return UserFactory(first_name="Camille", last_name="Martin", address_line1="8 rue des Lilas",
                       postal_code="69003", city="Lyon", billing_country="FR")


def german_business(**fields):
    return UserFactory(**{
        "first_name": "Jonas", "last_name": "Weber", "customer_type": "business",
        "company_name": "Beispiel GmbH", "vat_number": "DE136695976", "billing_country": "DE",
        "address_line1": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", **fields})


def french_business(**fields):
    return UserFactory(**{
        "first_name": "Claire", "last_name": "Durand", "customer_type": "business",
        "company_name": "Exemple Conseil SARL", "siren": "73282932000074",
        "vat_number": "FR44732829320", "billing_country": "FR",
        "address_line1": "3 place du Marché", "postal_code": "69002", "city": "Lyon", **fields})


def paid_invoice(customer, *, at) -> Invoice:
    """Annual at 82,50 € HT, paid by the Visa ending in 4242 at ``at``."""
    subscribed(customer=customer, plan=PlanFactory(code="essentiel-annuel", annual=True), at=at)
    return Invoice.objects.get(customer=customer)


def reverse_charge_invoice(*, at) -> Invoice:
    """A German business with a valid VAT number: 0 % VAT under reverse charge (DESIGN §3)."""
    invoice = paid_invoice(german_business(), at=at - days(3))
    assert (invoice.reverse_charge, invoice.vat_rate, invoice.total_cents) == (True, 0, 8250)
    return invoice


def page_text(response) -> str:
    """The document of an invoice or credit note page as text, tags dropped, whitespace
    (no-break spaces included) collapsed to single spaces."""
    page = response.content.decode()
    article = page[page.index("<article"):page.index("</article>")]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", article)).split())


def pdf_text(pdf_bytes) -> str:
    reader = PdfReader(BytesIO(pdf_bytes))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())
