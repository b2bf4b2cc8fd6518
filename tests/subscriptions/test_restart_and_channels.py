""""Renouveler" after the end, subscriptions bought elsewhere, and the renewal refund window
(issue 4 items 6–8; DESIGN §4, §5, §8)."""

import pytest
from django.urls import reverse

from billing.models import Charge, Invoice, Refund
from notifications.models import OutboxEmail
from subscriptions.jobs import run_due_jobs
from subscriptions.models import Channel, EndReason, Plan, Status, Subscription
from subscriptions.services import CancellationError, subscription_cancel
from subscriptions.services.change_plan import (
    subscription_schedule_downgrade,
    subscription_switch_to_annual,
)
from subscriptions.services.renew import subscription_expire
from tests.factories import PlanFactory, UserFactory, card_token, days, subscribed

pytestmark = pytest.mark.django_db

def _new_card(number="4242424242424242"):
    return {"card_token": card_token(number), "accept_terms": "1"}
SAVED_CARD = {"use_saved_card": "1", "accept_terms": "1"}


@pytest.fixture
def expired(now, client, django_capture_on_commit_callbacks):
    """Monthly, cancelled without refund, and past its end."""
    subscription = subscribed(plan=PlanFactory(), at=now - days(40))
    subscription_cancel(subscription=subscription, now=now - days(20))
    with django_capture_on_commit_callbacks(execute=True):
        run_due_jobs(now=now)
    subscription.refresh_from_db()
    assert (subscription.status, subscription.end_reason) == (Status.ENDED, EndReason.EXPIRED)
    client.force_login(subscription.customer)
    return subscription


def _restart_url(subscription):
    return reverse("subscriptions:restart", args=[subscription.pk])


def test_the_page_offers_renouveler_after_the_end(client, expired):
    # when
    page = client.get(reverse("subscriptions:billing")).content.decode()
    # then
    assert _restart_url(expired) in page
    assert "Annuler l&#x27;abonnement" not in page


def test_renouveler_starts_a_new_paid_period_now_with_the_same_licence_key(
    client, expired, now, django_capture_on_commit_callbacks
):
    # given
    key = expired.licence_key
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_restart_url(expired), SAVED_CARD)
    # then
    assert response.status_code == 302
    expired.refresh_from_db()
    assert (expired.status, expired.licence_key, expired.licence_active) == (
        Status.ACTIVE, key, True)
    assert expired.billing_anchor == now
    assert expired.current_period_start == now
    assert (expired.auto_renew, expired.ends_at, expired.end_reason) == (True, None, "")
    invoice = Invoice.objects.filter(subscription=expired).order_by("-issued_at").first()
    assert (invoice.kind, invoice.status, invoice.period_start) == (
        Invoice.Kind.INITIAL, Invoice.Status.PAID, now)
    assert OutboxEmail.objects.filter(kind="welcome", subscription=expired).count() == 2
    assert Subscription.objects.count() == 1


def test_renouveler_renews_normally_afterwards(client, expired, now,
                                               django_capture_on_commit_callbacks):
    # given
    client.post(_restart_url(expired), SAVED_CARD)
    expired.refresh_from_db()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        run_due_jobs(now=expired.current_period_end)
    # then
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL, subscription=expired)
    assert renewal.period_start == expired.current_period_end
    assert renewal.status == Invoice.Status.PAID


def test_a_refused_card_does_not_restart(client, expired):
    # when
    response = client.post(_restart_url(expired), _new_card("4000000000000341"))
    # then
    expired.refresh_from_db()
    assert response.status_code == 200
    assert "Paiement refusé" in response.content.decode()
    assert expired.status == Status.ENDED
    assert not Invoice.objects.filter(subscription=expired, status=Invoice.Status.OPEN).exists()


def test_a_running_subscription_cannot_be_restarted(client, now):
    # given
    subscription = subscribed(at=now - days(3))
    client.force_login(subscription.customer)
    # when
    response = client.post(_restart_url(subscription), SAVED_CARD)
    # then
    assert response.status_code == 302
    assert Charge.objects.count() == 1


def test_cancelled_and_past_its_end_before_the_expiry_job_ran_can_be_restarted(
    client, now
):
    # given: the end passed but no job has ended it yet
    subscription = subscribed(plan=PlanFactory(), at=now - days(40))
    subscription_cancel(subscription=subscription, now=now - days(20))
    client.force_login(subscription.customer)
    # when
    client.post(_restart_url(subscription), SAVED_CARD)
    # then
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE
    assert subscription.current_period_start == now
    assert subscription.events.filter(kind="ended").count() == 1


def test_another_customer_cannot_restart_it(client, expired):
    # given
    client.force_login(UserFactory())
    # when
    response = client.post(_restart_url(expired), SAVED_CARD)
    # then
    assert response.status_code == 404


@pytest.mark.parametrize(("channel", "words"), [
    (Channel.APP_STORE, "Réglages"),
    (Channel.GOOGLE_PLAY, "Paiements et abonnements"),
    (Channel.RESELLER, "revendeur"),
    (Channel.ISP, "fournisseur d'accès"),
])
def test_a_subscription_bought_elsewhere_says_where_to_manage_it_and_offers_no_action(
    client, now, channel, words
):
    # given
    subscription = subscribed(at=now - days(20))
    Subscription.objects.filter(pk=subscription.pk).update(channel=channel)
    client.force_login(subscription.customer)
    # when
    page = client.get(reverse("subscriptions:billing")).content.decode()
    # then
    assert words in page
    for action in ("Annuler l&#x27;abonnement", "Mettre à jour la carte", "Renouveler",
                   "Payer maintenant"):
        assert action not in page
    # and the services refuse too
    subscription.refresh_from_db()
    with pytest.raises(CancellationError):
        subscription_cancel(subscription=subscription, now=now)
    Subscription.objects.filter(pk=subscription.pk).update(status=Status.ENDED)
    response = client.post(_restart_url(subscription), SAVED_CARD)
    assert response.status_code == 302
    assert Charge.objects.count() == 1


@pytest.mark.parametrize(("days_after_renewal", "refunded"), [(59, True), (60, False)])
def test_the_renewal_refund_window_with_a_real_renewal(
    now, days_after_renewal, refunded, django_capture_on_commit_callbacks
):
    # given: a plan refunding renewals for 60 days, renewed by the renewal job
    plan = PlanFactory(renewal_refund_window_days=60)
    subscription = subscribed(plan=plan, at=now - days(31))
    with django_capture_on_commit_callbacks(execute=True):
        run_due_jobs(now=subscription.current_period_end)
    renewal_charge = Charge.objects.get(invoice__kind=Invoice.Kind.RENEWAL)
    subscription.refresh_from_db()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        subscription, terms = subscription_cancel(
            subscription=subscription,
            now=renewal_charge.settled_at + days(days_after_renewal),
        )
    # then
    if refunded:
        assert (subscription.status, subscription.end_reason) == (Status.ENDED,
                                                                   EndReason.REFUNDED)
        refund = Refund.objects.get()
        assert (refund.charge_id, refund.amount_cents, refund.status) == (
            renewal_charge.pk, renewal_charge.amount_cents, Refund.Status.SUCCEEDED)
    else:
        assert subscription.status == Status.ACTIVE
        assert not Refund.objects.exists()
        assert not subscription_expire(subscription_id=subscription.pk, now=now)


def test_the_next_charge_shows_the_price_of_a_scheduled_downgrade(client, now):
    # given
    premium = PlanFactory(code="premium", tier=2, price_cents=1250)
    essential = PlanFactory(code="essentiel", tier=1, price_cents=825)
    subscription = subscribed(plan=premium, at=now - days(20))
    subscription_schedule_downgrade(subscription=subscription, plan=essential, now=now)
    client.force_login(subscription.customer)
    # when
    page = client.get(reverse("subscriptions:billing")).content.decode()
    # then
    next_charge = page.split('class="next-charge">')[1].split("</dd>")[0]
    assert "9,90" in next_charge
    assert "15,00" not in next_charge


def test_the_renewal_refund_window_does_not_apply_after_a_switch_to_annual(
    now, django_capture_on_commit_callbacks
):
    # given: a monthly renewal, then a switch to annual the next day
    plan = PlanFactory(code="mensuel", tier=1, price_cents=825, renewal_refund_window_days=60)
    PlanFactory(code="annuel", tier=1, interval="year", price_cents=8250)
    subscription = subscribed(plan=plan, at=now - days(31))
    with django_capture_on_commit_callbacks(execute=True):
        run_due_jobs(now=subscription.current_period_end)
    subscription.refresh_from_db()
    switched_at = subscription.current_period_start + days(1)
    subscription_switch_to_annual(subscription=subscription,
                                  plan=Plan.objects.get(code="annuel"), now=switched_at)
    subscription.refresh_from_db()
    # when
    subscription, terms = subscription_cancel(subscription=subscription,
                                              now=switched_at + days(4))
    # then: the annual rule applies (access until the end of the month slice), not an
    # immediate end refunding only the old monthly renewal
    assert terms.rule == "annual"
    assert subscription.status == Status.ACTIVE
