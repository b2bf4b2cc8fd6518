"""Two confirmations of the same cancellation at once (double click, two tabs, two devices):
exactly one refund, one credit note, one email and one history row (DESIGN §8). Run under real
transactions on PostgreSQL, so row locks and after-commit callbacks behave as in production."""


import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from billing.models import CreditNote, Refund
from notifications.models import OutboxEmail
from subscriptions.models import EndReason, Status, Subscription, SubscriptionEvent
from subscriptions.services import subscription_cancel
from tests.factories import PlanFactory, UserFactory, days, subscribed
from tests.threads import at_once

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "simulated_provider"])


@pytest.fixture
def in_refund_window(now):
    """Annual at 99,00 € TTC, bought 3 days ago: cancelling refunds everything."""
    return subscribed(customer=UserFactory(), plan=PlanFactory(annual=True), at=now - days(3))




def _assert_cancelled_once(subscription, *, refund_cents):
    subscription.refresh_from_db()
    assert (subscription.status, subscription.end_reason) == (Status.ENDED, EndReason.REFUNDED)
    assert not subscription.auto_renew
    assert not subscription.licence_active
    refund = Refund.objects.get()
    assert (refund.amount_cents, refund.status) == (refund_cents, Refund.Status.SUCCEEDED)
    credit_note = CreditNote.objects.get()
    assert (credit_note.refund, credit_note.total_cents) == (refund, refund_cents)
    email = OutboxEmail.objects.get(kind="cancellation_confirmation")
    assert email.status == OutboxEmail.Status.SENT
    assert [m.subject for m in mail.outbox].count(email.subject) == 1
    assert SubscriptionEvent.objects.filter(
        subscription=subscription, kind=SubscriptionEvent.Kind.CANCELLED).count() == 1


def test_two_simultaneous_cancels_through_the_service_refund_once(in_refund_window, now):
    # given
    pk = in_refund_window.pk

    def cancel():
        return subscription_cancel(subscription=Subscription.objects.get(pk=pk), now=now)

    # when
    results = at_once(cancel, cancel)
    # then
    terms = [t for _, t in results]
    assert sorted(t is None for t in terms) == [False, True]
    assert next(t for t in terms if t is not None).refund_cents == 9900
    _assert_cancelled_once(in_refund_window, refund_cents=9900)


def test_two_simultaneous_confirmations_through_the_page_refund_once(in_refund_window):
    # given
    url = reverse("subscriptions:cancel", args=[in_refund_window.pk])
    clients = [Client(), Client()]
    for client in clients:
        client.force_login(in_refund_window.customer)

    def confirm(client):
        return lambda: client.post(url, {"reason": "too_expensive"}).status_code

    # when
    statuses = at_once(*(confirm(client) for client in clients))
    # then
    assert statuses == [302, 302]
    _assert_cancelled_once(in_refund_window, refund_cents=9900)


def test_a_double_click_on_confirm_refunds_once(in_refund_window):
    # given
    url = reverse("subscriptions:cancel", args=[in_refund_window.pk])
    client = Client()
    client.force_login(in_refund_window.customer)
    # when
    first = client.post(url, {"reason": "too_expensive"})
    second = client.post(url, {"reason": "too_expensive"})
    # then
    assert (first.status_code, second.status_code) == (302, 302)
    _assert_cancelled_once(in_refund_window, refund_cents=9900)


def test_confirming_in_two_tabs_refunds_once(in_refund_window):
    # given: both tabs show the cancel page before either confirms
    url = reverse("subscriptions:cancel", args=[in_refund_window.pk])
    tabs = [Client(), Client()]
    for tab in tabs:
        tab.force_login(in_refund_window.customer)
        assert tab.get(url).status_code == 200
    # when
    responses = [tab.post(url, {"reason": ""}, follow=True) for tab in tabs]
    # then
    assert [r.status_code for r in responses] == [200, 200]
    _assert_cancelled_once(in_refund_window, refund_cents=9900)


def test_two_simultaneous_cancels_outside_the_window_record_one_cancellation(now):
    # given: monthly, bought 20 days ago: no refund, runs to the end of the period
    subscription = subscribed(customer=UserFactory(), plan=PlanFactory(), at=now - days(20))

    def cancel():
        return subscription_cancel(
            subscription=Subscription.objects.get(pk=subscription.pk), now=now)

    # when
    results = at_once(cancel, cancel)
    # then
    assert sorted(terms is None for _, terms in results) == [False, True]
    subscription.refresh_from_db()
    assert (subscription.status, subscription.auto_renew) == (Status.ACTIVE, False)
    assert subscription.ends_at == subscription.current_period_end
    assert not Refund.objects.exists()
    assert OutboxEmail.objects.filter(kind="cancellation_confirmation").count() == 1
    assert SubscriptionEvent.objects.filter(kind=SubscriptionEvent.Kind.CANCELLED).count() == 1
