"""The outbox through SMTP outages, worker crashes and concurrent workers (DESIGN §10): a
transient error is retried with backoff by the outbox scan until EMAIL_RETRY_HORIZON_HOURS
after the email was queued, then the email is failed, shown to staff, who can resend it; a
worker that dies mid-send makes the email go out at most once more, with the same Message-ID;
two workers never both send it."""

import smtplib
import time
from datetime import timedelta
from itertools import pairwise

import pytest
import time_machine
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse

from notifications.models import OutboxEmail
from notifications.services import INTERRUPTED, email_deliver, email_enqueue
from subscriptions.jobs import JOBS, due_batches, run_batch, run_due_jobs
from subscriptions.services import subscription_cancel
from subscriptions.services.staff import email_resend_recorded
from tests.confirmations import confirm
from tests.factories import PlanFactory, UserFactory, days, subscribed
from tests.threads import at_once

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


class WorkerKilled(BaseException):
    """The worker process dies: nothing after this point of the service runs."""


class Smtp:
    """The SMTP server as the outbox sees it: up (messages land in mail.outbox), down (every
    send raises a transient error) or accepting the message and then killing the worker. Each
    call is recorded with the clock time and the Message-ID sent."""

    def __init__(self):
        self.state = "up"
        self.calls = []


@pytest.fixture
def smtp(monkeypatch):
    server = Smtp()
    send = EmailMultiAlternatives.send

    def fake_send(message, fail_silently=False):
        server.calls.append((time.time(), message.extra_headers.get("Message-ID")))
        if server.state == "down":
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        sent = send(message, fail_silently)
        if server.state == "crash after send":
            raise WorkerKilled
        return sent

    monkeypatch.setattr(EmailMultiAlternatives, "send", fake_send)
    return server


def scan(at, *, every_job=False):
    """A beat scan at ``at``: the outbox job alone, or every job as billing_tick runs them."""
    with time_machine.travel(at, tick=False):
        if every_job:
            run_due_jobs(now=at)
            return
        job = JOBS["deliver_emails"]
        for batch in due_batches(job, now=at):
            run_batch(job, batch, now=at)


def _queue(customer, *, occasion="outage", now):
    return email_enqueue(
        kind="support_reply", occasion=occasion, customer=customer, now=now,
        context={"support_request": {"reference": "S-1", "subject": "Facture"},
                 "message": {"body": "Bonjour"}, "thread_url": "https://example.com/s/1"},
    )


def _row(email):
    return OutboxEmail.objects.get(pk=email.pk)


@pytest.mark.django_db
def test_a_cancellation_confirmation_outlives_a_day_long_smtp_outage(
    smtp, now, django_capture_on_commit_callbacks
):
    # given: subscribed yesterday, the welcome email sent; SMTP goes down
    subscription = subscribed(customer=UserFactory(), plan=PlanFactory(), at=now - days(1))
    OutboxEmail.objects.update(status=OutboxEmail.Status.SENT)
    smtp.state = "down"
    # when: cancelled, its confirmation's delivery after commit fails
    with django_capture_on_commit_callbacks(execute=True):
        subscription_cancel(subscription=subscription, reason="too_expensive", now=now)
    confirmation = OutboxEmail.objects.get(kind="cancellation_confirmation")
    # then: it stays pending through 29 hours of outage, scanned every minute, then hourly
    steps = [now + n * MINUTE for n in range(1, 60)] + [now + n * HOUR for n in range(1, 30)]
    for step in steps:
        scan(step, every_job=True)
        assert _row(confirmation).status == OutboxEmail.Status.PENDING, step
    assert mail.outbox == []
    # attempted with backoff (1, 2, 4, ... minutes, then hourly), not at every scan
    attempted_at = [round((at - now.timestamp()) / 60) for at, _ in smtp.calls]
    assert attempted_at == [0, 1, 3, 7, 15, 31] + [60 * hours for hours in range(2, 30)]
    # when: SMTP is back
    smtp.state = "up"
    scan(now + 30 * HOUR, every_job=True)
    scan(now + 31 * HOUR, every_job=True)
    # then: delivered once
    confirmation = _row(confirmation)
    assert (confirmation.status, confirmation.sent_at) == (OutboxEmail.Status.SENT,
                                                           now + 30 * HOUR)
    [message] = mail.outbox
    assert message.subject == confirmation.subject
    assert message.message()["Message-ID"] == confirmation.message_id


