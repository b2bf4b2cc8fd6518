"""Subscribing through the pages (DESIGN §3, §4, §9, §10): prices shown TTC, the first invoice
charged once, the welcome email, and what a refused card leaves behind."""

import re
import threading

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from billing.gateways.simulated import SimulatedGateway
from billing.messages import decline_message
from billing.models import Charge, Invoice, PaymentMethod, SimulatedProviderOperation
from billing.services import payment_method_add
from notifications.models import OutboxEmail
from subscriptions.licences import LICENCE_ALPHABET
from subscriptions.models import Status, Subscription, SubscriptionEvent
from subscriptions.services import subscribe as subscribe_service
from subscriptions.services.payments import charge_send
from tests.factories import PlanFactory, UserFactory, card_token, days, subscribed
from tests.threads import at_once

pytestmark = pytest.mark.django_db

NBSP = "\u00a0"
LICENCE_KEY = re.compile(rf"^[{LICENCE_ALPHABET}]{{5}}(-[{LICENCE_ALPHABET}]{{5}}){{4}}$")


def _card(number="4242424242424242", *, month=12, year=2029, cvc="123"):
    """The checkout form as the provider's fields leave it: a token, never the number."""
    return {"card_token": card_token(number, month, year, cvc), "accept_terms": "1"}


def _subscribe_url(plan):
    return reverse("subscriptions:subscribe", args=[plan.code])


@pytest.fixture
def customer(client):
    user = UserFactory()
    client.force_login(user)
    return user


@pytest.fixture
def plan():
    return PlanFactory(code="essentiel-mensuel", name="Essentiel", price_cents=825)


def _nothing_bought():
    return not (Subscription.objects.exists() or Charge.objects.filter(
        status=Charge.Status.SUCCEEDED).exists() or Invoice.objects.filter(
        status=Invoice.Status.PAID).exists() or OutboxEmail.objects.exists())


# The plans page


@pytest.mark.parametrize(("country", "monthly", "annual", "rate"), [
    ("FR", "9,90", "99,00", "20"),  # 825 + 165 ; 8250 + 1650
    ("CH", "8,92", "89,18", "8,1"),  # 825 + 66.825 → 67 ; 8250 + 668.25 → 668
    ("BE", "9,98", "99,83", "21"),  # 825 + 173.25 → 173 ; 8250 + 1732.5 → 1733 (half up)
    ("FI", "10,35", "103,54", "25,5"),  # 825 + 210.375 → 210 ; 8250 + 2103.75 → 2104
    ("HU", "10,48", "104,78", "27"),  # 825 + 222.75 → 223 ; 8250 + 2227.5 → 2228
])
def test_plans_page_shows_tax_inclusive_prices_for_the_customers_country(
    client, country, monthly, annual, rate, settings
):
    # given (the vendor registered for VAT in Switzerland)
    settings.VAT_NON_EU_RATES = {"CH": "8.1"}
    PlanFactory(code="essentiel-mensuel", price_cents=825)
    PlanFactory(code="essentiel-annuel", annual=True)
    client.force_login(UserFactory(billing_country=country))
    # when
    response = client.get(reverse("subscriptions:plans"))
    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert f"{monthly}{NBSP}€ TTC</strong> / mois" in page
    assert f"{annual}{NBSP}€ TTC</strong> / an" in page
    assert f"TVA {rate} %" in page
    offers = {plan.code: price.total_cents for plan, price in
              response.context["monthly"] + response.context["annual"]}
    assert offers == {"essentiel-mensuel": int(monthly.replace(",", "")),
                      "essentiel-annuel": int(annual.replace(",", ""))}


def test_plans_page_hides_plans_no_longer_sold(client):
    # given
    PlanFactory(code="essentiel-mensuel")
    PlanFactory(code="ancienne-formule", is_active=False)
    # when
    response = client.get(reverse("subscriptions:plans"))
    # then
    page = response.content.decode()
    assert 'data-plan="essentiel-mensuel"' in page
    assert 'data-plan="ancienne-formule"' not in page


def test_subscribe_page_of_a_plan_no_longer_sold_is_not_found(client, customer):
    # given
    old = PlanFactory(code="ancienne-formule", is_active=False)
    # when
    response = client.post(_subscribe_url(old), _card())
    # then
    assert response.status_code == 404
    assert not Invoice.objects.exists()


# A good card


