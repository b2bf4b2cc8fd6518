"""The subscription page in admin (issue 5, scope 2 and 3): its timeline, and the staff actions,
each on a confirmation page, going through the services and recorded with the staff user."""

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import Charge, Invoice, Refund
from notifications.models import OutboxEmail
from subscriptions.models import Actor, Channel, EndReason, Status, SubscriptionEvent
from subscriptions.services import subscription_cancel
from subscriptions.services.renew import subscription_renew
from subscriptions.services.staff import staff_licence_regenerate, staff_subscription_extend
from subscriptions.timeline import subscription_timeline
from tests.confirmations import confirm
from tests.factories import (
    PlanFactory,
    UserFactory,
    days,
    next_retry_at,
    saved_card,
    subscribed,
)

pytestmark = pytest.mark.django_db

DECLINED = "4000000000000341"
GOOD = "4242424242424242"


@pytest.fixture
def subscription(now):
    """Subscribed 20 days ago on a monthly plan: outside the 14-day refund window, 9,90 € paid."""
    return subscribed(customer=UserFactory(email="camille@example.com"),
                      plan=PlanFactory(code="essentiel"), at=now - days(20))


@pytest.fixture
def past_due(now, django_capture_on_commit_callbacks):
    subscription = subscribed(customer=UserFactory(email="dominique@example.com"),
                              plan=PlanFactory(code="essentiel"), at=now - days(31))
    saved_card(subscription.customer, DECLINED, now - days(2))
    with django_capture_on_commit_callbacks(execute=True):
        subscription_renew(subscription_id=subscription.pk, now=subscription.current_period_end)
    subscription.refresh_from_db()
    assert subscription.status == Status.PAST_DUE
    return subscription




def _action_url(subscription, action):
    return reverse("admin:subscriptions_subscription_staff_action", args=[subscription.pk, action])


def _change_url(subscription):
    return reverse("admin:subscriptions_subscription_change", args=[subscription.pk])


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def _staff_events(subscription, kind):
    return list(SubscriptionEvent.objects.filter(subscription=subscription, kind=kind,
                                                 actor=Actor.STAFF))


def _timeline_row(client, subscription, label):
    """The timeline row of the change page that shows this label."""
    body = client.get(_change_url(subscription)).content.decode()
    timeline = body.split('id="timeline"', 1)[1]
    rows = [row for row in timeline.split("<tr") if label in row]
    assert rows, f"{label!r} is not in the timeline"
    return rows[-1]


def _initial_charge(subscription):
    return Charge.objects.get(invoice__subscription=subscription, invoice__kind="initial")


# --- Confirmation pages --------------------------------------------------------------------


@pytest.mark.parametrize("action", ["refund", "cancel", "extend", "end-now", "resend-email",
                                    "regenerate-licence"])
def test_each_action_first_shows_its_effect_and_changes_nothing(admin_client, subscription,
                                                               action):
    # given
    key = subscription.licence_key
    # when
    response = admin_client.get(_action_url(subscription, action))
    # then
    subscription.refresh_from_db()
    assert response.status_code == 200
    assert "Effet de cette action" in response.content.decode()
    assert 'name="csrfmiddlewaretoken"' in response.content.decode()
    assert subscription.status == Status.ACTIVE and subscription.auto_renew
    assert subscription.licence_key == key
    assert not SubscriptionEvent.objects.filter(actor=Actor.STAFF).exists()


def test_the_change_page_offers_the_actions_and_no_save_button(admin_client, subscription):
    # when
    body = admin_client.get(_change_url(subscription)).content.decode()
    # then
    assert _action_url(subscription, "refund") in body
    assert _action_url(subscription, "cancel") in body
    assert _action_url(subscription, "retry-payment") not in body  # nothing is unpaid
    assert 'name="_save"' not in body


def test_the_cancel_page_states_the_effect_from_the_policy(admin_client, subscription):
    # when
    body = admin_client.get(_action_url(subscription, "cancel")).content.decode()
    # then
    assert "L'accès reste ouvert jusqu'au" in body
    assert "Aucun remboursement." in body


# --- Refund --------------------------------------------------------------------------------


