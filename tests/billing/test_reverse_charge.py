"""Reverse charge and the customer's billing details (DESIGN §3, §14; issue 11 items 2 and 7):
"Particulier" or "Professionnel" in the profile and at checkout, SIREN/SIRET and EU VAT
numbers checked with python-stdnum, an EU business outside France invoiced at 0 % under
reverse charge, a French business at French VAT, and no first invoice without a billing
address."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts.forms import billing_details_complete
from accounts.models import CustomerType, User
from billing.models import Charge, Invoice, PaymentMethod, SimulatedProviderOperation
from billing.selectors import plan_price
from billing.vat import vat_treatment
from subscriptions.models import Subscription
from subscriptions.services.renew import subscription_renew
from tests.factories import PlanFactory, UserFactory, card_token, subscribed

pytestmark = pytest.mark.django_db

NBSP = "\u00a0"
VALID_DE = "DE136695976"
VALID_SIREN = "732829320"
VALID_SIRET = "73282932000074"
VALID_FR_VAT = "FR44732829320"
BERLIN = {"address_line1": "Friedrichstraße 68", "postal_code": "10117", "city": "Berlin",
          "billing_country": "DE"}
DAY = date(2026, 3, 10)


def german_business(**fields):
    return UserFactory(**{"customer_type": CustomerType.BUSINESS,
                          "company_name": "Nordlicht GmbH", "vat_number": VALID_DE, **BERLIN,
                          **fields})


def _profile(client, **fields):
    data = {"first_name": "Léa", "last_name": "Nguyen", "preferred_language": "fr",
            "customer_type": "business", "company_name": "Nordlicht GmbH", **BERLIN,
            "vat_number": VALID_DE, **fields}
    return client.post(reverse("accounts:profile"), data)


def _pay(client, plan):
    return client.post(reverse("subscriptions:subscribe", args=[plan.code]),
                       {"card_token": card_token(), "accept_terms": "1"})


def _nothing_charged():
    return not (Subscription.objects.exists() or Invoice.objects.exists()
                or Charge.objects.exists() or PaymentMethod.objects.exists()
                or SimulatedProviderOperation.objects.exists())


@pytest.fixture
def plan():
    return PlanFactory(code="essentiel-mensuel", name="Essentiel", price_cents=825)


# The decision (billing.vat.vat_treatment)


@pytest.mark.parametrize(("fields", "rate", "reverse_charge"), [
    ({}, "0", True),  # EU business outside France with a valid number
    ({"vat_number": ""}, "19", False),  # no number: the German rate
    ({"vat_number": "DE136695977"}, "19", False),  # check digit wrong (saved by other means)
    ({"customer_type": CustomerType.INDIVIDUAL}, "19", False),  # a German consumer
    ({"billing_country": "FR", "vat_number": VALID_FR_VAT, "siren": VALID_SIREN}, "20", False),
    ({"billing_country": "FI", "customer_type": CustomerType.INDIVIDUAL, "vat_number": ""},
     "25.5", False),
    ({"billing_country": "US", "vat_number": ""}, "0", False),  # outside the EU: no VAT
    ({"billing_country": "GR", "vat_number": "EL094259216"}, "0", True),  # Greece: EL
])
def test_vat_treatment(fields, rate, reverse_charge):
    customer = german_business(**fields)
    assert vat_treatment(customer, on=DAY) == (Decimal(rate), reverse_charge)


def test_reverse_charge_does_not_depend_on_the_one_stop_shop_threshold(settings):
    settings.VAT_OSS = False
    assert vat_treatment(german_business(), on=DAY) == (Decimal("0"), True)
    assert vat_treatment(german_business(vat_number=""), on=DAY) == (Decimal("20"), False)


# Invoices


def test_a_german_business_with_a_valid_vat_number_pays_0_percent_under_reverse_charge(
    client, plan, now
):
    # given
    customer = german_business()
    client.force_login(customer)
    # when
    page = client.get(reverse("subscriptions:subscribe", args=[plan.code])).content.decode()
    response = _pay(client, plan)
    # then
    assert f"8,25{NBSP}€ HT, autoliquidation</strong> / mois" in page
    assert "TTC" not in page.split("<form")[0]
    assert response.status_code == 302
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.vat_rate, invoice.reverse_charge) == (
        Invoice.Status.PAID, Decimal("0"), True)
    assert (invoice.net_cents, invoice.vat_cents, invoice.total_cents) == (825, 0, 825)
    assert Charge.objects.get().amount_cents == 825


def test_a_french_business_pays_french_vat(client, plan):
    # given
    customer = UserFactory(customer_type=CustomerType.BUSINESS, company_name="Lumière SAS",
                           siren=VALID_SIRET, vat_number=VALID_FR_VAT)
    client.force_login(customer)
    # when
    _pay(client, plan)
    # then
    invoice = Invoice.objects.get()
    assert (invoice.vat_rate, invoice.reverse_charge, invoice.total_cents) == (
        Decimal("20"), False, 990)


def test_a_consumer_in_finland_pays_25_5_percent(client, plan):
    # given
    client.force_login(UserFactory(billing_country="FI", city="Helsinki", postal_code="00100"))
    # when
    _pay(client, plan)
    # then
    invoice = Invoice.objects.get()
    assert (invoice.vat_rate, invoice.reverse_charge) == (Decimal("25.5"), False)
    assert (invoice.net_cents, invoice.vat_cents, invoice.total_cents) == (825, 210, 1035)


def test_a_profile_change_after_an_invoice_leaves_that_invoice_as_it_was(client, plan, now):
    # given: a German business's first invoice, under reverse charge
    customer = german_business()
    subscription = subscribed(customer=customer, plan=plan, at=now)
    first = Invoice.objects.get()
    client.force_login(customer)
    # when: it becomes a French consumer
    response = _profile(client, customer_type="individual", company_name="", vat_number="",
                        billing_country="FR", address_line1="3 rue Neuve",
                        postal_code="69001", city="Lyon")
    # then
    assert response.status_code == 302
    first.refresh_from_db()
    assert (first.vat_rate, first.reverse_charge, first.vat_cents, first.total_cents,
            first.billing_country) == (Decimal("0"), True, 0, 825, "DE")
    # and the next invoice is a French consumer's
    subscription.refresh_from_db()
    subscription_renew(subscription_id=subscription.pk, now=subscription.current_period_end)
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert (renewal.vat_rate, renewal.reverse_charge, renewal.total_cents) == (
        Decimal("20"), False, 990)


# Prices shown


def test_a_reverse_charge_customer_sees_prices_without_vat(client, plan):
    # given
    client.force_login(german_business())
    # when
    page = client.get(reverse("subscriptions:plans")).content.decode()
    # then
    assert f"8,25{NBSP}€ HT, autoliquidation</strong> / mois" in page
    assert "TTC" not in page
    assert plan_price(plan=plan, customer=german_business()).reverse_charge


def test_a_visitor_sees_a_french_consumers_prices(client, plan):
    page = client.get(reverse("subscriptions:plans")).content.decode()
    assert f"9,90{NBSP}€ TTC</strong> / mois" in page
    assert "autoliquidation" not in page


# The profile: numbers checked with python-stdnum, a bad one saves nothing


def test_the_profile_saves_a_german_business_with_its_vat_number_compacted(client):
    # given
    customer = UserFactory()
    client.force_login(customer)
    # when
    response = _profile(client, vat_number="de 136 695 976", siren="732829320")
    # then
    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.customer_type, customer.company_name, customer.vat_number,
            customer.siren, customer.billing_country, customer.city) == (
        "business", "Nordlicht GmbH", VALID_DE, "", "DE", "Berlin")


def test_a_greek_vat_number_is_written_el(client):
    customer = UserFactory()
    client.force_login(customer)
    response = _profile(client, billing_country="GR", vat_number="GR 094259216")
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.vat_number == "EL094259216"


@pytest.mark.parametrize(("fields", "field", "error"), [
    ({"vat_number": "DE136695977"}, "vat_number",
     "Ce numéro de TVA intracommunautaire n'est pas valide : vérifiez son format et ses "
     "chiffres."),
    ({"vat_number": "DE12345"}, "vat_number",
     "Ce numéro de TVA intracommunautaire n'est pas valide : vérifiez son format et ses "
     "chiffres."),
    ({"vat_number": "FR44732829320"}, "vat_number",
     "Ce numéro de TVA n'est pas celui d'une entreprise du pays de facturation : il doit "
     "commencer par DE."),
    ({"billing_country": "GR", "vat_number": "DE136695976"}, "vat_number",
     "Ce numéro de TVA n'est pas celui d'une entreprise du pays de facturation : il doit "
     "commencer par EL."),
    ({"vat_number": ""}, "vat_number",
     "Indiquez le numéro de TVA intracommunautaire de votre entreprise : il permet de la "
     "facturer hors taxes (autoliquidation)."),
    ({"company_name": " "}, "company_name", "Indiquez la raison sociale de votre entreprise."),
    ({"billing_country": "FR", "vat_number": "", "siren": "732829321"}, "siren",
     "Ce numéro SIREN/SIRET n'est pas valide : vérifiez les chiffres."),
    ({"billing_country": "FR", "vat_number": "", "siren": "73282932000075"}, "siren",
     "Ce numéro SIREN/SIRET n'est pas valide : vérifiez les chiffres."),
    ({"billing_country": "FR", "vat_number": "", "siren": "7328293"}, "siren",
     "Un SIREN compte 9 chiffres et un SIRET 14 chiffres."),
    ({"billing_country": "FR", "vat_number": "", "siren": ""}, "siren",
     "Indiquez le SIREN (9 chiffres) ou le SIRET (14 chiffres) de votre entreprise."),
    ({"billing_country": "FR", "siren": VALID_SIREN, "vat_number": "FR40303265045"},
     "vat_number", "Ce numéro de TVA ne correspond pas au SIREN indiqué."),
])
def test_a_bad_business_number_gets_a_french_error_and_saves_nothing(
    client, fields, field, error
):
    # given
    customer = UserFactory()
    client.force_login(customer)
    before = User.objects.values().get(pk=customer.pk)
    # when
    response = _profile(client, **fields)
    # then
    assert response.status_code == 200
    assert error in response.context["form"].errors[field]
    assert error.replace("'", "&#x27;") in response.content.decode()
    assert User.objects.values().get(pk=customer.pk) == before


def test_a_french_business_gives_a_siret_and_a_matching_vat_number(client):
    customer = UserFactory()
    client.force_login(customer)
    response = _profile(client, billing_country="FR", siren="732 829 320 00074",
                        vat_number="fr 44 732829320")
    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.siren, customer.vat_number) == (VALID_SIRET, VALID_FR_VAT)


def test_a_consumer_keeps_no_business_numbers(client):
    customer = german_business()
    client.force_login(customer)
    response = _profile(client, customer_type="individual")
    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.customer_type, customer.company_name, customer.vat_number) == (
        "individual", "", "")


# The checkout: no first invoice without a billing address


def test_the_checkout_refuses_to_pay_without_a_billing_address_and_charges_nothing(
    client, plan
):
    # given: an existing customer from before the address was asked
    client.force_login(UserFactory(address_line1="", postal_code="", city=""))
    # when
    page = client.get(reverse("subscriptions:subscribe", args=[plan.code])).content.decode()
    response = _pay(client, plan)
    # then
    assert 'name="billing_details"' in page and 'name="address_line1"' in page
    assert "Payer et souscrire" not in page
    assert response.status_code == 200
    assert ("Complétez vos coordonnées de facturation (adresse, et pour un professionnel ses "
            "numéros) avant de payer : rien n&#x27;a été débité.") in response.content.decode()
    assert _nothing_charged()


def test_a_business_without_its_vat_number_cannot_pay_either(client, plan):
    client.force_login(german_business(vat_number=""))
    response = _pay(client, plan)
    assert response.status_code == 200
    assert _nothing_charged()


def test_the_billing_details_entered_at_checkout_are_saved_then_the_price_is_theirs(
    client, plan
):
    # given
    customer = UserFactory(address_line1="", postal_code="", city="")
    client.force_login(customer)
    url = reverse("subscriptions:subscribe", args=[plan.code])
    # when
    response = client.post(url, {"billing_details": "1", "customer_type": "business",
                                 "company_name": "Nordlicht GmbH", "vat_number": VALID_DE,
                                 **BERLIN})
    # then
    assert response.status_code == 302
    assert response["Location"] == url
    assert _nothing_charged()
    page = client.get(url).content.decode()
    assert "Vos coordonnées de facturation ont été enregistrées." in page
    assert f"8,25{NBSP}€ HT, autoliquidation" in page
    assert "Payer et souscrire" in page
    _pay(client, plan)
    assert Invoice.objects.get().reverse_charge


def test_a_bad_number_at_checkout_saves_nothing_and_charges_nothing(client, plan):
    # given
    customer = UserFactory(address_line1="", postal_code="", city="")
    client.force_login(customer)
    before = User.objects.values().get(pk=customer.pk)
    # when
    response = client.post(
        reverse("subscriptions:subscribe", args=[plan.code]),
        {"billing_details": "1", "customer_type": "business", "company_name": "Nordlicht",
         "vat_number": "DE136695977", **BERLIN, "card_token": card_token(),
         "accept_terms": "1"})
    # then
    assert response.status_code == 200
    assert ("Ce numéro de TVA intracommunautaire n'est pas valide : vérifiez son format et "
            "ses chiffres.") in response.context["details"].errors["vat_number"]
    assert User.objects.values().get(pk=customer.pk) == before
    assert _nothing_charged()


def test_the_checkout_asks_for_every_part_of_the_address(client, plan):
    client.force_login(UserFactory(address_line1="", postal_code="", city=""))
    response = client.post(reverse("subscriptions:subscribe", args=[plan.code]),
                           {"billing_details": "1", "customer_type": "individual",
                            "billing_country": "FR"})
    assert response.status_code == 200
    assert set(response.context["details"].errors) == {"address_line1", "postal_code", "city"}


def test_renewals_of_a_customer_without_an_address_keep_working(plan, now):
    # given: subscribed before the address was asked
    subscription = subscribed(plan=plan, at=now)
    User.objects.filter(pk=subscription.customer_id).update(address_line1="", postal_code="",
                                                            city="")
    subscription.refresh_from_db()
    # when
    charge = subscription_renew(subscription_id=subscription.pk,
                                now=subscription.current_period_end)
    # then
    assert charge.status == Charge.Status.SUCCEEDED
    assert Invoice.objects.get(kind=Invoice.Kind.RENEWAL).status == Invoice.Status.PAID


# Demo data


def test_the_demo_has_a_german_business_and_a_finnish_consumer(now):
    # when
    call_command("load_demo")
    # then
    pro = User.objects.get(email="pro@example.com")
    assert pro.check_password("demo-password")
    assert (pro.customer_type, pro.billing_country, pro.vat_number) == (
        "business", "DE", VALID_DE)
    assert pro.company_name and pro.address_line1 and pro.postal_code and pro.city
    assert vat_treatment(pro, on=now) == (Decimal("0"), True)
    invoice = pro.invoices.get()
    assert (invoice.status, invoice.reverse_charge, invoice.vat_cents) == (
        Invoice.Status.PAID, True, 0)
    finn = User.objects.get(email="finlande@example.com")
    assert finn.check_password("demo-password")
    assert (finn.customer_type, finn.billing_country) == ("individual", "FI")
    assert finn.invoices.get().vat_rate == Decimal("25.5")
    # every demo customer can go through a checkout
    customers = User.objects.filter(is_staff=False)
    assert customers.count() > 2
    assert all(billing_details_complete(customer) for customer in customers)
