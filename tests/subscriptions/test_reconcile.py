import pytest

from billing.gateways import CardDetails
from billing.gateways.simulated import SimulatedGateway
from billing.models import Charge, Invoice, Refund
from billing.services import payment_method_add
from subscriptions.models import EndReason, Status
from subscriptions.services import subscription_cancel
from subscriptions.services.payments import charge_reconcile_apply
from subscriptions.services.renew import subscription_expire, subscription_renew
from tests.factories import PlanFactory, days, subscribed

pytestmark = pytest.mark.django_db

TIMEOUT_AFTER_SUCCESS = "4000000000000408"


def test_money_that_arrives_late_for_an_ended_subscription_is_refunded(
    now, monkeypatch, django_capture_on_commit_callbacks
):
    # given: the renewal times out and the provider cannot tell yet
    subscription = subscribed(plan=PlanFactory(), at=now - days(31))
    payment_method_add(customer=subscription.customer, now=now,
                       card=CardDetails(TIMEOUT_AFTER_SUCCESS, 12, 2030, "123"))
    with monkeypatch.context() as patched:
        patched.setattr(SimulatedGateway, "lookup", lambda self, key: None)
        charge = subscription_renew(subscription_id=subscription.pk, now=now)
    assert charge.status == Charge.Status.UNKNOWN
    # and meanwhile the customer cancels and the subscription expires
    subscription_cancel(subscription=subscription, now=now + days(1))
    assert subscription_expire(subscription_id=subscription.pk, now=now + days(1))
    # when: the provider's record shows the charge went through
    with django_capture_on_commit_callbacks(execute=True):
        settled = charge_reconcile_apply(charge_id=charge.pk, now=now + days(1))
    # then
    subscription.refresh_from_db()
    assert settled.status == Charge.Status.SUCCEEDED
    assert (subscription.status, subscription.end_reason) == (Status.ENDED, EndReason.EXPIRED)
    assert Invoice.objects.get(kind=Invoice.Kind.RENEWAL).status == Invoice.Status.VOID
    refund = Refund.objects.get()
    assert (refund.charge_id, refund.amount_cents, refund.reason, refund.status) == (
        charge.pk, charge.amount_cents, Refund.Reason.UNCOLLECTED, Refund.Status.SUCCEEDED)
