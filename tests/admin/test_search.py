"""Support finds a customer's rows by email, customer number, licence key or invoice number
(DESIGN §11), in every admin list customers and money live in."""

import pytest
from django.urls import reverse

from billing.models import Charge, CreditNote, Invoice, PaymentMethod, Refund
from notifications.models import OutboxEmail
from subscriptions.services import subscription_cancel
from tests.factories import PlanFactory, UserFactory, days, subscribed

pytestmark = pytest.mark.django_db


@pytest.fixture
def camille(now, django_capture_on_commit_callbacks):
    """Subscribed 3 days ago, then cancelled inside the refund window: she has an invoice, a
    charge, a refund, a credit note, a card and emails."""
    plan = PlanFactory(code="essentiel")
    subscription = subscribed(customer=UserFactory(email="camille@example.com"), plan=plan,
                              at=now - days(3))
    with django_capture_on_commit_callbacks(execute=True):
        subscription_cancel(subscription=subscription, reason="too_expensive",
                            actor_user=subscription.customer, now=now)
    return subscription


@pytest.fixture
def other(now):
    """Another customer, who must not match Camille's keys."""
    return subscribed(customer=UserFactory(email="dominique@example.com"),
                      plan=PlanFactory(code="essentiel"), at=now - days(5))


def keys(subscription):
    invoice = Invoice.objects.get(subscription=subscription, kind="initial")
    return {
        "email": subscription.customer.email,
        "customer_number": subscription.customer.customer_number,
        "licence_key": subscription.licence_key,
        "licence_key_lower_case": subscription.licence_key.lower(),
        "invoice_number": invoice.number,
    }


ROWS = {
    "accounts_user": lambda sub: [sub.customer],
    "billing_invoice": lambda sub: list(Invoice.objects.filter(customer=sub.customer)),
    "billing_charge": lambda sub: list(Charge.objects.filter(customer=sub.customer)),
    "billing_refund": lambda sub: list(Refund.objects.filter(charge__customer=sub.customer)),
    "billing_creditnote": lambda sub: list(
        CreditNote.objects.filter(invoice__customer=sub.customer)),
    "billing_paymentmethod": lambda sub: list(
        PaymentMethod.objects.filter(customer=sub.customer)),
    "notifications_outboxemail": lambda sub: list(
        OutboxEmail.objects.filter(customer=sub.customer)),
}


KEYS = ["email", "customer_number", "licence_key", "licence_key_lower_case", "invoice_number"]
CASES = [(name, key) for name in ROWS for key in KEYS
         # an email is not tied to an invoice row
         if (name, key) != ("notifications_outboxemail", "invoice_number")]


@pytest.mark.parametrize(("admin_name", "key"), CASES)
def test_search_by_each_key_finds_the_customers_rows_only(admin_client, camille, other,
                                                          admin_name, key):
    # given
    expected = ROWS[admin_name](camille)
    assert expected, "the fixture must give every admin something to find"

    # when
    response = admin_client.get(reverse(f"admin:{admin_name}_changelist"),
                                {"q": keys(camille)[key]})

    # then
    assert response.status_code == 200
    found = set(response.context["cl"].result_list)
    assert found == set(expected)


def test_the_customer_page_shows_subscriptions_and_invoices_read_only(admin_client, camille):
    # when
    response = admin_client.get(reverse("admin:accounts_user_change", args=[camille.customer.pk]))

    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert camille.licence_key in body
    invoice = Invoice.objects.get(subscription=camille, kind="initial")
    assert invoice.number in body
    assert "9,90\u00a0€" in body  # 8,25 € HT + 20 % VAT, formatted
    assert 'name="subscriptions-0-status"' not in body
    assert 'name="invoices-0-number"' not in body