def test_staff_refunds_part_of_a_charge(admin_client, superuser, subscription,
                                       django_capture_on_commit_callbacks):
    # given
    charge = _initial_charge(subscription)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = confirm(admin_client, _action_url(subscription, "refund"),
                                     {"charge": charge.pk, "amount": "4,35"})
    # then
    assert response.status_code == 302
    refund = Refund.objects.get(charge=charge)
    assert (refund.amount_cents, refund.reason, refund.status) == (435, "staff", "succeeded")
    [event] = _staff_events(subscription, SubscriptionEvent.Kind.STAFF_REFUND)
    assert (event.actor_user, event.amount_cents) == (superuser, 435)
    row = _timeline_row(admin_client, subscription, "Remboursement par le support")
    assert "admin@example.com" in row and "4,35" in row


@pytest.mark.parametrize("amount, error", [
    ("9,91", "dépasse ce qui reste remboursable"),
    ("abc", "Indiquez un montant en euros"),
    ("1e0", "Indiquez un montant en euros"),
    ("0_5", "Indiquez un montant en euros"),
    ("٥", "Indiquez un montant en euros"),
    ("1,2,3", "Indiquez un montant en euros"),
    ("-5", "Indiquez un montant en euros"),
    ("", "obligatoire"),
    ("1,234", "au plus deux décimales"),
    ("0", "positif"),
])
def test_a_refund_over_the_remainder_or_a_bad_amount_changes_nothing(admin_client, subscription,
                                                                    amount, error):
    # given
    charge = _initial_charge(subscription)
    # when
    response = confirm(admin_client, _action_url(subscription, "refund"),
                                 {"charge": charge.pk, "amount": amount})
    # then
    assert response.status_code == 200
    assert any(error in message for message in _messages(response))
    assert not Refund.objects.exists()
    assert not _staff_events(subscription, SubscriptionEvent.Kind.STAFF_REFUND)


@pytest.mark.parametrize("amount, cents", [("4,35", 435), ("4.35", 435), ("4,3 €", 430),
                                           ("€\u00a04", 400)])
def test_refund_amounts_are_read_exactly(admin_client, subscription, amount, cents):
    # when
    response = confirm(admin_client, _action_url(subscription, "refund"),
                       {"charge": _initial_charge(subscription).pk, "amount": amount})
    # then
    assert response.status_code == 302
    assert list(Refund.objects.values_list("amount_cents", flat=True)) == [cents]


def test_a_second_partial_refund_is_capped_by_the_first(admin_client, subscription):
    # given
    charge = _initial_charge(subscription)
    confirm(admin_client, _action_url(subscription, "refund"), {"charge": charge.pk, "amount": "5"})
    # when
    response = confirm(admin_client, _action_url(subscription, "refund"),
                                 {"charge": charge.pk, "amount": "4.91"})
    # then
    assert any("dépasse" in message for message in _messages(response))
    assert list(Refund.objects.values_list("amount_cents", flat=True)) == [500]


# --- Non-direct channel --------------------------------------------------------------------


@pytest.mark.parametrize("action, data", [
    ("refund", {"amount": "1"}),
    ("cancel", {}),
    ("end-now", {"refund": "on"}),
    ("extend", {"days": "5"}),
    ("regenerate-licence", {}),
])
def test_actions_on_a_subscription_bought_elsewhere_are_refused(admin_client, subscription,
                                                                action, data):
    # given
    subscription.channel = Channel.APP_STORE
    subscription.save()
    data = {**data, "charge": _initial_charge(subscription).pk}
    key, end = subscription.licence_key, subscription.current_period_end
    # when
    response = confirm(admin_client, _action_url(subscription, action), data)
    # then
    subscription.refresh_from_db()
    assert response.status_code == 302
    assert any("App Store" in message for message in _messages(response))
    assert (subscription.status, subscription.auto_renew) == (Status.ACTIVE, True)
    assert (subscription.licence_key, subscription.current_period_end) == (key, end)
    assert not Refund.objects.exists()
    assert not SubscriptionEvent.objects.filter(actor=Actor.STAFF).exists()
    assert "aucune action n'est possible ici" in admin_client.get(
        _change_url(subscription)).content.decode()


