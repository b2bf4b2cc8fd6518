"""The withdrawal function in a real browser with JavaScript off, by keyboard only (DESIGN §8,
issue 10): "Renoncer au contrat ici", the statement, "Confirmer la rétractation", the
acknowledgement.

The clock is not frozen here (the live server runs in a thread of its own), so subscriptions
are made relative to the real ``timezone.now()``."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from billing.models import Refund
from notifications.models import OutboxEmail
from subscriptions.models import EndReason, Status
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, PlanFactory, UserFactory, days, subscribed

pytestmark = pytest.mark.browser

LINK = "Renoncer au contrat ici"
CONFIRM = "Confirmer la rétractation"
ACKNOWLEDGEMENT_URL = re.compile(r"/compte/retractation/\d+/accuse-de-reception/$")


def recent_subscription():
    """Annual at 99,00 € TTC, bought two days ago: inside the withdrawal period."""
    customer = UserFactory(first_name="Camille", last_name="Martin")
    return subscribed(customer=customer, plan=PlanFactory(annual=True),
                      at=timezone.now() - days(2))


def tab_to(page, locator, *, presses=60):
    """Press Tab until ``locator`` has the focus, as a keyboard user does."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        try:
            expect(locator).to_be_focused(timeout=50)
        except AssertionError:
            continue
        return
    raise AssertionError(f"Tab never reached {locator}")


def assert_withdrawn(subscription, *, email):
    subscription.refresh_from_db()
    assert (subscription.status, subscription.end_reason) == (Status.ENDED, EndReason.WITHDRAWN)
    refund = Refund.objects.get(charge__invoice__subscription=subscription)
    assert (refund.amount_cents, refund.reason) == (9900, Refund.Reason.WITHDRAWAL)
    acknowledgement = OutboxEmail.objects.get(kind="withdrawal_confirmation")
    assert acknowledgement.recipient == email


def test_keyboard_only_without_javascript_from_the_subscription_section(nojs_page):
    # given
    page = nojs_page
    subscription = recent_subscription()
    log_in(page, subscription.customer)
    section = page.locator(f"#abonnement-{subscription.pk}")
    link = section.get_by_role("link", name=LINK)
    expect(link).to_be_visible()

    # Tab to "Renoncer au contrat ici", Enter: the statement
    tab_to(page, link)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/compte/abonnement/{subscription.pk}/retractation/$"))
    expect(page.get_by_role("heading", name="Renoncer au contrat")).to_be_visible()
    expect(page.locator(".contract-reference")).to_have_text(
        f"{subscription.customer.customer_number} · {subscription.reference}")
    name = page.get_by_label("Votre nom")
    email = page.get_by_label("Adresse e-mail pour l'accusé de réception")
    expect(name).to_have_value("Camille Martin")
    expect(email).to_have_value(subscription.customer.email)

    # correct the address with the keyboard, then Tab to the confirm button and press Enter
    tab_to(page, email)
    page.keyboard.press("Control+A")
    page.keyboard.type("perso@example.org")
    confirm = page.get_by_role("button", name=CONFIRM)
    tab_to(page, confirm)
    page.keyboard.press("Enter")

    # then: the acknowledgement, with the date and time received
    expect(page).to_have_url(ACKNOWLEDGEMENT_URL)
    expect(page.get_by_role("heading", name="Accusé de réception de votre rétractation")
           ).to_be_visible()
    expect(page.locator(".received")).to_contain_text("Nous avons bien reçu votre rétractation")
    expect(page.locator(".received-at")).to_have_text(re.compile(r"^\d{1,2}(er)? \S+ \d{4} à "
                                                                 r"\d{1,2} h \d{2}$"))
    expect(page.locator(".email")).to_have_text("perso@example.org")
    assert_withdrawn(subscription, email="perso@example.org")

    # the subscription section no longer offers it; the history links the acknowledgement
    page.goto("/compte/abonnement/")
    expect(section.get_by_role("link", name=LINK)).to_have_count(0)
    expect(page.locator(".site-footer").get_by_role("link", name=LINK)).to_have_count(0)
    page.locator("#historique").get_by_role("link", name="Accusé de réception").click()
    expect(page).to_have_url(ACKNOWLEDGEMENT_URL)


def test_logged_out_the_footer_link_signs_in_then_leads_to_the_statement(nojs_page):
    # given
    page = nojs_page
    subscription = recent_subscription()
    page.goto("/offres/")
    # when
    page.locator(".site-footer").get_by_role("link", name=LINK).click()
    expect(page).to_have_url(re.compile(r"/comptes/login/\?next="))
    page.locator("input[name=login]").fill(subscription.customer.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("input[name=password]").press("Enter")
    # then
    expect(page).to_have_url(re.compile(rf"/compte/abonnement/{subscription.pk}/retractation/$"))
    page.get_by_role("button", name=CONFIRM).click()
    expect(page).to_have_url(ACKNOWLEDGEMENT_URL)
    assert_withdrawn(subscription, email=subscription.customer.email)
