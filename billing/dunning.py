"""The collection of an invoice (DESIGN §6): which answers count as attempts, when the next
scheduled retry is due, when a charge the provider could not take is sent again.

Only a decline (the bank or the provider refused this card) is a dunning attempt. A provider
error, a charge the provider has no record of and an unknown outcome are not the customer's
doing: the same charge is sent again under the same idempotency key, with backoff, and costs
no attempt, no status change and no email.

"Authentication required" (PSD2 strong customer authentication: the bank asks the cardholder
to confirm an off-session renewal with 3-D Secure) is no decline either, yet it is not a
silent resend: see ``authentication_record``."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.models import Charge, Invoice
from subscriptions.periods import add_days


class FailureKind:
    DECLINE = "decline"  # a dunning attempt
    NOT_SENT = "not_sent"  # abandoned before moving money: nobody collects it any more, or
    # a customer waiting at the checkout was told the provider is unavailable
    # The bank asks the cardholder to authenticate (3-D Secure): the charge waits for them
    # (status requires_action); a refused challenge ends it with this kind too, never DECLINE.
    AUTHENTICATION_REQUIRED = "authentication_required"


# What the customer and staff read for an invoice's last failure (the collection state).
FAILURE_REASONS = {
    FailureKind.DECLINE: _("paiement refusé"),
    FailureKind.AUTHENTICATION_REQUIRED: _("authentification requise"),
}


def failure_reason(invoice: Invoice) -> str:
    reason = FAILURE_REASONS.get(invoice.last_failure_kind)
    return str(reason) if reason else ""


def awaiting_authentication(invoice: Invoice | None) -> bool:
    """Is this open invoice's collection waiting for the customer's 3-D Secure?"""
    return (invoice is not None and invoice.status == Invoice.Status.OPEN
            and invoice.last_failure_kind == FailureKind.AUTHENTICATION_REQUIRED)


@dataclass(frozen=True)
class DunningOutcome:
    attempt: int  # 1 is the renewal charge, 2–4 the scheduled retries
    next_retry_at: datetime | None  # None: the last retry failed

    @property
    def exhausted(self) -> bool:
        return self.next_retry_at is None


def scheduled_attempts(invoice: Invoice) -> int:
    """How many of the four scheduled attempts (the renewal charge, then the retries) have
    been made and failed: the declines and the authentication requests."""
    return invoice.declined_attempts + invoice.authentication_requests


def decline_record(*, invoice: Invoice, charge: Charge, tz: ZoneInfo) -> DunningOutcome:
    """Count a scheduled attempt's decline on the (locked) invoice and schedule the next retry
    DUNNING_RETRY_DAYS after the first one."""
    invoice.declined_attempts += 1
    return _next_scheduled_attempt(invoice, charge=charge, kind=FailureKind.DECLINE, tz=tz)


def authentication_record(*, invoice: Invoice, charge: Charge, tz: ZoneInfo) -> DunningOutcome:
    """A scheduled attempt that the bank answered "authentication required" (DESIGN §6), on
    the (locked) invoice.

    Decision: it is not a decline (``declined_attempts`` is untouched, no "échec" email: the
    customer did nothing wrong, the bank wants them present), but it takes its place in the
    retry schedule, as a decline does: the scheduled retries go on at +1, +3 and +7 days and
    the fourth scheduled attempt without payment suspends the subscription. Not counting it
    would let a card whose bank always asks keep a past-due subscription's access for ever,
    retried with no end; counting it as a decline would tell the customer their card was
    refused, and bring the decline's email and statistics. Meanwhile the customer may
    complete 3-D Secure (the link of the email, the banner, "Payer maintenant") until the
    period the invoice covers is over, suspended or not."""
    invoice.authentication_requests += 1
    return _next_scheduled_attempt(invoice, charge=charge,
                                   kind=FailureKind.AUTHENTICATION_REQUIRED, tz=tz)


def _next_scheduled_attempt(invoice, *, charge, kind, tz) -> DunningOutcome:
    retry_days = settings.DUNNING_RETRY_DAYS
    invoice.last_failure_kind = kind
    if invoice.dunning_started_at is None:
        invoice.dunning_started_at = charge.created_at
    attempt = scheduled_attempts(invoice)
    invoice.next_retry_at = (
        add_days(invoice.dunning_started_at, retry_days[attempt - 1], tz=tz)
        if attempt <= len(retry_days) else None
    )
    invoice.save(update_fields=["declined_attempts", "authentication_requests",
                                "last_failure_kind", "dunning_started_at", "next_retry_at"])
    return DunningOutcome(attempt=attempt, next_retry_at=invoice.next_retry_at)


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


def authentication_check_delay(*, waiting: timedelta) -> timedelta:
    """When to ask the provider again about a charge waiting for 3-D Secure for ``waiting``:
    the customer may have completed it without coming back to the portal (tab closed), and
    money may have moved. Hourly on its first day, then daily."""
    return timedelta(hours=1) if waiting < timedelta(days=1) else timedelta(days=1)


def challenge_deadline(charge: Charge):
    """When a charge waiting for 3-D Secure is given up (cancelled at the provider), or None
    for a scheduled attempt: that one waits for the customer's "Confirmer votre paiement"
    until its invoice is no longer collected. A charge the customer started while there
    (first payment, plan change, "Payer maintenant") is theirs to finish at once: after
    AUTHENTICATION_CHALLENGE_MINUTES it is abandoned."""
    if charge.initiated_by != "customer":
        return None
    return charge.created_at + timedelta(minutes=settings.AUTHENTICATION_CHALLENGE_MINUTES)


def next_authentication_check(charge: Charge, *, now):
    check = now + authentication_check_delay(waiting=now - charge.created_at)
    deadline = challenge_deadline(charge)
    return min(check, deadline) if deadline is not None else check


def charges_to_resume(*, now):
    """Charges to send again or to reconcile with the provider: a provider error's backoff is
    over, an unknown outcome is old enough to ask about, a prepared charge was left pending
    (its process died before or while sending) for STALE_PENDING_CHARGE_MINUTES, or a charge
    waiting for 3-D Secure is due to be asked about (next_authentication_check)."""
    stale = now - timedelta(minutes=settings.STALE_PENDING_CHARGE_MINUTES)
    return Charge.objects.filter(
        Q(status__in=[Charge.Status.PENDING, Charge.Status.UNKNOWN,
                      Charge.Status.REQUIRES_ACTION], next_attempt_at__lte=now)
        | Q(status=Charge.Status.PENDING, next_attempt_at=None, created_at__lte=stale)
    )


def charges_beyond_outage_horizon(*, now):
    """Charges still unsettled after CHARGE_OUTAGE_HORIZON_HOURS: staff look at them."""
    horizon = now - timedelta(hours=settings.CHARGE_OUTAGE_HORIZON_HOURS)
    return Charge.objects.filter(
        status__in=[Charge.Status.PENDING, Charge.Status.UNKNOWN], created_at__lte=horizon
    )
