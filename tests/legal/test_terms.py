"""Versioned subscription terms (issue 5, item 6; seed 004 "Mises à jour de la politique"):
the version in force, acceptance at checkout, and the publication emailed once to every
customer with a running subscription."""

from datetime import date, datetime

import pytest
from django.urls import reverse

from billing.models import Charge, Invoice, PaymentMethod
from legal.models import TermsAcceptance, TermsVersion
from legal.selectors import terms_current, terms_upcoming
from legal.services import TermsPublishError, terms_version_publish
from legal.tasks import terms_notify_batch_task
from notifications.models import OutboxEmail
from subscriptions.models import Status, Subscription
from tests.conftest import PARIS
from tests.factories import PlanFactory, UserFactory, card_token, days, subscribed

pytestmark = pytest.mark.django_db



def _version(version, effective, *, published=True, title=None, **fields):
    return TermsVersion.objects.create(
        version=version,
        title=title or f"Conditions d'abonnement {version}",
        body="Plans d'abonnement\n\nGarantie de remboursement de 14 jours.",
        effective_date=effective,
        published_at=datetime(2026, 1, 1, 12, tzinfo=PARIS) if published else None,
        **fields,
    )


# The version in force


def test_the_current_version_is_the_latest_published_one_whose_date_has_come(now):
    # given
    first = _version("2025-05", date(2025, 5, 26))
    today = _version("2026-03", date(2026, 3, 10))
    later = _version("2026-04", date(2026, 4, 1))
    _version("draft", date(2026, 3, 1), published=False)
    # when / then
    assert terms_current(now=now) == today
    assert terms_upcoming(now=now) == later
    assert terms_current(now=datetime(2026, 3, 9, 23, 59, tzinfo=PARIS)) == first
    assert terms_current(now=datetime(2026, 4, 1, 0, 0, tzinfo=PARIS)) == later
    assert terms_current(now=datetime(2025, 1, 1, tzinfo=PARIS)) is None


def test_the_terms_page_shows_the_version_in_force_and_announces_the_next(client, now):
    # given
    _version("2025-05", date(2025, 5, 26), title="Conditions de mai")
    upcoming = _version("2026-04", date(2026, 4, 1), title="Conditions d'avril")
    # when
    page = client.get(reverse("legal:terms")).content.decode()
    # then
    assert "Conditions de mai" in page
    assert "Conditions d&#x27;avril" not in page
    assert reverse("legal:terms_version", args=[upcoming.pk]) in page
    assert "1er avril 2026" in page


def test_a_draft_is_not_public(client):
    # given
    draft = _version("draft", date(2026, 3, 1), published=False)
    # when
    response = client.get(reverse("legal:terms_version", args=[draft.pk]))
    # then
    assert response.status_code == 404


def test_the_footer_links_the_terms(client):
    # when
    page = client.get(reverse("subscriptions:plans")).content.decode()
    # then
    assert f'href="{reverse("legal:terms")}"' in page
    assert "Conditions d'abonnement" in page


# Acceptance at checkout


@pytest.fixture
def customer(client):
    user = UserFactory()
    client.force_login(user)
    return user


def test_subscribing_records_the_acceptance_of_the_version_in_force(client, customer, now):
    # given
    version = _version("2025-05", date(2025, 5, 26))
    _version("2026-04", date(2026, 4, 1))
    plan = PlanFactory()
    # when
    response = client.post(reverse("subscriptions:subscribe", args=[plan.code]),
                           {"card_token": card_token(), "accept_terms": "1"})
    # then
    assert response.status_code == 302
    subscription = Subscription.objects.get(customer=customer)
    acceptance = TermsAcceptance.objects.get()
    assert (acceptance.customer, acceptance.version, acceptance.subscription,
            acceptance.accepted_at) == (customer, version, subscription, now)


def test_without_ticking_the_terms_nothing_is_charged(client, customer, now):
    # given
    _version("2025-05", date(2025, 5, 26))
    plan = PlanFactory()
    # when
    response = client.post(reverse("subscriptions:subscribe", args=[plan.code]),
                           {"card_token": card_token()})
    # then
    assert response.status_code == 200
    assert ("Cochez « J&#x27;accepte les conditions d&#x27;abonnement » pour souscrire."
            in response.content.decode())
    assert not Subscription.objects.exists()
    assert not Invoice.objects.exists()
    assert not Charge.objects.exists()
    assert not PaymentMethod.objects.exists()
    assert not TermsAcceptance.objects.exists()


def test_the_checkout_page_has_the_checkbox(client, customer):
    # given
    plan = PlanFactory()
    # when
    page = client.get(reverse("subscriptions:subscribe", args=[plan.code])).content.decode()
    # then
    assert 'name="accept_terms"' in page
    assert "J'accepte les conditions d'abonnement" in page


# Publication