# --- Cancel, reactivate, end now -------------------------------------------------------------


def test_staff_cancels_at_period_end_with_a_reason(admin_client, superuser, subscription):
    # when
    response = confirm(admin_client, _action_url(subscription, "cancel"),
                                 {"reason": "too_expensive", "reason_detail": "Au téléphone"})
    # then
    subscription.refresh_from_db()
    assert response.status_code == 302
    assert not subscription.auto_renew
    assert subscription.ends_at == subscription.current_period_end
    assert subscription.status == Status.ACTIVE
    [event] = _staff_events(subscription, SubscriptionEvent.Kind.CANCELLED)
    assert event.actor_user == superuser
    row = _timeline_row(admin_client, subscription, "Résiliation")
    assert "admin@example.com" in row and "Trop cher" in row and "Au téléphone" in row


def test_staff_reactivates_auto_renewal(admin_client, superuser, subscription, now):
    # given
    subscription_cancel(subscription=subscription, actor_user=subscription.customer, now=now)
    # when
    response = confirm(admin_client, _action_url(subscription, "reactivate"))
    # then
    subscription.refresh_from_db()
    assert response.status_code == 302
    assert subscription.auto_renew and subscription.ends_at is None
    [event] = _staff_events(subscription, SubscriptionEvent.Kind.AUTO_RENEW_REACTIVATED)
    assert event.actor_user == superuser
    assert "admin@example.com" in _timeline_row(admin_client, subscription,
                                                "Renouvellement réactivé")


def test_reactivating_what_a_refund_ended_is_refused(admin_client, now):
    # given: cancelled inside the refund window, so ended and refunded
    subscription = subscribed(plan=PlanFactory(code="essentiel"), at=now - days(2))
    subscription_cancel(subscription=subscription, actor_user=subscription.customer, now=now)
    # when
    response = confirm(admin_client, _action_url(subscription, "reactivate"))
    # then
    subscription.refresh_from_db()
    assert response.status_code == 200
    assert any("terminé" in message for message in _messages(response))
    assert not subscription.auto_renew


def test_staff_ends_now_with_a_refund(admin_client, superuser, subscription,
                                     django_capture_on_commit_callbacks):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = confirm(admin_client, _action_url(subscription, "end-now"), {"refund": "on"})
    # then
    subscription.refresh_from_db()
    assert response.status_code == 302
    assert (subscription.status, subscription.end_reason) == (
        Status.ENDED, EndReason.TERMINATED_BY_SUPPORT)
    assert not subscription.licence_active and not subscription.auto_renew
    refund = Refund.objects.get()
    assert (refund.amount_cents, refund.reason) == (990, "staff")
    [event] = _staff_events(subscription, SubscriptionEvent.Kind.ENDED)
    assert (event.actor_user, event.amount_cents) == (superuser, 990)
    row = _timeline_row(admin_client, subscription, "Fin de l&#x27;abonnement")
    assert "admin@example.com" in row and "terminé par le support" in row


def test_staff_ends_now_without_a_refund(admin_client, subscription):
    # when
    confirm(admin_client, _action_url(subscription, "end-now"), {})
    # then
    subscription.refresh_from_db()
    assert subscription.status == Status.ENDED
    assert not Refund.objects.exists()


def test_ending_a_past_due_subscription_voids_its_open_invoice(admin_client, past_due):
    # when
    confirm(admin_client, _action_url(past_due, "end-now"), {})
    # then
    past_due.refresh_from_db()
    assert past_due.status == Status.ENDED and next_retry_at(past_due) is None
    assert not Invoice.objects.filter(subscription=past_due, status=Invoice.Status.OPEN).exists()


# --- Extend --------------------------------------------------------------------------------


def test_staff_extends_the_period(admin_client, superuser, subscription):
    # given
    end = subscription.current_period_end
    # when
    response = confirm(admin_client, _action_url(subscription, "extend"), {"days": "10"})
    # then
    subscription.refresh_from_db()
    assert response.status_code == 302
    assert subscription.current_period_end == end + days(10)
    assert subscription.billing_anchor == subscription.current_period_end
    [event] = _staff_events(subscription, SubscriptionEvent.Kind.PERIOD_EXTENDED)
    assert event.actor_user == superuser and event.data["days"] == 10
    row = _timeline_row(admin_client, subscription, "Période prolongée")
    assert "admin@example.com" in row and "10 jours" in row


