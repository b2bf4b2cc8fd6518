"""Signed Stripe webhooks (DESIGN §13, issue 9 item 5): ``/webhooks/stripe/`` stores an event
once per event id when its signature verifies, and a task processes it through the same
settlement as a synchronous answer; duplicates, late and out-of-order events are harmless;
disputes reach the timeline, the admin and the support team.

Payloads are signed here exactly as Stripe signs them: ``Stripe-Signature: t=<unix time>,
v1=<hex HMAC-SHA256 of "<t>.<body>" under the endpoint's secret>``.

What the provider answers: a payment event is only a hint; processing it asks the provider for
the charge by its idempotency key (``lookup``). These tests use the simulated provider, whose
ledger (its own table) records what it really did, and whose ``lookup`` returns exactly that:
each scenario makes the provider charge (or decline) for real, then loses the synchronous
answer, so the ledger is the truth the event points at. Nothing patches ``lookup`` to echo the
event: a test where an event claims something the ledger contradicts (a payment_failed for a
charge that went through) shows that the provider's word, not the event's type, settles."""

import contextlib
import hashlib
import hmac
import itertools
import json
import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import transaction
from django.test import Client
from django.urls import reverse

from billing.gateways import CardDeclined, CardSetup, RefundRequest, UnknownOutcome
from billing.gateways.simulated import SimulatedGateway
from billing.models import (
    Charge,
    CreditNote,
    Invoice,
    PaymentMethod,
    ProviderEvent,
    Refund,
    SimulatedProviderOperation,
)
from billing.provider_events import provider_events_due
from billing.services import payment_method_add, payment_method_save, refund_create
from notifications.models import OutboxEmail
from subscriptions.jobs import JOBS, run_batch
from subscriptions.models import Status, SubscriptionEvent
from subscriptions.services import provider_events
from subscriptions.services.renew import subscription_renew
from subscriptions.tasks import provider_event_process_task
from subscriptions.timeline import subscription_timeline
from tests.factories import PlanFactory, UserFactory, card_token, days, open_renewal, subscribed
from tests.threads import at_once

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_0123456789abcdef"
URL = "/webhooks/stripe/"
DECLINED_CARD = "4000000000000341"
SUPPORT = "support@example.com"

_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def _webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.SUPPORT_EMAIL = SUPPORT


# -- signing and posting, as Stripe does ----------------------------------------------------


