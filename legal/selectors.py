from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from legal.models import TermsVersion
from subscriptions.models import RUNNING_STATUSES
from subscriptions.selectors import business_tz


def business_today(now):
    """Today in the business time zone."""
    return timezone.localtime(now, business_tz()).date()


def terms_current(*, now=None) -> TermsVersion | None:
    """The version in force: the latest published one whose effective date has come."""
    now = now or timezone.now()
    return (
        TermsVersion.objects.filter(published_at__isnull=False,
                                    effective_date__lte=business_today(now))
        .order_by("-effective_date", "-published_at", "-id")
        .first()
    )


def terms_upcoming(*, now=None) -> TermsVersion | None:
    """A published version that is not in force yet (announced ahead of its date)."""
    now = now or timezone.now()
    return (
        TermsVersion.objects.filter(published_at__isnull=False,
                                    effective_date__gt=business_today(now))
        .order_by("effective_date", "id")
        .first()
    )


def terms_published(*, pk) -> TermsVersion | None:
    return TermsVersion.objects.filter(pk=pk, published_at__isnull=False).first()


def terms_recipients():
    """Customers told about a new version: those with a running subscription."""
    return get_user_model().objects.filter(
        is_active=True, subscriptions__status__in=RUNNING_STATUSES
    )


def terms_recipient_batches(*, batch_size=None):
    """Recipient ids in batches, by keyset pagination (as subscriptions.jobs.due_batches)."""
    batch_size = batch_size or settings.JOB_BATCH_SIZE
    last = 0
    while True:
        batch = list(
            terms_recipients().filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)
            .distinct()[:batch_size]
        )
        if not batch:
            return
        yield batch
        last = batch[-1]
