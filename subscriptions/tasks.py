"""Celery side of the scheduled jobs: beat runs ``job_scan`` for each job; the scan enqueues
one ``job_batch`` per bounded batch of due ids. Both are safe to run twice: every service
re-checks under a row lock that its work is still due."""

from celery import shared_task
from django.utils import timezone

from subscriptions.jobs import JOBS, due_batches, run_batch


@shared_task
def job_scan(name: str) -> int:
    job = JOBS[name]
    batches = 0
    for batch in due_batches(job, now=timezone.now()):
        job_batch.delay(name, batch)
        batches += 1
    return batches


@shared_task(acks_late=True, reject_on_worker_lost=True)
def job_batch(name: str, pks: list[int]) -> None:
    run_batch(JOBS[name], pks)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def provider_event_process_task(event_id: int) -> None:
    """A stored provider event (webhook); its failures are kept on the row for the scan."""
    from subscriptions.services.provider_events import provider_event_process

    provider_event_process(event_id=event_id, now=timezone.now())