def sign(body: str, *, secret=SECRET, timestamp=None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def event(type_, obj, *, event_id=None) -> dict:
    return {"id": event_id or f"evt_test_{next(_ids)}", "object": "event",
            "api_version": "2025-01-27.acacia", "created": int(time.time()), "livemode": False,
            "type": type_, "data": {"object": obj}}


def post(client, payload: dict, **headers):
    body = json.dumps(payload)
    headers.setdefault("HTTP_STRIPE_SIGNATURE", sign(body))
    return client.post(URL, data=body, content_type="application/json", **headers)


def deliver(client, payload, capture):
    """Post the event and run what commits schedule (the processing task, its emails)."""
    with capture(execute=True):
        response = post(client, payload)
    assert response.status_code == 200, response.content
    return response


def payment_intent(charge, *, status="succeeded", reference=""):
    return {"id": reference or f"pi_test_{charge.pk}", "object": "payment_intent",
            "amount": charge.amount_cents, "currency": charge.currency.lower(),
            "status": status, "metadata": {"idempotency_key": charge.idempotency_key}}


# -- what the provider did, and the answer the portal lost ---------------------------------


@pytest.fixture
def renewal_due(now):
    """A monthly subscription (9,90 € TTC) whose renewal fell due three days ago."""
    subscription = subscribed(customer=UserFactory(email="camille@example.com"),
                              plan=PlanFactory(), at=now - days(31))
    assert subscription.current_period_end < now
    return subscription


def renew_answer_lost(subscription, monkeypatch, now) -> Charge:
    """Renew: the provider charges (or declines) and records it in its ledger, but its answer
    is lost and the look-up right after finds nothing yet: the charge is unknown."""
    charge = SimulatedGateway.charge

    def answer_lost(self, request):
        with contextlib.suppress(CardDeclined):  # recorded as declined in its ledger
            charge(self, request)
        raise UnknownOutcome("the answer was lost")

    with monkeypatch.context() as patched:
        patched.setattr(SimulatedGateway, "charge", answer_lost)
        patched.setattr(SimulatedGateway, "lookup", lambda self, key: None)
        unknown = subscription_renew(subscription_id=subscription.pk, now=now)
    assert unknown.status == Charge.Status.UNKNOWN
    return unknown


def ledger(subscription):
    """Everything a renewal's settlement produces, to compare with exactly one settlement."""
    subscription.refresh_from_db()
    invoice = subscription.invoices.get(kind=Invoice.Kind.RENEWAL)
    return {
        "status": subscription.status,
        "period_end": subscription.current_period_end,
        "invoice": (invoice.status, invoice.declined_attempts),
        "charges": list(invoice.charges.values_list("status", "failure_code")),
        "events": sorted(subscription.events.exclude(kind=SubscriptionEvent.Kind.SUBSCRIBED)
                         .values_list("kind", flat=True)),
        "emails": sorted(OutboxEmail.objects.filter(subscription=subscription)
                         .exclude(kind="welcome").values_list("kind", flat=True)),
        "provider_charges": SimulatedProviderOperation.objects.filter(kind="charge").count(),
    }


def renewed_once(period_end):
    return {"status": Status.ACTIVE, "period_end": period_end, "invoice": ("paid", 0),
            "charges": [("succeeded", "")], "events": ["renewed"],
            "emails": ["renewal_receipt"], "provider_charges": 2}


# -- the endpoint ---------------------------------------------------------------------------


@pytest.mark.parametrize("type_", ["payment_intent.succeeded", "payment_intent.payment_failed",
                                   "payment_intent.requires_action"])
def test_a_signed_event_is_stored_and_settles_the_charge_by_the_providers_answer(
    client, renewal_due, monkeypatch, now, django_capture_on_commit_callbacks, type_
):
    # given: the renewal went through at the provider, the portal does not know it yet
    period_end = renewal_due.current_period_end
    charge = renew_answer_lost(renewal_due, monkeypatch, now)
    payload = event(type_, payment_intent(charge))
    # when
    response = deliver(client, payload, django_capture_on_commit_callbacks)
    # then: stored, processed, and whatever its type the provider's answer (paid) settled it
    assert response.content == b"ok"
    stored = ProviderEvent.objects.get()
    assert (stored.provider, stored.event_id, stored.type, stored.payload) == (
        "stripe", payload["id"], type_, payload)
    assert (stored.processed_at, stored.outcome, stored.error) == (now, "processed", "")
    assert stored.note == f"{charge.idempotency_key} : Réussi"
    first_period_end = ledger(renewal_due)["period_end"]
    assert first_period_end > period_end
    assert ledger(renewal_due) == renewed_once(first_period_end)
    assert [m.to for m in mail.outbox if "renouvelé" in m.subject] == [["camille@example.com"]]


@pytest.mark.parametrize("tamper", ["body", "secret", "stale", "no_v1", "garbage", "empty"])
def test_a_bad_signature_is_refused_and_nothing_is_stored(
    client, renewal_due, monkeypatch, now, django_capture_on_commit_callbacks, tamper
):
    # given
    charge = renew_answer_lost(renewal_due, monkeypatch, now)
    body = json.dumps(event("payment_intent.succeeded", payment_intent(charge)))
    signature = {
        "body": sign(body.replace("succeeded", "canceled")),
        "secret": sign(body, secret="whsec_someone_else"),
        "stale": sign(body, timestamp=int(time.time()) - 301),  # Stripe's tolerance: 5 min
        "no_v1": sign(body).replace("v1=", "v0="),
        "garbage": "nonsense",
        "empty": "",
    }[tamper]
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(URL, data=body, content_type="application/json",
                               HTTP_STRIPE_SIGNATURE=signature)
    # then
    assert response.status_code == 400
    assert response.content.decode() == "Webhook refusé : signature invalide."
    assert not ProviderEvent.objects.exists()
    assert callbacks == []
    charge.refresh_from_db()
    assert charge.status == Charge.Status.UNKNOWN


def test_a_request_without_a_signature_header_is_refused(client):
    # when
    response = client.post(URL, data=json.dumps(event("payment_intent.succeeded", {})),
                           content_type="application/json")
    # then
    assert response.status_code == 400
    assert not ProviderEvent.objects.exists()


def test_without_a_configured_secret_every_webhook_is_refused(client, settings):
    # given: the deployment forgot STRIPE_WEBHOOK_SECRET; someone signs with an empty secret
    settings.STRIPE_WEBHOOK_SECRET = ""
    payload = event("payment_intent.succeeded", {})
    # when
    response = post(client, payload, HTTP_STRIPE_SIGNATURE=sign(json.dumps(payload), secret=""))
    # then
    assert response.status_code == 400
    assert not ProviderEvent.objects.exists()


def test_a_signed_body_that_is_not_an_event_is_refused(client):
    # given: signed, but no event id
    body = json.dumps({"object": "event", "type": "payment_intent.succeeded"})
    # when
    response = client.post(URL, data=body, content_type="application/json",
                           HTTP_STRIPE_SIGNATURE=sign(body))
    # then
    assert response.status_code == 400
    assert not ProviderEvent.objects.exists()


def test_the_endpoint_takes_posts_from_the_provider_without_a_csrf_token():
    # given: a client that enforces CSRF, as a browser would be held to
    client = Client(enforce_csrf_checks=True)
    payload = event("customer.created", {"id": "cus_1", "object": "customer"})
    # when
    get = client.get(URL)
    posted = post(client, payload)
    # then
    assert get.status_code == 405
    assert posted.status_code == 200
    assert ProviderEvent.objects.filter(event_id=payload["id"]).exists()
    assert reverse("stripe_webhook") == URL


def test_a_replayed_event_is_acknowledged_and_processed_once(
    client, renewal_due, monkeypatch, now, django_capture_on_commit_callbacks
):
    # given: the handler's calls are counted
    calls = []
    handler = provider_events.HANDLERS["payment_intent.succeeded"]
    monkeypatch.setitem(provider_events.HANDLERS, "payment_intent.succeeded",
                        lambda payload, now: calls.append(payload["id"]) or handler(payload,
                                                                                    now=now))
    period_end = renewal_due.current_period_end
    charge = renew_answer_lost(renewal_due, monkeypatch, now)
    payload = event("payment_intent.succeeded", payment_intent(charge))
    deliver(client, payload, django_capture_on_commit_callbacks)
    # when: Stripe delivers it again (it delivers at least once), and again
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = post(client, payload)
        once_more = post(client, {**payload, "data": {"object": {"tampered": True}}})
    # then: acknowledged, nothing stored, nothing enqueued, processed once
    assert (again.status_code, again.content.decode()) == (200, "déjà reçu")
    assert once_more.status_code == 200
    assert callbacks == []
    assert calls == [payload["id"]]
    assert ProviderEvent.objects.get().payload == payload
    assert ledger(renewal_due)["events"] == ["renewed"]
    assert ledger(renewal_due)["period_end"] > period_end


def test_the_processing_task_run_twice_processes_once(
    client, monkeypatch, now, django_capture_on_commit_callbacks
):
    # given: a processed event; the handler's calls are counted
    calls = []
    monkeypatch.setitem(provider_events.HANDLERS, "customer.updated",
                        lambda payload, now: calls.append(now) or provider_events.Handled(
                            "processed", "vu"))
    deliver(client, event("customer.updated", {"id": "cus_1"}), django_capture_on_commit_callbacks)
    stored = ProviderEvent.objects.get()
    # when: the broker delivers its task again (acks_late, a lost ack), later
    with time_machine.travel(now + timedelta(hours=1), tick=False), \
            django_capture_on_commit_callbacks(execute=True):
        provider_event_process_task.delay(stored.pk)
    # then
    assert calls == [now]
    stored.refresh_from_db()
    assert (stored.processed_at, stored.note) == (now, "vu")


@pytest.mark.django_db(transaction=True)
def test_the_same_event_delivered_twice_at_once_is_stored_once():
    # given
    payload = event("payment_intent.succeeded", {"id": "pi_elsewhere", "metadata": {}})

    def deliver_once():
        return post(Client(), payload).status_code

    # when
    statuses = at_once(deliver_once, deliver_once, deliver_once)
    # then: no 500, one row, processed once
    assert statuses == [200, 200, 200]
    stored = ProviderEvent.objects.get()
    assert (stored.outcome, stored.attempts) == ("ignored", 0)


# -- settling through the usual settlement --------------------------------------------------


@pytest.mark.parametrize("order", [("succeeded", "payment_failed"),
                                   ("payment_failed", "succeeded")])
def test_out_of_order_payment_events_are_harmless(
    client, renewal_due, monkeypatch, now, django_capture_on_commit_callbacks, order
):
    # given: the renewal went through at the provider; its answer was lost
    charge = renew_answer_lost(renewal_due, monkeypatch, now)
    # when: a payment_failed (an earlier attempt of the PaymentIntent, say) arrives after
    # the succeeded one, or before it
    for type_ in order:
        deliver(client, event(f"payment_intent.{type_}", payment_intent(charge)),
                django_capture_on_commit_callbacks)
    # then: paid once, never counted as a decline, no failure email
    result = ledger(renewal_due)
    assert result == renewed_once(result["period_end"])
    assert list(ProviderEvent.objects.order_by("pk").values_list("outcome", "note")) == [
        ("processed", f"{charge.idempotency_key} : Réussi"),
        ("processed", f"{charge.idempotency_key} : déjà réglé (Réussi)"),
    ]


def test_a_decline_reported_by_webhook_is_one_dunning_attempt_and_a_late_success_claim_is_not(
    client, renewal_due, monkeypatch, now, django_capture_on_commit_callbacks
):
    # given: the renewal was declined at the provider; the answer was lost
    payment_method_add(customer=renewal_due.customer, now=now - days(1),
                       token=card_token(DECLINED_CARD))
    charge = renew_answer_lost(renewal_due, monkeypatch, now)
    period_end = renewal_due.current_period_end
    # when: the failure is reported, twice under two event ids, then a bogus success
    for type_ in ["payment_failed", "payment_failed", "succeeded"]:
        deliver(client, event(f"payment_intent.{type_}", payment_intent(charge)),
                django_capture_on_commit_callbacks)
    # then: one dunning attempt, one "échec" email, the period unchanged
    assert ledger(renewal_due) == {
        "status": Status.PAST_DUE, "period_end": period_end, "invoice": ("open", 1),
        "charges": [("failed", "card_declined")], "events": ["payment_failed"],
        "emails": ["payment_failed"], "provider_charges": 2,
    }
    assert open_renewal(renewal_due).next_retry_at is not None


def test_an_event_for_a_charge_the_synchronous_answer_settled_changes_nothing(
    client, renewal_due, now, django_capture_on_commit_callbacks
):
    # given: the renewal was answered at once
    with django_capture_on_commit_callbacks(execute=True):
        charge = subscription_renew(subscription_id=renewal_due.pk, now=now)
    before = ledger(renewal_due)
    assert before == renewed_once(before["period_end"])
    # when: the provider's event follows
    deliver(client, event("payment_intent.succeeded", payment_intent(charge)),
            django_capture_on_commit_callbacks)
    # then
    assert ledger(renewal_due) == before
    assert ProviderEvent.objects.get().note == f"{charge.idempotency_key} : déjà réglé (Réussi)"


def test_a_charge_found_by_its_provider_reference_when_the_key_is_missing(
    client, renewal_due, now, django_capture_on_commit_callbacks
):
    # given: a settled charge whose PaymentIntent id is known; the event carries no metadata
    with django_capture_on_commit_callbacks(execute=True):
        charge = subscription_renew(subscription_id=renewal_due.pk, now=now)
    obj = {"id": charge.provider_reference, "object": "payment_intent", "metadata": {}}
    # when
    deliver(client, event("payment_intent.succeeded", obj), django_capture_on_commit_callbacks)
    # then
    assert ProviderEvent.objects.get().note == f"{charge.idempotency_key} : déjà réglé (Réussi)"


def test_a_success_for_a_charge_the_portal_recorded_refused_is_flagged(
    client, now, django_capture_on_commit_callbacks
):
    # given: a charge recorded as refused, which the provider nonetheless took
    subscription = subscribed(plan=PlanFactory(), at=now - days(31))
    charge = Charge.objects.get(invoice__subscription=subscription)
    Charge.objects.filter(pk=charge.pk).update(status=Charge.Status.FAILED,
                                               failure_code="provider_error")
    # when
    deliver(client, event("payment_intent.succeeded", payment_intent(charge)),
            django_capture_on_commit_callbacks)
    # then
    stored = ProviderEvent.objects.get()
    assert stored.note.startswith(f"ÉCART : le prestataire indique {charge.idempotency_key} "
                                  f"réussi")


@pytest.mark.django_db(transaction=True, databases=["default", "simulated_provider"])
def test_a_succeeded_event_racing_the_synchronous_answer_settles_once(monkeypatch, now):
    # given: a renewal due; the provider records the charge, then takes 0.5 s to answer
    subscription = subscribed(customer=UserFactory(email="camille@example.com"),
                              plan=PlanFactory(), at=now - days(31))
    period_end = subscription.current_period_end
    charged, sent = threading.Event(), []
    charge = SimulatedGateway.charge

    def slow_answer(self, request):
        result = charge(self, request)
        sent.append(request.idempotency_key)
        charged.set()
        time.sleep(0.5)
        return result

    monkeypatch.setattr(SimulatedGateway, "charge", slow_answer)

    def renew():
        return subscription_renew(subscription_id=subscription.pk, now=now)

    def webhook():
        # Stripe's event is sent as soon as the money moved: before the portal has the answer.
        assert charged.wait(timeout=10)
        obj = {"id": "pi_race", "object": "payment_intent", "status": "succeeded",
               "metadata": {"idempotency_key": sent[0]}}
        return post(Client(), event("payment_intent.succeeded", obj)).status_code

    # when
    renewed, status = at_once(renew, webhook)
    # then: one settlement — one renewal event, one receipt
    assert (renewed.status, status) == (Charge.Status.SUCCEEDED, 200)
    result = ledger(subscription)
    assert result["period_end"] > period_end
    assert result == renewed_once(result["period_end"])
    assert sum("renouvelé" in message.subject for message in mail.outbox) == 1
    stored = ProviderEvent.objects.get()
    assert (stored.outcome, stored.note) == ("processed", f"{sent[0]} : déjà réglé (Réussi)")


def test_a_payment_of_another_system_is_ignored(client, django_capture_on_commit_callbacks):
    # when
    deliver(client, event("payment_intent.succeeded",
                          {"id": "pi_other", "metadata": {"idempotency_key": "shop-42"}}),
            django_capture_on_commit_callbacks)
    # then
    stored = ProviderEvent.objects.get()
    assert (stored.outcome, stored.note) == ("ignored", "aucun paiement du portail pour shop-42")


def test_an_event_type_the_portal_does_not_handle_is_stored_and_marked_ignored(
    client, now, django_capture_on_commit_callbacks
):
    # when
    deliver(client, event("invoice.finalized", {"id": "in_1", "object": "invoice"}),
            django_capture_on_commit_callbacks)
    # then
    stored = ProviderEvent.objects.get()
    assert (stored.type, stored.processed_at, stored.outcome) == ("invoice.finalized", now,
                                                                  "ignored")


# -- never lost -----------------------------------------------------------------------------


def _scan(at):
    due = list(provider_events_due(now=at).values_list("pk", flat=True))
    run_batch(JOBS["process_provider_events"], due, now=at)
    return due


def test_a_processing_error_is_recorded_and_the_scan_retries_it(
    client, renewal_due, monkeypatch, now, django_capture_on_commit_callbacks
):
    # given: processing fails (the database, say) the first time
    charge = renew_answer_lost(renewal_due, monkeypatch, now)
    failures = iter([RuntimeError("base indisponible")])
    apply = provider_events.charge_resume_apply

    def flaky_apply(**kwargs):
        if error := next(failures, None):
            raise error
        return apply(**kwargs)

    monkeypatch.setattr(provider_events, "charge_resume_apply", flaky_apply)
    # when
    deliver(client, event("payment_intent.succeeded", payment_intent(charge)),
            django_capture_on_commit_callbacks)
    # then: acknowledged (the provider need not retry), the error kept on the row, which the
    # scan takes again after the first backoff step (PROVIDER_RETRY_MINUTES: 1 min)
    stored = ProviderEvent.objects.get()
    assert (stored.processed_at, stored.outcome, stored.attempts, stored.error) == (
        None, "", 1, "RuntimeError: base indisponible")
    assert stored.next_attempt_at == now + timedelta(minutes=1)
    assert ledger(renewal_due)["events"] == []
    # when: the scan, before the backoff is over, then after
    assert _scan(now + timedelta(seconds=30)) == []
    with django_capture_on_commit_callbacks(execute=True):
        assert _scan(now + timedelta(minutes=1)) == [stored.pk]
    # then
    stored.refresh_from_db()
    assert (stored.processed_at, stored.outcome, stored.next_attempt_at) == (
        now + timedelta(minutes=1), "processed", None)
    assert ledger(renewal_due)["events"] == ["renewed"]
    assert _scan(now + days(1)) == []


def test_an_event_whose_task_never_ran_is_processed_by_the_scan(
    client, renewal_due, monkeypatch, now, django_capture_on_commit_callbacks
):
    # given: stored, but the task enqueued after commit was lost (the broker was down)
    charge = renew_answer_lost(renewal_due, monkeypatch, now)
    with django_capture_on_commit_callbacks(execute=False):
        assert post(client, event("payment_intent.succeeded",
                                  payment_intent(charge))).status_code == 200
    stored = ProviderEvent.objects.get()
    assert stored.processed_at is None
    # when: beat's scan runs; it leaves the task its first 5 minutes
    assert _scan(now + timedelta(minutes=4)) == []
    with django_capture_on_commit_callbacks(execute=True):
        assert _scan(now + timedelta(minutes=5)) == [stored.pk]
    # then
    stored.refresh_from_db()
    assert stored.outcome == "processed"
    assert ledger(renewal_due)["events"] == ["renewed"]


def test_the_scan_is_a_scheduled_job():
    from django.conf import settings

    # then
    assert "process_provider_events" in JOBS
    assert any(entry["args"] == ["process_provider_events"]
               for entry in settings.CELERY_BEAT_SCHEDULE.values())


# -- refunds --------------------------------------------------------------------------------


@pytest.fixture
def pending_refund(now):
    """A 5 € refund of the first payment, recorded; the provider made it, but the portal's
    task recording its answer never ran."""
    subscription = subscribed(plan=PlanFactory(), at=now - days(20))
    charge = Charge.objects.get(invoice__subscription=subscription)
    with transaction.atomic():
        refund = refund_create(charge=charge, amount_cents=500, reason=Refund.Reason.STAFF,
                               now=now)
    SimulatedGateway().refund(RefundRequest(charge_reference=charge.provider_reference,
                                            amount_cents=500, currency="EUR",
                                            idempotency_key=refund.idempotency_key))
    assert refund.status == Refund.Status.PENDING
    return refund


@pytest.mark.parametrize("lists_refunds", [True, False], ids=["listed", "not_listed"])
def test_charge_refunded_settles_the_refund_once(
    client, pending_refund, django_capture_on_commit_callbacks, lists_refunds
):
    # given: recent API versions no longer list the refunds in the Charge object
    charge = pending_refund.charge
    obj = {"id": "ch_test_1", "object": "charge", "payment_intent": charge.provider_reference,
           "amount_refunded": 500, "refunded": False, "metadata": {}}
    if lists_refunds:
        obj["refunds"] = {"object": "list", "data": [
            {"id": "re_1", "object": "refund", "amount": 500,
             "metadata": {"idempotency_key": pending_refund.idempotency_key}}]}
    # when: the event, and another event about the same refund
    deliver(client, event("charge.refunded", obj), django_capture_on_commit_callbacks)
    deliver(client, event("charge.refunded", obj), django_capture_on_commit_callbacks)
    # then: settled with the provider's reference, one credit note, one refund at the provider
    pending_refund.refresh_from_db()
    provider_refund = SimulatedProviderOperation.objects.get(kind="refund")
    assert (pending_refund.status, pending_refund.provider_reference) == (
        Refund.Status.SUCCEEDED, provider_refund.reference)
    assert CreditNote.objects.get().total_cents == 500
    assert list(ProviderEvent.objects.values_list("outcome", flat=True)) == ["processed"] * 2


def test_a_refund_made_outside_the_portal_is_noted(client, now,
                                                   django_capture_on_commit_callbacks):
    # given: a paid charge nobody refunded in the portal
    subscription = subscribed(plan=PlanFactory(), at=now - days(20))
    charge = Charge.objects.get(invoice__subscription=subscription)
    obj = {"id": "ch_test_2", "object": "charge", "payment_intent": charge.provider_reference}
    # when
    deliver(client, event("charge.refunded", obj), django_capture_on_commit_callbacks)
    # then
    stored = ProviderEvent.objects.get()
    assert stored.outcome == "ignored"
    assert stored.note.startswith("remboursement fait hors du portail")
    assert not CreditNote.objects.exists()


# -- disputes -------------------------------------------------------------------------------


def dispute(charge, *, status="needs_response", dispute_id="dp_test_1"):
    return {"id": dispute_id, "object": "dispute", "amount": charge.amount_cents,
            "currency": "eur", "reason": "fraudulent", "status": status,
            "charge": "ch_test_1", "payment_intent": charge.provider_reference,
            "evidence_details": {"due_by": int(time.time()) + 7 * 86400}}


@pytest.fixture
def superuser_client(client):
    client.force_login(UserFactory(email="admin@example.com", is_staff=True,
                                   is_superuser=True))
    return client


def test_a_dispute_is_on_the_timeline_flagged_in_admin_and_mailed_to_support(
    superuser_client, now, django_capture_on_commit_callbacks
):
    # given: two subscriptions; the first one's payment is contested at the bank
    disputed = subscribed(customer=UserFactory(email="camille@example.com"),
                          plan=PlanFactory(), at=now - days(20))
    other = subscribed(plan=PlanFactory(), at=now - days(20))
    charge = Charge.objects.get(invoice__subscription=disputed)
    # when: the dispute is reported, twice under two event ids
    deliver(superuser_client, event("charge.dispute.created", dispute(charge)),
            django_capture_on_commit_callbacks)
    deliver(superuser_client, event("charge.dispute.created", dispute(charge)),
            django_capture_on_commit_callbacks)
    # then: once on the timeline, with the amount and the reason
    opened = SubscriptionEvent.objects.get(kind=SubscriptionEvent.Kind.DISPUTE_OPENED)
    assert (opened.subscription, opened.amount_cents, opened.at) == (disputed, 990, now)
    assert (opened.data["dispute"], opened.data["reason"]) == ("dp_test_1", "fraudulent")
    entry = next(e for e in subscription_timeline(subscription=disputed)
                 if e.kind == "dispute_opened")
    assert entry.label == "Litige ouvert (paiement contesté)"
    assert entry.amount_cents == 990
    assert "motif : fraude (paiement non reconnu)" in entry.details
    assert charge.invoice.number in entry.details
    # and flagged in admin: the list filter and a line on the subscription's page
    listed = superuser_client.get(reverse("admin:subscriptions_subscription_changelist"),
                                  {"dispute": "open"})
    assert listed.status_code == 200
    assert list(listed.context["cl"].result_list) == [disputed]
    not_listed = superuser_client.get(reverse("admin:subscriptions_subscription_changelist"),
                                      {"dispute": "none"})
    assert list(not_listed.context["cl"].result_list) == [other]
    page = superuser_client.get(reverse("admin:subscriptions_subscription_change",
                                        args=[disputed.pk])).content.decode()
    assert "Litige ouvert : 9,90\u00a0€ contestés le 10 mars 2026 (fraude (paiement non " \
           "reconnu)), paiement " + charge.idempotency_key in page
    other_page = superuser_client.get(reverse("admin:subscriptions_subscription_change",
                                              args=[other.pk])).content.decode()
    assert "Litige ouvert :" not in other_page
    # and the support team got one email (not the customer)
    staff = OutboxEmail.objects.get(kind="dispute_opened")
    assert (staff.recipient, staff.customer, staff.subscription, staff.status) == (
        SUPPORT, None, disputed, "sent")
    sent = [m for m in mail.outbox if m.to == [SUPPORT]]
    assert len(sent) == 1
    assert sent[0].subject == f"[Litige] 9,90\u00a0€ contestés — facture {charge.invoice.number}"
    assert "Motif : fraude (paiement non reconnu)" in sent[0].body
    assert f"/admin/subscriptions/subscription/{disputed.pk}/change/" in sent[0].body
    assert not [m for m in mail.outbox if "Litige" in m.subject and m.to != [SUPPORT]]


def test_a_closed_dispute_is_no_longer_flagged(
    superuser_client, now, django_capture_on_commit_callbacks
):
    # given
    subscription = subscribed(plan=PlanFactory(), at=now - days(20))
    charge = Charge.objects.get(invoice__subscription=subscription)
    deliver(superuser_client, event("charge.dispute.created", dispute(charge)),
            django_capture_on_commit_callbacks)
    # when: the bank decided for us
    deliver(superuser_client, event("charge.dispute.closed", dispute(charge, status="won")),
            django_capture_on_commit_callbacks)
    # then
    listed = superuser_client.get(reverse("admin:subscriptions_subscription_changelist"),
                                  {"dispute": "open"})
    assert list(listed.context["cl"].result_list) == []
    page = superuser_client.get(reverse("admin:subscriptions_subscription_change",
                                        args=[subscription.pk])).content.decode()
    assert "Litige ouvert :" not in page
    closed = next(e for e in subscription_timeline(subscription=subscription)
                  if e.kind == "dispute_closed")
    assert (closed.label, closed.details) == (
        "Litige clos", f"{charge.invoice.number} — gagné — dp_test_1")


def test_a_dispute_on_a_payment_the_portal_does_not_know_still_reaches_support(
    client, django_capture_on_commit_callbacks
):
    # when
    deliver(client, event("charge.dispute.created",
                          {"id": "dp_x", "amount": 1500, "currency": "eur",
                           "reason": "general", "payment_intent": "pi_unknown"}),
            django_capture_on_commit_callbacks)
    # then
    assert not SubscriptionEvent.objects.filter(kind="dispute_opened").exists()
    assert [m.to for m in mail.outbox] == [[SUPPORT]]
    assert "pi_unknown" in mail.outbox[0].body
    assert ProviderEvent.objects.get().outcome == "processed"


# -- cards ----------------------------------------------------------------------------------


def test_a_card_the_bank_updated_is_updated_by_its_token(client, now,
                                                         django_capture_on_commit_callbacks):
    # given: two customers' cards at Stripe
    updated = payment_method_save(customer=UserFactory(), now=now, setup=CardSetup(
        "pm_test_1", "cus_test_1", "Visa", "4242", 3, 2026))
    untouched = payment_method_save(customer=UserFactory(), now=now, setup=CardSetup(
        "pm_test_2", "cus_test_2", "Visa", "1881", 3, 2026))
    obj = {"id": "pm_test_1", "object": "payment_method", "type": "card",
           "card": {"brand": "mastercard", "last4": "4444", "exp_month": 9, "exp_year": 2031}}
    # when
    deliver(client, event("payment_method.automatically_updated", obj),
            django_capture_on_commit_callbacks)
    # then
    updated.refresh_from_db()
    untouched.refresh_from_db()
    assert (updated.brand, updated.last4, updated.exp_month, updated.exp_year) == (
        "Mastercard", "4444", 9, 2031)
    assert (untouched.last4, untouched.exp_year) == ("1881", 2026)
    assert ProviderEvent.objects.get().note == "carte mise à jour : Mastercard •••• 4444 (09/2031)"


def test_an_update_of_a_card_the_portal_does_not_keep_is_ignored(
    client, django_capture_on_commit_callbacks
):
    # when
    deliver(client, event("payment_method.automatically_updated",
                          {"id": "pm_elsewhere", "card": {"brand": "visa", "last4": "1",
                                                          "exp_month": 1, "exp_year": 2030}}),
            django_capture_on_commit_callbacks)
    # then
    assert ProviderEvent.objects.get().outcome == "ignored"
    assert not PaymentMethod.objects.exists()


# -- admin ----------------------------------------------------------------------------------


def test_staff_read_the_events_in_admin_and_no_one_edits_them(
    superuser_client, client, now, django_capture_on_commit_callbacks, monkeypatch
):
    # given: one processed event, one in error
    deliver(superuser_client, event("invoice.finalized", {"id": "in_1"}, event_id="evt_ok"),
            django_capture_on_commit_callbacks)
    monkeypatch.setitem(provider_events.HANDLERS, "charge.refunded",
                        lambda payload, now: 1 / 0)
    deliver(superuser_client, event("charge.refunded", {"id": "ch_1"}, event_id="evt_ko"),
            django_capture_on_commit_callbacks)
    changelist = reverse("admin:billing_providerevent_changelist")
    # when
    errors = superuser_client.get(changelist, {"processed": "error"})
    by_type = superuser_client.get(changelist, {"type": "invoice.finalized"})
    processed = superuser_client.get(changelist, {"processed": "yes"})
    page = superuser_client.get(reverse("admin:billing_providerevent_change",
                                        args=[ProviderEvent.objects.get(event_id="evt_ko").pk]))
    # then
    assert [e.event_id for e in errors.context["cl"].result_list] == ["evt_ko"]
    assert [e.event_id for e in by_type.context["cl"].result_list] == ["evt_ok"]
    assert [e.event_id for e in processed.context["cl"].result_list] == ["evt_ok"]
    assert "ZeroDivisionError: division by zero" in page.content.decode()
    assert "&quot;ch_1&quot;" in page.content.decode()
    assert superuser_client.get(reverse("admin:billing_providerevent_add")).status_code == 403
    assert b'name="_save"' not in page.content
    # and the support group does not see them (superusers do: the timeline shows disputes)
    from django.contrib.auth.models import Group

    support = UserFactory(is_staff=True)
    support.groups.add(Group.objects.get(name="Support"))
    client.force_login(support)
    assert client.get(changelist).status_code == 403