@pytest.mark.django_db
def test_attempts_back_off_from_a_minute_doubling_up_to_an_hour(smtp, now):
    # given
    smtp.state = "down"
    email = _queue(UserFactory(), now=now)
    # when: a scan every minute for five hours
    for n in range(5 * 60):
        scan(now + n * MINUTE)
    # then
    attempted_at = [at for at, _ in smtp.calls]
    intervals = [round((b - a) / 60) for a, b in pairwise(attempted_at)]
    assert intervals == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert (_row(email).status, _row(email).attempts) == (OutboxEmail.Status.PENDING, 10)


@pytest.mark.django_db
def test_after_the_horizon_it_is_failed_shown_to_staff_and_a_resend_is_delivered(
    smtp, client, now, settings, django_capture_on_commit_callbacks
):
    # given: SMTP down from the moment the email is queued
    assert settings.EMAIL_RETRY_HORIZON_HOURS == 72
    smtp.state = "down"
    email = _queue(UserFactory(), now=now)
    # when: hourly scans up to the horizon
    for hours in range(72):
        scan(now + hours * HOUR)
        assert _row(email).status == OutboxEmail.Status.PENDING, hours
    scan(now + 72 * HOUR)
    # then
    email = _row(email)
    assert (email.status, email.next_attempt_at) == (OutboxEmail.Status.FAILED, None)
    assert email.last_error == "Connection unexpectedly closed"
    calls = len(smtp.calls)
    scan(now + 73 * HOUR)
    assert len(smtp.calls) == calls  # never tried again by itself
    # then: staff see it from the admin index
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    index = client.get(reverse("admin:index")).content.decode()
    link = reverse("admin:notifications_outboxemail_changelist") + "?status__exact=failed"
    assert f'<a href="{link}">1 e-mail en échec, à renvoyer</a>' in index
    failed_list = client.get(link)
    assert list(failed_list.context["cl"].queryset) == [email]
    # when: SMTP is back and staff resend it
    smtp.state = "up"
    with time_machine.travel(now + 74 * HOUR, tick=False), \
            django_capture_on_commit_callbacks(execute=True):
        response = confirm(client, reverse("admin:notifications_outboxemail_changelist"),
                           {"action": "resend", "_selected_action": [email.pk],
                            "confirm": "yes"})
    # then: a new row, delivered with its own Message-ID; the original stays failed
    assert response.status_code == 302
    copy = OutboxEmail.objects.exclude(pk=email.pk).get()
    assert (copy.status, copy.sent_at) == (OutboxEmail.Status.SENT, now + 74 * HOUR)
    assert _row(email).status == OutboxEmail.Status.FAILED
    [message] = mail.outbox
    assert message.message()["Message-ID"] == copy.message_id != email.message_id


@pytest.mark.django_db
def test_a_resend_copy_has_its_own_message_id(smtp, now):
    # given
    customer = UserFactory()
    email = _queue(customer, now=now)
    email_deliver(email_id=email.pk, now=now)
    # when
    copy = email_resend_recorded(email=email, staff_user=UserFactory(is_staff=True), now=now)
    email_deliver(email_id=copy.pk, now=now)
    # then
    assert [message_id for _, message_id in smtp.calls] == [email.message_id, copy.message_id]
    assert email.message_id != copy.message_id
    assert [m.message()["Message-ID"] for m in mail.outbox] == [email.message_id,
                                                                copy.message_id]


@pytest.mark.django_db
def test_a_worker_crash_after_the_smtp_call_repeats_the_delivery_once_with_the_same_message_id(
    smtp, now, settings
):
    # given: the worker dies after SMTP accepted the message, before recording it
    assert settings.EMAIL_SENDING_STALE_MINUTES == 10
    email = _queue(UserFactory(), now=now)
    smtp.state = "crash after send"
    with pytest.raises(WorkerKilled):
        email_deliver(email_id=email.pk, now=now)
    assert (_row(email).status, _row(email).attempts) == (OutboxEmail.Status.SENDING, 1)
    smtp.state = "up"
    # when: scans while it might still be sending, then once it is stale, then later
    for minutes in [0, 5, 9]:
        scan(now + minutes * MINUTE)
    assert len(mail.outbox) == 1
    for minutes in [10, 15, 60]:
        scan(now + minutes * MINUTE)
    # then: sent exactly once more, recognisably the same message
    email = _row(email)
    assert (email.status, email.attempts, email.sent_at) == (
        OutboxEmail.Status.SENT, 2, now + 10 * MINUTE)
    assert [m.message()["Message-ID"] for m in mail.outbox] == [email.message_id] * 2


