"""Issue 8: what a real provider's faults and a customer's clicks must not do to money."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import (
    Charge,
    CreditNote,
    Invoice,
    PaymentMethod,
    Refund,
    SimulatedProviderCard,
    SimulatedProviderOperation,
)
from notifications.models import OutboxEmail
from subscriptions.jobs import run_due_jobs
from subscriptions.models import EndReason, Status, Subscription, SubscriptionEvent
from subscriptions.rules import Refusal, plan_change_refusal
from subscriptions.services import subscription_cancel
from subscriptions.services.lifecycle import TRANSITIONS, IllegalTransition, _move
from subscriptions.services.renew import subscription_renew
from tests.factories import (
    PlanFactory,
    UserFactory,
    card_token,
    days,
    next_retry_at,
    open_renewal,
    saved_card,
    subscribed,
)
from tests.threads import at_once

pytestmark = pytest.mark.django_db

PROVIDER_ERROR_CARD = "4000000000000119"
DECLINED_CARD = "4000000000000341"




def test_a_provider_error_at_renewal_is_not_a_failed_payment(now, mailoutbox):
    # given: a monthly subscription due, its card now answered "provider error, retry later"
    subscription = subscribed(plan=PlanFactory(), at=now - days(31))
    card = saved_card(subscription.customer, PROVIDER_ERROR_CARD, now)
    mailoutbox.clear()
    # when
    charge = subscription_renew(subscription_id=subscription.pk, now=now)
    # then: nothing the customer did: no past due, no "Échec de paiement", no attempt used
    subscription.refresh_from_db()
    invoice = charge.invoice
    invoice.refresh_from_db()
    assert subscription.status == Status.ACTIVE
    assert (charge.status, charge.provider_errors) == (Charge.Status.PENDING, 1)
    assert charge.next_attempt_at == now + timedelta(minutes=1)
    assert (invoice.status, invoice.declined_attempts, invoice.next_retry_at) == (
        Invoice.Status.OPEN, 0, None)
    assert not OutboxEmail.objects.filter(kind="payment_failed").exists()
    assert not subscription.events.filter(kind=SubscriptionEvent.Kind.PAYMENT_FAILED).exists()
    # when: still failing at the next scans, then the provider is back
    run_due_jobs(now=now + timedelta(minutes=1))
    charge.refresh_from_db()
    assert (charge.status, charge.provider_errors) == (Charge.Status.PENDING, 2)
    assert charge.next_attempt_at == now + timedelta(minutes=6)
    run_due_jobs(now=now + timedelta(minutes=3))  # backoff: not due yet
    charge.refresh_from_db()
    assert charge.provider_errors == 2
    SimulatedProviderCard.objects.filter(token=card.provider_token).update(behaviour="success")
    run_due_jobs(now=now + timedelta(minutes=6))
    # then: the same charge, under the same key, went through once; renewed
    subscription.refresh_from_db()
    charge.refresh_from_db()
    assert subscription.status == Status.ACTIVE
    assert subscription.current_period_start == invoice.period_start
    assert Charge.objects.filter(invoice=invoice).count() == 1
    assert charge.status == Charge.Status.SUCCEEDED
    assert SimulatedProviderOperation.objects.filter(
        idempotency_key=charge.idempotency_key).count() == 1
    assert OutboxEmail.objects.filter(kind="renewal_receipt").count() == 1


def test_a_decline_is_still_a_dunning_attempt(now):
    # given
    subscription = subscribed(plan=PlanFactory(), at=now - days(31))
    saved_card(subscription.customer, DECLINED_CARD, now)
    # when
    charge = subscription_renew(subscription_id=subscription.pk, now=now)
    # then
    subscription.refresh_from_db()
    assert subscription.status == Status.PAST_DUE
    assert open_renewal(subscription).declined_attempts == 1
    assert next_retry_at(subscription) is not None
    assert charge.failure_kind == "decline"


def test_an_unknown_outcome_waits_before_it_is_reconciled(now, monkeypatch):
    # given: the renewal times out and the look-up cannot tell yet
    from billing.gateways.simulated import SimulatedGateway

    subscription = subscribed(plan=PlanFactory(), at=now - days(31))
    saved_card(subscription.customer, "4000000000000408", now)
    calls = []
    lookup = SimulatedGateway.lookup

    def lagging_lookup(self, key):
        calls.append(key)
        return None if len(calls) == 1 else lookup(self, key)

    monkeypatch.setattr(SimulatedGateway, "lookup", lagging_lookup)
    charge = subscription_renew(subscription_id=subscription.pk, now=now)
    assert charge.status == Charge.Status.UNKNOWN
    # when: the scan comes back within the minimum age
    run_due_jobs(now=now + timedelta(minutes=5))
    # then: not asked again yet
    assert len(calls) == 1
    # when: after the minimum age
    run_due_jobs(now=now + timedelta(minutes=16))
    charge.refresh_from_db()
    assert charge.status == Charge.Status.SUCCEEDED
    assert SimulatedProviderOperation.objects.filter(
        idempotency_key=charge.idempotency_key).count() == 1


def test_cancelling_in_a_refund_window_while_past_due_ends_through_the_common_end(now):
    # given: a plan with a 45-day refund window; the first renewal was declined (past due)
    plan = PlanFactory(refund_window_days=45)
    subscription = subscribed(plan=plan, at=now - days(35))
    saved_card(subscription.customer, DECLINED_CARD, now - days(5))
    subscription_renew(subscription_id=subscription.pk, now=now - days(4))
    subscription.refresh_from_db()
    assert subscription.status == Status.PAST_DUE
    renewal = open_renewal(subscription)
    # when
    subscription, terms = subscription_cancel(subscription=subscription, now=now)
    # then: ended and refunded, the issued renewal invoice cancelled by a credit note, no retry
    renewal.refresh_from_db()
    assert (subscription.status, subscription.end_reason) == (Status.ENDED,
                                                              EndReason.REFUNDED)
    assert terms.immediate
    assert (renewal.status, renewal.next_retry_at) == (Invoice.Status.VOID, None)
    note = CreditNote.objects.get(invoice=renewal)
    assert (note.refund, note.total_cents) == (None, renewal.total_cents)
    assert subscription.events.filter(kind=SubscriptionEvent.Kind.ENDED).count() == 1
    # and the retry scan finds nothing to charge
    run_due_jobs(now=now + days(10))
    assert Charge.objects.filter(invoice=renewal).count() == 1


def test_the_annual_refund_is_computed_from_what_was_paid_not_todays_price(now):
    # given: an annual plan bought at 82,50 € HT (99,00 € TTC), then its price is raised and
    # the customer moves to Belgium
    plan = PlanFactory(code="annuel", annual=True, refund_window_days=14)
    subscription = subscribed(plan=plan, at=now - days(100))
    plan.price_cents = 15000
    plan.save()
    subscription.customer.billing_country = "BE"
    subscription.customer.save()
    # when: three full months have elapsed (k=3): 12 − 4 = 8 months refunded
    subscription, terms = subscription_cancel(subscription=subscription, now=now)
    # then: 99,00 € × 8 / 12
    assert terms.refund_cents == 6600
    assert Refund.objects.get().amount_cents == 6600


def test_an_illegal_move_of_the_lifecycle_raises_and_writes_nothing(now):
    # given: an ended subscription
    subscription = subscribed(plan=PlanFactory(), at=now - days(2))
    subscription_cancel(subscription=subscription, now=now)
    subscription.refresh_from_db()
    assert subscription.status == Status.ENDED
    events = subscription.events.count()
    # when / then: every transition that does not start from "ended" is refused
    for transition, (sources, _target) in TRANSITIONS.items():
        if Status.ENDED in sources:
            continue
        with pytest.raises(IllegalTransition):
            _move(subscription, transition, event_kind="x", at=now)
    subscription.refresh_from_db()
    assert subscription.status == Status.ENDED
    assert subscription.events.count() == events


@pytest.mark.parametrize(("status", "allowed"), [
    (Status.ACTIVE, {"renew", "mark_past_due", "schedule_end", "resume_renewal", "change_plan",
                     "schedule_plan", "withdraw_plan", "extend", "regenerate_licence", "end"}),
    (Status.PAST_DUE, {"reactivate", "mark_past_due", "suspend", "schedule_end",
                       "resume_renewal", "regenerate_licence", "end"}),
    (Status.SUSPENDED, {"reactivate", "schedule_end", "resume_renewal", "regenerate_licence",
                        "end"}),
    (Status.ENDED, {"restart", "regenerate_licence"}),
])
def test_the_transition_table(status, allowed):
    assert {name for name, (sources, _) in TRANSITIONS.items() if status in sources} == allowed


@pytest.mark.django_db(transaction=True)
def test_concurrent_subscribe_posts_of_one_customer_buy_once():
    # given: five tabs submitting the checkout at once
    plan = PlanFactory(code="essentiel-mensuel")
    customer = UserFactory()
    clients = [Client() for _ in range(5)]
    for client in clients:
        client.force_login(customer)
    url = reverse("subscriptions:subscribe", args=[plan.code])

    def post(client):
        form = {"card_token": card_token(), "accept_terms": "1"}  # each tab typed the card
        return lambda: client.post(url, form)

    # when
    responses = at_once(*(post(client) for client in clients))
    # then: one subscription, one charge, one saved card, and no server error
    assert all(response.status_code in (200, 302) for response in responses)
    assert sum(response.status_code == 302 for response in responses) == 1
    assert Subscription.objects.count() == 1
    assert Charge.objects.count() == 1
    assert PaymentMethod.objects.filter(customer=customer).count() == 1
    assert SimulatedProviderOperation.objects.filter(kind="charge").count() == 1


def test_staff_see_charges_the_provider_has_not_taken_beyond_the_outage_horizon(
    client, now, settings
):
    # given: a renewal the provider keeps refusing with errors for longer than the horizon
    settings.CHARGE_OUTAGE_HORIZON_HOURS = 6
    subscription = subscribed(plan=PlanFactory(), at=now - days(31))
    saved_card(subscription.customer, PROVIDER_ERROR_CARD, now - timedelta(hours=7))
    charge = subscription_renew(subscription_id=subscription.pk, now=now - timedelta(hours=7))
    fresh = subscribed(plan=PlanFactory(), at=now - days(31))
    saved_card(fresh.customer, PROVIDER_ERROR_CARD, now)
    subscription_renew(subscription_id=fresh.pk, now=now)
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    # when
    index = client.get("/admin/").content.decode()
    listed = client.get("/admin/billing/charge/?awaiting_provider=beyond_horizon")
    # then: the old one only
    assert "1 paiement en attente du prestataire depuis plus de 6 h" in index
    assert list(listed.context["cl"].result_list) == [Charge.objects.get(pk=charge.pk)]


def test_a_cancelled_subscription_offers_no_plan_change_the_service_would_refuse(client, now):
    # given: auto-renewal turned off (outside the refund window: it runs to the period end)
    subscription = subscribed(plan=PlanFactory(), at=now - days(20))
    PlanFactory(code="superieure", tier=2, price_cents=1250)
    subscription_cancel(subscription=subscription, now=now)
    client.force_login(subscription.customer)
    # when
    page = client.get(reverse("subscriptions:billing")).content.decode()
    # then: no button, as the service refuses
    assert "Changer de formule" not in page
    assert "Réactiver le renouvellement automatique" in page
    subscription.refresh_from_db()
    assert plan_change_refusal(subscription, now=now) == Refusal.AUTO_RENEW_OFF


def test_a_refund_the_provider_refused_behind_a_timeout_is_failed_not_paid(now, monkeypatch):
    # given: a paid subscription refunded by support; the refund's answer is lost and the
    # look-up shows the provider refused it
    from billing.gateways import OperationResult, UnknownOutcome
    from billing.gateways.simulated import SimulatedGateway
    from billing.services import refund_execute
    from subscriptions.services.staff import staff_charge_refund

    subscription = subscribed(plan=PlanFactory(), at=now - days(20))
    charge = Charge.objects.get()

    def lost(self, request):
        raise UnknownOutcome("timeout")

    monkeypatch.setattr(SimulatedGateway, "refund", lost)
    monkeypatch.setattr(SimulatedGateway, "lookup", lambda self, key: OperationResult(
        reference="re_x", amount_cents=100, currency="EUR", succeeded=False,
        failure_code="charge_disputed"))
    refund = staff_charge_refund(subscription=subscription, charge=charge, amount_cents=100,
                                 staff_user=None, now=now)
    # when
    refund = refund_execute(refund_id=refund.pk, now=now)
    # then
    assert (refund.status, refund.failure_message) == (Refund.Status.FAILED, "charge_disputed")
    assert not CreditNote.objects.exists()


def test_a_request_the_provider_rejects_is_neither_a_decline_nor_a_server_error(
    now, monkeypatch, client
):
    # given: the provider answers "invalid request" (a plain PaymentError) to every charge
    from billing.gateways import PaymentError
    from billing.gateways.simulated import SimulatedGateway

    subscription = subscribed(plan=PlanFactory(), at=now - days(31))

    def invalid(self, request):
        raise PaymentError("invalid request")

    monkeypatch.setattr(SimulatedGateway, "charge", invalid)
    # when: the renewal
    charge = subscription_renew(subscription_id=subscription.pk, now=now)
    # then: kept for another try, nobody dunned
    subscription.refresh_from_db()
    assert (charge.status, subscription.status) == (Charge.Status.PENDING, Status.ACTIVE)
    assert charge.next_attempt_at is not None
    # when: a customer at the checkout
    customer = UserFactory()
    client.force_login(customer)
    plan = PlanFactory(code="autre")
    response = client.post(reverse("subscriptions:subscribe", args=[plan.code]),
                           {"card_token": card_token(), "accept_terms": "1"})
    # then: told to try again, nothing bought
    assert response.status_code == 200
    assert "momentanément indisponible" in response.context["payment_error"]
    assert not customer.subscriptions.exists()
