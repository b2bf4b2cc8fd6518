"""Every mandatory mention of a French invoice and credit note (CGI annexe II art. 242 nonies A,
C. com. L441-9; DESIGN §14), on the page and in the PDF's text alike: a consumer's invoice,
an EU business's reverse-charge invoice and a credit note."""

import pytest
from django.urls import reverse

from billing.models import CreditNote
from billing.pdf import credit_note_pdf, invoice_pdf
from billing.services import payment_method_add
from subscriptions.services import subscription_cancel
from subscriptions.services.renew import subscription_renew
from subscriptions.services.staff import staff_subscription_end_now
from tests.billing.documents import (
    consumer,
    french_business,
    page_text,
    paid_invoice,
    pdf_text,
    reverse_charge_invoice,
)
from tests.factories import UserFactory, card_token, days, subscribed

pytestmark = pytest.mark.django_db

SELLER = [
    "Vendeur Logiciels Exemple",
    "SAS au capital de 10 000 €",
    "12 rue de l'Exemple, 75002 Paris",
    "SIREN 123 456 789 — RCS Paris 123 456 789",
    "SIRET 123 456 789 00012",
    "TVA intracommunautaire FR12123456789",
]
SERVICE = [
    "Date d'émission 7 mars 2026",
    "Nature de l'opération Prestation de services",
    "Période couverte 7 mars 2026 – 7 mars 2027",
    "Abonnement Formule essentiel-annuel",
]
PAID_BY_CARD = ["Date de paiement 7 mars 2026",
                "Moyen de paiement Carte Visa se terminant par 4242"]
REVERSE_CHARGE = "Autoliquidation — article 196 de la directive 2006/112/CE"
BETWEEN_PROFESSIONALS = [
    "pas d'escompte pour paiement anticipé",
    "pénalités au taux de la Banque centrale européenne à son opération de refinancement la "
    "plus récente majoré de 10 points (article L441-10 du Code de commerce)",
    "Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : 40 € "
    "(articles L441-10 et D441-5 du Code de commerce)",
]


def _invoice_texts(client, invoice):
    client.force_login(invoice.customer)
    page = client.get(reverse("billing:invoice", args=[invoice.number]))
    assert page.status_code == 200
    return {"page": page_text(page), "pdf": pdf_text(invoice_pdf(invoice=invoice))}


def _credit_note_texts(client, credit_note):
    client.force_login(credit_note.invoice.customer)
    page = client.get(reverse("billing:credit_note", args=[credit_note.number]))
    assert page.status_code == 200
    return {"page": page_text(page), "pdf": pdf_text(credit_note_pdf(credit_note=credit_note))}


def _missing(text, mentions):
    return [mention for mention in mentions if mention not in text]


def test_a_consumers_invoice_has_every_mention(client, now):
    # given
    invoice = paid_invoice(consumer(), at=now - days(3))
    # when
    texts = _invoice_texts(client, invoice)
    # then
    for name, text in texts.items():
        assert _missing(text, [
            *SELLER,
            f"Facture {invoice.number}",
            "Client Camille Martin 8 rue des Lilas 69003 Lyon France",
            *SERVICE,
            "Total HT 82,50 €", "TVA 20 % 16,50 €", "Total TTC 99,00 €",
            *PAID_BY_CARD,
        ]) == [], name
        # neither the reverse charge nor what only professionals owe
        assert _missing(text, [REVERSE_CHARGE, *BETWEEN_PROFESSIONALS]) == [
            REVERSE_CHARGE, *BETWEEN_PROFESSIONALS], name
        assert "TVA intracommunautaire DE" not in text


def test_an_eu_business_reverse_charge_invoice_has_every_mention(client, now):
    # given
    invoice = reverse_charge_invoice(at=now)
    # when
    texts = _invoice_texts(client, invoice)
    # then
    for name, text in texts.items():
        assert _missing(text, [
            *SELLER,
            f"Facture {invoice.number}",
            "Client Beispiel GmbH Jonas Weber Hauptstraße 1 10115 Berlin Allemagne",
            "TVA intracommunautaire DE136695976",
            *SERVICE,
            "Total HT 82,50 €", "TVA 0 % 0,00 €", "Total TTC 82,50 €",
            *PAID_BY_CARD,
            "Date d'échéance 7 mars 2026",
            REVERSE_CHARGE,
            *BETWEEN_PROFESSIONALS,
        ]) == [], name


def test_a_french_business_invoice_names_its_siren_and_pays_french_vat(client, now):
    # given
    invoice = paid_invoice(french_business(), at=now - days(3))
    # when
    texts = _invoice_texts(client, invoice)
    # then
    for name, text in texts.items():
        assert _missing(text, [
            "Client Exemple Conseil SARL Claire Durand 3 place du Marché 69002 Lyon France",
            "SIREN / SIRET 73282932000074", "TVA intracommunautaire FR44732829320",
            "TVA 20 % 16,50 €", "Total TTC 99,00 €", *BETWEEN_PROFESSIONALS,
        ]) == [], name
        assert REVERSE_CHARGE not in text


def test_a_credit_note_has_every_mention_and_reads_negative(
    client, now, django_capture_on_commit_callbacks
):
    # given: the invoice refunded in full at cancellation, within the refund window
    invoice = paid_invoice(consumer(), at=now - days(3))
    with django_capture_on_commit_callbacks(execute=True):
        subscription_cancel(subscription=invoice.subscription, now=now)
    credit_note = CreditNote.objects.get(invoice=invoice)
    # when
    texts = _credit_note_texts(client, credit_note)
    # then
    for name, text in texts.items():
        assert _missing(text, [
            *SELLER,
            f"Avoir {credit_note.number}",
            f"Facture corrigée {invoice.number} du 7 mars 2026",
            "Client Camille Martin 8 rue des Lilas 69003 Lyon France",
            "Date d'émission 10 mars 2026",
            *SERVICE[1:],
            "Motif Résiliation",
            "Total HT −82,50 €", "TVA 20 % −16,50 €", "Total TTC −99,00 €",
            "Date de remboursement 10 mars 2026",
            "Remboursé sur Carte Visa se terminant par 4242",
        ]) == [], name
    assert f"Cet avoir corrige la facture {invoice.number}" in texts["page"]


