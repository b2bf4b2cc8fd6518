"""Writes of the support app: requests, their threads, staff replies and refund decisions
(DESIGN §11). ``request`` is always a SupportRequest here, never an HTTP request."""

import uuid

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from billing.models import Refund
from billing.templatetags.money import money
from notifications.services import email_enqueue
from subscriptions.models import Actor, SubscriptionEvent
from subscriptions.services.events import subscription_event_record
from subscriptions.services.staff import StaffActionError, staff_charge_refund
from support.models import SupportMessage, SupportRequest


class SupportError(Exception):
    """A refused support operation; the message is shown as is (French, or the customer's
    language on customer pages)."""


def support_request_create(
    *, customer, subject: str, category: str, body: str, subscription=None, now=None
) -> SupportRequest:
    """Open a request with its first message and acknowledge it by email. A refund request
    about a subscription is also written on that subscription's timeline."""
    now = now or timezone.now()
    if subscription is not None and subscription.customer_id != customer.pk:
        raise SupportError(_("Cet abonnement n'est pas le vôtre."))
    with transaction.atomic():
        request = SupportRequest.objects.create(
            # A placeholder until the id is known: the reference is the year and the id.
            reference=f"new-{uuid.uuid4().hex}",
            customer=customer,
            subscription=subscription,
            subject=subject.strip(),
            category=category,
            created_at=now,
            last_message_at=now,
        )
        request.reference = f"S{timezone.localtime(now).year}-{request.pk:06d}"
        request.save(update_fields=["reference"])
        SupportMessage.objects.create(
            request=request,
            author=SupportMessage.Author.CUSTOMER,
            author_user=customer,
            body=body.strip(),
            created_at=now,
        )
        if subscription is not None and category == SupportRequest.Category.REFUND:
            subscription_event_record(
                subscription=subscription,
                kind=SubscriptionEvent.Kind.REFUND_REQUESTED,
                actor=Actor.CUSTOMER,
                actor_user=customer,
                at=now,
                data={"support_request": request.reference},
            )
        email_enqueue(
            kind="support_request_received",
            occasion=f"support-request-{request.pk}-received",
            customer=customer,
            subscription=subscription,
            context=_email_context(request),
            now=now,
        )
    return request


def support_message_add(*, request, customer, body: str, now=None) -> SupportMessage:
    """The customer's reply in the thread; the request goes back to support ("ouverte")."""
    now = now or timezone.now()
    with transaction.atomic():
        request = SupportRequest.objects.select_for_update().get(pk=request.pk)
        if request.customer_id != customer.pk:
            raise SupportError(_("Cette demande n'est pas la vôtre."))
        if not request.accepts_replies:
            raise SupportError(
                _("Cette demande est fermée : ouvrez une nouvelle demande si besoin.")
            )
        message = SupportMessage.objects.create(
            request=request,
            author=SupportMessage.Author.CUSTOMER,
            author_user=customer,
            body=body.strip(),
            created_at=now,
        )
        request.status = SupportRequest.Status.OPEN
        request.last_message_at = now
        request.save(update_fields=["status", "last_message_at"])
    return message


STAFF_REPLY_STATUSES = (
    SupportRequest.Status.AWAITING_CUSTOMER,
    SupportRequest.Status.RESOLVED,
    SupportRequest.Status.CLOSED,
)


def support_reply_add(
    *, request, staff_user, body: str, status=SupportRequest.Status.AWAITING_CUSTOMER, now=None
) -> SupportMessage:
    """A staff reply: added to the thread, the request takes ``status`` and the customer gets
    one email for this message."""
    now = now or timezone.now()
    body = body.strip()
    if not body:
        raise SupportError("La réponse est vide.")
    if status not in STAFF_REPLY_STATUSES:
        raise SupportError("Statut inconnu pour une réponse du support.")
    with transaction.atomic():
        request = SupportRequest.objects.select_for_update().get(pk=request.pk)
        return _staff_message(request=request, staff_user=staff_user, body=body, status=status,
                              now=now)


