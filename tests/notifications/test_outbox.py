"""The email outbox (DESIGN §10): one email per occasion, delivered after commit, transient
SMTP errors retried later with backoff, rendered in the customer's language. Outages, crashes
and concurrent workers: test_outbox_outage.py."""

import re
import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives

from billing.models import Invoice
from config.celery import app as celery_app
from notifications.models import OutboxEmail
from notifications.services import email_deliver, email_enqueue, retry_delay
from notifications.tasks import email_deliver_task
from tests.factories import PlanFactory, UserFactory, days, subscribed

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscription(now):
    """Subscribed yesterday; its own welcome email stays queued (its commit never happens)."""
    return subscribed(customer=UserFactory(first_name="Camille"),
                      plan=PlanFactory(code="essentiel", name="Essentiel"), at=now - days(1))


def _welcome(subscription, *, occasion="resend-1", now=None):
    return email_enqueue(
        kind="welcome",
        occasion=occasion,
        customer=subscription.customer,
        subscription=subscription,
        context={"invoice": Invoice.objects.get(subscription=subscription),
                 "plan": subscription.plan},
        now=now,
    )


@pytest.fixture
def queued(subscription, now):
    return _welcome(subscription, now=now)


@pytest.fixture
def smtp_down(monkeypatch):
    calls = []

    def send(self, fail_silently=False):
        calls.append(self)
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr(EmailMultiAlternatives, "send", send)
    return calls


# Queueing


def test_enqueue_stores_a_pending_rendered_email(subscription, now):
    # when
    email = _welcome(subscription, now=now)
    # then
    assert email.occasion_key == "welcome:resend-1"
    assert (email.kind, email.customer, email.subscription) == (
        "welcome", subscription.customer, subscription)
    assert (email.recipient, email.language) == (subscription.customer.email, "fr")
    assert (email.status, email.attempts, email.created_at, email.sent_at) == (
        OutboxEmail.Status.PENDING, 0, now, None)
    assert email.next_attempt_at is None  # due at once
    assert re.fullmatch(r"<outbox-[0-9a-f]{32}@example\.com>", email.message_id)
    assert email.subject == "Bienvenue : votre abonnement Essentiel est actif"
    assert subscription.licence_key in email.body_text
    assert f"<code>{subscription.licence_key}</code>" in email.body_html


