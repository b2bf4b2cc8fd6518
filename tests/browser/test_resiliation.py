"""The legal door (DESIGN §8, "Résiliation en trois clics"), in a real browser without
JavaScript: from a page seen signed out, the footer's "Résilier mon contrat", sign in, the
recap, "Confirmer ma demande de résiliation", the acknowledgement.

The clock is real: an annual subscription bought 40 days ago (past the refund window)."""

import re

import pytest
from django.utils import timezone, translation
from playwright.sync_api import expect

from formats.dates import long_date
from notifications.models import OutboxEmail
from subscriptions.models import Status
from subscriptions.selectors import business_tz, cancellation_quote
from tests.factories import PASSWORD, PlanFactory, UserFactory, days, subscribed

pytestmark = pytest.mark.browser


def test_footer_sign_in_recap_confirm_then_the_acknowledgement(nojs_page):
    # given
    page = nojs_page
    subscription = subscribed(customer=UserFactory(), plan=PlanFactory(annual=True),
                              at=timezone.now() - days(40))
    customer = subscription.customer
    quote = cancellation_quote(subscription=subscription, now=timezone.now())
    with translation.override("fr"):
        effective = long_date(quote.access_ends_at)
    page.goto("/offres/")

    # click 1: the footer, signed out, leads through sign-in to the recap
    page.locator("footer").get_by_role("link", name="Résilier mon contrat").click()
    page.locator("input[name=login]").fill(customer.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("input[name=password]").press("Enter")
    expect(page).to_have_url(re.compile(r"/compte/resilier/$"))
    expect(page.get_by_role("heading", name="Résilier votre contrat")).to_be_visible()
    expect(page.get_by_label("Nom et prénom")).to_have_value(customer.get_full_name())
    expect(page.get_by_label("Adresse e-mail pour l'accusé de réception")).to_have_value(
        customer.email)
    expect(page.get_by_label("Numéro client")).to_have_value(customer.customer_number)
    expect(page.get_by_label("Référence de l'abonnement")).to_have_value(
        subscription.reference)
    expect(page.get_by_label("Date d'effet")).to_have_value(
        quote.access_ends_at.astimezone(business_tz()).date().isoformat())

    # the customer corrects the address for the acknowledgement
    page.get_by_label("Adresse e-mail pour l'accusé de réception").fill(
        "autre.adresse@example.org")
    # click 2: confirm
    page.get_by_role("button", name="Confirmer ma demande de résiliation").click()

    # then: the acknowledgement
    expect(page).to_have_url(re.compile(rf"/compte/abonnement/{subscription.pk}/resiliation/$"))
    expect(page.get_by_role(
        "heading", name="Accusé de réception de votre demande de résiliation")).to_be_visible()
    expect(page.locator(".received-at")).to_contain_text(
        "Nous avons reçu votre demande de résiliation le ")
    expect(page.locator(".acknowledgement-email")).to_have_text("autre.adresse@example.org")
    expect(page.locator(".effective-date")).to_have_text(effective)
    subscription.refresh_from_db()
    assert (subscription.auto_renew, subscription.status) == (False, Status.ACTIVE)
    assert OutboxEmail.objects.get(kind="cancellation_confirmation").recipient == (
        "autre.adresse@example.org")