def test_subscribing_with_a_good_card(client, customer, plan, now,
                                      django_capture_on_commit_callbacks):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_subscribe_url(plan), _card())
    # then
    assert response.status_code == 302
    assert response.url == reverse("subscriptions:billing")
    subscription = Subscription.objects.get()
    assert (subscription.customer, subscription.plan, subscription.status) == (
        customer, plan, Status.ACTIVE)
    assert subscription.auto_renew
    assert subscription.started_at == subscription.billing_anchor == now
    assert LICENCE_KEY.match(subscription.licence_key), subscription.licence_key
    assert subscription.licence_active
    invoice = Invoice.objects.get()
    assert invoice.number == "F2026-000001"
    assert (invoice.status, invoice.subscription, invoice.kind) == (
        Invoice.Status.PAID, subscription, Invoice.Kind.INITIAL)
    assert (invoice.net_cents, invoice.vat_cents, invoice.total_cents) == (825, 165, 990)
    assert invoice.paid_at == now
    charge = Charge.objects.get()
    assert (charge.status, charge.amount_cents, charge.invoice) == (
        Charge.Status.SUCCEEDED, 990, invoice)
    assert charge.provider_reference == SimulatedProviderOperation.objects.get().reference
    assert SubscriptionEvent.objects.get().kind == SubscriptionEvent.Kind.SUBSCRIBED
    welcome = OutboxEmail.objects.get()
    assert (welcome.kind, welcome.recipient, welcome.status) == (
        "welcome", customer.email, OutboxEmail.Status.SENT)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [customer.email]
    assert subscription.licence_key in mail.outbox[0].body
    assert "F2026-000001" in mail.outbox[0].body


def test_after_subscribing_the_billing_page_shows_the_subscription(client, customer, plan):
    # when
    response = client.post(_subscribe_url(plan), _card(), follow=True)
    # then
    page = response.content.decode()
    assert escape("Bienvenue ! Votre abonnement Essentiel est actif.") in page
    assert Subscription.objects.get().licence_key in page
    assert "F2026-000001" in page


def test_card_number_with_spaces_is_accepted(client, customer, plan):
    # when: typed with spaces in the provider's fields
    token = client.post(TOKENS_URL, {"number": "4242 4242 4242 4242", "exp_month": "12",
                                     "exp_year": "2029", "cvc": "123"}).json()["token"]
    client.post(_subscribe_url(plan), {"card_token": token, "accept_terms": "1"})
    # then
    assert Subscription.objects.get().status == Status.ACTIVE
    assert PaymentMethod.objects.get().last4 == "4242"


def test_subscribing_with_the_saved_card(client, customer, plan, now):
    # given
    ended = subscribed(customer=customer, plan=plan, at=now - days(40))
    Subscription.objects.filter(pk=ended.pk).update(status=Status.ENDED)
    # when
    response = client.post(_subscribe_url(plan), {"use_saved_card": "1", "accept_terms": "1"})
    # then
    assert response.status_code == 302
    assert Subscription.objects.filter(status=Status.ACTIVE).count() == 1
    assert PaymentMethod.objects.count() == 1
    assert Charge.objects.filter(status=Charge.Status.SUCCEEDED).count() == 2


# Refused cards


@pytest.mark.parametrize(("number", "code", "words"), [
    ("4000000000000341", "card_declined", "Paiement refusé par votre banque"),
    ("4000000000009995", "insufficient_funds", "provision insuffisante"),
    ("4000000000000119", "provider_error", "Aucun montant n'a été débité"),
])
def test_a_refused_card_shows_why_and_buys_nothing(client, customer, plan, number, code, words,
                                                   django_capture_on_commit_callbacks):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_subscribe_url(plan), _card(number))
    # then
    assert response.status_code == 200
    message = decline_message(code)
    assert words in message
    assert response.context["payment_error"] == message
    assert escape(message) in response.content.decode()
    assert not Subscription.objects.exists()
    invoice = Invoice.objects.get()
    assert invoice.status == Invoice.Status.VOID
    charge = Charge.objects.get()
    assert (charge.status, charge.failure_code) == (Charge.Status.FAILED, code)
    assert not OutboxEmail.objects.exists()
    assert mail.outbox == []


@pytest.mark.parametrize(("number", "code"), [
    ("4000000000000002", "card_declined"), ("4000000000000069", "expired_card"),
])
def test_a_card_the_bank_refuses_at_setup_is_not_saved_and_nothing_is_charged(
    client, customer, plan, number, code
):
    # when
    response = client.post(_subscribe_url(plan), _card(number))
    # then
    assert response.status_code == 200
    assert response.context["payment_error"] == decline_message(code)
    assert not PaymentMethod.objects.exists()
    assert not Invoice.objects.exists()
    assert _nothing_bought()


