from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet

from notifications.models import OutboxEmail


def emails_due(*, now) -> QuerySet[OutboxEmail]:
    """The emails to (re)send at ``now``: pending ones whose next attempt is due, and those
    left sending so long that the worker sending them must have died (DESIGN §10)."""
    stale = now - timedelta(minutes=settings.EMAIL_SENDING_STALE_MINUTES)
    return OutboxEmail.objects.filter(
        (Q(status=OutboxEmail.Status.PENDING)
         & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)))
        | Q(status=OutboxEmail.Status.SENDING, sending_started_at__lte=stale)
    )


def emails_failed() -> QuerySet[OutboxEmail]:
    return OutboxEmail.objects.filter(status=OutboxEmail.Status.FAILED)
