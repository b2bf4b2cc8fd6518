"""The email outbox (DESIGN §10): queue once per occasion, deliver after commit, retry
transient SMTP errors with backoff over a long horizon."""

import logging
import smtplib
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from notifications.models import OutboxEmail
from notifications.selectors import emails_due

logger = logging.getLogger(__name__)

FIRST_RETRY_DELAY = timedelta(minutes=1)
MAX_RETRY_DELAY = timedelta(hours=1)
TRANSIENT_ERRORS = (smtplib.SMTPException, ConnectionError, TimeoutError)
INTERRUPTED = "Envoi interrompu (le worker s'est arrêté) : résultat inconnu."


def render_email(*, kind: str, language: str, context: dict) -> tuple[str, str, str]:
    """Subject, text and HTML from templates/emails/<language>/<kind>_{subject,message}.*"""
    prefix = f"emails/{language}/{kind}"
    with translation.override(language):
        subject = render_to_string(f"{prefix}_subject.txt", context).strip()
        text = render_to_string(f"{prefix}_message.txt", context)
        html = render_to_string(f"{prefix}_message.html", context)
    return " ".join(subject.splitlines()), text, html


def email_enqueue(
    *, kind: str, occasion: str, customer, context: dict, subscription=None, now=None,
    recipient: str = "",
) -> OutboxEmail:
    """Queue an email unless one was already queued for this occasion; to ``recipient`` when
    the customer gave an address for it (an acknowledgement), else to their account's.

    Call inside the transaction that makes the occasion happen: the row commits with it and
    delivery starts after commit."""
    return _enqueue(kind=kind, occasion=occasion, customer=customer,
                    recipient=recipient or customer.email,
                    language=customer.preferred_language, subscription=subscription,
                    context=context, now=now or timezone.now())


STAFF_LANGUAGE = "fr"


def staff_email_enqueue(
    *, kind: str, occasion: str, context: dict, subscription=None, now=None
) -> OutboxEmail:
    """Queue an email to the support team (SUPPORT_EMAIL), in French, once per occasion: the
    same outbox as the customers' emails (delivered after commit, retried), no customer. Its
    templates exist in French only (templates/emails/fr/<kind>_*)."""
    return _enqueue(kind=kind, occasion=occasion, customer=None,
                    recipient=settings.SUPPORT_EMAIL, language=STAFF_LANGUAGE,
                    subscription=subscription, context=context, now=now or timezone.now())