@pytest.mark.django_db
def test_a_worker_crash_past_the_horizon_fails_the_email_for_staff(smtp, now):
    # given: SMTP down for almost the whole horizon, then the worker dies while sending
    smtp.state = "down"
    email = _queue(UserFactory(), now=now)
    scan(now + 71 * HOUR + 55 * MINUTE)
    smtp.state = "crash after send"
    with pytest.raises(WorkerKilled):
        email_deliver(email_id=email.pk, now=now + 71 * HOUR + 56 * MINUTE)
    calls = len(smtp.calls)
    # when: stale after the horizon
    scan(now + 72 * HOUR + 6 * MINUTE)
    # then: not sent a second time; failed, whether it went out is unknown
    assert len(smtp.calls) == calls
    email = _row(email)
    assert (email.status, email.last_error) == (OutboxEmail.Status.FAILED, INTERRUPTED)


@pytest.mark.parametrize(("takeover", "late"), [("up", "down"), ("down", "up")])
@pytest.mark.django_db
def test_a_worker_that_outlives_its_claim_does_not_undo_the_worker_that_took_over(
    smtp, monkeypatch, now, takeover, late
):
    """A hangs in SMTP past the stale threshold; B takes the row over and records its outcome;
    then A's SMTP call returns. Whatever the order of outcomes, the email ends sent, and is
    not sent a third time."""
    # given
    email = _queue(UserFactory(), now=now)
    fake_send = EmailMultiAlternatives.send

    def hanging_send(message, fail_silently=False):
        monkeypatch.setattr(EmailMultiAlternatives, "send", fake_send)
        smtp.state = takeover
        scan(now + 10 * MINUTE)  # B, meanwhile
        smtp.state = late
        return fake_send(message, fail_silently)

    monkeypatch.setattr(EmailMultiAlternatives, "send", hanging_send)
    # when
    email_deliver(email_id=email.pk, now=now)  # A
    smtp.state = "up"
    for minutes in [11, 30, 120]:
        scan(now + minutes * MINUTE)
    # then
    email = _row(email)
    assert (email.status, email.attempts) == (OutboxEmail.Status.SENT, 2)
    assert email.sent_at == (now + 10 * MINUTE if takeover == "up" else now)
    assert len(mail.outbox) == 1
    assert len(smtp.calls) == 2


@pytest.fixture
def slow_smtp(monkeypatch):
    """A slow SMTP server, so that a second worker tries the row while the first sends."""
    calls = []

    def send(message, fail_silently=False):
        calls.append(message.extra_headers.get("Message-ID"))
        time.sleep(0.3)
        return 1

    monkeypatch.setattr(EmailMultiAlternatives, "send", send)
    return calls


@pytest.mark.parametrize(("status", "attempts"), [
    (OutboxEmail.Status.PENDING, 0),
    (OutboxEmail.Status.SENDING, 1),  # stale: its worker died 10 minutes ago
])
@pytest.mark.django_db(transaction=True)
def test_two_workers_never_both_send_an_email(slow_smtp, now, status, attempts):
    # given
    email = OutboxEmail.objects.create(
        occasion_key="support_reply:race", kind="support_reply", recipient="camille@example.com",
        language="fr", subject="Réponse", body_text="Bonjour", body_html="<p>Bonjour</p>",
        created_at=now - HOUR, status=status, attempts=attempts,
        sending_started_at=now - 10 * MINUTE if attempts else None,
    )
    # when
    at_once(lambda: email_deliver(email_id=email.pk, now=now),
            lambda: email_deliver(email_id=email.pk, now=now))
    # then
    assert slow_smtp == [email.message_id]
    assert (_row(email).status, _row(email).attempts) == (OutboxEmail.Status.SENT, attempts + 1)
