"""The billing jobs under real concurrency (DESIGN §5, §6; STYLE "Safe to run twice"): the
same renewal run by two workers, a task delivered twice, a provider that does not answer, a
worker that crashed between prepare and send, a cancellation racing a renewal.

Run under real transactions on PostgreSQL, with real threads: row locks, unique constraints
and after-commit callbacks behave as in production. The subscription is bought at the frozen
``now`` (2026-03-10 09:30, Paris) and its first renewal falls due on 2026-04-10 09:30."""

import threading
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.db import connection

from billing.gateways import PaymentError, ProviderError
from billing.gateways.simulated import SimulatedGateway
from billing.models import Charge, Invoice, SimulatedProviderOperation
from billing.services import charge_prepare, invoice_create, payment_method_add
from notifications.models import OutboxEmail
from subscriptions.jobs import run_due_jobs
from subscriptions.models import EndReason, Status, Subscription, SubscriptionEvent
from subscriptions.services import payments, renew, subscription_cancel
from subscriptions.services.renew import (
    PaymentNotPossible,
    subscription_pay_now,
    subscription_renew,
    subscription_retry_payment,
)
from subscriptions.tasks import job_batch
from tests.factories import PlanFactory, UserFactory, card_token, next_retry_at, subscribed
from tests.threads import at_once

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "simulated_provider"])

PARIS = ZoneInfo("Europe/Paris")
RENEWAL = datetime(2026, 4, 10, 9, 30, tzinfo=PARIS)
NEXT_RENEWAL = datetime(2026, 5, 10, 9, 30, tzinfo=PARIS)
DECLINED_CARD = "4000000000000341"
TIMEOUT_AFTER_SUCCESS_CARD = "4000000000000408"


@pytest.fixture
def due(now):
    """A monthly subscription at 9,90 € TTC whose renewal is due at RENEWAL."""
    subscription = subscribed(customer=UserFactory(), plan=PlanFactory(), at=now)
    assert subscription.current_period_end == RENEWAL
    return subscription


@pytest.fixture
def slow_provider(monkeypatch):
    """The provider takes 200 ms to answer a charge: whatever runs at the same time really
    overlaps with the charge in flight."""
    charge = SimulatedGateway.charge

    def slow_charge(self, request):
        time.sleep(0.2)
        return charge(self, request)

    monkeypatch.setattr(SimulatedGateway, "charge", slow_charge)


def _add_card(subscription, number):
    payment_method_add(customer=subscription.customer,
                       token=card_token(number, 12, 2030, "123"), now=subscription.started_at)




def _two_ticks_at_once(at):
    return at_once(lambda: run_due_jobs(now=at), lambda: run_due_jobs(now=at))


def _renewal_ledger(subscription):
    """Everything a renewal may have produced, to compare with what exactly one produces."""
    subscription.refresh_from_db()
    return {
        "status": subscription.status,
        "period": (subscription.current_period_start, subscription.current_period_end),
        "renewal_invoices": list(
            Invoice.objects.filter(kind=Invoice.Kind.RENEWAL)
            .values_list("period_start", "status", "total_cents")
        ),
        "renewal_charges": list(
            Charge.objects.filter(invoice__kind=Invoice.Kind.RENEWAL)
            .order_by("attempt").values_list("attempt", "status", "failure_code")
        ),
        # the initial charge is one of them
        "provider_charges": SimulatedProviderOperation.objects.filter(kind="charge").count(),
        "billing_emails": sorted(
            OutboxEmail.objects.filter(
                kind__in=["renewal_receipt", "payment_failed", "subscription_suspended",
                          "subscription_reactivated", "cancellation_confirmation"]
            ).values_list("kind", "status")
        ),
        "events": sorted(
            SubscriptionEvent.objects.exclude(kind=SubscriptionEvent.Kind.SUBSCRIBED)
            .values_list("kind", flat=True)
        ),
    }


RENEWED_ONCE = {
    "status": Status.ACTIVE,
    "period": (RENEWAL, NEXT_RENEWAL),
    "renewal_invoices": [(RENEWAL, "paid", 990)],
    "renewal_charges": [(1, "succeeded", "")],
    "provider_charges": 2,
    "billing_emails": [("renewal_receipt", "sent")],
    "events": ["renewed"],
}


def _sent_subjects(kind):
    """How many times the email of this kind was actually handed to the mail backend."""
    subjects = set(OutboxEmail.objects.filter(kind=kind).values_list("subject", flat=True))
    return sum(message.subject in subjects for message in mail.outbox)


