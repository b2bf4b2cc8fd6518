"""« Changer de formule » in a real browser (DESIGN §7, §9): an upgrade previewed then confirmed,
charged exactly the amount shown; a downgrade scheduled then withdrawn.

The clock is not frozen here (the live server runs in a thread of its own): subscriptions are
made relative to the real ``timezone.now()``, and the amount due shrinks by a cent every hour
or so, so the test reads the amount the page shows rather than computing it."""

import re

import pytest
from django.template.defaultfilters import date as date_filter
from django.utils import timezone, translation
from playwright.sync_api import expect

from billing.models import Charge, Invoice
from billing.templatetags.money import money
from notifications.models import OutboxEmail
from subscriptions.models import SubscriptionEvent
from tests.browser.conftest import log_in
from tests.factories import PlanFactory, UserFactory, days, subscribed

pytestmark = pytest.mark.browser

BILLING_URL = re.compile(r"/compte/abonnement/$")


def french_date(value):
    with translation.override("fr"):
        return date_filter(timezone.localtime(value), "j F Y")


def french_money(cents):
    with translation.override("fr"):
        return money(cents)


def monthly_plans():
    return (
        PlanFactory(code="essentiel-mensuel", name="Essentiel", tier=1, price_cents=825),
        PlanFactory(code="premium-mensuel", name="Premium", tier=2, price_cents=1250),
    )


def open_change_page(page, subscription):
    log_in(page, subscription.customer)
    page.locator(f"#abonnement-{subscription.pk}").get_by_role(
        "link", name="Changer de formule").click()
    expect(page.get_by_role("heading", name="Changer de formule")).to_be_visible()


def shown_amount(page):
    """The amount the confirmation page shows and will post back, after checking they agree."""
    cents = int(page.locator("input[name=expected_amount_cents]").get_attribute("value"))
    expect(page.locator(".amount-now .amount")).to_have_text(f"{french_money(cents)} TTC")
    expect(page.get_by_role("button", name=f"Confirmer et payer {french_money(cents)}")) \
        .to_be_visible()
    return cents


def test_an_upgrade_is_previewed_then_charged_exactly_the_amount_shown(page):
    # given: Essentiel, bought 10 days ago
    essentiel, premium = monthly_plans()
    subscription = subscribed(customer=UserFactory(), plan=essentiel,
                              at=timezone.now() - days(10))
    open_change_page(page, subscription)
    option = page.locator(f"[data-plan='{premium.code}']")
    expect(option.locator(".what-happens")).to_contain_text(
        f"sans changer votre date de prélèvement ({french_date(subscription.current_period_end)})")
    expect(option.locator(".amount-split")).to_contain_text("HT")
    # when: the customer opens the confirmation
    option.get_by_role("link", name="Passer à Premium (mensuel)").click()
    expect(page.get_by_role("heading", name="Passer à Premium (mensuel) ?")).to_be_visible()
    previewed = shown_amount(page)
    assert 0 < previewed < 510  # less than the full 5,10 € difference: 20 days are left
    page.get_by_role("button", name=re.compile("Confirmer et payer")).click()
    if page.locator(".message.warning").count():
        # a cent went by between the preview and the click: shown again, to confirm again
        previewed = shown_amount(page)
        page.get_by_role("button", name=re.compile("Confirmer et payer")).click()
    # then
    expect(page).to_have_url(BILLING_URL)
    expect(page.locator(".message.success")).to_contain_text(
        "votre abonnement est passé à Premium (mensuel)")
    section = page.locator(f"#abonnement-{subscription.pk}")
    expect(section.get_by_role("heading")).to_contain_text("Premium")
    expect(section.locator(".next-charge")).to_contain_text(
        french_date(subscription.current_period_end))
    charge = Charge.objects.get(invoice__kind=Invoice.Kind.PRORATION)
    assert (charge.status, charge.amount_cents) == (Charge.Status.SUCCEEDED, previewed)
    assert charge.invoice.lines.get().description == \
        "Prorata Essentiel (mensuel) → Premium (mensuel)"
    subscription.refresh_from_db()
    assert subscription.plan == premium
    assert OutboxEmail.objects.filter(kind="plan_changed").count() == 1
    expect(page.locator("tr.invoice").first).to_contain_text(french_money(previewed))


def test_a_downgrade_is_scheduled_then_withdrawn(page):
    # given: Premium, bought 10 days ago
    essentiel, premium = monthly_plans()
    subscription = subscribed(customer=UserFactory(), plan=premium,
                              at=timezone.now() - days(10))
    period_end = french_date(subscription.current_period_end)
    open_change_page(page, subscription)
    # when
    page.locator(f"[data-plan='{essentiel.code}']").get_by_role(
        "link", name="Passer à Essentiel (mensuel)").click()
    expect(page.locator(".what-happens")).to_contain_text(
        f"vous gardez Premium jusqu'au {period_end}, puis votre abonnement passe à Essentiel")
    expect(page.locator(".amount-now")).to_have_text("À payer aujourd'hui : rien.")
    page.get_by_role("button", name="Programmer le changement").click()
    # then: shown on the page with its date and its price
    expect(page).to_have_url(BILLING_URL)
    expect(page.locator(".message.success")).to_contain_text(
        f"votre abonnement passera à Essentiel (mensuel) le {period_end}")
    section = page.locator(f"#abonnement-{subscription.pk}")
    pending = section.locator(".pending-plan")
    expect(pending).to_contain_text(f"Essentiel à partir du {period_end}")
    expect(pending).to_contain_text(f"{french_money(990)} TTC")
    subscription.refresh_from_db()
    assert subscription.pending_plan == essentiel
    # when
    pending.get_by_role("button", name="Annuler le changement").click()
    # then
    expect(page.locator(".message.success")).to_contain_text(
        "Le changement de formule prévu est annulé")
    expect(page.locator(f"#abonnement-{subscription.pk} .pending-plan")).to_have_count(0)
    subscription.refresh_from_db()
    assert (subscription.plan, subscription.pending_plan) == (premium, None)
    assert list(subscription.events.values_list("kind", flat=True)) == [
        SubscriptionEvent.Kind.SUBSCRIBED, SubscriptionEvent.Kind.PLAN_CHANGE_SCHEDULED,
        SubscriptionEvent.Kind.PLAN_CHANGE_WITHDRAWN]
    assert not Charge.objects.filter(invoice__kind=Invoice.Kind.PRORATION).exists()