def test_extending_a_cancelled_subscription_moves_its_end_too(admin_client, subscription, now):
    # given
    subscription_cancel(subscription=subscription, actor_user=subscription.customer, now=now)
    subscription.refresh_from_db()
    ends_at = subscription.ends_at
    # when
    confirm(admin_client, _action_url(subscription, "extend"), {"days": "3"})
    # then
    subscription.refresh_from_db()
    assert subscription.ends_at == ends_at + days(3)


def test_renewal_happens_after_the_extended_end(subscription, superuser):
    # given
    end = subscription.current_period_end
    staff_subscription_extend(subscription=subscription, days=5, staff_user=superuser,
                              now=end - days(1))
    # when
    too_early = subscription_renew(subscription_id=subscription.pk, now=end + days(1))
    # then
    assert too_early is None
    charge = subscription_renew(subscription_id=subscription.pk, now=end + days(5))
    # and the next period starts at the extended end: the days given are not charged again
    assert charge.invoice.period_start == end + days(5)


@pytest.mark.parametrize("value", ["0", "366", "-3", "abc", "", "+5", "5.0", "1_0", "1e1",
                                   "١٠", "１０"])
def test_a_bad_number_of_days_changes_nothing(admin_client, subscription, value):
    # given
    end = subscription.current_period_end
    # when
    response = confirm(admin_client, _action_url(subscription, "extend"), {"days": value})
    # then
    subscription.refresh_from_db()
    assert response.status_code == 200
    assert any("Nombre de jours" in message for message in _messages(response))
    assert subscription.current_period_end == end
    assert not SubscriptionEvent.objects.filter(actor=Actor.STAFF).exists()


def test_an_ended_subscription_cannot_be_extended(admin_client, subscription):
    # given
    confirm(admin_client, _action_url(subscription, "end-now"), {})
    subscription.refresh_from_db()
    end = subscription.current_period_end
    # when
    response = confirm(admin_client, _action_url(subscription, "extend"), {"days": "5"})
    # then
    subscription.refresh_from_db()
    assert any("terminé" in message for message in _messages(response))
    assert subscription.current_period_end == end


# --- Retry the payment -----------------------------------------------------------------------


def test_staff_retries_the_payment_after_a_card_update(admin_client, superuser, past_due, now,
                                                      django_capture_on_commit_callbacks):
    # given
    saved_card(past_due.customer, GOOD, now)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = confirm(admin_client, _action_url(past_due, "retry-payment"))
    # then
    past_due.refresh_from_db()
    assert response.status_code == 302
    assert past_due.status == Status.ACTIVE
    charge = Charge.objects.get(initiated_by="staff")
    assert charge.status == "succeeded"
    [event] = _staff_events(past_due, SubscriptionEvent.Kind.PAYMENT_RETRIED)
    assert event.actor_user == superuser
    assert "admin@example.com" in _timeline_row(admin_client, past_due,
                                                "Paiement relancé par le support")


def test_a_refused_retry_is_recorded_and_is_not_a_scheduled_attempt(admin_client, past_due):
    # given
    retry_at = next_retry_at(past_due)
    # when
    response = confirm(admin_client, _action_url(past_due, "retry-payment"))
    # then
    past_due.refresh_from_db()
    assert any("Paiement refusé" in message for message in _messages(response))
    assert past_due.status == Status.PAST_DUE and next_retry_at(past_due) == retry_at
    assert Charge.objects.filter(initiated_by="staff", status="failed").count() == 1
    row = _timeline_row(admin_client, past_due, "Paiement relancé par le support")
    assert "Refusé" in row


def test_retrying_when_nothing_is_unpaid_is_refused(admin_client, subscription):
    # when
    response = confirm(admin_client, _action_url(subscription, "retry-payment"))
    # then
    assert any("Aucune facture" in message for message in _messages(response))
    assert not Charge.objects.filter(initiated_by="staff").exists()


