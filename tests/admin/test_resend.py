"""Staff resend an email from the outbox admin: a confirmation first, then exactly one new
pending copy per confirmation, recorded on the subscription with the staff user."""

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Permission
from django.urls import reverse

from notifications.models import OutboxEmail
from subscriptions.models import Actor, SubscriptionEvent
from subscriptions.services.staff import email_resend_recorded
from tests.confirmations import confirm, form_key
from tests.factories import PlanFactory, UserFactory, days, subscribed

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:notifications_outboxemail_changelist"


@pytest.fixture
def welcome(now):
    subscription = subscribed(customer=UserFactory(email="camille@example.com"),
                              plan=PlanFactory(code="essentiel"), at=now - days(1))
    email = OutboxEmail.objects.get(subscription=subscription, kind="welcome")
    email.status = OutboxEmail.Status.SENT
    email.save()
    return email


def _click(client, email, **extra):
    """The "Renvoyer" action; with confirm="yes", from a newly opened confirmation page."""
    return confirm(client, reverse(CHANGELIST), {"action": "resend",
                                                 helpers.ACTION_CHECKBOX_NAME: [email.pk],
                                                 **extra})


def test_resend_asks_for_confirmation_first(admin_client, welcome):
    # when
    response = _click(admin_client, welcome)

    # then
    assert response.status_code == 200
    assert welcome.subject in response.content.decode()
    assert OutboxEmail.objects.count() == 1
    assert not SubscriptionEvent.objects.filter(kind="email_resent").exists()


def test_each_confirmed_click_queues_exactly_one_copy(admin_client, superuser, welcome, now,
                                                      django_capture_on_commit_callbacks):
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = _click(admin_client, welcome, confirm="yes")
    second = _click(admin_client, welcome, confirm="yes")

    # then
    assert first.status_code == second.status_code == 302
    assert len(callbacks) == 1  # the delivery task, after commit
    copies = OutboxEmail.objects.exclude(pk=welcome.pk).order_by("pk")
    assert [c.occasion_key for c in copies] == [f"{welcome.occasion_key}:resend:1",
                                                f"{welcome.occasion_key}:resend:2"]
    assert {c.status for c in copies} == {OutboxEmail.Status.PENDING}
    assert {c.subject for c in copies} == {welcome.subject}
    assert {c.body_text for c in copies} == {welcome.body_text}
    welcome.refresh_from_db()
    assert welcome.status == OutboxEmail.Status.SENT
    events = SubscriptionEvent.objects.filter(kind="email_resent")
    assert events.count() == 2
    assert {(e.actor, e.actor_user_id, e.at) for e in events} == {
        (Actor.STAFF, superuser.pk, now)}


def test_one_confirmation_posted_twice_queues_one_copy(admin_client, welcome):
    # given: the confirmation page, as the browser got it
    page = admin_client.post(reverse(CHANGELIST), {"action": "resend",
                                                   helpers.ACTION_CHECKBOX_NAME: [welcome.pk]})
    confirmation = {"action": "resend", helpers.ACTION_CHECKBOX_NAME: [welcome.pk],
                    "confirm": "yes", "action_key": form_key(page)}

    # when
    admin_client.post(reverse(CHANGELIST), confirmation)
    second = admin_client.post(reverse(CHANGELIST), confirmation, follow=True)

    # then
    assert OutboxEmail.objects.count() == 2
    assert SubscriptionEvent.objects.filter(kind="email_resent").count() == 1
    assert "Cette action a déjà été effectuée" in second.content.decode()


def test_a_confirmation_without_its_key_queues_nothing(admin_client, welcome):
    # when
    response = admin_client.post(reverse(CHANGELIST), {
        "action": "resend", helpers.ACTION_CHECKBOX_NAME: [welcome.pk], "confirm": "yes"},
        follow=True)

    # then
    assert OutboxEmail.objects.count() == 1
    assert "clé d&#x27;action absente ou incorrecte" in response.content.decode()


def test_resending_a_copy_counts_from_the_original(welcome, superuser, now):
    # given
    copy = email_resend_recorded(email=welcome, staff_user=superuser, now=now)

    # when
    again = email_resend_recorded(email=copy, staff_user=superuser, now=now)

    # then
    assert again.occasion_key == f"{welcome.occasion_key}:resend:2"


def test_a_copy_goes_to_the_customers_current_address(welcome, superuser, now):
    # given
    customer = welcome.customer
    customer.email = "camille.martin@example.com"
    customer.save()

    # when
    copy = email_resend_recorded(email=welcome, staff_user=superuser, now=now)

    # then
    assert copy.recipient == "camille.martin@example.com"


def test_an_email_without_subscription_is_resent_without_event(superuser, now):
    # given
    customer = UserFactory()
    email = OutboxEmail.objects.create(
        occasion_key="support_reply:42", kind="support_reply", customer=customer,
        recipient=customer.email, language="fr", subject="Réponse", body_text="Bonjour",
        body_html="<p>Bonjour</p>", created_at=now, status=OutboxEmail.Status.SENT,
    )

    # when
    copy = email_resend_recorded(email=email, staff_user=superuser, now=now)

    # then
    assert copy.occasion_key == "support_reply:42:resend:1"
    assert not SubscriptionEvent.objects.exists()


def test_support_may_resend(support_client, welcome):
    # when
    response = _click(support_client, welcome, confirm="yes")

    # then
    assert response.status_code == 302
    assert OutboxEmail.objects.count() == 2


def test_staff_without_the_permission_cannot_resend(client, welcome):
    # given
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_outboxemail"))
    client.force_login(staff)

    # when
    _click(client, welcome, confirm="yes")

    # then
    assert OutboxEmail.objects.count() == 1
