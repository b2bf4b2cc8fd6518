"""Random sequences of everything that can happen to a subscription (issue 8), on PostgreSQL,
with the money invariants checked after every step."""

import contextlib
from datetime import timedelta

import pytest
from django.db.models import Q, Sum
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from billing.gateways import PaymentError
from billing.gateways.simulated import challenge_complete
from billing.models import (
    Charge,
    Invoice,
    Refund,
    SimulatedProviderCard,
    SimulatedProviderOperation,
)
from subscriptions.jobs import run_due_jobs
from subscriptions.models import Status
from subscriptions.services import (
    CancellationError,
    SubscribeError,
    subscription_auto_renew_reactivate,
    subscription_cancel,
)
from subscriptions.services import renew as renew_service
from subscriptions.services.change_plan import (
    PlanChangeError,
    subscription_schedule_downgrade,
    subscription_upgrade,
)
from subscriptions.services.payments import charge_resume_apply
from subscriptions.services.renew import PaymentNotPossible, subscription_pay_now
from subscriptions.services.staff import (
    StaffActionError,
    staff_charge_refund,
    staff_subscription_end_now,
)
from tests.conftest import FROZEN_AT
from tests.factories import PlanFactory, UserFactory, subscribed

pytestmark = pytest.mark.django_db

OUTCOMES = {
    "ok": "success",
    "declined": "card_declined",
    "provider_error": "provider_error",
    "timeout": "timeout_after_success",
    "authentication_required": "authenticate_always",  # 3-D Secure on every charge
}
REFUSED = (CancellationError, SubscribeError, PlanChangeError,
           PaymentNotPossible, StaffActionError, PaymentError)