def _enqueue(*, kind, occasion, customer, recipient, language, subscription, context,
             now) -> OutboxEmail:
    occasion_key = f"{kind}:{occasion}"
    existing = OutboxEmail.objects.filter(occasion_key=occasion_key).first()
    if existing is not None:
        return existing
    context = {"customer": customer, "subscription": subscription, "site_url": settings.SITE_URL,
               "support_email": settings.SUPPORT_EMAIL, **context}
    subject, text, html = render_email(kind=kind, language=language, context=context)
    with transaction.atomic():
        email, created = OutboxEmail.objects.get_or_create(
            occasion_key=occasion_key,
            defaults={
                "kind": kind,
                "customer": customer,
                "subscription": subscription,
                "recipient": recipient,
                "language": language,
                "subject": subject,
                "body_text": text,
                "body_html": html,
                "created_at": now,
            },
        )
    if created:
        from notifications.tasks import email_deliver_task

        # robust: a broker hiccup must not fail the request that already committed; the row
        # stays pending for the outbox sweep to pick up.
        transaction.on_commit(lambda: email_deliver_task.delay(email.pk), robust=True)
    return email


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the attempts-th failed attempt: 1 min, doubling, at most 1 h."""
    doublings = min(attempts - 1, 20)  # past the cap anyway; a bigger power overflows timedelta
    return min(FIRST_RETRY_DELAY * 2**doublings, MAX_RETRY_DELAY)


def email_deliver(*, email_id: int, now=None) -> OutboxEmail:
    """Send an email if it is due (see emails_due), with no transaction open during the SMTP
    call: claim the row (``sending``, committed), send, then record the outcome.

    Two workers never both send a row: the claim locks it and checks it is still due. A worker
    that dies while sending (or an error that is not a transient SMTP one, raised) leaves the row
    ``sending``; once stale it is due again and sent again with the same Message-ID, so a crash
    repeats a delivery at most once, recognisably. A transient SMTP error makes the row pending
    again, retried with backoff until EMAIL_RETRY_HORIZON_HOURS after it was queued; then it is
    failed, for staff to resend."""
    now = now or timezone.now()
    email = _claim(email_id=email_id, now=now)
    if email is None:
        return OutboxEmail.objects.get(pk=email_id)
    try:
        _message(email).send()
    except TRANSIENT_ERRORS as error:
        logger.warning("email %s not sent (attempt %s): %s", email.pk, email.attempts, error)
        if now >= _give_up_at(email):
            outcome = {"status": OutboxEmail.Status.FAILED, "next_attempt_at": None}
        else:
            outcome = {"status": OutboxEmail.Status.PENDING,
                       "next_attempt_at": now + retry_delay(email.attempts)}
        # Only while this claim still owns the row: a worker that took it over once it went
        # stale records its own outcome.
        OutboxEmail.objects.filter(
            pk=email.pk, status=OutboxEmail.Status.SENDING,
            sending_started_at=email.sending_started_at,
        ).update(last_error=str(error)[:300], **outcome)
    else:
        OutboxEmail.objects.filter(pk=email.pk).update(
            status=OutboxEmail.Status.SENT, sent_at=now, next_attempt_at=None
        )
    email.refresh_from_db()
    return email


def _claim(*, email_id: int, now) -> OutboxEmail | None:
    with transaction.atomic():
        email = emails_due(now=now).select_for_update().filter(pk=email_id).first()
        if email is None:
            return None
        if email.status == OutboxEmail.Status.SENDING and now >= _give_up_at(email):
            # Its worker died while sending it, and the horizon has passed.
            email.status = OutboxEmail.Status.FAILED
            email.last_error = INTERRUPTED
            email.save(update_fields=["status", "last_error"])
            return None
        email.status = OutboxEmail.Status.SENDING
        email.attempts += 1
        email.sending_started_at = now
        email.save(update_fields=["status", "attempts", "sending_started_at"])
    return email


def _give_up_at(email: OutboxEmail):
    return email.created_at + timedelta(hours=settings.EMAIL_RETRY_HORIZON_HOURS)


def _message(email: OutboxEmail) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=email.subject,
        body=email.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.recipient],
        headers={"Message-ID": email.message_id},
    )
    message.attach_alternative(email.body_html, "text/html")
    return message


RESEND_MARKER = ":resend:"


def email_resend(*, email: OutboxEmail, now=None) -> OutboxEmail:
    """Queue a copy of an email at a staff member's request (DESIGN §10: staff can resend);
    ``subscriptions.services.staff.staff_email_resend`` records it on the timeline.

    The copy is a new outbox row, so the original stays as it was; its occasion key is the
    original's plus a resend counter, so each request queues exactly one more email. The
    original row is locked while counting, so two clicks never pick the same counter."""
    now = now or timezone.now()
    root_key = email.occasion_key.split(RESEND_MARKER, 1)[0]
    with transaction.atomic():
        original = OutboxEmail.objects.select_related("customer", "subscription").get(
            pk=email.pk
        )
        root = OutboxEmail.objects.filter(occasion_key=root_key).first() or original
        OutboxEmail.objects.select_for_update().filter(pk=root.pk).values_list("pk").get()
        resends = OutboxEmail.objects.filter(
            occasion_key__startswith=f"{root_key}{RESEND_MARKER}"
        ).count()
        copy = OutboxEmail.objects.create(
            occasion_key=f"{root_key}{RESEND_MARKER}{resends + 1}",
            kind=original.kind,
            customer=original.customer,
            subscription=original.subscription,
            recipient=original.customer.email if original.customer else original.recipient,
            language=original.language,
            subject=original.subject,
            body_text=original.body_text,
            body_html=original.body_html,
            created_at=now,
        )
        from notifications.tasks import email_deliver_task

        transaction.on_commit(lambda: email_deliver_task.delay(copy.pk), robust=True)
    return copy