# -- the same renewal twice -------------------------------------------------------------------


@pytest.mark.parametrize("entry_point", ["run_due_jobs", "subscription_renew"])
def test_the_renewal_run_twice_at_once_invoices_charges_and_emails_once(
    due, slow_provider, entry_point
):
    # given
    def renewal():
        if entry_point == "run_due_jobs":
            return run_due_jobs(now=RENEWAL)
        return subscription_renew(subscription_id=due.pk, now=RENEWAL)

    # when
    at_once(renewal, renewal)
    # then
    assert _renewal_ledger(due) == RENEWED_ONCE
    assert _sent_subjects("renewal_receipt") == 1


def test_a_renewal_batch_delivered_twice_at_once_renews_once(due, slow_provider):
    # given: the broker delivers the same batch to two workers (acks_late, a lost ack)
    def deliver():
        return job_batch.delay("renew", [due.pk])

    # when
    with time_machine.travel(RENEWAL, tick=False):
        at_once(deliver, deliver)
    # then
    assert _renewal_ledger(due) == RENEWED_ONCE
    assert _sent_subjects("renewal_receipt") == 1


# -- unknown outcomes -------------------------------------------------------------------------


def test_a_renewal_whose_answer_is_lost_is_settled_by_lookup_and_charged_once(due, slow_provider):
    # given: the provider charges the card, then the answer times out
    _add_card(due, TIMEOUT_AFTER_SUCCESS_CARD)
    # when: two workers run the renewal at once, and the jobs run again later
    _two_ticks_at_once(RENEWAL)
    _two_ticks_at_once(RENEWAL + timedelta(hours=1))
    run_due_jobs(now=RENEWAL + timedelta(days=1))
    # then: the lookup by idempotency key found the charge: paid once, never charged again
    assert _renewal_ledger(due) == RENEWED_ONCE


@pytest.mark.parametrize("first_lookup", ["raises", "finds_nothing"])
def test_an_unknown_outcome_is_never_charged_again_and_the_reconcile_job_settles_it(
    due, monkeypatch, first_lookup
):
    # given: the charge times out after the money moved, and the lookup right after it fails
    # (the provider is unreachable) or does not find the operation yet
    _add_card(due, TIMEOUT_AFTER_SUCCESS_CARD)
    lookup, provider = SimulatedGateway.lookup, {"lookups": 0, "reachable": True}

    def flaky_lookup(self, idempotency_key):
        provider["lookups"] += 1
        if provider["lookups"] == 1 and first_lookup == "finds_nothing":
            return None
        if provider["lookups"] == 1 or not provider["reachable"]:
            raise ProviderError("simulated provider unreachable")
        return lookup(self, idempotency_key)

    monkeypatch.setattr(SimulatedGateway, "lookup", flaky_lookup)
    run_due_jobs(now=RENEWAL)
    unknown = {
        **RENEWED_ONCE,
        "period": (due.current_period_start, RENEWAL),
        "renewal_invoices": [(RENEWAL, "open", 990)],
        "renewal_charges": [(1, "unknown", "")],
        "billing_emails": [],
        "events": [],
    }
    assert _renewal_ledger(due) == unknown
    # when: while the provider stays unreachable, every job runs again, twice at once, and
    # the customer and the retry service try to pay
    provider["reachable"] = False
    _two_ticks_at_once(RENEWAL + timedelta(hours=1))
    _two_ticks_at_once(RENEWAL + timedelta(days=1))
    with pytest.raises(PaymentNotPossible):
        subscription_pay_now(subscription=due, now=RENEWAL + timedelta(days=1))
    assert subscription_retry_payment(
        invoice_id=Invoice.objects.get(kind=Invoice.Kind.RENEWAL).pk,
        now=RENEWAL + timedelta(days=1)) is None
    with pytest.raises(PaymentError):
        charge_prepare(invoice=Invoice.objects.get(kind=Invoice.Kind.RENEWAL),
                       now=RENEWAL + timedelta(days=1))
    # then: nothing was charged again
    assert _renewal_ledger(due) == unknown
    # when: the provider answers again
    provider["reachable"] = True
    _two_ticks_at_once(RENEWAL + timedelta(days=2))
    # then: settled from the provider's record, once
    assert _renewal_ledger(due) == RENEWED_ONCE
    renewal_charge = Charge.objects.get(invoice__kind=Invoice.Kind.RENEWAL)
    assert renewal_charge.provider_reference == SimulatedProviderOperation.objects.get(
        idempotency_key=renewal_charge.idempotency_key).reference
    assert _sent_subjects("renewal_receipt") == 1


