"""The scheduled jobs (DESIGN §5, §6, §10): for each, which rows are due at ``now`` and the
service that handles one of them. Celery beat scans them in bounded batches (one task per
batch, see tasks.py); ``manage.py billing_tick`` runs them all synchronously."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from billing.dunning import charges_to_resume, retries_due
from billing.models import Invoice, Refund
from billing.provider_events import provider_events_due
from billing.services import refund_execute
from notifications.selectors import emails_due
from notifications.services import email_deliver
from subscriptions.models import Status, Subscription
from subscriptions.selectors import renewals_due
from subscriptions.services.payments import charge_resume_apply
from subscriptions.services.provider_events import provider_event_process
from subscriptions.services.reminders import (
    annual_renewal_notice_send,
    annual_renewal_notices_due,
    card_expiry_notice_send,
    card_expiry_notices_due,
    pre_charge_notice_send,
    pre_charge_notices_due,
    pre_expiry_notice_send,
    pre_expiry_notices_due,
)
from subscriptions.services.renew import (
    subscription_end_unpaid,
    subscription_expire,
    subscription_renew,
    subscription_retry_payment,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    due: Callable[[Any], Any]  # now → queryset of the due rows
    run: Callable[[int, Any], Any]  # (pk, now) → handle one row


def _unpaid(now):
    return Subscription.objects.filter(
        status=Status.SUSPENDED,
        invoices__kind=Invoice.Kind.RENEWAL,
        invoices__status=Invoice.Status.OPEN,
        invoices__period_end__lte=now,
    )


def _expired(now):
    return Subscription.objects.exclude(status=Status.ENDED).filter(
        auto_renew=False, ends_at__lte=now
    )


def _pending_refunds(now):
    return Refund.objects.filter(status=Refund.Status.PENDING)


def _pending_emails(now):
    return emails_due(now=now)


JOBS = {
    job.name: job
    for job in [
        # Unknown outcomes and provider errors first: nothing may charge an invoice again
        # before they are known.
        Job("reconcile_charges", lambda now: charges_to_resume(now=now),
            lambda pk, now: charge_resume_apply(charge_id=pk, now=now)),
        # The provider's notifications (webhooks) whose task was lost or failed: retried.
        Job("process_provider_events", lambda now: provider_events_due(now=now),
            lambda pk, now: provider_event_process(event_id=pk, now=now)),
        Job("retry_payments", lambda now: retries_due(now=now),
            lambda pk, now: subscription_retry_payment(invoice_id=pk, now=now)),
        Job("renew", lambda now: renewals_due(now=now),
            lambda pk, now: subscription_renew(subscription_id=pk, now=now)),
        Job("end_unpaid", _unpaid,
            lambda pk, now: subscription_end_unpaid(subscription_id=pk, now=now)),
        Job("expire", _expired, lambda pk, now: subscription_expire(subscription_id=pk, now=now)),
        # Reminders, after the renewals and expiries of this instant (DESIGN §10).
        Job("pre_charge_notices", lambda now: pre_charge_notices_due(now=now),
            lambda pk, now: pre_charge_notice_send(subscription_id=pk, now=now)),
        Job("annual_renewal_notices", lambda now: annual_renewal_notices_due(now=now),
            lambda pk, now: annual_renewal_notice_send(subscription_id=pk, now=now)),
        Job("pre_expiry_notices", lambda now: pre_expiry_notices_due(now=now),
            lambda pk, now: pre_expiry_notice_send(subscription_id=pk, now=now)),
        Job("card_expiry_notices", lambda now: card_expiry_notices_due(now=now),
            lambda pk, now: card_expiry_notice_send(subscription_id=pk, now=now)),
        Job("execute_refunds", _pending_refunds,
            lambda pk, now: refund_execute(refund_id=pk, now=now)),
        Job("deliver_emails", _pending_emails,
            lambda pk, now: email_deliver(email_id=pk, now=now)),
    ]
}


def due_batches(job: Job, *, now, batch_size=None):
    """The due primary keys in batches, by keyset pagination: never the whole set in memory."""
    batch_size = batch_size or settings.JOB_BATCH_SIZE
    last = 0
    while True:
        batch = list(
            job.due(now).filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)
            .distinct()[:batch_size]
        )
        if not batch:
            return
        yield batch
        last = batch[-1]


def run_batch(job: Job, pks, *, now=None) -> None:
    """One row's failure (a provider or SMTP outage) must not hold up the others: it is
    logged, and the row, still due, is picked up again by the next scan.

    Without ``now`` each row runs at the time it is reached: a long batch must not claim its
    last rows (an email being sent, say) at the instant it started."""
    for pk in pks:
        try:
            job.run(pk, now or timezone.now())
        except Exception:
            logger.exception("%s failed for %s; it stays due", job.name, pk)


def run_due_jobs(*, now) -> dict[str, int]:
    """Every job, synchronously, as of ``now``: how many due rows each one went through."""
    handled = {}
    for job in JOBS.values():
        handled[job.name] = 0
        for batch in due_batches(job, now=now):
            run_batch(job, batch, now=now)
            handled[job.name] += len(batch)
    return handled