def test_an_invoice_shows_its_credit_notes_as_negative_amounts_with_their_pages(
    client, now, django_capture_on_commit_callbacks
):
    # given
    invoice = paid_invoice(consumer(), at=now - days(3))
    with django_capture_on_commit_callbacks(execute=True):
        subscription_cancel(subscription=invoice.subscription, now=now)
    credit_note = invoice.credit_notes.get()
    client.force_login(invoice.customer)
    # when
    page = client.get(reverse("billing:invoice", args=[invoice.number])).content.decode()
    billing = client.get(reverse("subscriptions:billing")).content.decode()
    texts = _invoice_texts(client, invoice)
    # then
    for text in texts.values():
        assert f"Avoirs Numéro Date Montant TTC {credit_note.number} 10 mars 2026 −99,00 €" in text
    assert f'href="{reverse("billing:credit_note", args=[credit_note.number])}"' in page
    assert f'href="{reverse("billing:credit_note", args=[credit_note.number])}"' in billing
    assert f'href="{reverse("billing:credit_note_pdf", args=[credit_note.number])}"' in billing
    assert "−99,00\u00a0€" in billing


def test_a_credit_note_of_an_invoice_cancelled_unpaid_says_why_and_refunds_nothing(client, now):
    # given: a renewal invoice issued, then its subscription ended unpaid
    customer = consumer()
    subscription = subscribed(customer=customer, at=now - days(40))
    payment_method_add(customer=customer, now=now,
                       token=card_token("4000000000000341", 12, 2031, "123"))
    renewal = subscription_renew(subscription_id=subscription.pk, now=now).invoice
    staff_subscription_end_now(subscription=subscription, refund=False, staff_user=None,
                               now=now)
    credit_note = CreditNote.objects.get(invoice=renewal)
    # when
    texts = _credit_note_texts(client, credit_note)
    # then
    for name, text in texts.items():
        assert "Motif Facture annulée avant paiement" in text, name
        assert "Date de remboursement" not in text, name
        assert f"Facture corrigée {renewal.number} du 10 mars 2026" in text, name
        assert f"Total TTC −{renewal.total_cents // 100},{renewal.total_cents % 100:02d} €" \
            in text, name


def test_a_profile_change_after_issue_does_not_change_the_invoice(client, now):
    # given
    customer = french_business()
    invoice = paid_invoice(customer, at=now - days(3))
    before = _invoice_texts(client, invoice)
    # when: everything the profile holds about billing changes
    customer.first_name, customer.last_name = "Zoé", "Autre"
    customer.company_name = "Autre Société SAS"
    customer.address_line1, customer.postal_code, customer.city = "1 quai Neuf", "33000", \
        "Bordeaux"
    customer.siren, customer.vat_number = "542107651", "FR40542107651"
    customer.customer_type = "individual"
    customer.save()
    # then
    assert _invoice_texts(client, invoice) == before
    assert "Exemple Conseil SARL" in before["page"]


def test_the_english_pdf_has_the_mentions_in_english(now):
    # given
    invoice = reverse_charge_invoice(at=now)
    invoice.customer.preferred_language = "en"
    invoice.customer.save()
    # when
    text = pdf_text(invoice_pdf(invoice=invoice))
    # then
    assert _missing(text, [
        "Supply of services", "SAS with a share capital of 10 000 €",
        "Reverse charge — Article 196 of Council Directive 2006/112/EC",
        "Fixed compensation for recovery costs in the event of late payment: €40",
        "Payment method Visa card ending in 4242", "Germany",
    ]) == []


@pytest.mark.parametrize("view", ["billing:credit_note", "billing:credit_note_pdf"])
def test_a_credit_note_is_shown_to_its_owner_only(
    client, now, view, django_capture_on_commit_callbacks
):
    # given
    invoice = paid_invoice(consumer(), at=now - days(3))
    with django_capture_on_commit_callbacks(execute=True):
        subscription_cancel(subscription=invoice.subscription, now=now)
    credit_note = invoice.credit_notes.get()
    url = reverse(view, args=[credit_note.number])
    # when
    anonymous = client.get(url)
    client.force_login(UserFactory())
    stranger = client.get(url)
    client.force_login(invoice.customer)
    owner = client.get(url)
    missing = client.get(reverse(view, args=["A2026-999999"]))
    # then
    assert anonymous.status_code == 302
    assert anonymous.url == f"{reverse('account_login')}?next={url}"
    assert (stranger.status_code, owner.status_code, missing.status_code) == (404, 200, 404)
    assert "99,00" not in stranger.content.decode()


def test_the_credit_note_pdf_is_downloaded_named_after_it(
    client, now, django_capture_on_commit_callbacks
):
    # given
    invoice = paid_invoice(consumer(), at=now - days(3))
    with django_capture_on_commit_callbacks(execute=True):
        subscription_cancel(subscription=invoice.subscription, now=now)
    credit_note = invoice.credit_notes.get()
    client.force_login(invoice.customer)
    # when
    response = client.get(reverse("billing:credit_note_pdf", args=[credit_note.number]))
    # then
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == (
        f'attachment; filename="{credit_note.number}.pdf"')
    assert f"Avoir {credit_note.number}" in pdf_text(response.content)
