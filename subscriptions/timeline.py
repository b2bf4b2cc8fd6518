"""The subscription's timeline for support staff (DESIGN §11): its events, charge attempts,
refunds and emails merged in time order, each with who did it. Four queries, however long."""

from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext as _

from billing.dunning import FAILURE_REASONS
from billing.models import Charge, Refund
from formats.dates import long_datetime
from notifications.models import OutboxEmail
from subscriptions.models import Actor, CancelReason, EndReason, SubscriptionEvent


class Source:
    CHARGE = "charge"
    REFUND = "refund"
    EVENT = "event"
    EMAIL = "email"


# At the same instant: the money moves, then what it caused, then the email about it.
_RANK = {Source.CHARGE: 0, Source.REFUND: 1, Source.EVENT: 2, Source.EMAIL: 3}


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    source: str
    kind: str
    label: str
    actor: str
    actor_label: str
    amount_cents: int | None = None
    currency: str = "EUR"
    status: str = ""
    details: str = ""
    pk: int = 0

    @property
    def sort_key(self):
        return (self.at, _RANK[self.source], self.pk)


def subscription_timeline(*, subscription) -> list[TimelineEntry]:
    customer = subscription.customer
    currency = subscription.plan.currency
    events = SubscriptionEvent.objects.filter(subscription=subscription).select_related(
        "actor_user"
    )
    charges = Charge.objects.filter(invoice__subscription=subscription).select_related("invoice")
    refunds = Refund.objects.filter(charge__invoice__subscription=subscription).select_related(
        "charge__invoice", "credit_note"
    )
    emails = OutboxEmail.objects.filter(subscription=subscription)
    entries = [
        *(_event_entry(event, customer, currency) for event in events),
        *(_charge_entry(charge, customer) for charge in charges),
        *(_refund_entry(refund) for refund in refunds),
        *(_email_entry(email) for email in emails),
    ]
    return sorted(entries, key=lambda entry: entry.sort_key)


def actor_label(actor: str, *, user=None, customer=None) -> str:
    if actor == Actor.CUSTOMER:
        person = user or customer
        return person.email if person is not None else Actor.CUSTOMER.label
    if actor == Actor.STAFF:
        return user.email if user is not None else str(Actor.STAFF.label)
    return str(Actor.SYSTEM.label)


def _event_entry(event, customer, currency) -> TimelineEntry:
    return TimelineEntry(
        at=event.at,
        source=Source.EVENT,
        kind=event.kind,
        label=event.get_kind_display(),
        actor=event.actor,
        actor_label=actor_label(event.actor, user=event.actor_user, customer=customer),
        amount_cents=event.amount_cents,
        currency=currency,
        details=_event_details(event.kind, event.data or {}),
        pk=event.pk,
    )


def _charge_entry(charge, customer) -> TimelineEntry:
    details = charge.invoice.number
    if charge.failure_code:
        details = f"{details} — {charge.failure_code}"
    return TimelineEntry(
        at=charge.created_at,
        source=Source.CHARGE,
        kind=charge.status,
        label=_("Paiement, tentative %(attempt)s") % {"attempt": charge.attempt},
        actor=charge.initiated_by,
        actor_label=actor_label(charge.initiated_by, customer=customer),
        amount_cents=charge.amount_cents,
        currency=charge.currency,
        status=charge.get_status_display(),
        details=details,
        pk=charge.pk,
    )


def _refund_entry(refund) -> TimelineEntry:
    actor = Actor.STAFF if refund.reason == Refund.Reason.STAFF else Actor.SYSTEM
    details = _("paiement de la facture %(invoice)s") % {"invoice": refund.charge.invoice.number}
    credit_note = getattr(refund, "credit_note", None)
    if credit_note is not None:
        details = f"{details} — {_('avoir %(number)s') % {'number': credit_note.number}}"
    return TimelineEntry(
        at=refund.created_at,
        source=Source.REFUND,
        kind=refund.reason,
        label=_("Remboursement (%(reason)s)") % {"reason": refund.get_reason_display()},
        actor=actor,
        actor_label=actor_label(actor),
        amount_cents=refund.amount_cents,
        currency=refund.currency,
        status=refund.get_status_display(),
        details=details,
        pk=refund.pk,
    )


