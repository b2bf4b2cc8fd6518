"""Two confirmations of the same withdrawal at once (double click, two tabs, two devices):
one refund, one credit note, one email, one statement (DESIGN §8). Run under real
transactions on PostgreSQL, so the row lock and the after-commit callbacks behave as in
production."""

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from billing.models import CreditNote, Refund
from notifications.models import OutboxEmail
from subscriptions.models import EndReason, Status, Subscription, SubscriptionEvent
from subscriptions.services import subscription_withdraw
from tests.factories import PlanFactory, UserFactory, days, subscribed
from tests.threads import at_once

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "simulated_provider"])


@pytest.fixture
def annual(now):
    """Annual at 99,00 € TTC, bought 3 days ago."""
    return subscribed(customer=UserFactory(), plan=PlanFactory(annual=True), at=now - days(3))


def _assert_withdrawn_once(subscription):
    subscription.refresh_from_db()
    assert (subscription.status, subscription.end_reason) == (Status.ENDED, EndReason.WITHDRAWN)
    refund = Refund.objects.get()
    assert (refund.amount_cents, refund.reason, refund.status) == (
        9900, Refund.Reason.WITHDRAWAL, Refund.Status.SUCCEEDED)
    assert CreditNote.objects.get().refund == refund
    email = OutboxEmail.objects.get(kind="withdrawal_confirmation")
    assert email.status == OutboxEmail.Status.SENT
    assert [m.subject for m in mail.outbox].count(email.subject) == 1
    assert subscription.events.filter(kind=SubscriptionEvent.Kind.WITHDRAWN).count() == 1
    assert subscription.events.filter(kind=SubscriptionEvent.Kind.ENDED).count() == 1


def test_two_simultaneous_withdrawals_through_the_service_refund_once(annual, now):
    # given
    pk = annual.pk

    def withdraw():
        return subscription_withdraw(subscription=Subscription.objects.get(pk=pk),
                                     name="Camille Martin", email="camille@example.com",
                                     now=now)

    # when
    results = at_once(withdraw, withdraw)
    # then: one made it, the other found it made and returned the same acknowledgement
    assert sorted(created for _, created in results) == [False, True]
    assert results[0][0].event == results[1][0].event
    _assert_withdrawn_once(annual)


def test_two_simultaneous_confirmations_through_the_page_refund_once(annual):
    # given
    url = reverse("subscriptions:withdraw", args=[annual.pk])
    clients = [Client(), Client()]
    for client in clients:
        client.force_login(annual.customer)

    def confirm(client):
        return lambda: client.post(url, {"name": "Camille Martin",
                                         "email": "camille@example.com"})

    # when
    responses = at_once(*(confirm(client) for client in clients))
    # then: both land on the same acknowledgement
    event = annual.events.get(kind=SubscriptionEvent.Kind.WITHDRAWN)
    ack_url = reverse("subscriptions:withdrawal_acknowledgement", args=[event.pk])
    assert [(r.status_code, r["Location"]) for r in responses] == [(302, ack_url)] * 2
    _assert_withdrawn_once(annual)
