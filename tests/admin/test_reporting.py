"""The staff reporting page (issue 5, scope 8): active subscriptions by plan, MRR,
cancellations by reason over 30/90 days, dunning outcomes over 30/90 days."""

import pytest
from django.urls import reverse

from billing.reporting import staff_report
from subscriptions.models import Status, Subscription, SubscriptionEvent
from subscriptions.services.events import subscription_event_record
from tests.factories import PlanFactory, UserFactory, days, subscribed

pytestmark = pytest.mark.django_db

URL = reverse("admin:billing_reporting")


@pytest.fixture
def fixture(now):
    """Two active monthly Essentiel (8,25 € HT), one active annual Premium (82,50 € HT), one
    past-due monthly and one ended monthly (neither counted); cancellations and dunning events
    inside and outside the 30 and 90 day windows."""
    monthly = PlanFactory(code="essentiel", name="Essentiel", price_cents=825)
    annual = PlanFactory(code="premium-an", name="Premium", annual=True, tier=2)
    a = subscribed(plan=monthly, at=now - days(100))
    subscribed(plan=monthly, at=now - days(10))
    subscribed(plan=annual, at=now - days(200))
    late = subscribed(plan=monthly, at=now - days(50))
    Subscription.objects.filter(pk=late.pk).update(status=Status.PAST_DUE)
    ended = subscribed(plan=monthly, at=now - days(60))
    Subscription.objects.filter(pk=ended.pk).update(status=Status.ENDED)

    def event(kind, ago, **data):
        subscription_event_record(subscription=a, kind=kind, at=now - days(ago), data=data)

    event(SubscriptionEvent.Kind.CANCELLED, 5, reason="too_expensive")
    event(SubscriptionEvent.Kind.CANCELLED, 20, reason="too_expensive")
    event(SubscriptionEvent.Kind.CANCELLED, 29, reason="")
    event(SubscriptionEvent.Kind.CANCELLED, 45, reason="not_used")
    event(SubscriptionEvent.Kind.CANCELLED, 95, reason="not_used")  # outside both windows
    event(SubscriptionEvent.Kind.PAYMENT_FAILED, 10, attempt=1)
    event(SubscriptionEvent.Kind.PAYMENT_FAILED, 9, attempt=2)  # a retry, not a new entry
    event(SubscriptionEvent.Kind.REACTIVATED, 8)
    event(SubscriptionEvent.Kind.PAYMENT_FAILED, 60, attempt=1)
    event(SubscriptionEvent.Kind.SUSPENDED, 53)
    event(SubscriptionEvent.Kind.SUSPENDED, 31)
    event(SubscriptionEvent.Kind.REACTIVATED, 100)  # outside both windows


def test_the_report_counts(fixture, now):
    # when
    report = staff_report(now=now)

    # then
    assert [(line.plan.code, line.active, line.mrr_cents) for line in report.plans] == [
        ("essentiel", 2, 1650), ("premium-an", 1, 688)]
    assert report.active_total == 3
    assert report.mrr_cents == {"EUR": 2338}  # 1650 + 8250 / 12 = 2337.5, rounded once
    assert [(line.reason, line.count) for line in report.cancellations[30]] == [
        ("too_expensive", 2), ("", 1)]
    assert [(line.reason, line.count) for line in report.cancellations[90]] == [
        ("too_expensive", 2), ("", 1), ("not_used", 1)]
    assert [(o.days, o.entered, o.recovered, o.suspended) for o in report.dunning] == [
        (30, 1, 1, 0), (90, 2, 1, 2)]


def test_the_page_shows_them(admin_client, fixture):
    # when
    response = admin_client.get(URL)

    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert '<td id="report-active-total">3</td>' in body
    assert '<td id="report-mrr">23,38\u00a0€</td>' in body
    assert "<td>Essentiel (mensuel)</td><td>2</td><td>16,50\u00a0€</td>" in body
    assert "<td>Premium (annuel)</td><td>1</td><td>6,88\u00a0€</td>" in body
    assert '<tr data-reason="too_expensive"><td>Trop cher</td><td>2</td></tr>' in body
    assert '<tr data-reason=""><td>Non précisé</td><td>1</td></tr>' in body
    assert ('<td class="entered">2</td>\n      <td class="recovered">1</td>\n'
            '      <td class="suspended">2</td>') in body


def test_the_admin_index_links_to_it(admin_client):
    # when
    response = admin_client.get(reverse("admin:index"))

    # then
    assert URL in response.content.decode()


def test_support_sees_it(support_client, fixture):
    assert support_client.get(URL).status_code == 200


def test_staff_without_view_rights_do_not(client):
    # given
    client.force_login(UserFactory(is_staff=True))

    # then
    assert client.get(URL).status_code == 403
    assert URL not in client.get(reverse("admin:index")).content.decode()