def _email_entry(email) -> TimelineEntry:
    return TimelineEntry(
        at=email.created_at,
        source=Source.EMAIL,
        kind=email.kind,
        label=_("E-mail : %(subject)s") % {"subject": email.subject},
        actor=Actor.SYSTEM,
        actor_label=actor_label(Actor.SYSTEM),
        status=email.get_status_display(),
        details=f"{email.kind} → {email.recipient}",
        pk=email.pk,
    )


def _when(value) -> str:
    if not value:
        return ""
    try:
        instant = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return str(value)
    return long_datetime(instant)


def _choice_label(choices, value) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return str(value)


def _event_details(kind, data) -> str:
    Kind = SubscriptionEvent.Kind
    if kind == Kind.CANCELLED:
        parts = [_("fin d'accès le %(date)s") % {"date": _when(data.get("ends_at"))}]
        if data.get("reason"):
            parts.append(_("motif : %(reason)s")
                         % {"reason": _choice_label(CancelReason, data["reason"])})
        if data.get("reason_detail"):
            parts.append(f"« {data['reason_detail']} »")
        return " — ".join(parts)
    if kind == Kind.ENDED:
        return _choice_label(EndReason, data.get("reason", ""))
    if kind == Kind.WITHDRAWN:
        return _("déclaration reçue le %(date)s, au nom de %(name)s — accusé de réception à "
                 "%(email)s") % {"date": _when(data.get("received_at")),
                                 "name": data.get("name", ""), "email": data.get("email", "")}
    if kind in (Kind.PLAN_CHANGED, Kind.PLAN_CHANGE_SCHEDULED):
        return f"{data.get('from', '')} → {data.get('to', '')} {data.get('invoice', '')}".strip()
    if kind == Kind.PLAN_CHANGE_WITHDRAWN:
        return str(data.get("withdrawn", ""))
    if kind == Kind.PERIOD_EXTENDED:
        return _("%(days)s jours : fin de période du %(from)s au %(to)s") % {
            "days": data.get("days"), "from": _when(data.get("from")), "to": _when(data.get("to"))
        }
    if kind == Kind.LICENCE_REGENERATED:
        return f"{data.get('old_key', '')} → {data.get('new_key', '')}"
    if kind == Kind.EMAIL_RESENT:
        return str(data.get("kind", ""))
    if kind == Kind.PAYMENT_RETRIED:
        status = _choice_label(Charge.Status, data.get("status", ""))
        return " — ".join(filter(None, [data.get("invoice", ""), status, data.get("code", "")]))
    if kind == Kind.DISPUTE_OPENED:
        respond_by = data.get("respond_by")
        return " — ".join(filter(None, [
            data.get("invoice", ""),
            _("motif : %(reason)s") % {"reason": data.get("reason_label") or data.get("reason")
                                       or _("motif non précisé")},
            respond_by and _("réponse avant le %(date)s") % {"date": _when(respond_by)},
            data.get("dispute", ""),
        ]))
    if kind == Kind.DISPUTE_CLOSED:
        return " — ".join(filter(None, [data.get("invoice", ""),
                                        data.get("status_label") or data.get("status", ""),
                                        data.get("dispute", "")]))
    if kind in (Kind.PAYMENT_FAILED, Kind.SUSPENDED, Kind.AUTHENTICATION_REQUIRED):
        reason = FAILURE_REASONS.get(data.get("reason") or data.get("code", ""))
        return " — ".join(
            filter(None, [data.get("invoice", ""), _("tentative %(attempt)s")
                          % {"attempt": data.get("attempt")},
                          str(reason) if reason else data.get("code", "")])
        )
    return str(data.get("invoice", ""))
