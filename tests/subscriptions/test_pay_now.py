""""Payer maintenant" on "Abonnement et facturation" (DESIGN §6, §9)."""

import pytest
from django.urls import reverse

from billing.models import Charge, Invoice
from notifications.models import OutboxEmail
from subscriptions.models import Status
from subscriptions.services.renew import (
    PaymentNotPossible,
    subscription_pay_now,
    subscription_renew,
    subscription_retry_payment,
)
from tests.factories import (
    PlanFactory,
    UserFactory,
    days,
    next_retry_at,
    open_renewal,
    saved_card,
    subscribed,
)

pytestmark = pytest.mark.django_db

DECLINED = "4000000000000341"
GOOD = "4242424242424242"




@pytest.fixture
def past_due(now, client, django_capture_on_commit_callbacks):
    subscription = subscribed(plan=PlanFactory(), at=now - days(31))
    saved_card(subscription.customer, DECLINED, now - days(2))
    with django_capture_on_commit_callbacks(execute=True):
        subscription_renew(subscription_id=subscription.pk, now=subscription.current_period_end)
    client.force_login(subscription.customer)
    subscription.refresh_from_db()
    assert subscription.status == Status.PAST_DUE
    return subscription


def _pay(client, subscription):
    return client.post(reverse("subscriptions:pay_now", args=[subscription.pk]), follow=True)


def test_the_page_shows_the_unpaid_invoice_and_pay_now(client, past_due):
    # when
    page = client.get(reverse("subscriptions:billing")).content.decode()
    # then
    invoice = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert "Payer maintenant" in page
    assert invoice.number in page
    assert "nouvelle tentative le" in page
    assert "Prochain prélèvement" not in page


def test_a_refused_card_says_why_and_is_not_a_scheduled_attempt(client, past_due, now):
    # given
    retry_at = next_retry_at(past_due)
    # when
    response = _pay(client, past_due)
    # then
    past_due.refresh_from_db()
    assert "Paiement refusé par votre banque" in response.content.decode()
    assert past_due.status == Status.PAST_DUE
    assert next_retry_at(past_due) == retry_at
    assert OutboxEmail.objects.filter(kind="payment_failed").count() == 1
    assert Charge.objects.filter(initiated_by="customer", status="failed").count() == 1


def test_paying_with_a_new_card_reactivates_at_once_with_the_period_unchanged(
    client, past_due, now, django_capture_on_commit_callbacks
):
    # given
    saved_card(past_due.customer, GOOD, now)
    invoice = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = _pay(client, past_due)
    # then
    past_due.refresh_from_db()
    invoice.refresh_from_db()
    assert "votre abonnement est de nouveau actif" in response.content.decode()
    assert past_due.status == Status.ACTIVE
    assert past_due.current_period_start == invoice.period_start
    assert next_retry_at(past_due) is None
    assert invoice.status == Invoice.Status.PAID
    assert OutboxEmail.objects.filter(kind="subscription_reactivated").count() == 1
    # and a scheduled retry that comes later charges nothing more
    subscription_retry_payment(invoice_id=invoice.pk, now=now + days(5))
    assert Charge.objects.filter(status="succeeded").count() == 2


def test_a_suspended_subscription_gets_its_licence_back(
    client, past_due, now, django_capture_on_commit_callbacks
):
    # given: the three retries fail
    for retry in (1, 3, 7):
        invoice = open_renewal(past_due)
        subscription_retry_payment(invoice_id=invoice.pk,
                                   now=invoice.dunning_started_at + days(retry))
    past_due.refresh_from_db()
    assert (past_due.status, past_due.licence_active) == (Status.SUSPENDED, False)
    saved_card(past_due.customer, GOOD, now)
    # when
    _pay(client, past_due)
    # then
    past_due.refresh_from_db()
    assert (past_due.status, past_due.licence_active) == (Status.ACTIVE, True)


def test_another_customer_cannot_pay_or_see_it(client, past_due):
    # given
    client.force_login(UserFactory())
    # when
    response = client.post(reverse("subscriptions:pay_now", args=[past_due.pk]))
    # then
    assert response.status_code == 404
    assert not Charge.objects.filter(invoice__kind="renewal", initiated_by="customer").exists()


def test_get_does_not_pay(client, past_due):
    # when
    response = client.get(reverse("subscriptions:pay_now", args=[past_due.pk]))
    # then
    assert response.status_code == 405
    assert not Charge.objects.filter(invoice__kind="renewal", initiated_by="customer").exists()


def test_nothing_to_pay_on_an_active_subscription(client, now):
    # given
    subscription = subscribed(at=now - days(3))
    client.force_login(subscription.customer)
    # when
    response = _pay(client, subscription)
    # then
    assert "Aucune facture n&#x27;est à payer" in response.content.decode()
    assert Charge.objects.count() == 1



def test_paying_after_the_unpaid_period_is_over_is_refused(past_due):
    # given
    invoice = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    saved_card(past_due.customer, GOOD, invoice.period_end)
    # when
    with pytest.raises(PaymentNotPossible, match="La période impayée est terminée"):
        subscription_pay_now(subscription=past_due, now=invoice.period_end)
    # then
    assert not Charge.objects.filter(invoice=invoice, initiated_by="customer").exists()