def test_a_refused_new_card_does_not_replace_the_saved_card(client, customer, plan, now):
    # given
    ended = subscribed(customer=customer, plan=plan, at=now - days(40))
    Subscription.objects.filter(pk=ended.pk).update(status=Status.ENDED)
    # when
    client.post(_subscribe_url(plan), _card("4000000000009995"))
    response = client.get(_subscribe_url(plan))
    # then
    default = PaymentMethod.objects.get(is_default=True)
    assert default.last4 == "4242"
    assert response.context["saved_card"] == default


def test_after_a_refused_card_another_card_succeeds(client, customer, plan):
    # given
    client.post(_subscribe_url(plan), _card("4000000000009995"))
    # when
    response = client.post(_subscribe_url(plan), _card())
    # then
    assert response.status_code == 302
    assert Subscription.objects.get().status == Status.ACTIVE
    assert list(Invoice.objects.order_by("pk").values_list("number", "status")) == [
        (None, Invoice.Status.VOID), ("F2026-000001", Invoice.Status.PAID)]


TOKENS_URL = "/simulated-provider/tokens/"


@pytest.mark.parametrize(("card", "error"), [
    ({"month": 2, "year": 2026}, "Cette carte a expiré."),
    ({"month": 12, "year": 2025}, "Cette carte a expiré."),
    ({"month": 13, "year": 2029}, "Indiquez le mois (1 à 12) et l'année d'expiration."),
    ({"number": "4242424242424241"}, "Ce numéro de carte n'est pas valide."),
    ({"number": "4242-4242-4242-4243"}, "Ce numéro de carte n'est pas valide."),
    ({"number": "４２４２４２４２４２４２４２４２"}, "Ce numéro de carte n'est pas valide."),
    ({"cvc": "12"}, "Le cryptogramme compte 3 ou 4 chiffres."),
])
def test_the_providers_card_fields_refuse_an_invalid_card_in_french(client, customer, card,
                                                                     error):
    # when: the provider's script sends the card to the provider's tokenizer
    fields = {"number": "4242424242424242", "month": 12, "year": 2029, "cvc": "123", **card}
    response = client.post(TOKENS_URL, {"number": fields["number"], "cvc": fields["cvc"],
                                        "exp_month": fields["month"],
                                        "exp_year": fields["year"]})
    # then
    assert response.status_code == 400
    assert response.json()["message"] == error
    assert not PaymentMethod.objects.exists()
    assert _nothing_bought()


def test_the_providers_tokenizer_answers_a_token_and_what_may_be_shown(client):
    # when
    response = client.post(TOKENS_URL, {"number": "4242 4242 4242 4242", "exp_month": "7",
                                        "exp_year": "2031", "cvc": "314"})
    # then: no number, no CVC in the answer
    answer = response.json()
    assert answer["token"].startswith("tok_")
    assert (answer["brand"], answer["last4"], answer["exp_month"], answer["exp_year"]) == (
        "Visa", "4242", 7, 2031)
    assert "4242424242424242" not in response.content.decode()
    assert "314" not in response.content.decode()


def test_the_checkout_takes_no_card_number_and_never_shows_one(client, customer, plan):
    # when: a card number posted to the portal itself (a bypassed script, a crafted form)
    response = client.post(_subscribe_url(plan), {
        "card_number": "4242424242424242", "exp_month": "12", "exp_year": "2029", "cvc": "123",
        "accept_terms": "1"})
    # then: refused for want of a token, nothing bought, the number not echoed
    assert response.status_code == 200
    assert response.context["form"].errors["card_token"] == [
        "Saisissez votre carte dans le formulaire de paiement."]
    assert "4242424242424242" not in response.content.decode()
    assert _nothing_bought()


def test_after_a_refused_payment_the_terms_box_stays_ticked(client, customer, plan):
    # when
    response = client.post(_subscribe_url(plan), _card("4000000000009995"))
    # then
    assert 'name="accept_terms" value="1" required checked' in response.content.decode()


def test_a_card_expiring_this_month_is_accepted(client, customer, plan):
    # when
    client.post(_subscribe_url(plan), _card(month=3, year=2026))
    # then
    assert Subscription.objects.get().status == Status.ACTIVE


# The provider times out after charging


def test_timeout_after_success_is_reconciled_and_subscribes_once(
    client, customer, plan, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_subscribe_url(plan), _card("4000000000000408"))
    # then
    assert response.status_code == 302
    subscription = Subscription.objects.get()
    assert subscription.status == Status.ACTIVE
    operation = SimulatedProviderOperation.objects.get()
    charge = Charge.objects.get()
    assert (charge.status, charge.provider_reference) == (Charge.Status.SUCCEEDED,
                                                          operation.reference)
    assert Invoice.objects.get().status == Invoice.Status.PAID
    assert OutboxEmail.objects.filter(kind="welcome").count() == 1
    assert len(mail.outbox) == 1


