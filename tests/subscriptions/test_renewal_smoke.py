import pytest

from billing.models import Charge, Invoice
from notifications.models import OutboxEmail
from subscriptions.jobs import run_due_jobs
from subscriptions.models import Status
from tests.factories import PlanFactory, days, subscribed

pytestmark = pytest.mark.django_db


def test_monthly_renews_then_a_failing_card_goes_to_suspension_and_payment_reactivates(
    now, django_capture_on_commit_callbacks
):
    # given
    subscription = subscribed(plan=PlanFactory(), at=now)
    # when: a month later
    with django_capture_on_commit_callbacks(execute=True):
        run_due_jobs(now=subscription.current_period_end)
    subscription.refresh_from_db()
    # then
    assert subscription.status == Status.ACTIVE
    assert Invoice.objects.filter(kind="renewal", status="paid").count() == 1
    assert OutboxEmail.objects.filter(kind="renewal_receipt").count() == 1


def test_failing_card_dunning(now, django_capture_on_commit_callbacks):
    from billing.gateways import CardDetails
    from billing.services import payment_method_add
    from subscriptions.services.renew import subscription_pay_now

    subscription = subscribed(plan=PlanFactory(), at=now)
    payment_method_add(customer=subscription.customer,
                       card=CardDetails("4000000000000002", 12, 2030, "123"), now=now)
    start = subscription.current_period_end
    seen = []
    for day in range(0, 9):
        with django_capture_on_commit_callbacks(execute=True):
            run_due_jobs(now=start + days(day))
        subscription.refresh_from_db()
        seen.append((day, subscription.status, Charge.objects.filter(status="failed").count(),
                     OutboxEmail.objects.exclude(kind="welcome").count()))
    assert seen == [
        (0, Status.PAST_DUE, 1, 1), (1, Status.PAST_DUE, 2, 2), (2, Status.PAST_DUE, 2, 2),
        (3, Status.PAST_DUE, 3, 3), (4, Status.PAST_DUE, 3, 3), (5, Status.PAST_DUE, 3, 3),
        (6, Status.PAST_DUE, 3, 3), (7, Status.SUSPENDED, 4, 4), (8, Status.SUSPENDED, 4, 4),
    ]
    payment_method_add(customer=subscription.customer,
                       card=CardDetails("4242424242424242", 12, 2030, "123"), now=now)
    with django_capture_on_commit_callbacks(execute=True):
        charge = subscription_pay_now(subscription=subscription, now=start + days(9))
    subscription.refresh_from_db()
    assert charge.status == "succeeded"
    assert subscription.status == Status.ACTIVE
    assert subscription.current_period_start == start
    assert OutboxEmail.objects.filter(kind="subscription_reactivated").count() == 1
