"""The staff reporting page (issue 5, scope 8): active subscriptions by plan, those ending at
the end of their period, MRR net of the month's refunds, cancellations by reason over 30/90
days, dunning outcomes over 30/90 days."""

from datetime import datetime

import pytest
from django.urls import reverse

from billing.models import Charge, CreditNote
from billing.reporting import staff_report
from billing.services import payment_method_add, refund_execute
from subscriptions.models import Status, Subscription, SubscriptionEvent
from subscriptions.services import subscription_cancel
from subscriptions.services.events import subscription_event_record
from subscriptions.services.renew import subscription_renew
from subscriptions.services.staff import staff_charge_refund, staff_subscription_end_now
from tests.conftest import PARIS
from tests.factories import PlanFactory, UserFactory, card_token, days, subscribed

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
    assert report.mrr.gross_cents == {"EUR": 2338}  # 1650 + 8250 / 12 = 2337.5, rounded once
    assert report.mrr.month_refunds_cents == {"EUR": 0}
    assert report.mrr.net_cents == {"EUR": 2338}
    assert (report.ending, report.ending_total) == ([], 0)
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
    assert '<td id="report-mrr-gross">23,38\u00a0€</td>' in body
    assert '<td id="report-month-refunds">0,00\u00a0€</td>' in body
    assert '<td id="report-mrr-net">23,38\u00a0€</td>' in body
    assert '<td id="report-ending-total">0</td>' in body
    assert "<td>Essentiel (mensuel)</td><td>2</td><td>16,50\u00a0€</td>" in body
    assert "<td>Premium (annuel)</td><td>1</td><td>6,88\u00a0€</td>" in body
    assert '<tr data-reason="too_expensive"><td>Trop cher</td><td>2</td></tr>' in body
    assert '<tr data-reason=""><td>Non précisé</td><td>1</td></tr>' in body
    assert ('<td class="entered">2</td>\n      <td class="recovered">1</td>\n'
            '      <td class="suspended">2</td>') in body


def test_a_subscription_cancelled_at_period_end_is_not_active_nor_in_mrr(admin_client, now):
    # given: two monthly Essentiel (8,25 € HT), one cancelled outside the refund window
    monthly = PlanFactory(code="essentiel", name="Essentiel", price_cents=825)
    subscribed(plan=monthly, at=now - days(40))
    leaving = subscribed(plan=monthly, at=now - days(20))
    subscription_cancel(subscription=leaving, actor_user=leaving.customer, now=now)
    leaving.refresh_from_db()
    assert leaving.status == Status.ACTIVE and not leaving.auto_renew and leaving.ends_at > now

    # when
    report = staff_report(now=now)
    body = admin_client.get(URL).content.decode()

    # then
    assert [(line.plan.code, line.active) for line in report.plans] == [("essentiel", 1)]
    assert report.active_total == 1
    assert report.mrr.gross_cents == {"EUR": 825}
    assert [(line.plan.code, line.count) for line in report.ending] == [("essentiel", 1)]
    assert report.ending_total == 1
    ending = body.split('id="report-ending"', 1)[1].split("</table>", 1)[0]
    assert "Résiliation programmée" in ending
    assert "<td>Essentiel (mensuel)</td><td>1</td>" in ending
    assert '<td id="report-active-total">1</td>' in body
    assert '<td id="report-mrr-gross">8,25\u00a0€</td>' in body


def test_an_ended_period_is_no_longer_a_scheduled_cancellation(now):
    # given: cancelled, and its end has passed but the expiry job has not run yet
    leaving = subscribed(plan=PlanFactory(code="essentiel"), at=now - days(20))
    subscription_cancel(subscription=leaving, actor_user=leaving.customer, now=now)
    leaving.refresh_from_db()

    # when
    report = staff_report(now=leaving.ends_at)

    # then
    assert (report.active_total, report.ending_total) == (0, 0)


def test_a_cancellation_inside_a_commitment_still_renews(now):
    # given: a 12-month commitment cancelled in its second month ends at the commitment's end
    plan = PlanFactory(code="engagement", price_cents=1000, commitment_months=12)
    committed = subscribed(plan=plan, at=now - days(40))
    subscription_cancel(subscription=committed, actor_user=committed.customer, now=now)
    committed.refresh_from_db()
    assert not committed.auto_renew and committed.ends_at > committed.current_period_end

    # when
    report = staff_report(now=now)

    # then: it will be charged again, so it is active and in MRR
    assert [(line.plan.code, line.active) for line in report.plans] == [("engagement", 1)]
    assert report.mrr.gross_cents == {"EUR": 1000}
    assert report.ending == []


def _refund(subscription, amount_cents, at):
    """A staff refund paid (its credit note issued) at ``at``."""
    charge = Charge.objects.get(invoice__subscription=subscription)
    refund = staff_charge_refund(subscription=subscription, charge=charge,
                                 amount_cents=amount_cents,
                                 staff_user=UserFactory(is_staff=True), now=at)
    refund_execute(refund_id=refund.pk, now=at)
    return CreditNote.objects.get(refund=refund)


def test_refunds_of_this_month_lower_net_mrr_and_last_months_do_not(admin_client, now):
    # given: one monthly Essentiel (8,25 € HT, 9,90 € TTC paid on 18 February), refunds TTC
    # at 20 % VAT; "now" is 10 March 2026 in Paris
    subscription = subscribed(plan=PlanFactory(code="essentiel", price_cents=825),
                              at=now - days(20))
    last_month = _refund(subscription, 240, datetime(2026, 2, 28, 23, 30, tzinfo=PARIS))
    # 1 March 00:30 in Paris is still 28 February in UTC: this month
    first_hour = _refund(subscription, 360, datetime(2026, 3, 1, 0, 30, tzinfo=PARIS))
    this_month = _refund(subscription, 120, now - days(5))
    assert (last_month.net_cents, first_hour.net_cents, this_month.net_cents) == (200, 300, 100)

    # when
    report = staff_report(now=now)
    body = admin_client.get(URL).content.decode()

    # then
    assert report.mrr.gross_cents == {"EUR": 825}
    assert report.mrr.month_refunds_cents == {"EUR": 400}
    assert report.mrr.net_cents == {"EUR": 425}
    assert '<td id="report-mrr-gross">8,25\u00a0€</td>' in body
    assert '<td id="report-month-refunds">4,00\u00a0€</td>' in body
    assert '<td id="report-mrr-net">4,25\u00a0€</td>' in body


def test_next_month_the_refunds_of_this_one_no_longer_count(now):
    # given
    subscription = subscribed(plan=PlanFactory(code="essentiel", price_cents=825),
                              at=now - days(20))
    _refund(subscription, 120, now)

    # when
    report = staff_report(now=datetime(2026, 4, 1, 0, 0, tzinfo=PARIS))

    # then
    assert report.mrr.month_refunds_cents == {"EUR": 0}


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


def test_an_invoice_cancelled_unpaid_is_not_a_refund_of_the_month(now):
    # given: a renewal issued then cancelled by a credit note (nobody paid it)
    subscription = subscribed(plan=PlanFactory(code="essentiel", price_cents=825),
                              at=now - days(40))
    payment_method_add(customer=subscription.customer, now=now,
                       token=card_token("4000000000000341", 12, 2031, "123"))
    subscription_renew(subscription_id=subscription.pk, now=now)
    staff_subscription_end_now(subscription=subscription, refund=False, staff_user=None,
                               now=now)
    assert CreditNote.objects.filter(refund=None).count() == 1
    # when
    report = staff_report(now=now)
    # then
    assert report.mrr.month_refunds_cents == {}