# -- a worker that crashed between prepare and send ---------------------------------------------


def _crashed_renewal(subscription):
    """What a worker killed right after committing the renewal charge leaves: the invoice and
    a pending charge the provider never heard of."""
    invoice = invoice_create(
        customer=subscription.customer, plan=subscription.plan, kind=Invoice.Kind.RENEWAL,
        subscription=subscription, period_start=RENEWAL, period_end=NEXT_RENEWAL,
        description="Renouvellement", now=RENEWAL,
    )
    return charge_prepare(invoice=invoice, now=RENEWAL)


def test_a_renewal_whose_worker_died_before_sending_is_sent_again_never_dunned(due):
    # given: the worker died after preparing the charge, before sending it (issue 8)
    charge = _crashed_renewal(due)
    stale = RENEWAL + timedelta(minutes=settings.STALE_PENDING_CHARGE_MINUTES + 1)
    # when: the jobs run before the charge is stale (it might still be in flight)
    _two_ticks_at_once(RENEWAL + timedelta(minutes=5))
    # then: left alone, and not charged a second time
    assert _renewal_ledger(due) == {
        **RENEWED_ONCE,
        "period": (due.current_period_start, RENEWAL),
        "renewal_invoices": [(RENEWAL, "open", 990)],
        "renewal_charges": [(1, "pending", "")],
        "provider_charges": 1,
        "billing_emails": [],
        "events": [],
    }
    # when: it is stale, twice at once
    _two_ticks_at_once(stale)
    # then: the provider never saw its key, so it is sent under that key, once: renewed, no
    # failure, no attempt used
    due.refresh_from_db()
    assert (due.status, next_retry_at(due)) == (Status.ACTIVE, None)
    assert _renewal_ledger(due) == RENEWED_ONCE
    assert SimulatedProviderOperation.objects.filter(
        idempotency_key=charge.idempotency_key).count() == 1
    assert not OutboxEmail.objects.filter(kind="payment_failed").exists()


@pytest.mark.parametrize("expired_first", [True, False])
def test_a_crashed_renewal_of_a_subscription_cancelled_meanwhile_is_not_dunned(
    due, expired_first
):
    # given: the renewal crashed after prepare, then the customer cancelled (no refund: the
    # access ends with the period, which is already over)
    _crashed_renewal(due)
    subscription_cancel(subscription=due, now=RENEWAL + timedelta(minutes=2))
    # when: the jobs run (the subscription expires) before and after the charge is stale
    if expired_first:
        run_due_jobs(now=RENEWAL + timedelta(minutes=5))
    run_due_jobs(now=RENEWAL + timedelta(minutes=settings.STALE_PENDING_CHARGE_MINUTES + 1))
    run_due_jobs(now=RENEWAL + timedelta(days=1))
    # then: ended at the end of its period; no payment-failed email, nothing to retry
    due.refresh_from_db()
    assert (due.status, due.end_reason, due.ended_at) == (Status.ENDED, EndReason.EXPIRED,
                                                           RENEWAL)
    assert next_retry_at(due) is None
    assert _renewal_ledger(due) == {
        **RENEWED_ONCE,
        "status": Status.ENDED,
        "period": (due.current_period_start, RENEWAL),
        "renewal_invoices": [(RENEWAL, "void", 990)],
        "renewal_charges": [(1, "failed", "not_attempted")],
        "provider_charges": 1,
        "billing_emails": [("cancellation_confirmation", "sent")],
        "events": ["cancelled", "ended"],
    }


# -- cancellation racing a renewal --------------------------------------------------------------


