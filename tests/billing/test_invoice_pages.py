"""The invoice page and its PDF (DESIGN §9): one per invoice of the customer's history,
printable and downloadable, shown to its owner only."""

from io import BytesIO

import pytest
from django.urls import reverse
from pypdf import PdfReader

from billing.models import Invoice
from billing.pdf import invoice_pdf
from billing.services import payment_method_add
from subscriptions.services import SubscribeError, subscription_cancel
from subscriptions.services.renew import subscription_renew
from subscriptions.services.staff import staff_subscription_end_now
from tests.factories import PlanFactory, UserFactory, card_token, days, subscribed

pytestmark = pytest.mark.django_db

NBSP = "\u00a0"


@pytest.fixture
def owner():
    return UserFactory(first_name="Camille", last_name="Martin")


@pytest.fixture
def invoice(owner, now):
    """Annual at 82,50 € HT + 16,50 € TVA = 99,00 € TTC, paid 3 days ago (refund window)."""
    subscribed(customer=owner, plan=PlanFactory(code="essentiel-annuel", annual=True),
               at=now - days(3))
    return Invoice.objects.get(customer=owner)


def _page(client, user, invoice):
    client.force_login(user)
    return client.get(reverse("billing:invoice", args=[invoice.number]))


def _pdf(client, user, invoice):
    client.force_login(user)
    return client.get(reverse("billing:invoice_pdf", args=[invoice.number]))


def _text(pdf_bytes):
    """The PDF's text, whitespace (no-break spaces included) collapsed to single spaces."""
    reader = PdfReader(BytesIO(pdf_bytes))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def test_the_invoice_page_shows_the_invoice_the_seller_and_the_customer(client, owner, invoice):
    # when
    response = _page(client, owner, invoice)
    # then
    assert response.status_code == 200
    assert response.templates[0].name == "billing/invoice_detail.html"
    page = response.content.decode()
    assert f"Facture {invoice.number}" in page
    assert "Abonnement Formule essentiel-annuel" in page
    assert f"82,50{NBSP}€" in page
    assert f"16,50{NBSP}€" in page
    assert f"99,00{NBSP}€" in page
    assert "TVA 20 %" in page
    assert "Payée" in page
    assert "Date de paiement" in page
    assert "7 mars 2026" in page
    assert "Logiciels Exemple SAS" in page
    assert "12 rue de l&#x27;Exemple, 75002 Paris" in page
    assert "SIRET 123 456 789 00012" in page
    assert "FR12123456789" in page
    assert "Camille Martin" in page
    assert owner.email in page
    assert owner.customer_number in page
    assert "France" in page
    assert "window.print()" in page
    assert reverse("billing:invoice_pdf", args=[invoice.number]) in page
    assert "@media print" in page
    assert "Avoirs" not in page


def test_a_cancellation_refund_shows_its_credit_note_on_the_invoice(
    client, owner, invoice, now, django_capture_on_commit_callbacks
):
    # given
    with django_capture_on_commit_callbacks(execute=True):
        subscription_cancel(subscription=invoice.subscription, now=now)
    credit_note = invoice.credit_notes.get()
    # when
    page = _page(client, owner, invoice).content.decode()
    pdf = _text(_pdf(client, owner, invoice).content)
    # then
    assert credit_note.total_cents == 9900
    assert "Avoirs" in page
    assert credit_note.number in page
    assert "10 mars 2026" in page
    assert page.count(f"99,00{NBSP}€") == 3  # the line, the total and the credit note
    assert "Avoirs" in pdf
    assert credit_note.number in pdf
    assert pdf.count("99,00 €") == 3


def test_a_refused_first_payment_leaves_no_invoice_page(client, owner, now):
    # given: a declined card leaves the first invoice an unnumbered draft, voided
    with pytest.raises(SubscribeError):
        subscribed(customer=owner, at=now, card="4000000000000341")
    draft = Invoice.objects.get(customer=owner)
    # then
    assert (draft.status, draft.number, draft.issued_at) == (Invoice.Status.VOID, None, None)


def test_a_voided_issued_invoice_says_so_and_has_no_payment_date(client, owner, now):
    # given: a renewal invoice issued, then its subscription ended unpaid
    subscription = subscribed(customer=owner, at=now - days(40))
    payment_method_add(customer=owner, now=now,
                       token=card_token("4000000000000341", 12, 2031, "123"))
    invoice = subscription_renew(subscription_id=subscription.pk, now=now).invoice
    staff_subscription_end_now(subscription=subscription, refund=False, staff_user=None,
                               now=now)
    voided = Invoice.objects.get(pk=invoice.pk)
    # when
    response = _page(client, owner, voided)
    # then
    assert voided.status == Invoice.Status.VOID
    assert response.status_code == 200
    page = response.content.decode()
    assert "Annulée" in page
    assert "Date de paiement" not in page
    assert "Annulée" in _text(_pdf(client, owner, voided).content)


