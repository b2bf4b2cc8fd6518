import pytest

from billing.models import Charge, Invoice, Refund
from subscriptions.jobs import run_due_jobs
from subscriptions.models import Channel, Subscription
from subscriptions.services import subscription_cancel
from tests.factories import PlanFactory, days, subscribed

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("channel", [c for c in Channel.values if c != Channel.DIRECT])
def test_subscriptions_bought_elsewhere_are_never_renewed_here(now, channel):
    # given
    subscription = subscribed(plan=PlanFactory(), at=now - days(40))
    Subscription.objects.filter(pk=subscription.pk).update(channel=channel)
    # when
    run_due_jobs(now=now)
    # then
    assert not Invoice.objects.filter(kind=Invoice.Kind.RENEWAL).exists()
    assert Charge.objects.count() == 1


def test_a_refund_left_pending_is_paid_by_the_refund_job(now):
    # given: the cancellation committed but its refund task never ran (no on_commit here)
    subscription = subscribed(plan=PlanFactory(annual=True), at=now - days(2))
    subscription_cancel(subscription=subscription, now=now)
    assert Refund.objects.get().status == Refund.Status.PENDING
    # when
    run_due_jobs(now=now)
    run_due_jobs(now=now + days(1))
    # then
    refund = Refund.objects.get()
    assert refund.status == Refund.Status.SUCCEEDED
    assert refund.credit_note.total_cents == refund.amount_cents