def _wait_until_another_session_waits_on_a_lock(timeout=10.0):
    """Poll pg_stat_activity (from inside the caller's transaction) until some other session
    of this database is blocked on a lock."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)
    raise AssertionError("no other session waited on a lock")


def test_a_cancel_committed_between_the_renewals_prepare_and_send_means_no_charge(
    due, monkeypatch
):
    # given: the renewal is held after its charge is prepared (committed) and before it is sent
    prepared, cancelled = threading.Event(), threading.Event()
    charge_send = renew.charge_send

    def held_charge_send(*, charge, now):
        prepared.set()
        assert cancelled.wait(timeout=10)
        return charge_send(charge=charge, now=now)

    monkeypatch.setattr(renew, "charge_send", held_charge_send)

    def cancel_meanwhile():
        try:
            assert prepared.wait(timeout=10)
            return subscription_cancel(subscription=Subscription.objects.get(pk=due.pk),
                                       now=RENEWAL + timedelta(minutes=1))
        finally:
            cancelled.set()

    # when
    charge, (_, terms) = at_once(
        lambda: subscription_renew(subscription_id=due.pk, now=RENEWAL), cancel_meanwhile
    )
    # then: the cancel saw the old period; the prepared charge was never sent
    assert terms.access_ends_at == RENEWAL
    assert (charge.status, charge.failure_code) == ("failed", "not_attempted")
    assert _renewal_ledger(due) == {
        **RENEWED_ONCE,
        "period": (due.current_period_start, RENEWAL),
        "renewal_invoices": [(RENEWAL, "void", 990)],
        "renewal_charges": [(1, "failed", "not_attempted")],
        "provider_charges": 1,
        "billing_emails": [("cancellation_confirmation", "sent")],
        "events": ["cancelled"],
    }
    # when: the jobs run
    run_due_jobs(now=RENEWAL + timedelta(minutes=2))
    run_due_jobs(now=RENEWAL + timedelta(days=1))
    # then: it ended with its period, and nothing was charged
    due.refresh_from_db()
    assert (due.status, due.end_reason, due.ended_at, due.licence_active) == (
        Status.ENDED, EndReason.EXPIRED, RENEWAL, False)
    assert SimulatedProviderOperation.objects.filter(kind="charge").count() == 1
    assert Charge.objects.filter(invoice__kind=Invoice.Kind.RENEWAL).count() == 1


def test_a_cancel_waiting_on_a_renewal_in_progress_sees_the_new_period(due, monkeypatch):
    # given: the renewal holds the subscription's lock while its charge is sent, until the
    # cancel is blocked on that lock
    sending = threading.Event()
    charge_attempt = payments.charge_attempt

    def charge_attempt_once_cancel_waits(*, charge, now):
        sending.set()
        _wait_until_another_session_waits_on_a_lock()
        return charge_attempt(charge=charge, now=now)

    monkeypatch.setattr(payments, "charge_attempt", charge_attempt_once_cancel_waits)

    def cancel_while_sending():
        assert sending.wait(timeout=10)
        return subscription_cancel(subscription=Subscription.objects.get(pk=due.pk),
                                   now=RENEWAL + timedelta(minutes=1))

    # when
    charge, (_, terms) = at_once(
        lambda: subscription_renew(subscription_id=due.pk, now=RENEWAL), cancel_while_sending
    )
    # then: renewed and paid; the cancel applies to the new period
    assert charge.status == "succeeded"
    assert (terms.immediate, terms.refund_cents, terms.access_ends_at) == (
        False, 0, NEXT_RENEWAL)
    assert _renewal_ledger(due) == {
        **RENEWED_ONCE,
        "billing_emails": [("cancellation_confirmation", "sent"), ("renewal_receipt", "sent")],
        "events": ["cancelled", "renewed"],
    }
    # when: the new period runs out
    run_due_jobs(now=NEXT_RENEWAL)
    run_due_jobs(now=NEXT_RENEWAL + timedelta(days=1))
    # then: not renewed again, ended with it
    due.refresh_from_db()
    assert (due.status, due.end_reason, due.ended_at) == (Status.ENDED, EndReason.EXPIRED,
                                                           NEXT_RENEWAL)
    assert Invoice.objects.filter(kind=Invoice.Kind.RENEWAL).count() == 1
    assert SimulatedProviderOperation.objects.filter(kind="charge").count() == 2


# -- the customer pays while the retry job runs -------------------------------------------------


def test_paying_now_while_the_scheduled_retry_runs_charges_once(due, slow_provider):
    # given: past due after a declined renewal; the customer then saves a working card
    _add_card(due, DECLINED_CARD)
    run_due_jobs(now=RENEWAL)
    _add_card(due, "4242424242424242")
    retry_at = RENEWAL + timedelta(days=1)

    def pay_now():
        try:
            return subscription_pay_now(subscription=Subscription.objects.get(pk=due.pk),
                                        now=retry_at)
        except PaymentNotPossible:
            return None

    # when
    at_once(lambda: run_due_jobs(now=retry_at), pay_now)
    # then: one successful charge, one reactivation email
    assert _renewal_ledger(due) == {
        **RENEWED_ONCE,
        "renewal_charges": [(1, "failed", "card_declined"), (2, "succeeded", "")],
        "provider_charges": 3,
        "billing_emails": [("payment_failed", "sent"), ("subscription_reactivated", "sent")],
        "events": ["payment_failed", "reactivated"],
    }
