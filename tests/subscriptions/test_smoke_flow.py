import pytest

from billing.models import Charge, Refund
from notifications.models import OutboxEmail
from subscriptions.models import Status
from subscriptions.services import subscription_cancel
from tests.factories import PlanFactory, days, subscribed

pytestmark = pytest.mark.django_db


def test_cancel_within_window_refunds_everything_once(now, django_capture_on_commit_callbacks):
    # given
    subscription = subscribed(plan=PlanFactory(annual=True), at=now - days(3))
    # when
    with django_capture_on_commit_callbacks(execute=True):
        subscription, terms = subscription_cancel(subscription=subscription, now=now)
        again, second_terms = subscription_cancel(subscription=subscription, now=now)
    # then
    assert subscription.status == Status.ENDED
    assert terms.refund_cents == 9900
    assert second_terms is None
    refund = Refund.objects.get()
    assert refund.status == Refund.Status.SUCCEEDED
    assert refund.amount_cents == Charge.objects.get().amount_cents
    assert refund.credit_note.total_cents == 9900
    assert OutboxEmail.objects.filter(kind="cancellation_confirmation").count() == 1
