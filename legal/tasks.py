"""Announcing a new terms version: one scan, then one task per bounded batch of customers.
Both are safe to run twice (one email per customer per version)."""

from celery import shared_task

from legal.selectors import terms_recipient_batches


@shared_task
def terms_notify_scan_task(version_id: int) -> int:
    batches = 0
    for batch in terms_recipient_batches():
        terms_notify_batch_task.delay(version_id, batch)
        batches += 1
    return batches


@shared_task(acks_late=True, reject_on_worker_lost=True)
def terms_notify_batch_task(version_id: int, customer_ids: list[int]) -> int:
    from legal.services import terms_notify_batch

    return terms_notify_batch(version_id=version_id, customer_ids=customer_ids)
