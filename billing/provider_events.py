"""The payment provider's notifications (webhooks, DESIGN §13), billing's side: each is stored
once per provider event id, marked once processed and, until then, due for the retry scan; and
what they tell about billing's own rows (the charge or refunds an event is about, a card the
bank updated). What each event type does is decided in subscriptions/services/provider_events.py.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q

from billing.dunning import provider_retry_delay
from billing.gateways import CardToken
from billing.models import Charge, PaymentMethod, ProviderEvent, Refund
from billing.services import refund_execute

logger = logging.getLogger(__name__)

# A stored event is processed by a task enqueued after commit; one that has not been (the
# broker lost the task, the worker died) is taken by the scan this long after it arrived.
UNPROCESSED_GRACE = timedelta(minutes=5)
ERROR_MAX_LENGTH = 2000


def provider_event_record(*, provider: str, event_id: str, type: str, payload: dict,
                          now) -> tuple[ProviderEvent, bool]:
    """Store an event unless this provider's event id already is: (the row, whether it is new).

    The unique constraint decides: the same event delivered twice at once stores one row, and
    the second delivery reads the first one's (once committed) instead of failing."""
    return ProviderEvent.objects.get_or_create(
        provider=provider, event_id=event_id,
        defaults={"type": type, "payload": payload, "received_at": now,
                  "next_attempt_at": now + UNPROCESSED_GRACE},
    )


def provider_event_claim(*, event_id: int) -> ProviderEvent | None:
    """The event's row, locked for the caller's transaction, or None if it is processed
    already: two workers given the same event process it once, one after the other."""
    event = ProviderEvent.objects.select_for_update().get(pk=event_id)
    return None if event.processed_at is not None else event


def provider_event_done(event: ProviderEvent, *, outcome: str, note: str, now) -> None:
    event.processed_at = now
    event.outcome = outcome
    event.note = note[:300]
    event.next_attempt_at = None
    event.save(update_fields=["processed_at", "outcome", "note", "next_attempt_at"])


def provider_event_failed(event: ProviderEvent, *, error: Exception, now) -> None:
    """Processing raised: the error is kept on the row, which stays due for the scan, with
    backoff (minutes, then hours, without end: an event is never dropped)."""
    event.attempts += 1
    event.error = f"{type(error).__name__}: {error}"[:ERROR_MAX_LENGTH]
    event.next_attempt_at = now + provider_retry_delay(event.attempts)
    event.save(update_fields=["attempts", "error", "next_attempt_at"])


def provider_events_due(*, now):
    """Events still to process whose (re)try time has come."""
    return ProviderEvent.objects.filter(processed_at__isnull=True, next_attempt_at__lte=now)


def charge_for_provider_payment(*, idempotency_key: str = "", reference: str = "") -> Charge | None:
    """Our charge a provider's payment is about: by the idempotency key it carries, else by
    the provider's reference for it (stored once known)."""
    if idempotency_key:
        charge = Charge.objects.filter(idempotency_key=idempotency_key).first()
        if charge is not None:
            return charge
    if reference:
        return Charge.objects.filter(provider_reference=reference).order_by("pk").first()
    return None


def provider_refunds_settle(*, refund_keys, charge: Charge | None, now) -> list[Refund]:
    """The provider refunded money: our refunds it names (by key), or else the refunds of the
    charge it refunded, are settled through refund_execute (its status guard and the
    provider's idempotency key make it a no-op for one already settled). Returns them; none
    means the refund was made outside the portal (the provider's dashboard).

    Raises what refund_execute raises (ProviderError, UnknownOutcome) for the caller to retry."""
    match = Q(idempotency_key__in=list(refund_keys))
    if charge is not None:
        match |= Q(charge=charge)
    refunds = list(Refund.objects.filter(match).order_by("pk"))
    settled = []
    for refund in refunds:
        if refund.status == Refund.Status.PENDING:
            refund = refund_execute(refund_id=refund.pk, now=now)
        settled.append(refund)
    return settled


def payment_method_card_refresh(*, card: CardToken) -> int:
    """The bank replaced a saved card's number or expiry (the provider keeps the same token):
    what the portal shows of it follows. Returns how many saved cards it updated (0 or 1)."""
    with transaction.atomic():
        return PaymentMethod.objects.filter(provider_token=card.token).update(
            brand=card.brand, last4=card.last4, exp_month=card.exp_month,
            exp_year=card.exp_year,
        )
