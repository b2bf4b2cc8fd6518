"""Card entry in the provider's own fields (issue 9, DESIGN §13): during the subscribe and
card-update flows, with declines on the way, no request the portal receives and no page it
renders holds a card number; only the simulated provider's tokenizer sees one."""

import re

import pytest
from playwright.sync_api import expect

from billing.gateways.simulated import luhn_valid
from subscriptions.models import Status, Subscription
from tests.browser.conftest import log_in
from tests.factories import PlanFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DIGIT_RUNS = re.compile(r"(?<!\d)\d{13,19}(?!\d)")
PROVIDER = "/simulated-provider/"


def card_numbers_in(text: str) -> list[str]:
    """Luhn-valid runs of 13 to 19 digits, spaces and dashes between them allowed."""
    squeezed = re.sub(r"(?<=\d)[ \-+]|%20(?=\d)", "", text)
    return [run for run in DIGIT_RUNS.findall(squeezed) if luhn_valid(run)]


def _fill_card(page, number):
    page.get_by_label("Numéro de carte").fill(number)
    page.get_by_label("Mois d'expiration").fill("12")
    page.get_by_label("Année d'expiration").fill("2031")
    page.get_by_label("Cryptogramme (CVC)").fill("123")


def test_no_card_number_ever_reaches_the_portal(page, live_server):
    # given: everything the portal receives, and every page it renders, is recorded
    plan = PlanFactory(code="essentiel-mensuel", name="Essentiel")
    customer = UserFactory()
    to_portal, rendered = [], []
    page.on("request", lambda request: to_portal.append(
        (request.url, request.post_data or "")) if PROVIDER not in request.url else None)
    page.on("response", lambda response: rendered.append(response.text()) if (
        PROVIDER not in response.url and "text/html" in response.headers.get(
            "content-type", "")) else None)
    log_in(page, customer)
    # when: a card refused by the bank at setup, one refused at the charge, then a good one
    page.goto(f"/offres/{plan.code}/souscrire/")
    for number, error in [("4000 0000 0000 0002", "Paiement refusé"),
                          ("4000 0000 0000 9995", "provision insuffisante")]:
        _fill_card(page, number)
        page.get_by_label("J'accepte les conditions d'abonnement").check()
        page.get_by_role("button", name="Payer et souscrire").click()
        expect(page.locator(".form-error", has_text=error)).to_be_visible()
    _fill_card(page, "4242 4242 4242 4242")
    expect(page.get_by_label("J'accepte les conditions d'abonnement")).to_be_checked()
    page.get_by_role("button", name="Payer et souscrire").click()
    expect(page.locator(".message.success")).to_contain_text("Bienvenue")
    # and the card is updated, once with a number the provider refuses to tokenize
    page.get_by_role("link", name="Mettre à jour la carte").click()
    _fill_card(page, "4242 4242 4242 4241")
    page.get_by_role("button", name="Enregistrer la carte").click()
    expect(page.locator("[data-card-error]")).to_have_text(
        "Ce numéro de carte n'est pas valide.")
    _fill_card(page, "5555 5555 5555 4444")
    page.get_by_role("button", name="Enregistrer la carte").click()
    expect(page.locator(".message.success")).to_contain_text("Votre carte a été mise à jour")
    # then: subscribed on the good card, now on the new one
    subscription = Subscription.objects.get(customer=customer)
    assert subscription.status == Status.ACTIVE
    assert customer.payment_methods.get(is_default=True).last4 == "4444"
    # and no card number reached the portal, in any request, nor came back in any page
    posts = [body for url, body in to_portal if body]
    assert len(posts) >= 5  # the login, three checkouts, the card update
    assert all("card_token=tok_" in body for body in posts if "accept_terms" in body)
    assert [card_numbers_in(body) for _url, body in to_portal] == [[]] * len(to_portal)
    assert [card_numbers_in(html) for html in rendered] == [[]] * len(rendered)


def test_without_javascript_the_page_says_card_entry_needs_it(nojs_page):
    # given
    plan = PlanFactory(code="essentiel-mensuel", name="Essentiel")
    log_in(nojs_page, UserFactory())
    # when
    nojs_page.goto(f"/offres/{plan.code}/souscrire/")
    # then: no card input to type into, and why
    expect(nojs_page.get_by_text("qui a besoin de JavaScript")).to_be_visible()
    expect(nojs_page.get_by_label("Numéro de carte")).to_be_hidden()


def test_a_card_and_a_first_payment_the_bank_wants_authenticated(page, live_server):
    # given: a card whose bank asks for 3-D Secure at setup and on every payment
    plan = PlanFactory(code="essentiel-mensuel", name="Essentiel")
    customer = UserFactory()
    log_in(page, customer)
    page.goto(f"/offres/{plan.code}/souscrire/")
    _fill_card(page, "4000 0027 6000 3184")
    page.get_by_label("J'accepte les conditions d'abonnement").check()
    page.get_by_role("button", name="Payer et souscrire").click()
    # when: the bank confirms the card first (the provider's page)
    expect(page.get_by_role("heading", name="Authentification 3-D Secure")).to_be_visible()
    page.get_by_role("button", name="Valider").click()
    # then: back at the checkout, the card saved, nothing paid yet
    expect(page.locator(".message.success")).to_contain_text("vérifiée par votre banque")
    expect(page).to_have_url(re.compile(rf"/offres/{plan.code}/souscrire/$"))
    assert not customer.subscriptions.exists()
    # when: paid with it, the bank asks again, for the payment
    page.get_by_label("Utiliser ma carte Visa •••• 3184").check()
    page.get_by_label("J'accepte les conditions d'abonnement").check()
    page.get_by_role("button", name="Payer et souscrire").click()
    expect(page.get_by_role("heading", name="Authentification 3-D Secure")).to_be_visible()
    page.get_by_role("button", name="Valider").click()
    # then
    expect(page.locator(".message.success")).to_contain_text(
        "Bienvenue ! Votre abonnement Essentiel est actif.")
    assert customer.subscriptions.get().status == "active"