# One subscription at a time


def test_a_second_subscription_while_one_is_running_is_refused(client, customer, plan, now):
    # given
    subscribed(customer=customer, plan=plan, at=now - days(2))
    other = PlanFactory(code="premium-annuel", annual=True, tier=2)
    # when
    response = client.post(_subscribe_url(other), _card(), follow=True)
    # then
    assert response.redirect_chain == [(reverse("subscriptions:billing"), 302)]
    assert escape("Vous avez déjà un abonnement en cours.") in response.content.decode()
    assert Subscription.objects.get().plan == plan
    assert Invoice.objects.count() == 1
    assert Charge.objects.count() == 1
    assert PaymentMethod.objects.count() == 1
    assert SimulatedProviderOperation.objects.count() == 1


# Invoice numbers


def test_refused_first_payments_leave_no_gap_in_the_invoice_series(client, plan):
    # given
    customers = [UserFactory() for _ in range(4)]
    cards = ["4242424242424242", "4000000000000341", "4242424242424242", "4000000000000119"]
    # when
    for customer, number in zip(customers, cards, strict=True):
        client.force_login(customer)
        client.post(_subscribe_url(plan), _card(number))
    client.force_login(customers[1])
    client.post(_subscribe_url(plan), _card())
    # then
    numbers = list(Invoice.objects.order_by("id").values_list("number", "customer", "status"))
    assert numbers == [
        ("F2026-000001", customers[0].pk, Invoice.Status.PAID),
        (None, customers[1].pk, Invoice.Status.VOID),
        ("F2026-000002", customers[2].pk, Invoice.Status.PAID),
        (None, customers[3].pk, Invoice.Status.VOID),
        ("F2026-000003", customers[1].pk, Invoice.Status.PAID),
    ]


# A double click on "Payer et souscrire"




@pytest.mark.django_db(transaction=True, databases=["default", "simulated_provider"])
def test_a_double_click_on_pay_subscribes_and_charges_once(monkeypatch):
    # given: two submissions of the form at once; the first to reach the provider is held
    # until the other has been answered, so the second runs while the first is being paid
    plan = PlanFactory(code="essentiel-mensuel")
    customer = UserFactory()
    clients = [Client(), Client()]
    for client in clients:
        client.force_login(customer)
    answered = threading.Event()
    paying, paying_lock = [], threading.Lock()

    def charge_send_held_for_the_other_click(**kwargs):
        with paying_lock:
            first = not paying
            paying.append(threading.current_thread())
        if first:
            answered.wait(timeout=10)
        return charge_send(**kwargs)

    monkeypatch.setattr(subscribe_service, "charge_send", charge_send_held_for_the_other_click)
    tokenized = threading.Barrier(2)
    tokenize_card = SimulatedGateway.tokenize_card

    def tokenize_together(self, card):
        token = tokenize_card(self, card)
        tokenized.wait(timeout=10)
        return token

    monkeypatch.setattr(SimulatedGateway, "tokenize_card", tokenize_together)

    def click(client):
        def submit():
            try:
                return client.post(_subscribe_url(plan), _card())
            finally:
                if threading.current_thread() not in paying[:1]:
                    answered.set()
        return submit

    # when
    responses = at_once(*(click(client) for client in clients))
    # then
    assert sorted(r.status_code for r in responses) == [200, 302]
    refused = next(r for r in responses if r.status_code == 200)
    assert "Un paiement est déjà en cours de traitement" in refused.context["payment_error"]
    assert Subscription.objects.count() == 1
    assert Charge.objects.get().status == Charge.Status.SUCCEEDED
    assert SimulatedProviderOperation.objects.count() == 1
    assert list(Invoice.objects.values_list("number", "status")) == [
        ("F2026-000001", Invoice.Status.PAID)]
    assert PaymentMethod.objects.filter(customer=customer, is_default=True).count() == 1
    assert OutboxEmail.objects.filter(kind="welcome").count() == 1



def test_a_refused_saved_card_says_why(client, customer, plan, now):
    # given: a saved card that the bank now refuses, and no running subscription
    payment_method_add(customer=customer, now=now,
                       token=card_token("4000000000009995", 12, 2030, "123"))
    # when
    response = client.post(_subscribe_url(plan), {"use_saved_card": "1", "accept_terms": "1"})
    # then
    assert response.status_code == 200
    assert response.context["payment_error"] == decline_message("insufficient_funds")
    assert escape(decline_message("insufficient_funds")) in response.content.decode()
    assert not Subscription.objects.exists()
