"""Cancelling an annual plan after a mid-year upgrade refunds the remaining months at the
upgraded price, from the period's invoice and its proration (DESIGN §7, §8)."""

import pytest

from billing.models import Refund
from subscriptions.periods import add_months
from subscriptions.selectors import business_tz
from subscriptions.services import subscription_cancel
from subscriptions.services.change_plan import subscription_upgrade
from tests.factories import PlanFactory, subscribed

pytestmark = pytest.mark.django_db


def test_remaining_months_are_refunded_at_the_upgraded_price(
    now, django_capture_on_commit_callbacks
):
    # given: Essentiel annual (99,00 TTC) bought 8 months ago, upgraded 2 months ago to
    # Premium annual (150,00 TTC)
    tz = business_tz()
    essential = PlanFactory(code="essentiel-annuel", tier=1, interval="year", price_cents=8250)
    premium = PlanFactory(code="premium-annuel", tier=2, interval="year", price_cents=12500)
    subscription = subscribed(plan=essential, at=add_months(now, -8, tz=tz))
    subscription_upgrade(subscription=subscription, plan=premium,
                         now=add_months(now, -2, tz=tz))
    subscription.refresh_from_db()
    # when: cancelled with 8 full months elapsed
    with django_capture_on_commit_callbacks(execute=True):
        subscription, terms = subscription_cancel(subscription=subscription, now=now)
    # then: 12 − (8 + 1) = 3 months at 150,00
    assert terms.refund_cents == 3750
    assert sum(Refund.objects.values_list("amount_cents", flat=True)) == terms.refund_cents
    assert subscription.plan == premium
