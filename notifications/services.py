"""The email outbox (DESIGN §10): queue once per occasion, deliver after commit."""

import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from notifications.models import OutboxEmail

MAX_DELIVERY_ATTEMPTS = 5
TRANSIENT_ERRORS = (smtplib.SMTPException, ConnectionError, TimeoutError)


def render_email(*, kind: str, language: str, context: dict) -> tuple[str, str, str]:
    """Subject, text and HTML from templates/emails/<language>/<kind>_{subject,message}.*"""
    prefix = f"emails/{language}/{kind}"
    with translation.override(language):
        subject = render_to_string(f"{prefix}_subject.txt", context).strip()
        text = render_to_string(f"{prefix}_message.txt", context)
        html = render_to_string(f"{prefix}_message.html", context)
    return " ".join(subject.splitlines()), text, html


def email_enqueue(
    *, kind: str, occasion: str, customer, context: dict, subscription=None, now=None
) -> OutboxEmail:
    """Queue an email unless one was already queued for this occasion.

    Call inside the transaction that makes the occasion happen: the row commits with it and
    delivery starts after commit."""
    now = now or timezone.now()
    language = customer.preferred_language
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
                "recipient": customer.email,
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


def email_deliver(*, email_id: int, now=None) -> OutboxEmail:
    """Send a pending email. The row is locked while sending so two workers never both send it;
    transient SMTP errors propagate for the task to retry, up to MAX_DELIVERY_ATTEMPTS."""
    now = now or timezone.now()
    failure = None
    with transaction.atomic():
        email = OutboxEmail.objects.select_for_update().get(pk=email_id)
        if email.status != OutboxEmail.Status.PENDING:
            return email
        email.attempts += 1
        message = EmailMultiAlternatives(
            subject=email.subject,
            body=email.body_text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[email.recipient],
        )
        message.attach_alternative(email.body_html, "text/html")
        try:
            message.send()
        except TRANSIENT_ERRORS as error:
            failure = error
            email.last_error = str(error)[:300]
            if email.attempts >= MAX_DELIVERY_ATTEMPTS:
                email.status = OutboxEmail.Status.FAILED
        else:
            email.status = OutboxEmail.Status.SENT
            email.sent_at = now
        email.save(update_fields=["attempts", "last_error", "status", "sent_at"])
    if failure is not None and email.status == OutboxEmail.Status.PENDING:
        raise failure
    return email


RESEND_MARKER = ":resend:"


def email_resend(*, email: OutboxEmail, staff_user, now=None) -> OutboxEmail:
    """Queue a copy of an email at a staff member's request (DESIGN §10: staff can resend).

    The copy is a new outbox row, so the original stays as it was; its occasion key is the
    original's plus a resend counter, so each request queues exactly one more email. The
    original row is locked while counting, so two clicks never pick the same counter."""
    from subscriptions.models import Actor, SubscriptionEvent
    from subscriptions.services.events import subscription_event_record

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
        if original.subscription_id is not None:
            subscription_event_record(
                subscription=original.subscription,
                kind=SubscriptionEvent.Kind.EMAIL_RESENT,
                actor=Actor.STAFF,
                actor_user=staff_user,
                at=now,
                data={"email": original.pk, "copy": copy.pk, "kind": original.kind,
                      "occasion_key": copy.occasion_key},
            )
        from notifications.tasks import email_deliver_task

        transaction.on_commit(lambda: email_deliver_task.delay(copy.pk), robust=True)
    return copy
