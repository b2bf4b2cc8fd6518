"""Location evidence for staff (DESIGN §14, issue 11 scope 6): an invoice paid with a card
issued in another country than its billing country is flagged on the invoice list and page,
and a list filter finds them."""

import pytest
from django.urls import reverse

from tests.factories import UserFactory, subscribed

pytestmark = pytest.mark.django_db

FRENCH_CARD, GERMAN_CARD = "4000002500000003", "4000002760000016"


@pytest.fixture
def three_invoices(now):
    """Paid in France with a German card, with a French card, and with a card of no country."""
    mismatch = subscribed(customer=UserFactory(billing_country="FR"), at=now, card=GERMAN_CARD)
    match = subscribed(customer=UserFactory(billing_country="FR"), at=now, card=FRENCH_CARD)
    unknown = subscribed(customer=UserFactory(billing_country="DE"), at=now)
    return {name: subscription.invoices.get() for name, subscription in
            [("mismatch", mismatch), ("match", match), ("unknown", unknown)]}


@pytest.mark.parametrize("shown", ["mismatch", "match", "unknown"])
def test_staff_filter_invoices_on_the_card_country(support_client, three_invoices, shown):
    # when
    response = support_client.get(reverse("admin:billing_invoice_changelist"),
                                  {"card_country": shown})

    # then
    assert response.status_code == 200
    assert [invoice.pk for invoice in response.context["cl"].result_list] == [
        three_invoices[shown].pk]


def test_the_invoice_list_and_page_flag_a_mismatch(support_client, three_invoices):
    # when
    changelist = support_client.get(reverse("admin:billing_invoice_changelist")).content.decode()
    flagged = support_client.get(reverse("admin:billing_invoice_change",
                                         args=[three_invoices["mismatch"].pk])).content.decode()
    matching = support_client.get(reverse("admin:billing_invoice_change",
                                          args=[three_invoices["match"].pk])).content.decode()

    # then
    assert "pays de la carte ≠ pays de facturation" in changelist
    assert changelist.count('class="card-country-mismatch"') == 1
    assert ("La carte qui a payé a été émise dans un autre pays (DE) que le pays de "
            "facturation (FR).") in flagged
    assert "card-country-mismatch" not in matching
    assert "La carte qui a payé a été émise dans le pays de facturation." in matching
