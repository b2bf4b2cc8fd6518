"""Hostile review of the lifecycle / settlement change: each test is one finding, written to
fail on the code as reviewed (DESIGN §5, §6, §8, §14)."""

from datetime import timedelta

import pytest

from billing.gateways.simulated import SimulatedGateway
from billing.models import Charge, CreditNote, Invoice, Refund, SimulatedProviderCard
from subscriptions.jobs import run_due_jobs
from subscriptions.models import Status
from subscriptions.services import subscription_cancel
from subscriptions.services.change_plan import subscription_upgrade
from subscriptions.services.payments import charge_resume_apply
from subscriptions.services.renew import (
    subscription_pay_now,
    subscription_renew,
    subscription_retry_payment,
)
from subscriptions.services.staff import (
    StaffActionError,
    staff_subscription_end_now,
    staff_subscription_extend,
)
from tests.factories import (
    PlanFactory,
    UserFactory,
    days,
    open_renewal,
    saved_card,
    subscribed,
)

pytestmark = pytest.mark.django_db

PROVIDER_ERROR_CARD = "4000000000000119"
TIMEOUT_AFTER_SUCCESS_CARD = "4000000000000408"




@pytest.fixture
def lookup_blind_once(monkeypatch):
    """The provider's look-up cannot tell the first time it is asked (a timeout, then a
    look-up that lags), and answers truthfully afterwards."""
    calls = []
    lookup = SimulatedGateway.lookup

    def lagging(self, key):
        calls.append(key)
        return None if len(calls) == 1 else lookup(self, key)

    monkeypatch.setattr(SimulatedGateway, "lookup", lagging)
    return calls


def _credited_cents(invoice):
    return sum(CreditNote.objects.filter(invoice=invoice).values_list("total_cents", flat=True))


def test_money_arriving_for_a_voided_draft_proration_makes_no_credit_note_for_a_draft(
    now, lookup_blind_once, django_capture_on_commit_callbacks
):
    # given: an upgrade whose charge timed out (outcome unknown), then the customer withdraws
    # within the refund window: the subscription ends and the draft proration is dropped
    essential = PlanFactory(code="essentiel-mensuel", tier=1)
    premium = PlanFactory(code="premium-mensuel", tier=2, price_cents=1250)
    subscription = subscribed(plan=essential, at=now - days(3))
    saved_card(subscription.customer, TIMEOUT_AFTER_SUCCESS_CARD, now)
    result = subscription_upgrade(subscription=subscription, plan=premium, now=now)
    proration = result.invoice
    assert Charge.objects.get(invoice=proration).status == Charge.Status.UNKNOWN
    with django_capture_on_commit_callbacks(execute=True):
        subscription_cancel(subscription=subscription, now=now + timedelta(minutes=1))
    proration.refresh_from_db()
    assert (proration.status, proration.number) == (Invoice.Status.VOID, None)
    # when: the reconciliation learns that the money was taken; it is refunded
    with django_capture_on_commit_callbacks(execute=True):
        run_due_jobs(now=now + timedelta(minutes=30))
    with django_capture_on_commit_callbacks(execute=True):
        run_due_jobs(now=now + timedelta(minutes=31))
    charge = Charge.objects.get(invoice=proration)
    assert charge.status == Charge.Status.SUCCEEDED
    assert Refund.objects.get(charge=charge).status == Refund.Status.SUCCEEDED
    # then: no credit note "corrects" an invoice that was never issued (DESIGN §14)
    proration.refresh_from_db()
    assert not CreditNote.objects.filter(invoice__number__isnull=True).exists()


def test_money_arriving_for_a_voided_renewal_invoice_does_not_credit_it_twice(
    now, lookup_blind_once, django_capture_on_commit_callbacks
):
    # given: the renewal charge timed out (outcome unknown); support ends the subscription now,
    # which cancels the issued renewal invoice with a credit note for its whole amount
    subscription = subscribed(plan=PlanFactory(), at=now - days(31))
    saved_card(subscription.customer, TIMEOUT_AFTER_SUCCESS_CARD, now)
    charge = subscription_renew(subscription_id=subscription.pk, now=now)
    assert charge.status == Charge.Status.UNKNOWN
    invoice = charge.invoice
    staff = UserFactory(is_staff=True)
    staff_subscription_end_now(subscription=subscription, refund=False, staff_user=staff,
                               now=now + timedelta(minutes=1))
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.VOID
    assert _credited_cents(invoice) == invoice.total_cents
    # when: the reconciliation learns that the money was taken; it is refunded
    with django_capture_on_commit_callbacks(execute=True):
        run_due_jobs(now=now + timedelta(minutes=30))
    with django_capture_on_commit_callbacks(execute=True):
        run_due_jobs(now=now + timedelta(minutes=31))
    charge.refresh_from_db()
    assert charge.status == Charge.Status.SUCCEEDED
    assert Refund.objects.get(charge=charge).status == Refund.Status.SUCCEEDED
    # then: the invoice is credited once, not twice its amount
    assert _credited_cents(invoice) == invoice.total_cents


