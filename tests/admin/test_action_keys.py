"""Staff confirmation forms carry a one-time action key: the same form posted twice (double
click, browser resubmit) or concurrently performs its action once and says so; a newly opened
form is a new action (DESIGN §11)."""

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.action_keys import ActionRefused, new_action_key, perform_once
from accounts.models import ActionKey
from billing.models import Charge, Refund
from billing.services import payment_method_add
from notifications.models import OutboxEmail
from subscriptions.models import Actor, Status, Subscription, SubscriptionEvent
from subscriptions.services import subscription_cancel
from subscriptions.services.renew import subscription_renew
from tests.confirmations import form_key
from tests.factories import PlanFactory, UserFactory, card_token, days, subscribed
from tests.threads import at_once

pytestmark = pytest.mark.django_db

DECLINED = "4000000000000341"
ALREADY_DONE = "Cette action a déjà été effectuée"


@pytest.fixture
def subscription(now):
    """Subscribed 20 days ago on a monthly plan: 9,90 € paid, outside the refund window."""
    return subscribed(customer=UserFactory(email="camille@example.com"),
                      plan=PlanFactory(code="essentiel"), at=now - days(20))


@pytest.fixture
def past_due(now, django_capture_on_commit_callbacks):
    subscription = subscribed(customer=UserFactory(email="dominique@example.com"),
                              plan=PlanFactory(code="essentiel"), at=now - days(31))
    payment_method_add(customer=subscription.customer,
                       token=card_token(DECLINED, 12, 2030, "123"), now=now - days(2))
    with django_capture_on_commit_callbacks(execute=True):
        subscription_renew(subscription_id=subscription.pk, now=subscription.current_period_end)
    subscription.refresh_from_db()
    assert subscription.status == Status.PAST_DUE
    return subscription


def _action_url(subscription, action):
    return reverse("admin:subscriptions_subscription_staff_action", args=[subscription.pk, action])


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def _initial_charge(subscription):
    return Charge.objects.get(invoice__subscription=subscription, invoice__kind="initial")


def _opened_form(client, url):
    """The action key of a confirmation form opened now, as the browser gets it."""
    response = client.get(url)
    assert response.status_code == 200
    return form_key(response)


def _refund_data(subscription, amount="1,00"):
    return {"charge": _initial_charge(subscription).pk, "amount": amount}


def _staff_events(kind):
    return SubscriptionEvent.objects.filter(kind=kind, actor=Actor.STAFF).count()


# --- The refund form posted twice ----------------------------------------------------------


def test_a_refund_form_posted_twice_refunds_once_and_says_so(admin_client, subscription,
                                                            django_capture_on_commit_callbacks):
    # given
    url = _action_url(subscription, "refund")
    data = {**_refund_data(subscription), "action_key": _opened_form(admin_client, url)}
    # when
    with django_capture_on_commit_callbacks(execute=True):
        first = admin_client.post(url, data)
        second = admin_client.post(url, data)
    # then
    assert (first.status_code, second.status_code) == (302, 302)
    assert list(Refund.objects.values_list("amount_cents", flat=True)) == [100]
    assert _staff_events(SubscriptionEvent.Kind.STAFF_REFUND) == 1
    message = _messages(second)[-1]
    assert ALREADY_DONE in message
    assert "Remboursement de 1,00\u00a0€ enregistré" in message  # what the first one did


def test_two_separately_opened_refund_forms_are_two_refunds(admin_client, subscription):
    # given
    url = _action_url(subscription, "refund")
    first_key, second_key = _opened_form(admin_client, url), _opened_form(admin_client, url)
    # when
    admin_client.post(url, {**_refund_data(subscription), "action_key": first_key})
    response = admin_client.post(url, {**_refund_data(subscription), "action_key": second_key})
    # then
    assert first_key != second_key
    assert response.status_code == 302
    assert list(Refund.objects.values_list("amount_cents", flat=True)) == [100, 100]


@pytest.mark.parametrize("key", [None, "", "abc", "x" * 33, "é" * 32, "a" * 31 + "\n"])
def test_a_post_without_a_valid_key_is_refused_and_changes_nothing(admin_client, subscription,
                                                                   key):
    # given
    data = _refund_data(subscription)
    if key is not None:
        data["action_key"] = key
    # when
    response = admin_client.post(_action_url(subscription, "refund"), data)
    # then
    assert response.status_code == 200
    assert any("clé d'action absente ou incorrecte" in m for m in _messages(response))
    assert not Refund.objects.exists()
    assert not ActionKey.objects.exists()
    assert form_key(response) != key  # the form shown again can be confirmed


def test_a_form_shown_again_after_an_error_is_a_new_action(admin_client, subscription):
    # given: a bad amount is refused, and the form comes back with a new key
    url = _action_url(subscription, "refund")
    key = _opened_form(admin_client, url)
    refused = admin_client.post(url, {**_refund_data(subscription, "1e2"), "action_key": key})
    new_key = form_key(refused)
    # when: the refused form is resubmitted (even corrected), then the new one is confirmed
    resubmitted = admin_client.post(url, {**_refund_data(subscription), "action_key": key})
    confirmed = admin_client.post(url, {**_refund_data(subscription), "action_key": new_key})
    # then
    assert refused.status_code == 200 and new_key != key
    assert any("Indiquez un montant en euros" in m for m in _messages(refused))
    assert resubmitted.status_code == 200
    message = _messages(resubmitted)[-1]
    assert "déjà été envoyée et refusée" in message and "Indiquez un montant" in message
    assert confirmed.status_code == 302
    assert list(Refund.objects.values_list("amount_cents", flat=True)) == [100]