def support_refund_approve(
    *, request, staff_user, charge, amount_cents: int, body: str = "", now=None
) -> Refund:
    """Grant a refund asked for in a request: ``amount_cents`` of ``charge`` (a charge of the
    request's subscription, at most its refundable remainder) is refunded by the billing
    service, the subscription's timeline records it with the staff user, a staff message
    tells the customer and the request is resolved. A request is decided once."""
    now = now or timezone.now()
    with transaction.atomic():
        request = _locked_pending_refund(request)
        try:
            refund = staff_charge_refund(
                subscription=request.subscription, charge=charge, amount_cents=amount_cents,
                staff_user=staff_user, now=now, data={"support_request": request.reference},
            )
        except StaffActionError as refused:
            raise SupportError(str(refused)) from refused
        request.refund = refund
        _decide(request, SupportRequest.RefundDecision.APPROVED, staff_user=staff_user, now=now)
        if not body.strip():
            body = _approval_text(request, amount_cents=amount_cents, currency=charge.currency)
        _staff_message(request=request, staff_user=staff_user, body=body.strip(),
                       status=SupportRequest.Status.RESOLVED, now=now)
    return refund


def support_refund_refuse(*, request, staff_user, body: str, now=None) -> SupportRequest:
    """Refuse a refund asked for in a request, with an explanation for the customer. No money
    moves; the request is resolved."""
    now = now or timezone.now()
    body = body.strip()
    if not body:
        raise SupportError("Expliquez au client pourquoi le remboursement est refusé.")
    with transaction.atomic():
        request = _locked_pending_refund(request)
        _decide(request, SupportRequest.RefundDecision.REFUSED, staff_user=staff_user, now=now)
        _staff_message(request=request, staff_user=staff_user, body=body,
                       status=SupportRequest.Status.RESOLVED, now=now)
    return request


def _locked_pending_refund(request) -> SupportRequest:
    request = (
        SupportRequest.objects.select_for_update(of=("self",))
        .select_related("customer")
        .get(pk=request.pk)
    )
    if request.category != SupportRequest.Category.REFUND:
        raise SupportError("Cette demande n'est pas une demande de remboursement.")
    if request.subscription_id is None:
        raise SupportError("Cette demande ne concerne aucun abonnement.")
    if request.refund_decision:
        raise SupportError(
            "Cette demande de remboursement a déjà été traitée "
            f"({request.get_refund_decision_display().lower()})."
        )
    return request


def _decide(request, decision, *, staff_user, now) -> None:
    request.refund_decision = decision
    request.decided_by = staff_user
    request.decided_at = now
    request.save(update_fields=["refund_decision", "refund", "decided_by", "decided_at"])


def _staff_message(*, request, staff_user, body, status, now) -> SupportMessage:
    message = SupportMessage.objects.create(
        request=request,
        author=SupportMessage.Author.STAFF,
        author_user=staff_user,
        body=body,
        created_at=now,
    )
    request.status = status
    request.last_message_at = now
    request.save(update_fields=["status", "last_message_at"])
    email_enqueue(
        kind="support_reply",
        occasion=f"support-message-{message.pk}",
        customer=request.customer,
        subscription=request.subscription,
        context={**_email_context(request), "message": message},
        now=now,
    )
    return message


def _email_context(request) -> dict:
    path = reverse("support:detail", args=[request.reference])
    return {"support_request": request, "thread_url": f"{settings.SITE_URL}{path}"}


def _approval_text(request, *, amount_cents, currency) -> str:
    with translation.override(request.customer.preferred_language):
        return _(
            "Votre demande de remboursement est acceptée : nous vous remboursons %(amount)s "
            "sur le moyen de paiement utilisé. Le remboursement apparaîtra sur votre compte "
            "sous 3 à 5 jours ouvrables."
        ) % {"amount": money(amount_cents, currency)}