class SubscriptionLife(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.now = FROZEN_AT
        self.customer = UserFactory()
        self.basic = PlanFactory(code="sm-basic", tier=1, price_cents=825)
        self.premium = PlanFactory(code="sm-premium", tier=2, price_cents=1250)
        self.subscription = None
        self.cancelled_for = set()  # renewal period starts cancelled before they began

    # -- helpers --------------------------------------------------------------------------

    def _reload(self):
        if self.subscription is not None:
            self.subscription.refresh_from_db()

    def _card_behaves(self, outcome):
        card = self.customer.payment_methods.get(is_default=True)
        SimulatedProviderCard.objects.filter(token=card.provider_token).update(
            behaviour=OUTCOMES[outcome])

    def _attempt(self, call):
        with contextlib.suppress(REFUSED):
            call()
        self._reload()

    # -- rules ----------------------------------------------------------------------------

    @rule()
    def subscribe(self):
        if self.subscription is not None:
            return
        with contextlib.suppress(SubscribeError):
            self.subscription = subscribed(customer=self.customer, plan=self.basic, at=self.now)

    @rule(outcome=st.sampled_from([*OUTCOMES, "crash_before_send"]))
    def renew(self, outcome):
        if self.subscription is None:
            return
        self.now = max(self.now, self.subscription.current_period_end)
        if outcome == "crash_before_send":
            self._card_behaves("ok")
            original = renew_service.charge_send
            renew_service.charge_send = lambda **kwargs: None  # the worker died here
            try:
                renew_service.subscription_renew(subscription_id=self.subscription.pk,
                                                 now=self.now)
            finally:
                renew_service.charge_send = original
        else:
            self._card_behaves(outcome)
            renew_service.subscription_renew(subscription_id=self.subscription.pk, now=self.now)
        self._reload()

    @rule(hours=st.sampled_from([1, 6, 24, 72, 24 * 8, 24 * 31]),
          outcome=st.sampled_from(list(OUTCOMES)))
    def time_passes(self, hours, outcome):
        if self.subscription is not None:
            self._card_behaves(outcome)
        self.now += timedelta(hours=hours)
        run_due_jobs(now=self.now)
        self._reload()

    @rule()
    def cancel(self):
        if self.subscription is None:
            return
        self._attempt(lambda: subscription_cancel(subscription=self.subscription, now=self.now))
        if not self.subscription.auto_renew and self.subscription.ends_at is not None:
            self.cancelled_for.add(self.subscription.pk)

    @rule()
    def reactivate(self):
        if self.subscription is None:
            return
        self._attempt(lambda: subscription_auto_renew_reactivate(
            subscription=self.subscription, now=self.now))

    @rule(outcome=st.sampled_from(["ok", "declined"]))
    def pay_now(self, outcome):
        if self.subscription is None:
            return
        self._card_behaves(outcome)
        self._attempt(lambda: subscription_pay_now(subscription=self.subscription, now=self.now))

    @rule(approved=st.booleans(), comes_back=st.booleans())
    def customer_authenticates(self, approved, comes_back):
        """The customer answers the bank's 3-D Secure challenge of a waiting charge, and comes
        back to the portal (its return asks the provider) or closes the tab."""
        charge = Charge.objects.filter(customer=self.customer,
                                       status=Charge.Status.REQUIRES_ACTION).last()
        if charge is None:
            return
        challenge_complete(client_secret=charge.client_secret, approved=approved)
        if comes_back:
            charge_resume_apply(charge_id=charge.pk, now=self.now)
        self._reload()

    @rule(share=st.sampled_from([1, 2, 100]))
    def staff_refund(self, share):
        charge = Charge.objects.filter(customer=self.customer,
                                       status=Charge.Status.SUCCEEDED).last()
        if charge is None:
            return
        self._attempt(lambda: staff_charge_refund(
            subscription=charge.invoice.subscription, charge=charge,
            amount_cents=max(1, charge.amount_cents // share), staff_user=None, now=self.now))

    @rule()
    def upgrade(self):
        if self.subscription is None:
            return
        self._card_behaves("ok")
        self._attempt(lambda: subscription_upgrade(subscription=self.subscription,
                                                   plan=self.premium, now=self.now))

    @rule()
    def downgrade(self):
        if self.subscription is None:
            return
        self._attempt(lambda: subscription_schedule_downgrade(
            subscription=self.subscription, plan=self.basic, now=self.now))

    @rule(refund=st.booleans())
    def staff_end_now(self, refund):
        if self.subscription is None:
            return
        self._attempt(lambda: staff_subscription_end_now(
            subscription=self.subscription, refund=refund, staff_user=None, now=self.now))

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def one_issued_invoice_per_period(self):
        issued = Invoice.objects.filter(customer=self.customer, kind=Invoice.Kind.RENEWAL
                                        ).exclude(number=None)
        starts = list(issued.values_list("subscription", "period_start"))
        assert len(starts) == len(set(starts))

    @invariant()
    def provider_and_ledger_agree(self):
        keys = list(Charge.objects.filter(customer=self.customer)
                    .values_list("idempotency_key", flat=True))
        moved = SimulatedProviderOperation.objects.filter(
            idempotency_key__in=keys, kind="charge", status="success"
        ).aggregate(total=Sum("amount_cents"))["total"] or 0
        captured = Charge.objects.filter(customer=self.customer,
                                         status=Charge.Status.SUCCEEDED)
        # a charge waiting for 3-D Secure may have moved money the portal has not heard of
        unknown = Charge.objects.filter(customer=self.customer,
                                        status__in=[Charge.Status.UNKNOWN,
                                                    Charge.Status.PENDING,
                                                    Charge.Status.REQUIRES_ACTION])
        ledger = captured.aggregate(total=Sum("amount_cents"))["total"] or 0
        in_doubt = unknown.aggregate(total=Sum("amount_cents"))["total"] or 0
        # money the provider took is in the ledger, or in a charge still being reconciled
        assert ledger <= moved <= ledger + in_doubt
        refund_keys = list(Refund.objects.filter(charge__customer=self.customer)
                           .values_list("idempotency_key", flat=True))
        refunded_at_provider = SimulatedProviderOperation.objects.filter(
            idempotency_key__in=refund_keys, kind="refund", status="success"
        ).aggregate(total=Sum("amount_cents"))["total"] or 0
        refunded = Refund.objects.filter(
            charge__customer=self.customer, status=Refund.Status.SUCCEEDED
        ).aggregate(total=Sum("amount_cents"))["total"] or 0
        pending = Refund.objects.filter(
            charge__customer=self.customer, status=Refund.Status.PENDING
        ).aggregate(total=Sum("amount_cents"))["total"] or 0
        assert refunded <= refunded_at_provider <= refunded + pending

    @invariant()
    def refunds_never_exceed_the_charge(self):
        for charge in Charge.objects.filter(customer=self.customer):
            committed = charge.refunds.exclude(status=Refund.Status.FAILED).aggregate(
                total=Sum("amount_cents"))["total"] or 0
            assert committed <= (charge.amount_cents
                                 if charge.status == Charge.Status.SUCCEEDED else 0)

    @invariant()
    def nothing_kept_for_an_invoice_nobody_collects(self):
        # no charge after a committed cancel or an end: money that came in is given back
        for charge in Charge.objects.filter(customer=self.customer,
                                            status=Charge.Status.SUCCEEDED,
                                            invoice__status=Invoice.Status.VOID):
            assert charge.refunds.exclude(status=Refund.Status.FAILED).aggregate(
                total=Sum("amount_cents"))["total"] == charge.amount_cents

    @invariant()
    def only_declines_are_dunning_attempts(self):
        charges = Charge.objects.filter(customer=self.customer, failure_kind="decline")
        assert set(charges.values_list("failure_code", flat=True)) <= {"card_declined"}
        for invoice in Invoice.objects.filter(customer=self.customer, kind=Invoice.Kind.RENEWAL):
            assert invoice.declined_attempts == invoice.charges.filter(
                failure_kind="decline", initiated_by="system").count()
        # a charge the bank wanted authenticated never counts as a decline, refused or not
        assert not Charge.objects.filter(customer=self.customer, failure_kind="decline").filter(
            Q(status=Charge.Status.REQUIRES_ACTION) | Q(failure_code="authentication_failed")
            | Q(client_secret__gt="")).exists()

    @invariant()
    def one_charge_at_a_time_may_move_money(self):
        for invoice in Invoice.objects.filter(customer=self.customer):
            assert invoice.charges.filter(status__in=[
                Charge.Status.PENDING, Charge.Status.UNKNOWN,
                Charge.Status.REQUIRES_ACTION]).count() <= 1

    @invariant()
    def invoice_numbers_are_consecutive(self):
        numbers = sorted(int(n.split("-")[1]) for n in Invoice.objects.exclude(number=None)
                         .values_list("number", flat=True))
        assert numbers == list(range(1, len(numbers) + 1))

    @invariant()
    def status_follows_the_collection_state(self):
        if self.subscription is None:
            return
        subscription = self.subscription
        open_renewals = list(subscription.invoices.filter(kind=Invoice.Kind.RENEWAL,
                                                          status=Invoice.Status.OPEN))
        # scheduled attempts made: declines and authentication requests (billing.dunning)
        declined = max((invoice.declined_attempts + invoice.authentication_requests
                        for invoice in open_renewals), default=0)
        if subscription.status == Status.PAST_DUE:
            assert 1 <= declined <= 3
        elif subscription.status == Status.SUSPENDED:
            assert declined == 4
        elif subscription.status == Status.ACTIVE:
            assert declined == 0
        else:
            assert not subscription.invoices.filter(
                status__in=[Invoice.Status.DRAFT, Invoice.Status.OPEN]).exists()
        assert subscription.licence_active == (subscription.status in (Status.ACTIVE,
                                                                       Status.PAST_DUE))


def test_random_lives_keep_the_money_right():
    run_state_machine_as_test(
        SubscriptionLife,
        settings=hypothesis_settings(
            max_examples=25, stateful_step_count=25, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
