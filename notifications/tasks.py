from celery import shared_task

from notifications.services import TRANSIENT_ERRORS


@shared_task(autoretry_for=TRANSIENT_ERRORS, retry_backoff=60, retry_backoff_max=3600,
             max_retries=10)
def email_deliver_task(email_id: int) -> None:
    from notifications.services import email_deliver

    email_deliver(email_id=email_id)
