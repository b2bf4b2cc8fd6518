from celery import shared_task

from billing.gateways import ProviderError, UnknownOutcome


@shared_task(
    autoretry_for=(ProviderError, UnknownOutcome),
    retry_backoff=30,
    retry_backoff_max=3600,
    max_retries=10,
)
def refund_execute_task(refund_id: int) -> None:
    from billing.services import refund_execute

    refund_execute(refund_id=refund_id)
