"""The collection of an invoice (DESIGN §6): which answers count as attempts, when the next
scheduled retry is due, when a charge the provider could not take is sent again.

Only a decline (the bank or the provider refused this card) is a dunning attempt. A provider
error, a charge the provider has no record of and an unknown outcome are not the customer's
doing: the same charge is sent again under the same idempotency key, with backoff, and costs
no attempt, no status change and no email."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q

from billing.models import Charge, Invoice
from subscriptions.periods import add_days


class FailureKind:
    DECLINE = "decline"  # a dunning attempt
    NOT_SENT = "not_sent"  # abandoned before moving money: nobody collects it any more, or
    # a customer waiting at the checkout was told the provider is unavailable


@dataclass(frozen=True)
class DeclineOutcome:
    attempt: int  # 1 is the renewal charge, 2–4 the scheduled retries
    next_retry_at: datetime | None  # None: the last retry failed

    @property
    def exhausted(self) -> bool:
        return self.next_retry_at is None


def decline_record(*, invoice: Invoice, charge: Charge, tz: ZoneInfo) -> DeclineOutcome:
    """Count a scheduled attempt's decline on the (locked) invoice and schedule the next retry
    DUNNING_RETRY_DAYS after the first one."""
    retry_days = settings.DUNNING_RETRY_DAYS
    invoice.declined_attempts += 1
    invoice.last_failure_kind = FailureKind.DECLINE
    if invoice.dunning_started_at is None:
        invoice.dunning_started_at = charge.created_at
    attempt = invoice.declined_attempts
    invoice.next_retry_at = (
        add_days(invoice.dunning_started_at, retry_days[attempt - 1], tz=tz)
        if attempt <= len(retry_days) else None
    )
    invoice.save(update_fields=["declined_attempts", "last_failure_kind", "dunning_started_at",
                                "next_retry_at"])
    return DeclineOutcome(attempt=attempt, next_retry_at=invoice.next_retry_at)


def retries_due(*, now):
    """Open renewal invoices whose scheduled retry is due."""
    return Invoice.objects.filter(
        kind=Invoice.Kind.RENEWAL, status=Invoice.Status.OPEN, next_retry_at__lte=now
    )


def provider_retry_delay(errors: int) -> timedelta:
    """Backoff before sending a charge again after ``errors`` provider failures in a row:
    minutes at first, then hours (PROVIDER_RETRY_MINUTES, the last step repeating)."""
    steps = settings.PROVIDER_RETRY_MINUTES
    return timedelta(minutes=steps[min(errors, len(steps)) - 1])


def charges_to_resume(*, now):
    """Charges to send again or to reconcile with the provider: a provider error's backoff is
    over, an unknown outcome is old enough to ask about, or a prepared charge was left pending
    (its process died before or while sending) for STALE_PENDING_CHARGE_MINUTES."""
    stale = now - timedelta(minutes=settings.STALE_PENDING_CHARGE_MINUTES)
    return Charge.objects.filter(
        Q(status__in=[Charge.Status.PENDING, Charge.Status.UNKNOWN], next_attempt_at__lte=now)
        | Q(status=Charge.Status.PENDING, next_attempt_at=None, created_at__lte=stale)
    )


def charges_beyond_outage_horizon(*, now):
    """Charges still unsettled after CHARGE_OUTAGE_HORIZON_HOURS: staff look at them."""
    horizon = now - timedelta(hours=settings.CHARGE_OUTAGE_HORIZON_HOURS)
    return Charge.objects.filter(
        status__in=[Charge.Status.PENDING, Charge.Status.UNKNOWN], created_at__lte=horizon
    )