@pytest.fixture
def staff(client):
    user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def _customers_by_status(now):
    """One customer per subscription state, and one who never subscribed."""
    customers = {}
    for status in (Status.ACTIVE, Status.PAST_DUE, Status.SUSPENDED, Status.ENDED):
        subscription = subscribed(at=now - days(20))
        Subscription.objects.filter(pk=subscription.pk).update(status=status)
        customers[status] = subscription.customer
    customers["never"] = UserFactory()
    return customers


def _publish_through_admin(client, version):
    url = reverse("admin:legal_termsversion_changelist")
    return client.post(url, {"action": "publish", "_selected_action": [version.pk],
                             "confirm": "yes"})


def test_publishing_asks_for_confirmation_first(client, staff, now):
    # given
    version = _version("2026-04", date(2026, 4, 1), published=False)
    _customers_by_status(now)
    # when
    response = client.post(reverse("admin:legal_termsversion_changelist"),
                           {"action": "publish", "_selected_action": [version.pk]})
    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert "Oui, publier" in page
    assert "<strong>3</strong> clients" in page
    version.refresh_from_db()
    assert version.published_at is None
    assert not OutboxEmail.objects.filter(kind="terms_updated").exists()


def test_publication_reaches_each_running_subscription_once_in_batches(
    client, staff, now, settings, django_capture_on_commit_callbacks
):
    # given
    settings.JOB_BATCH_SIZE = 2
    customers = _customers_by_status(now)
    two_subscriptions = subscribed(at=now - days(400))
    Subscription.objects.filter(pk=two_subscriptions.pk).update(status=Status.ENDED)
    second = subscribed(customer=two_subscriptions.customer, at=now - days(5))
    version = _version("2026-04", date(2026, 4, 1), published=False,
                       summary="Le support répond désormais sous 24 h.")
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = _publish_through_admin(client, version)
    # then
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.published_at == now
    emails = OutboxEmail.objects.filter(kind="terms_updated")
    expected = {customers[Status.ACTIVE], customers[Status.PAST_DUE],
                customers[Status.SUSPENDED], second.customer}
    assert sorted(e.customer_id for e in emails) == sorted(c.pk for c in expected)


def test_a_batch_run_twice_sends_nobody_a_second_email(now, django_capture_on_commit_callbacks):
    # given
    customers = _customers_by_status(now)
    version = _version("2026-04", date(2026, 4, 1))
    ids = [c.pk for c in customers.values()]
    # when
    with django_capture_on_commit_callbacks(execute=True):
        terms_notify_batch_task.apply(args=(version.pk, ids))
        terms_notify_batch_task.apply(args=(version.pk, ids))
    # then
    emails = OutboxEmail.objects.filter(kind="terms_updated")
    assert sorted(e.customer_id for e in emails) == sorted(
        customers[s].pk for s in (Status.ACTIVE, Status.PAST_DUE, Status.SUSPENDED))
    assert {e.occasion_key for e in emails} == {
        f"terms_updated:terms-{version.pk}-customer-{customers[s].pk}"
        for s in (Status.ACTIVE, Status.PAST_DUE, Status.SUSPENDED)
    }


def test_the_email_says_what_changes_when_and_where_to_read_it(now):
    # given
    customer = subscribed(at=now - days(20)).customer
    version = _version("2026-04", date(2026, 4, 1), title="Conditions d'avril",
                       summary="Le support répond désormais sous 24 h.")
    # when
    terms_notify_batch_task.apply(args=(version.pk, [customer.pk]))
    # then
    email = OutboxEmail.objects.get(kind="terms_updated")
    assert email.recipient == customer.email
    assert "1er avril 2026" in email.subject
    assert "Conditions d'avril" in email.body_text
    assert "Le support répond désormais sous 24 h." in email.body_text
    assert reverse("legal:terms_version", args=[version.pk]) in email.body_text
    # no "continued use means acceptance" (an unfair term for a consumer): the choice to leave
    assert "vaut acceptation" not in email.body_text
    assert "résilier votre contrat à tout moment" in email.body_text
    assert "Mon compte" in email.body_html


def test_a_published_version_cannot_be_published_again(client, staff, now):
    # given
    version = _version("2025-05", date(2025, 5, 26))
    subscribed(at=now - days(20))
    # when
    response = _publish_through_admin(client, version)
    # then
    assert response.status_code == 302
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == ["La version 2025-05 est déjà publiée."]
    assert not OutboxEmail.objects.filter(kind="terms_updated").exists()


def test_an_effective_date_in_the_past_is_refused(now):
    # given
    version = _version("late", date(2026, 3, 9), published=False)
    # when
    with pytest.raises(TermsPublishError, match="dans le passé"):
        terms_version_publish(version=version, now=now)
    # then
    version.refresh_from_db()
    assert version.published_at is None


def test_a_published_version_is_read_only_in_admin(client, staff):
    # given
    version = _version("2025-05", date(2025, 5, 26))
    url = reverse("admin:legal_termsversion_change", args=[version.pk])
    # when
    client.post(url, {"version": "x", "title": "Autre", "body": "Autre",
                      "effective_date": "2026-05-01"})
    # then
    version.refresh_from_db()
    assert version.title == "Conditions d'abonnement 2025-05"
