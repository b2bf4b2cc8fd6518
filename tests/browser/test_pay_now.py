"""A suspended customer updates their card and pays in the browser (DESIGN §6, §9)."""

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from billing.services import payment_method_add
from notifications.models import OutboxEmail
from subscriptions.models import Status
from subscriptions.periods import add_days
from subscriptions.selectors import business_tz
from subscriptions.services.renew import subscription_renew, subscription_retry_payment
from tests.browser.conftest import log_in
from tests.factories import PlanFactory, UserFactory, card_token, days, subscribed

pytestmark = pytest.mark.browser


def suspended_subscription():
    """Monthly, renewed 8 days ago on a card that is always refused: all four attempts
    failed, so it is suspended (no access) with its renewal invoice open."""
    subscription = subscribed(customer=UserFactory(), plan=PlanFactory(),
                              at=timezone.now() - days(39))
    renewal = subscription.current_period_end
    payment_method_add(customer=subscription.customer, now=renewal,
                       token=card_token("4000000000000341", 12, 2031, "123"))
    invoice = subscription_renew(subscription_id=subscription.pk, now=renewal).invoice
    for retry in settings.DUNNING_RETRY_DAYS:
        subscription_retry_payment(invoice_id=invoice.pk,
                                   now=add_days(renewal, retry, tz=business_tz()))
    subscription.refresh_from_db()
    assert subscription.status == Status.SUSPENDED
    return subscription


def test_suspended_customer_updates_the_card_and_pays_now(page):
    # given
    subscription = suspended_subscription()
    log_in(page, subscription.customer)
    section = page.locator(f"#abonnement-{subscription.pk}")
    expect(section.locator(".status")).to_have_text("Suspendu")
    # when: the refused card is paid again first
    section.get_by_role("button", name="Payer maintenant").click()
    # then
    expect(page.locator(".message.error")).to_contain_text("Paiement refusé")
    # when: a new card, then pay
    page.get_by_role("link", name="Mettre à jour la carte").click()
    page.get_by_label("Numéro de carte").fill("4242 4242 4242 4242")
    page.get_by_label("Mois d'expiration").fill("12")
    page.get_by_label("Année d'expiration").fill("2031")
    page.get_by_label("Cryptogramme (CVC)").fill("123")
    page.get_by_role("button", name="Enregistrer la carte").click()
    expect(page.locator(".message.success")).to_contain_text("Votre carte a été mise à jour")
    page.locator(f"#abonnement-{subscription.pk}").get_by_role(
        "button", name="Payer maintenant").click()
    # then
    expect(page.locator(".message.success")).to_contain_text("de nouveau actif")
    expect(page.locator(f"#abonnement-{subscription.pk} .status")).to_have_text("Actif")
    expect(page.get_by_role("button", name="Payer maintenant")).to_have_count(0)
    subscription.refresh_from_db()
    assert (subscription.status, subscription.licence_active) == (Status.ACTIVE, True)
    assert OutboxEmail.objects.filter(kind="subscription_reactivated").count() == 1