def test_the_key_is_a_hidden_field_new_at_every_opening(admin_client, subscription):
    # when
    first = admin_client.get(_action_url(subscription, "regenerate-licence"))
    second = admin_client.get(_action_url(subscription, "regenerate-licence"))
    # then
    body = first.content.decode()
    assert '<input type="hidden" name="action_key"' in body
    assert "Action key" not in body  # no label for it
    assert form_key(first) != form_key(second)


# --- Every action, posted twice --------------------------------------------------------------


def _cancelled(subscription, now):
    subscription_cancel(subscription=subscription, actor_user=subscription.customer, now=now)
    return {}


def _welcome(subscription, now):
    return {"email": OutboxEmail.objects.get(subscription=subscription, kind="welcome").pk}


ACTIONS = [
    # action, subscription fixture, its data, the staff event it records once
    ("refund", "subscription", lambda s, now: _refund_data(s), "staff_refund"),
    ("cancel", "subscription", lambda s, now: {"reason": "too_expensive"}, "cancelled"),
    ("reactivate", "subscription", _cancelled, "auto_renew_reactivated"),
    ("extend", "subscription", lambda s, now: {"days": "5"}, "period_extended"),
    ("end-now", "subscription", lambda s, now: {"refund": "on"}, "ended"),
    ("retry-payment", "past_due", lambda s, now: {}, "payment_retried"),
    ("resend-email", "subscription", _welcome, "email_resent"),
    ("regenerate-licence", "subscription", lambda s, now: {}, "licence_regenerated"),
]


def _state(subscription):
    """What any staff action changes: money, emails, events and the subscription's columns."""
    subscription = Subscription.objects.get(pk=subscription.pk)
    return (Refund.objects.count(), Charge.objects.count(), OutboxEmail.objects.count(),
            SubscriptionEvent.objects.count(), subscription.status, subscription.auto_renew,
            subscription.current_period_end, subscription.ends_at, subscription.licence_key)


@pytest.mark.parametrize("action, fixture, data, event", ACTIONS, ids=[a[0] for a in ACTIONS])
def test_each_action_posted_twice_is_performed_once(request, admin_client, now, action,
                                                   fixture, data, event):
    # given
    subscription = request.getfixturevalue(fixture)
    url = _action_url(subscription, action)
    posted = {**data(subscription, now), "action_key": _opened_form(admin_client, url)}
    # when
    first = admin_client.post(url, posted)
    after_first = _state(subscription)
    second = admin_client.post(url, posted)
    # then
    assert (first.status_code, second.status_code) == (302, 302)
    assert _staff_events(event) == 1
    assert _state(subscription) == after_first
    assert any(ALREADY_DONE in m for m in _messages(second))


# --- Concurrent posts of the same form (real transactions) ---------------------------------


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_posts_of_one_refund_form_refund_once(now):
    # given: 120,00 € paid, so fifty refunds of 1,00 € would all fit
    subscription = subscribed(plan=PlanFactory(code="gros", price_cents=10000),
                              at=now - days(20))
    staff = UserFactory(email="admin@example.com", is_staff=True, is_superuser=True)
    url = _action_url(subscription, "refund")
    data = {**_refund_data(subscription), "action_key": new_action_key()}
    clients = []
    for _ in range(50):
        client = Client()
        client.force_login(staff)
        clients.append(client)

    def post(client):
        return lambda: client.post(url, data).status_code

    # when
    statuses = at_once(*(post(client) for client in clients))

    # then
    assert set(statuses) == {302}
    assert list(Refund.objects.values_list("amount_cents", flat=True)) == [100]
    assert _staff_events(SubscriptionEvent.Kind.STAFF_REFUND) == 1
    assert ActionKey.objects.get().status == ActionKey.Status.DONE


# --- perform_once itself ---------------------------------------------------------------------


def test_a_refusal_is_recorded_and_repeated(now):
    # given
    user, key, calls = UserFactory(), new_action_key(), []

    def refuse():
        calls.append(1)
        raise ActionRefused("Ce paiement n'appartient pas à cet abonnement.")

    # when
    first = perform_once(key=key, user=user, perform=refuse, now=now)
    again = perform_once(key=key, user=user, perform=refuse, now=now)
    # then
    assert calls == [1]
    assert first.refused and again.refused
    assert "n'appartient pas" in again.message and "déjà été envoyée" in again.message


def test_an_action_interrupted_by_an_error_is_not_tried_again(now):
    # given
    user, key, calls = UserFactory(), new_action_key(), []

    def crash():
        calls.append(1)
        raise RuntimeError("provider timeout")

    with pytest.raises(RuntimeError):
        perform_once(key=key, user=user, perform=crash, now=now)
    # when
    again = perform_once(key=key, user=user, perform=crash, now=now)
    # then
    assert calls == [1]
    assert not again.refused and "interrompue" in again.message


@pytest.mark.django_db(transaction=True)
def test_the_action_runs_outside_any_transaction_after_the_claim_is_committed(now):
    # given: retrying a payment commits its prepared charge before calling the provider
    user, key, seen = UserFactory(), new_action_key(), []

    def perform():
        seen.append((connection.in_atomic_block,
                     ActionKey.objects.filter(key=key, status=ActionKey.Status.CLAIMED).exists()))
        return 25, "fait"

    # when
    outcome = perform_once(key=key, user=user, perform=perform, now=now)
    # then
    assert seen == [(False, True)]
    assert (outcome.message, ActionKey.objects.get().status) == ("fait", ActionKey.Status.DONE)
