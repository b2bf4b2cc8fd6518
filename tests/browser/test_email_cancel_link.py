"""Cancelling from the link of the pre-charge email, in a real browser, without logging in
(DESIGN §9, last paragraph).

The clock is real here: the subscription is bought 20 days ago (past the refund window) and
its pre-charge notice is queued as the job would queue it, a few days before the renewal."""

import re

import pytest
from django.conf import settings
from django.utils import timezone, translation
from playwright.sync_api import expect

from formats.dates import long_date
from notifications.models import OutboxEmail
from subscriptions.jobs import run_due_jobs
from subscriptions.models import Status, SubscriptionEvent
from tests.factories import PlanFactory, UserFactory, days, subscribed

pytestmark = pytest.mark.browser

LINK = re.compile(re.escape(settings.SITE_URL) + r"(/resilier/[^/\s\"<>]+/)")


def french_date(value):
    """As the pages write it (formats.dates): on the business time zone's calendar."""
    with translation.override("fr"):
        return long_date(value)


def test_cancelling_from_the_pre_charge_email_link(page):
    # given: the pre-charge notice in the outbox, with its link
    subscription = subscribed(customer=UserFactory(), plan=PlanFactory(name="Essentiel"),
                              at=timezone.now() - days(20))
    run_due_jobs(now=subscription.current_period_end - days(2))
    email = OutboxEmail.objects.get(subscription=subscription, kind="pre_charge_notice")
    path = LINK.search(email.body_text).group(1)
    ends = french_date(subscription.current_period_end)

    # when: opened in a browser that never logged in
    page.goto(path)
    # then: the dialog's recap, and nothing changed
    expect(page.get_by_role("heading", name="Annuler l'abonnement ?")).to_be_visible()
    recap = page.locator(".cancel-page .recap")
    expect(recap.locator(".access-end")).to_contain_text(
        f"Votre abonnement restera actif jusqu'au {ends}")
    expect(recap.locator(".refund")).to_have_text(
        "Aucun remboursement n'est prévu pour la période en cours.")
    expect(recap.locator(".features-lost li")).to_have_text(
        ["Protection en temps réel", "1 appareil"])
    subscription.refresh_from_db()
    assert subscription.auto_renew is True

    # when
    page.get_by_label("Pourquoi partez-vous ? (facultatif)").select_option(label="Trop cher")
    page.get_by_role("button", name="Annuler l'abonnement").click()
    # then
    expect(page.get_by_role(
        "heading", name="Accusé de réception de votre demande de résiliation")).to_be_visible()
    expect(page.locator(".effective-date")).to_have_text(ends)
    expect(page.locator(".access-end")).to_contain_text(
        "Votre abonnement reste actif jusqu'à la date d'effet")
    expect(page.get_by_text("Cet accusé de réception vous a aussi été envoyé par e-mail à "
                            f"{subscription.customer.email}.")).to_be_visible()
    subscription.refresh_from_db()
    assert subscription.auto_renew is False
    assert subscription.status == Status.ACTIVE
    assert subscription.cancel_reason == "too_expensive"
    assert subscription.events.filter(kind=SubscriptionEvent.Kind.CANCELLED).count() == 1
    assert OutboxEmail.objects.filter(subscription=subscription,
                                      kind="cancellation_confirmation").count() == 1

    # when: the link again (back, reload, or a second click in the email)
    page.goto(path)
    # then
    expect(page.get_by_role("heading", name="Ce lien de résiliation n'est plus valable")
           ).to_be_visible()
    expect(page.locator(".nothing-changed")).to_have_text("Rien n'a été modifié.")
