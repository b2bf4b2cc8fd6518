import pytest

from billing.gateways.simulated import SimulatedGateway
from billing.models import Charge, Invoice, PaymentMethod, Refund
from billing.services import payment_method_add
from subscriptions.jobs import run_due_jobs
from subscriptions.models import EndReason, Status
from subscriptions.services import SubscribeError, subscription_cancel, subscription_subscribe
from subscriptions.services.payments import charge_resume_apply
from subscriptions.services.renew import subscription_expire, subscription_renew
from tests.factories import PlanFactory, UserFactory, card_token, days, next_retry_at, subscribed

pytestmark = pytest.mark.django_db

TIMEOUT_AFTER_SUCCESS = "4000000000000408"


def test_money_that_arrives_late_for_an_ended_subscription_is_refunded(
    now, monkeypatch, django_capture_on_commit_callbacks
):
    # given: the renewal times out and the provider cannot tell yet
    subscription = subscribed(plan=PlanFactory(), at=now - days(31))
    payment_method_add(customer=subscription.customer, now=now,
                       token=card_token(TIMEOUT_AFTER_SUCCESS, 12, 2030, "123"))
    with monkeypatch.context() as patched:
        patched.setattr(SimulatedGateway, "lookup", lambda self, key: None)
        charge = subscription_renew(subscription_id=subscription.pk, now=now)
    assert charge.status == Charge.Status.UNKNOWN
    # and meanwhile the customer cancels and the subscription expires
    subscription_cancel(subscription=subscription, now=now + days(1))
    assert subscription_expire(subscription_id=subscription.pk, now=now + days(1))
    # when: the provider's record shows the charge went through
    with django_capture_on_commit_callbacks(execute=True):
        settled = charge_resume_apply(charge_id=charge.pk, now=now + days(1))
    # then
    subscription.refresh_from_db()
    assert settled.status == Charge.Status.SUCCEEDED
    assert (subscription.status, subscription.end_reason) == (Status.ENDED, EndReason.EXPIRED)
    assert Invoice.objects.get(kind=Invoice.Kind.RENEWAL).status == Invoice.Status.VOID
    refund = Refund.objects.get()
    assert (refund.charge_id, refund.amount_cents, refund.reason, refund.status) == (
        charge.pk, charge.amount_cents, Refund.Reason.UNCOLLECTED, Refund.Status.SUCCEEDED)


def test_money_that_arrives_late_after_a_cancel_is_refunded_even_before_expiry(
    now, monkeypatch, django_capture_on_commit_callbacks
):
    # given: an unknown renewal, then the customer cancels; the reconcile runs before expiry
    subscription = subscribed(plan=PlanFactory(), at=now - days(31))
    payment_method_add(customer=subscription.customer, now=now,
                       token=card_token(TIMEOUT_AFTER_SUCCESS, 12, 2030, "123"))
    with monkeypatch.context() as patched:
        patched.setattr(SimulatedGateway, "lookup", lambda self, key: None)
        charge = subscription_renew(subscription_id=subscription.pk, now=now)
    subscription_cancel(subscription=subscription, now=now + days(1))
    # when
    with django_capture_on_commit_callbacks(execute=True):
        charge_resume_apply(charge_id=charge.pk, now=now + days(1))
    # then: not renewed, and the money goes back
    subscription.refresh_from_db()
    assert subscription.current_period_end < now
    refund = Refund.objects.get()
    assert (refund.amount_cents, refund.reason, refund.status) == (
        charge.amount_cents, Refund.Reason.UNCOLLECTED, Refund.Status.SUCCEEDED)


def test_a_first_payment_left_unknown_keeps_its_card_and_bills_normally_afterwards(
    now, monkeypatch, django_capture_on_commit_callbacks
):
    # given: subscribing times out and the provider cannot tell yet
    customer, plan = UserFactory(), PlanFactory()
    with monkeypatch.context() as patched, pytest.raises(SubscribeError):
        patched.setattr(SimulatedGateway, "lookup", lambda self, key: None)
        subscription_subscribe(customer=customer, plan=plan, now=now,
                               card_token=card_token(TIMEOUT_AFTER_SUCCESS, 12, 2030, "123"))
    # when: the reconcile job finds it paid, then the month goes by
    with django_capture_on_commit_callbacks(execute=True):
        run_due_jobs(now=now + days(1))
    subscription = customer.subscriptions.get()
    with django_capture_on_commit_callbacks(execute=True):
        run_due_jobs(now=subscription.current_period_end)
    # then: the card is still the default and the renewal was attempted on it
    assert customer.payment_methods.get().is_default
    renewal = Charge.objects.get(invoice__kind=Invoice.Kind.RENEWAL)
    assert renewal.payment_method == customer.payment_methods.get()


def test_a_renewal_without_any_saved_card_is_a_refused_attempt(now):
    # given
    subscription = subscribed(plan=PlanFactory(), at=now - days(31))
    PaymentMethod.objects.filter(customer=subscription.customer).update(is_default=False)
    # when
    charge = subscription_renew(subscription_id=subscription.pk, now=now)
    # then
    subscription.refresh_from_db()
    assert (charge.status, charge.failure_code) == (Charge.Status.FAILED, "no_card")
    assert subscription.status == Status.PAST_DUE
    assert next_retry_at(subscription) is not None
