"""Location evidence (DESIGN §14, issue 11 scope 6): the provider's card issuing country is kept
on the card and on the invoice it pays, beside the billing country; staff see a mismatch on
the invoice and filter on it (tests/admin/test_card_country.py)."""

import pytest
from django_countries import countries

from billing.gateways import CardSetupRequest
from billing.gateways.simulated import COUNTRY_CARDS, SimulatedGateway, luhn_valid
from billing.models import Invoice, PaymentMethod
from subscriptions.services.renew import subscription_renew
from tests.factories import UserFactory, card_token, days, saved_card, subscribed

pytestmark = pytest.mark.django_db

FRENCH_CARD, GERMAN_CARD = "4000002500000003", "4000002760000016"


def test_the_country_test_cards_are_valid_numbers_carrying_their_iso_numeric_code():
    assert all(luhn_valid(number) for number in COUNTRY_CARDS)
    assert {number[6:9] for number in COUNTRY_CARDS} == {
        f"{countries.numeric(country):03d}" for country in COUNTRY_CARDS.values()}


@pytest.mark.parametrize(("number", "country"), [
    (FRENCH_CARD, "FR"), (GERMAN_CARD, "DE"), ("4000002460000001", "FI"),
    # the other test cards keep saying nothing about their country
    ("4242424242424242", ""), ("4000002760003184", ""), ("4000002500003155", ""),
])
def test_a_saved_card_keeps_the_country_the_provider_reports(now, number, country):
    # given
    customer = UserFactory()

    # when
    card = saved_card(customer, number, now)

    # then
    assert PaymentMethod.objects.get(pk=card.pk).country == country


def test_the_invoice_keeps_the_country_of_the_card_that_paid_it(now):
    # given: a French customer paying with a German card
    subscription = subscribed(customer=UserFactory(billing_country="FR"),
                              at=now - days(31), card=GERMAN_CARD)
    first = subscription.invoices.get()
    assert (first.billing_country, first.card_country) == ("FR", "DE")

    # when: the card is replaced by a French one before the renewal is charged
    saved_card(subscription.customer, FRENCH_CARD, now - days(2))
    subscription_renew(subscription_id=subscription.pk, now=subscription.current_period_end)

    # then
    renewal = subscription.invoices.get(kind=Invoice.Kind.RENEWAL)
    assert (renewal.status, renewal.card_country) == (Invoice.Status.PAID, "FR")
    first.refresh_from_db()
    assert first.card_country == "DE"


def test_an_invoice_left_unpaid_has_no_card_country(now):
    # given: a renewal declined on a German card
    subscription = subscribed(at=now - days(31), card=GERMAN_CARD)
    saved_card(subscription.customer, "4000000000000341", now - days(2))

    # when
    subscription_renew(subscription_id=subscription.pk, now=subscription.current_period_end)

    # then
    renewal = subscription.invoices.get(kind=Invoice.Kind.RENEWAL)
    assert (renewal.status, renewal.card_country) == (Invoice.Status.OPEN, "")


def test_the_token_alone_gives_the_provider_the_country(now):
    # given: what the card fields return for a German card
    token = card_token(GERMAN_CARD)

    # when
    setup = SimulatedGateway().card_setup(CardSetupRequest(
        token=token, customer_reference="", email="a@example.com", idempotency_key="k"))

    # then
    assert (setup.country, setup.last4) == ("DE", "0016")