def test_enqueue_twice_for_the_same_occasion_queues_one_email_and_delivers_it_once(
    subscription, now, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        first = _welcome(subscription, now=now)
        second = _welcome(subscription, now=now + days(1))
    # then
    assert second.pk == first.pk
    assert OutboxEmail.objects.filter(occasion_key="welcome:resend-1").count() == 1
    assert len(callbacks) == 1
    assert len(mail.outbox) == 1
    first.refresh_from_db()
    assert (first.status, first.attempts) == (OutboxEmail.Status.SENT, 1)


def test_another_occasion_is_another_email(subscription, now, django_capture_on_commit_callbacks):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        first = _welcome(subscription, occasion="resend-1", now=now)
        second = _welcome(subscription, occasion="resend-2", now=now)
    # then
    assert first.pk != second.pk
    assert len(mail.outbox) == 2


def test_nothing_is_delivered_before_commit(subscription, now,
                                            django_capture_on_commit_callbacks):
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        email = _welcome(subscription, now=now)
    # then
    assert len(callbacks) == 1
    assert mail.outbox == []
    email.refresh_from_db()
    assert email.status == OutboxEmail.Status.PENDING


# Delivery


def test_deliver_sends_text_and_html_and_marks_sent(queued, now):
    # when
    email = email_deliver(email_id=queued.pk, now=now)
    # then
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [queued.recipient]
    assert message.subject == queued.subject
    assert message.body == queued.body_text
    assert message.alternatives == [(queued.body_html, "text/html")]
    assert message.from_email == "Abonnements <abonnements@example.com>"
    assert message.message()["Message-ID"] == queued.message_id
    email.refresh_from_db()
    assert (email.status, email.sent_at, email.attempts, email.last_error) == (
        OutboxEmail.Status.SENT, now, 1, "")
    assert email.sending_started_at == now


def test_deliver_again_is_a_no_op(queued, now):
    # given
    email_deliver(email_id=queued.pk, now=now)
    # when
    email = email_deliver(email_id=queued.pk, now=now + days(1))
    # then
    assert len(mail.outbox) == 1
    email.refresh_from_db()
    assert (email.status, email.sent_at, email.attempts) == (OutboxEmail.Status.SENT, now, 1)


def test_a_transient_smtp_error_keeps_it_pending_until_its_next_attempt(queued, smtp_down,
                                                                        now):
    # when
    email = email_deliver(email_id=queued.pk, now=now)
    # then
    email.refresh_from_db()
    assert (email.status, email.attempts, email.sent_at) == (OutboxEmail.Status.PENDING, 1, None)
    assert email.next_attempt_at == now + timedelta(minutes=1)
    assert email.last_error == "Connection unexpectedly closed"
    assert len(smtp_down) == 1
    assert mail.outbox == []


def test_before_its_next_attempt_it_is_not_tried_again(queued, smtp_down, now):
    # given
    email_deliver(email_id=queued.pk, now=now)
    # when
    email = email_deliver(email_id=queued.pk, now=now + timedelta(seconds=59))
    # then
    assert (email.status, email.attempts) == (OutboxEmail.Status.PENDING, 1)
    assert len(smtp_down) == 1


def test_a_retry_after_a_transient_error_sends_it(queued, monkeypatch, smtp_down, now):
    # given
    email_deliver(email_id=queued.pk, now=now)
    monkeypatch.undo()
    # when
    email = email_deliver(email_id=queued.pk, now=now + timedelta(minutes=1))
    # then
    assert (email.status, email.attempts, email.sent_at, email.next_attempt_at) == (
        OutboxEmail.Status.SENT, 2, now + timedelta(minutes=1), None)
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(("attempts", "minutes"), [
    (1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 32), (7, 60), (8, 60), (500, 60),
])
def test_the_delay_before_the_next_attempt_doubles_up_to_an_hour(attempts, minutes):
    assert retry_delay(attempts) == timedelta(minutes=minutes)


def test_a_non_transient_error_is_raised_and_leaves_it_sending_like_a_crash(queued,
                                                                           monkeypatch, now):
    # given
    def broken(self, fail_silently=False):
        raise ValueError("bug")

    monkeypatch.setattr(EmailMultiAlternatives, "send", broken)
    # when
    with pytest.raises(ValueError):
        email_deliver(email_id=queued.pk, now=now)
    # then
    email = OutboxEmail.objects.get(pk=queued.pk)
    assert (email.status, email.attempts, email.sending_started_at) == (
        OutboxEmail.Status.SENDING, 1, now)


@pytest.fixture
def errors_in_results(monkeypatch):
    """Eager tasks report their errors in the result instead of raising them."""
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", False)


def test_the_delivery_task_makes_one_attempt_and_leaves_retries_to_the_outbox_scan(
    queued, smtp_down, errors_in_results, now
):
    # when
    first = email_deliver_task.apply(args=[queued.pk])
    second = email_deliver_task.apply(args=[queued.pk])
    # then
    assert first.successful() and second.successful()
    email = OutboxEmail.objects.get(pk=queued.pk)
    assert (email.status, email.attempts, email.next_attempt_at) == (
        OutboxEmail.Status.PENDING, 1, now + timedelta(minutes=1))
    assert len(smtp_down) == 1


def test_the_delivery_task_does_not_retry_a_bug(queued, monkeypatch, errors_in_results):
    # given
    calls = []

    def broken(self, fail_silently=False):
        calls.append(self)
        raise ValueError("bug")

    monkeypatch.setattr(EmailMultiAlternatives, "send", broken)
    # when
    result = email_deliver_task.apply(args=[queued.pk])
    # then
    assert result.failed()
    assert len(calls) == 1


# Language


@pytest.mark.parametrize(("language", "subject", "text", "html"), [
    ("fr", "Bienvenue : votre abonnement Essentiel est actif",
     "Bonjour Camille,", "Clé de licence : <code>"),
    ("en", "Welcome: your Essentiel subscription is active",
     "Hello Camille,", "Licence key: <code>"),
])
def test_the_email_is_in_the_customers_preferred_language(subscription, now, language, subject,
                                                          text, html):
    # given
    subscription.customer.preferred_language = language
    subscription.customer.save()
    # when
    email = _welcome(subscription, now=now)
    email_deliver(email_id=email.pk, now=now)
    # then
    assert email.language == language
    message = mail.outbox[0]
    assert message.subject == subject
    assert message.body.startswith(text)
    assert html in message.alternatives[0][0]


def test_amounts_and_dates_follow_the_language(subscription, now):
    # given
    subscription.customer.preferred_language = "en"
    subscription.customer.save()
    # when
    english = _welcome(subscription, occasion="en", now=now)
    subscription.customer.preferred_language = "fr"
    subscription.customer.save()
    french = _welcome(subscription, occasion="fr", now=now)
    # then
    assert "€9.90 incl. VAT, paid on March 9, 2026" in english.body_text
    assert "9,90\u00a0€ TTC payé le 9 mars 2026" in french.body_text


def test_the_welcome_email_of_a_subscription_is_in_the_customers_language(now):
    # given
    customer = UserFactory(preferred_language="en")
    # when
    subscription = subscribed(customer=customer, plan=PlanFactory(name="Essentiel"), at=now)
    # then
    email = OutboxEmail.objects.get(subscription=subscription)
    assert (email.kind, email.language) == ("welcome", "en")
    assert email.subject == "Welcome: your Essentiel subscription is active"