def test_another_customer_gets_a_404_for_the_page_and_the_pdf(client, invoice):
    # given
    stranger = UserFactory()
    # when
    page = _page(client, stranger, invoice)
    pdf = _pdf(client, stranger, invoice)
    # then
    assert (page.status_code, pdf.status_code) == (404, 404)
    assert f"99,00{NBSP}€" not in page.content.decode()


def test_an_unknown_number_is_a_404(client, owner, invoice):
    # when
    client.force_login(owner)
    response = client.get(reverse("billing:invoice", args=["F2026-999999"]))
    # then
    assert response.status_code == 404


def test_an_anonymous_visitor_is_sent_to_the_login_page(client, invoice):
    for name in ("billing:invoice", "billing:invoice_pdf"):
        # when
        url = reverse(name, args=[invoice.number])
        response = client.get(url)
        # then
        assert response.status_code == 302
        assert response.url == f"{reverse('account_login')}?next={url}"


def test_the_pdf_is_downloaded_as_an_attachment_named_after_the_invoice(client, owner, invoice):
    # when
    response = _pdf(client, owner, invoice)
    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{invoice.number}.pdf"'
    assert response.content.startswith(b"%PDF")


def test_the_pdf_reads_as_the_invoice(owner, invoice):
    # when
    text = _text(invoice_pdf(invoice=invoice))
    # then
    assert f"Facture {invoice.number}" in text
    assert "Logiciels Exemple SAS" in text
    assert "SIRET 123 456 789 00012" in text
    assert "FR12123456789" in text
    assert "Camille Martin" in text
    assert owner.customer_number in text
    assert "Abonnement Formule essentiel-annuel" in text
    assert "Total HT 82,50 €" in text
    assert "TVA 20 % 16,50 €" in text
    assert "Total TTC 99,00 €" in text
    assert "Payée" in text
    assert "7 mars 2026" in text


def test_the_pdf_has_thousands_legible(owner, now):
    """French amounts group thousands with a narrow no-break space, which the PDF font lacks."""
    # given
    subscribed(customer=owner, plan=PlanFactory(annual=True, price_cents=150000), at=now)
    invoice = Invoice.objects.get(customer=owner)
    # when
    text = _text(invoice_pdf(invoice=invoice))
    # then
    assert "Total TTC 1 800,00 €" in text


def test_an_english_speaking_customer_reads_the_page_and_the_pdf_in_english(client, now):
    # given
    customer = UserFactory(preferred_language="en")
    subscribed(customer=customer, plan=PlanFactory(annual=True), at=now)
    invoice = Invoice.objects.get(customer=customer)
    # when
    page = _page(client, customer, invoice).content.decode()
    pdf = _text(_pdf(client, customer, invoice).content)
    # then
    for text in (page, pdf):
        assert f"Invoice {invoice.number}" in text
        assert "€99.00" in text
        assert "€82.50" in text
        assert "Paid" in text
        assert "March 10, 2026" in text
    assert "Total incl. VAT €99.00" in pdf
    assert "VAT 20% €16.50" in pdf
    assert "Print" in page
    assert "Download PDF" in page


def test_the_pdf_follows_the_customers_language_not_the_pages(client, owner, invoice):
    # given: a French customer who switched the page to English
    client.cookies["django_language"] = "en"
    # when
    text = _text(_pdf(client, owner, invoice).content)
    # then
    assert "Total TTC 99,00 €" in text


def test_the_billing_history_links_to_each_invoice_and_its_pdf(client, owner, now):
    # given: a subscription refunded and ended, then a new one: two invoices in the history
    first = subscribed(customer=owner, at=now - days(20))
    subscription_cancel(subscription=first, now=now - days(19))
    subscribed(customer=owner, at=now)
    invoices = list(Invoice.objects.filter(customer=owner))
    client.force_login(owner)
    # when
    page = client.get(reverse("subscriptions:billing")).content.decode()
    # then
    assert len(invoices) == 2
    for invoice in invoices:
        assert f'href="{reverse("billing:invoice", args=[invoice.number])}"' in page
        assert f'href="{reverse("billing:invoice_pdf", args=[invoice.number])}"' in page