# --- Resend an email, regenerate the licence -------------------------------------------------


def test_staff_resends_an_email(admin_client, superuser, subscription):
    # given
    welcome = OutboxEmail.objects.get(subscription=subscription, kind="welcome")
    # when
    response = confirm(admin_client, _action_url(subscription, "resend-email"),
                                 {"email": welcome.pk})
    # then
    assert response.status_code == 302
    assert OutboxEmail.objects.filter(subscription=subscription, kind="welcome").count() == 2
    [event] = _staff_events(subscription, SubscriptionEvent.Kind.EMAIL_RESENT)
    assert event.actor_user == superuser
    assert "admin@example.com" in _timeline_row(admin_client, subscription, "E-mail renvoyé")


def test_resending_another_subscriptions_email_is_refused(admin_client, subscription, now):
    # given
    other = subscribed(plan=PlanFactory(code="essentiel"), at=now - days(1))
    foreign = OutboxEmail.objects.get(subscription=other)
    # when
    response = confirm(admin_client, _action_url(subscription, "resend-email"),
                                 {"email": foreign.pk})
    # then
    assert response.status_code == 200
    assert OutboxEmail.objects.count() == 2
    assert not SubscriptionEvent.objects.filter(actor=Actor.STAFF).exists()


def test_staff_regenerates_the_licence_key(admin_client, superuser, subscription):
    # given
    old_key = subscription.licence_key
    # when
    response = confirm(admin_client, _action_url(subscription, "regenerate-licence"))
    # then
    subscription.refresh_from_db()
    assert response.status_code == 302
    assert subscription.licence_key != old_key and len(subscription.licence_key) == 29
    [event] = _staff_events(subscription, SubscriptionEvent.Kind.LICENCE_REGENERATED)
    assert event.actor_user == superuser and event.data["old_key"] == old_key
    row = _timeline_row(admin_client, subscription, "Clé de licence régénérée")
    assert "admin@example.com" in row and old_key in row


def test_actions_need_the_change_permission(client, subscription):
    # given: staff without any permission
    client.force_login(UserFactory(is_staff=True))
    # when
    response = confirm(client, _action_url(subscription, "end-now"), {})
    # then
    subscription.refresh_from_db()
    assert response.status_code == 403
    assert subscription.status == Status.ACTIVE


# --- Timeline --------------------------------------------------------------------------------


def test_the_timeline_merges_events_charges_refunds_and_emails_in_order(subscription, now,
                                                                        superuser):
    # given
    subscription_cancel(subscription=subscription, reason="not_used",
                        actor_user=subscription.customer, now=now)
    # when
    timeline = subscription_timeline(subscription=subscription)
    # then
    assert [entry.at for entry in timeline] == sorted(entry.at for entry in timeline)
    sources = [(entry.source, entry.kind) for entry in timeline]
    assert sources == [
        ("charge", "succeeded"), ("event", "subscribed"), ("email", "welcome"),
        ("event", "cancelled"), ("email", "cancellation_confirmation"),
    ]
    assert timeline[0].actor_label == "camille@example.com"  # the customer paid
    assert timeline[2].actor_label == "système"


def test_the_timeline_takes_the_same_number_of_queries_however_long(subscription, superuser,
                                                                    now, past_due):
    # given
    def count():
        with CaptureQueriesContext(connection) as queries:
            subscription_timeline(subscription=subscription)
        return len(queries)

    few = count()
    for step in range(5):
        staff_subscription_extend(subscription=subscription, days=1, staff_user=superuser,
                                  now=now + days(step))
        staff_licence_regenerate(subscription=subscription, staff_user=superuser, now=now)
    subscription.refresh_from_db()
    # when
    many = count()
    # then
    assert len(subscription_timeline(subscription=subscription)) >= 13
    assert many == few <= 6  # 4 lists, and the customer and plan if not loaded yet


# --- Search and filters ----------------------------------------------------------------------


def _changelist(client, **params):
    response = client.get(reverse("admin:subscriptions_subscription_changelist"), params)
    assert response.status_code == 200
    return set(response.context["cl"].result_list)


