"""Terms versions (seed 004 "Mises à jour de la politique"): acceptance at checkout, and the
publication of a new version, announced by email to every customer with a running
subscription, in bounded batches."""

import logging

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from legal.models import TermsAcceptance, TermsVersion
from legal.selectors import business_today, terms_current, terms_recipients
from notifications.services import email_enqueue
from subscriptions.models import RUNNING_STATUSES

logger = logging.getLogger(__name__)


class TermsPublishError(Exception):
    """Shown to staff as is."""


def terms_acceptance_record(*, customer, subscription=None, now=None) -> TermsAcceptance | None:
    """The customer ticked "J'accepte les conditions d'abonnement" and paid (or started
    paying, when their bank confirms the payment first: the acceptance is then recorded
    without its subscription, attached once it opens): record which version they accepted
    (none while no version is published)."""
    now = now or timezone.now()
    version = terms_current(now=now)
    if version is None:
        return None
    return TermsAcceptance.objects.create(
        customer=customer, version=version, subscription=subscription, accepted_at=now
    )


def terms_acceptance_attach(*, customer, subscription, since) -> None:
    """Acceptances recorded at a checkout, since ``since``, whose payment the bank confirmed
    afterwards: attached to the subscription it opened."""
    TermsAcceptance.objects.filter(customer=customer, subscription=None,
                                   accepted_at__gte=since).update(subscription=subscription)


def terms_version_publish(*, version, now=None) -> TermsVersion:
    """Publish a drafted version and announce it: a scan task enqueues one batch task per
    ``JOB_BATCH_SIZE`` recipients once the publication has committed."""
    now = now or timezone.now()
    with transaction.atomic():
        version = TermsVersion.objects.select_for_update().get(pk=version.pk)
        if version.published_at is not None:
            raise TermsPublishError(_("La version %(version)s est déjà publiée.")
                                    % {"version": version.version})
        if not version.title.strip() or not version.body.strip():
            raise TermsPublishError(_("Le titre et le texte sont obligatoires."))
        if version.effective_date < business_today(now):
            raise TermsPublishError(_("La date d'effet ne peut pas être dans le passé."))
        version.published_at = now
        version.save(update_fields=["published_at"])
        from legal.tasks import terms_notify_scan_task

        transaction.on_commit(lambda: terms_notify_scan_task.delay(version.pk))
    return version


def terms_url(version) -> str:
    return settings.SITE_URL + reverse("legal:terms_version", args=[version.pk])


def terms_notify_batch(*, version_id: int, customer_ids, now=None) -> int:
    """Email a batch of customers about a published version. Safe to run twice: the
    occasion is one per (version, customer), so nobody gets it twice. Customers whose
    subscription stopped running meanwhile are skipped. Returns how many were queued."""
    now = now or timezone.now()
    version = TermsVersion.objects.filter(pk=version_id, published_at__isnull=False).first()
    if version is None:
        return 0
    customers = terms_recipients().filter(pk__in=customer_ids).distinct().order_by("pk")
    queued = 0
    for customer in customers:
        subscription = (customer.subscriptions.filter(status__in=RUNNING_STATUSES)
                        .select_related("plan").first())
        try:
            with transaction.atomic():
                email_enqueue(
                    kind="terms_updated",
                    occasion=f"terms-{version.pk}-customer-{customer.pk}",
                    customer=customer,
                    subscription=subscription,
                    context={"version": version, "terms_url": terms_url(version)},
                    now=now,
                )
        except Exception:
            logger.exception("terms %s: email to customer %s failed; run the batch again",
                             version.pk, customer.pk)
            continue
        queued += 1
    return queued
