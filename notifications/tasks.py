from celery import shared_task

from notifications.services import email_deliver


@shared_task
def email_deliver_task(email_id: int) -> None:
    """Deliver one email now. A transient SMTP error leaves it pending with its next attempt
    time; the outbox scan (subscriptions.jobs, deliver_emails) retries it, not Celery."""
    email_deliver(email_id=email_id)