def test_extending_while_the_renewal_charge_is_in_provider_backoff_does_not_double_charge(now):
    # given: the renewal charge met a provider error and waits in backoff; the subscription is
    # still active on its old period
    subscription = subscribed(plan=PlanFactory(), at=now - days(31))
    card = saved_card(subscription.customer, PROVIDER_ERROR_CARD, now)
    charge = subscription_renew(subscription_id=subscription.pk, now=now)
    assert charge.status == Charge.Status.PENDING
    renewal = charge.invoice
    # when: support gives 10 days (or is refused: either is acceptable), then the provider
    # comes back and the renewal goes through
    staff = UserFactory(is_staff=True)
    with pytest.raises(StaffActionError):
        staff_subscription_extend(subscription=subscription, days=10, staff_user=staff,
                                  now=now + timedelta(minutes=1))

    SimulatedProviderCard.objects.filter(token=card.provider_token).update(behaviour="success")
    charge_resume_apply(charge_id=charge.pk, now=now + timedelta(hours=1))
    subscription.refresh_from_db()
    renewal.refresh_from_db()
    assert renewal.status == Invoice.Status.PAID
    # then: the next renewal starts where the paid period ends: no day is invoiced twice
    next_charge = subscription_renew(subscription_id=subscription.pk,
                                     now=subscription.current_period_end)
    assert next_charge is not None
    assert next_charge.invoice.period_start >= renewal.period_end


def test_the_annual_refund_after_support_extended_the_period_is_not_lost(
    now, django_capture_on_commit_callbacks
):
    # given: an annual plan at 99,00 € TTC bought 100 days ago (3 full months elapsed);
    # support then gave 10 days
    plan = PlanFactory(code="annuel", annual=True, refund_window_days=14)
    subscription = subscribed(plan=plan, at=now - days(100))
    staff = UserFactory(is_staff=True)
    staff_subscription_extend(subscription=subscription, days=10, staff_user=staff,
                              now=now - days(1))
    subscription.refresh_from_db()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        subscription, terms = subscription_cancel(subscription=subscription, now=now)
    # then: the remaining full months of what was paid are refunded: 8 × 99,00 / 12 (the
    # days given are a gift, not refunded)
    assert subscription.status == Status.ACTIVE
    assert terms.refund_cents == 6600


def test_a_payment_in_progress_when_the_unpaid_period_ends_does_not_end_the_subscription(
    now, lookup_blind_once, django_capture_on_commit_callbacks
):
    # given: a suspended subscription (the renewal and its three retries declined)

    subscription = subscribed(plan=PlanFactory(), at=now - days(62))
    saved_card(subscription.customer, "4000000000000341", now - days(40))
    subscription_renew(subscription_id=subscription.pk, now=subscription.current_period_end)
    for retry in (1, 3, 7):
        invoice = open_renewal(subscription)
        subscription_retry_payment(invoice_id=invoice.pk,
                                   now=invoice.dunning_started_at + days(retry))
    subscription.refresh_from_db()
    assert subscription.status == Status.SUSPENDED
    invoice = open_renewal(subscription)
    # when: the customer pays ("Payer maintenant") five minutes before the unpaid period ends;
    # the provider takes the money but the answer is lost (outcome unknown)
    paid_at = invoice.period_end - timedelta(minutes=5)
    saved_card(subscription.customer, TIMEOUT_AFTER_SUCCESS_CARD, paid_at)
    charge = subscription_pay_now(subscription=subscription, now=paid_at)
    assert charge.status == Charge.Status.UNKNOWN
    # and the jobs run at the end of the period, then once the outcome can be asked about
    with django_capture_on_commit_callbacks(execute=True):
        run_due_jobs(now=invoice.period_end + timedelta(minutes=1))
        run_due_jobs(now=invoice.period_end + timedelta(minutes=20))
    # then: the customer paid in time: the subscription is reactivated, not ended as unpaid
    # and the payment refunded
    subscription.refresh_from_db()
    charge.refresh_from_db()
    assert charge.status == Charge.Status.SUCCEEDED
    assert not Refund.objects.filter(charge=charge).exists()
    assert subscription.status == Status.ACTIVE
