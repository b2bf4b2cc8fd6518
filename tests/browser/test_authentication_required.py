"""3-D Secure on a renewal, in a real browser (DESIGN §6, §9, §13; issue 9 item 4): the
renewal's bank asks for authentication, the customer follows the email's link, signs in,
confirms, and answers the simulated provider's challenge page ("Valider" / "Refuser")."""

import re

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from billing.models import Charge
from notifications.models import OutboxEmail
from subscriptions.models import Status
from subscriptions.services.renew import subscription_renew
from tests.factories import (
    PASSWORD,
    PlanFactory,
    UserFactory,
    days,
    open_renewal,
    saved_card,
    subscribed,
)

pytestmark = pytest.mark.browser

LINK = re.compile(re.escape(settings.SITE_URL) + r"(/compte/paiement/[^/\s\"<>]+/)")


def renewal_needing_authentication():
    """Monthly, renewed at its period end (a few days ago) on a card whose bank asks for
    3-D Secure on every charge: past due, the email with the link in the outbox."""
    subscription = subscribed(customer=UserFactory(), plan=PlanFactory(name="Essentiel"),
                              at=timezone.now() - days(33))
    renewal = subscription.current_period_end
    saved_card(subscription.customer, "4000002760003184", renewal - days(1))
    subscription_renew(subscription_id=subscription.pk, now=renewal)
    subscription.refresh_from_db()
    assert subscription.status == Status.PAST_DUE
    email = OutboxEmail.objects.get(subscription=subscription, kind="authentication_required")
    return subscription, LINK.search(email.body_text).group(1)


def open_the_link_and_sign_in(page, subscription, link):
    page.goto(link)
    # the link asks the customer to sign in, then comes back to the page
    page.locator("input[name=login]").fill(subscription.customer.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("input[name=password]").press("Enter")
    expect(page.get_by_role("heading", name="Confirmer votre paiement")).to_be_visible()
    expect(page.locator(".confirm-payment .amount")).to_have_text("9,90 €")


def test_the_emails_link_then_the_challenge_approved_reactivates(page):
    # given
    subscription, link = renewal_needing_authentication()
    invoice = open_renewal(subscription)
    open_the_link_and_sign_in(page, subscription, link)
    # when: the button starts the provider's challenge (its script sends us to the bank)
    page.get_by_role("button", name="Confirmer le paiement").click()
    expect(page.get_by_role("heading", name="Authentification 3-D Secure")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/simulated-provider/authentification/\?"))
    expect(page.locator(".amount")).to_contain_text("9,90 €")
    page.get_by_role("button", name="Valider").click()
    # then: back on the portal, paid and active, the banner gone
    expect(page.locator(".message.success")).to_contain_text(
        "Paiement confirmé : votre abonnement est de nouveau actif")
    section = page.locator(f"#abonnement-{subscription.pk}")
    expect(section.locator(".status")).to_have_text("Actif")
    expect(section.locator(".authentication-required")).to_have_count(0)
    subscription.refresh_from_db()
    invoice.refresh_from_db()
    assert subscription.status == Status.ACTIVE
    assert subscription.current_period_end == invoice.period_end  # the period unchanged
    assert invoice.charges.get().status == Charge.Status.SUCCEEDED
    assert OutboxEmail.objects.filter(subscription=subscription,
                                      kind="subscription_reactivated").count() == 1


def test_the_challenge_refused_leaves_it_past_due_with_the_banner(page):
    # given
    subscription, link = renewal_needing_authentication()
    open_the_link_and_sign_in(page, subscription, link)
    # when
    page.get_by_role("button", name="Confirmer le paiement").click()
    page.get_by_role("button", name="Refuser").click()
    # then: told, still past due, and the banner still offers to confirm
    expect(page.locator(".message.error")).to_contain_text("rien n'a été prélevé")
    section = page.locator(f"#abonnement-{subscription.pk}")
    expect(section.locator(".status")).to_have_text("Paiement en retard")
    banner = section.locator(".authentication-required")
    expect(banner).to_contain_text("Authentification requise")
    expect(banner.get_by_role("link", name="Confirmer votre paiement")).to_be_visible()
    subscription.refresh_from_db()
    assert subscription.status == Status.PAST_DUE
    # when: the banner's button leads to the same page, and this time the bank says yes
    banner.get_by_role("link", name="Confirmer votre paiement").click()
    page.get_by_role("button", name="Confirmer le paiement").click()
    page.get_by_role("button", name="Valider").click()
    # then
    expect(section.locator(".status")).to_have_text("Actif")
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE
