"""Account deletion respects a running commitment (issue 10, item 6): a contract with a
commitment runs to the commitment's end and its remaining instalments stay due, so the account
(and the card they are charged to) stays until then; the page says so instead of "prend fin
immédiatement", and the service refuses too. Inside the refund window, or once no instalment
remains, deletion ends the subscription as before."""

import pytest
from allauth.account.models import EmailAddress
from django.urls import reverse

from accounts.services import AccountDeletionError, account_delete
from billing.models import PaymentMethod
from notifications.models import OutboxEmail
from subscriptions.models import Status, Subscription, SubscriptionEvent
from subscriptions.rules import Refusal, account_delete_refusal
from subscriptions.services import subscription_cancel
from tests.factories import PASSWORD, PlanFactory, UserFactory, days, subscribed

pytestmark = pytest.mark.django_db

DELETE_URL = reverse("accounts:delete")
NBSP = "\u00a0"
IMMEDIATELY = "prend fin immédiatement"


def commitment_plan(months=12):
    """Monthly at 8,40 € TTC, committed for ``months`` months."""
    return PlanFactory(code=f"engagement-{months}", name="Essentiel engagement",
                       price_cents=700, commitment_months=months)


@pytest.fixture
def committed(client, now):
    """Bought 20 days ago (Wednesday 18 February 2026): past the refund window, committed
    until 18 February 2027."""
    subscription = subscribed(customer=UserFactory(), plan=commitment_plan(), at=now - days(20))
    client.force_login(subscription.customer)
    return subscription


def _state():
    return (
        list(Subscription.objects.values_list("status", "auto_renew", "ends_at").order_by("pk")),
        list(EmailAddress.objects.values_list("email", flat=True).order_by("pk")),
        list(PaymentMethod.objects.values_list("provider_token", flat=True).order_by("pk")),
        SubscriptionEvent.objects.count(),
        OutboxEmail.objects.count(),
    )


def test_the_page_says_the_contract_runs_on_and_offers_no_deletion(client, committed):
    # when
    page = client.get(DELETE_URL).content.decode()
    # then
    assert "Votre compte ne peut pas encore être supprimé." in page
    assert ("le contrat se poursuit jusqu'au 18 février 2027 et les échéances restantes "
            f"(8,40{NBSP}€ TTC chacune) restent dues jusque-là") in page
    assert IMMEDIATELY not in page
    assert 'name="password"' not in page
    assert "Supprimer définitivement mon compte" not in page
    assert f'href="{reverse("subscriptions:cancel", args=[committed.pk])}"' in page


def test_deleting_is_refused_and_changes_nothing(client, committed):
    # given
    before = _state()
    # when
    response = client.post(DELETE_URL, {"password": PASSWORD})
    # then
    assert response.status_code == 200
    assert "Votre compte ne peut pas encore être supprimé." in response.content.decode()
    assert _state() == before
    committed.customer.refresh_from_db()
    assert committed.customer.is_active
    committed.refresh_from_db()
    assert (committed.status, committed.auto_renew) == (Status.ACTIVE, True)


def test_an_already_cancelled_commitment_still_runs_on(client, committed, now):
    # given
    subscription, terms = subscription_cancel(subscription=committed, now=now)
    assert terms.rule == "commitment"
    before = _state()
    # when
    page = client.get(DELETE_URL).content.decode()
    response = client.post(DELETE_URL, {"password": PASSWORD})
    # then
    assert "Votre résiliation est enregistrée" in page
    assert "18 février 2027" in page and IMMEDIATELY not in page
    assert "Votre compte ne peut pas encore être supprimé." in response.content.decode()
    assert _state() == before


def test_inside_the_refund_window_deletion_ends_it_with_the_refund(
    client, now, django_capture_on_commit_callbacks
):
    # given
    subscription = subscribed(customer=UserFactory(), plan=commitment_plan(), at=now - days(2))
    client.force_login(subscription.customer)
    assert account_delete_refusal(subscription, now=now) is None
    page = client.get(DELETE_URL).content.decode()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        client.post(DELETE_URL, {"password": PASSWORD})
    # then
    assert IMMEDIATELY in page
    subscription.refresh_from_db()
    assert (subscription.status, subscription.end_reason) == (Status.ENDED, "refunded")
    subscription.customer.refresh_from_db()
    assert not subscription.customer.is_active


def test_in_the_last_committed_period_nothing_remains_due_so_deletion_ends_it(client, now):
    # given: a one-month commitment, in its only (paid) period
    subscription = subscribed(customer=UserFactory(), plan=commitment_plan(months=1),
                              at=now - days(20))
    client.force_login(subscription.customer)
    assert account_delete_refusal(subscription, now=now) is None
    # when
    client.post(DELETE_URL, {"password": PASSWORD})
    # then
    subscription.refresh_from_db()
    assert subscription.status == Status.ENDED
    subscription.customer.refresh_from_db()
    assert not subscription.customer.is_active


def test_the_predicate(committed, now):
    # given
    monthly = subscribed(at=now - days(20))
    # when / then
    assert account_delete_refusal(committed, now=now) == Refusal.COMMITMENT_RUNNING
    assert account_delete_refusal(monthly, now=now) is None


def test_the_data_page_says_a_commitment_runs_on(client, committed):
    # when
    page = client.get(reverse("accounts:data")).content.decode()
    # then
    assert ("Un contrat avec engagement se poursuit jusqu'au terme de l'engagement : votre "
            "compte ne peut être supprimé qu'une fois ce contrat terminé.") in page


def test_the_service_refuses_too(committed, now):
    # given
    before = _state()
    # when / then
    with pytest.raises(AccountDeletionError) as refused:
        account_delete(customer=committed.customer, now=now)
    assert "les échéances restantes restent dues" in str(refused.value)
    assert _state() == before
