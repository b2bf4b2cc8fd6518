"""Issue 5's "done when", in a real browser: support staff find a customer by licence key,
read the timeline, refund part of a charge and answer a support request; the customer then
sees the reply and the refund in "Mon compte"."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import User
from billing.models import Refund
from support.models import SupportRequest
from support.services import support_request_create
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, PlanFactory, UserFactory, days, subscribed

pytestmark = pytest.mark.browser


def test_staff_refund_part_of_a_charge_and_answer_the_customer(page, context):
    # given: a customer with a subscription and an open support request
    subscription = subscribed(customer=UserFactory(), plan=PlanFactory(),
                              at=timezone.now() - days(20))
    customer = subscription.customer
    request = support_request_create(
        customer=customer, subject="Double débit ?", category=SupportRequest.Category.BILLING,
        body="Je pense avoir été débité deux fois.", subscription=subscription,
    )
    staff = User.objects.create_superuser("agent@example.com", PASSWORD)
    EmailAddress.objects.create(user=staff, email=staff.email, primary=True, verified=True)
    # when: staff sign in to the admin and find the subscription by its licence key
    page.goto("/admin/")
    page.locator("input[name=login]").fill(staff.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("input[name=password]").press("Enter")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    page.goto("/admin/subscriptions/subscription/")
    page.locator("#searchbar").fill(subscription.licence_key)
    page.locator("#searchbar").press("Enter")
    page.locator("#result_list tbody a").first.click()
    # then: the timeline tells the story
    expect(page.locator("body")).to_contain_text("Souscription")
    # when: refund 2,00 € of the first payment
    page.get_by_role("link", name=re.compile("Rembourser un paiement", re.I)).click()
    page.get_by_label("Montant à rembourser (€ TTC)").fill("2,00")
    page.locator("form input[type=submit], form button[type=submit]").last.click()
    expect(page.locator(".messagelist")).to_contain_text("2,00")
    # and answer the support request
    page.goto(f"/admin/support/supportrequest/{request.pk}/change/")
    page.get_by_label("Réponse au client").fill("Un seul débit : nous vous remboursons 2,00 €.")
    page.get_by_role("button", name="Envoyer la réponse").click()
    expect(page.locator(".messagelist")).to_be_visible()
    # then: the customer sees the reply and the refund in "Mon compte"
    customer_page = context.browser.new_context(base_url=page.url.split("/admin")[0],
                                                locale="fr-FR").new_page()
    log_in(customer_page, customer)
    expect(customer_page.locator("#historique")).to_contain_text("−2,00")
    customer_page.goto(f"/compte/support/{request.reference}/")
    expect(customer_page.locator("body")).to_contain_text("nous vous remboursons 2,00 €")
    refund = Refund.objects.get()
    assert (refund.amount_cents, refund.status) == (200, Refund.Status.SUCCEEDED)