@pytest.mark.parametrize("key", ["licence", "licence_without_dashes", "invoice", "email",
                                 "customer_number"])
def test_search_by_licence_key_invoice_number_email_or_customer_number(admin_client,
                                                                      subscription, past_due,
                                                                      key):
    # given
    invoice = Invoice.objects.get(subscription=subscription, kind="initial")
    terms = {
        "licence": subscription.licence_key,
        "licence_without_dashes": subscription.licence_key.replace("-", "").lower(),
        "invoice": invoice.number,
        "email": subscription.customer.email,
        "customer_number": subscription.customer.customer_number,
    }
    # then
    assert _changelist(admin_client, q=terms[key]) == {subscription}


def test_the_refund_window_filter(admin_client, subscription, now):
    # given: inside its 14-day window, and one with a 30-day window started 20 days ago
    recent = subscribed(plan=PlanFactory(code="essentiel"), at=now - days(3))
    long_window = subscribed(plan=PlanFactory(code="long", refund_window_days=30),
                             at=now - days(20))
    just_closed = subscribed(plan=PlanFactory(code="essentiel"), at=now - days(14))
    # then
    assert _changelist(admin_client, refund_window="open") == {recent, long_window}
    assert _changelist(admin_client, refund_window="closed") == {subscription, just_closed}


def test_the_refund_window_filter_leaves_out_ended_subscriptions(admin_client, now):
    # given
    ended = subscribed(plan=PlanFactory(code="essentiel"), at=now - days(3))
    subscription_cancel(subscription=ended, actor_user=ended.customer, now=now)
    # then
    assert _changelist(admin_client, refund_window="open") == set()


def test_the_dunning_filter(admin_client, subscription, past_due):
    # then
    assert _changelist(admin_client, dunning="past_due") == {past_due}
    assert _changelist(admin_client, dunning="none") == {subscription}
    assert _changelist(admin_client, dunning="suspended") == set()


# --- Plans -----------------------------------------------------------------------------------


def _plan_post(plan, **changes):
    return {
        "name": plan.name, "tier": plan.tier, "price_cents": plan.price_cents,
        "features": '["1 appareil"]', "refund_window_days": plan.refund_window_days,
        "renewal_refund_window_days": 0, "commitment_months": 0, "is_active": "on", **changes,
    }


@pytest.mark.parametrize("field", ["price_cents", "refund_window_days", "commitment_months"])
def test_plan_numbers_are_ascii_digits_only(admin_client, subscription, field):
    # given
    plan = subscription.plan
    before = (plan.price_cents, plan.refund_window_days, plan.commitment_months)
    # when
    response = admin_client.post(reverse("admin:subscriptions_plan_change", args=[plan.pk]),
                                 _plan_post(plan, **{field: "١٢", "confirm_price_change": "on"}))
    # then
    plan.refresh_from_db()
    assert response.status_code == 200
    assert "Indiquez un nombre entier, en chiffres." in response.content.decode()
    assert (plan.price_cents, plan.refund_window_days, plan.commitment_months) == before


def test_plan_prices_are_formatted(admin_client, subscription):
    # when
    body = admin_client.get(reverse("admin:subscriptions_plan_changelist")).content.decode()
    # then
    assert "8,25\u00a0€ HT" in body


def test_changing_the_price_of_a_plan_in_use_needs_a_confirmation(admin_client, subscription):
    # given
    plan = subscription.plan
    url = reverse("admin:subscriptions_plan_change", args=[plan.pk])
    # when
    refused = admin_client.post(url, _plan_post(plan, price_cents=990))
    plan.refresh_from_db()
    price_after_refusal = plan.price_cents
    confirmed = admin_client.post(url, _plan_post(plan, price_cents=990,
                                                  confirm_price_change="on"), follow=True)
    # then
    plan.refresh_from_db()
    assert refused.status_code == 200
    assert "1 abonnement(s) en cours utilisent cette formule" in refused.content.decode()
    assert price_after_refusal == 825
    assert plan.price_cents == 990
    assert any("paieront 9,90" in message for message in _messages(confirmed))
