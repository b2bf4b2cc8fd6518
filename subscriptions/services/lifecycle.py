"""The one lifecycle of a subscription (DESIGN §2, §4): the only code that writes its status,
period, plan, licence, renewal and end columns.

Each named transition is checked against ``TRANSITIONS`` (which statuses it may start from and
the status it leads to), writes its columns, derives the licence from the status and records
its event. Callers lock the subscription first (``subscriptions.selectors.lock_subscription``)."""

from dataclasses import dataclass

from billing.models import Invoice
from billing.services import invoice_void
from subscriptions.licences import new_licence_key
from subscriptions.models import (
    RUNNING_STATUSES,
    Actor,
    Status,
    Subscription,
    SubscriptionEvent,
)
from subscriptions.services.events import subscription_event_record

NEW = None  # the "status" of a subscription that does not exist yet
SAME = "same"  # the transition keeps the status it found

# transition → (statuses it may start from, status it leads to)
TRANSITIONS = {
    "open": ({NEW}, Status.ACTIVE),
    "restart": ({Status.ENDED}, Status.ACTIVE),
    "renew": ({Status.ACTIVE}, Status.ACTIVE),
    "reactivate": ({Status.PAST_DUE, Status.SUSPENDED}, Status.ACTIVE),
    "mark_past_due": ({Status.ACTIVE, Status.PAST_DUE}, Status.PAST_DUE),
    "suspend": ({Status.PAST_DUE}, Status.SUSPENDED),
    "schedule_end": (set(RUNNING_STATUSES), SAME),
    "resume_renewal": (set(RUNNING_STATUSES), SAME),
    "change_plan": ({Status.ACTIVE}, Status.ACTIVE),
    "schedule_plan": ({Status.ACTIVE}, Status.ACTIVE),
    "withdraw_plan": ({Status.ACTIVE}, Status.ACTIVE),
    "extend": ({Status.ACTIVE}, Status.ACTIVE),
    "regenerate_licence": ({*RUNNING_STATUSES, Status.ENDED}, SAME),
    "end": (set(RUNNING_STATUSES), Status.ENDED),
}

# The licence works while the customer has access (DESIGN §4: past due is a grace period).
LICENCE_ACTIVE_STATUSES = (Status.ACTIVE, Status.PAST_DUE)


class IllegalTransition(Exception):
    def __init__(self, transition, status):
        super().__init__(f"{transition} is not allowed from status {status!r}")
        self.transition = transition
        self.status = status


@dataclass(frozen=True)
class Who:
    """Who made the change, for the event."""

    actor: str = Actor.SYSTEM
    user: object = None


SYSTEM = Who()


def _move(subscription, transition, *, event_kind, at, who=SYSTEM, amount_cents=None,
          data=None, **columns) -> SubscriptionEvent:
    sources, target = TRANSITIONS[transition]
    current = subscription.status if subscription.pk else NEW
    if current not in sources:
        raise IllegalTransition(transition, current)
    for name, value in columns.items():
        setattr(subscription, name, value)
    if target != SAME:
        subscription.status = target
    subscription.licence_active = subscription.status in LICENCE_ACTIVE_STATUSES
    subscription.save()
    return subscription_event_record(
        subscription=subscription, kind=event_kind, actor=who.actor, actor_user=who.user,
        at=at, amount_cents=amount_cents, data=data or {},
    )


def _period_columns(invoice):
    return {"plan": invoice.plan, "current_period_start": invoice.period_start,
            "current_period_end": invoice.period_end}


def open_subscription(*, invoice, who, now) -> Subscription:
    """A paid first invoice opens the subscription it was for."""
    subscription = Subscription(
        customer=invoice.customer, started_at=invoice.period_start,
        billing_anchor=invoice.period_start, licence_key=new_licence_key(),
    )
    _move(subscription, "open", event_kind=SubscriptionEvent.Kind.SUBSCRIBED, at=now, who=who,
          amount_cents=invoice.total_cents,
          data={"plan": invoice.plan.code, "invoice": invoice.number},
          **_period_columns(invoice))
    Invoice.objects.filter(pk=invoice.pk).update(subscription=subscription)
    invoice.subscription = subscription
    return subscription


def restart(subscription, *, invoice, who, now) -> Subscription:
    """"Renouveler" after the end: a new paid period from now, same subscription and key."""
    _move(
        subscription, "restart", event_kind=SubscriptionEvent.Kind.SUBSCRIBED, at=now, who=who,
        amount_cents=invoice.total_cents,
        data={"plan": invoice.plan.code, "invoice": invoice.number, "restart": True},
        end_reason="", ended_at=None, billing_anchor=invoice.period_start, auto_renew=True,
        cancel_requested_at=None, cancel_reason="", cancel_reason_detail="", ends_at=None,
        pending_plan=None, **_period_columns(invoice),
    )
    return subscription


def period_paid(subscription, *, invoice, charge, who, now) -> Subscription:
    """The renewal invoice is paid: the period it covers becomes the current one, on its plan
    (a scheduled plan change applies). An interval switch re-anchors the billing at the switch
    (DESIGN §4). Paying an overdue invoice reactivates (the period unchanged)."""
    recovering = subscription.status in (Status.PAST_DUE, Status.SUSPENDED)
    columns = _period_columns(invoice)
    if invoice.plan.interval != subscription.plan.interval:
        columns["billing_anchor"] = invoice.period_start
    if subscription.pending_plan_id == invoice.plan_id:
        columns["pending_plan"] = None
    _move(
        subscription, "reactivate" if recovering else "renew",
        event_kind=SubscriptionEvent.Kind.REACTIVATED if recovering
        else SubscriptionEvent.Kind.RENEWED,
        at=now, who=who, amount_cents=charge.amount_cents,
        data={"invoice": invoice.number, "attempt": charge.attempt}, **columns,
    )
    return subscription


def mark_past_due(subscription, *, invoice, charge, attempt, now) -> Subscription:
    _move(subscription, "mark_past_due", event_kind=SubscriptionEvent.Kind.PAYMENT_FAILED,
                 at=now, amount_cents=charge.amount_cents,
                 data={"invoice": invoice.number, "attempt": attempt,
                       "code": charge.failure_code})
    return subscription


def await_authentication(subscription, *, invoice, charge, attempt, now) -> Subscription:
    """A scheduled attempt needs the customer's 3-D Secure (DESIGN §6): past due, with the
    reason "authentification requise" (the invoice's ``last_failure_kind``); access stays."""
    _move(subscription, "mark_past_due",
          event_kind=SubscriptionEvent.Kind.AUTHENTICATION_REQUIRED, at=now,
          amount_cents=charge.amount_cents,
          data={"invoice": invoice.number, "attempt": attempt,
                "reason": invoice.last_failure_kind})
    return subscription


def suspend(subscription, *, invoice, charge, attempt, now) -> Subscription:
    _move(subscription, "suspend", event_kind=SubscriptionEvent.Kind.SUSPENDED, at=now,
                 amount_cents=charge.amount_cents,
                 data={"invoice": invoice.number, "attempt": attempt,
                       "code": charge.failure_code or invoice.last_failure_kind})
    return subscription


def schedule_end(subscription, *, ends_at, reason, reason_detail, rule, refund_cents, who,
                 now, details=None) -> Subscription:
    """Auto-renewal off (a cancellation): the subscription runs until ``ends_at`` (the
    effective date, possibly a later one the customer chose: renewal and expiry follow it).
    ``details``: more for the event (what the acknowledgement restates)."""
    _move(
        subscription, "schedule_end", event_kind=SubscriptionEvent.Kind.CANCELLED, at=now,
        who=who, amount_cents=refund_cents,
        data={"rule": rule, "ends_at": ends_at.isoformat(), "reason": reason,
              "reason_detail": reason_detail, **(details or {})},
        auto_renew=False, cancel_requested_at=now, cancel_reason=reason,
        cancel_reason_detail=reason_detail, ends_at=ends_at,
    )
    return subscription


def resume_renewal(subscription, *, who, now) -> Subscription:
    _move(
        subscription, "resume_renewal", event_kind=SubscriptionEvent.Kind.AUTO_RENEW_REACTIVATED,
        at=now, who=who, auto_renew=True, cancel_requested_at=None, cancel_reason="",
        cancel_reason_detail="", ends_at=None,
    )
    return subscription


def change_plan(subscription, *, plan, period_start, period_end, invoice, amount_cents, who,
                now) -> tuple[Subscription, SubscriptionEvent]:
    """An immediate plan change (upgrade, monthly → annual); it replaces a scheduled one."""
    old_plan, replaced = subscription.plan, subscription.pending_plan
    switching = plan.interval != old_plan.interval
    columns = {"plan": plan, "pending_plan": None}
    if switching:
        columns.update(billing_anchor=period_start, current_period_start=period_start,
                       current_period_end=period_end)
    event = _move(
        subscription, "change_plan", event_kind=SubscriptionEvent.Kind.PLAN_CHANGED, at=now,
        who=who, amount_cents=amount_cents,
        data={"from": old_plan.code, "to": plan.code,
              "invoice": invoice.number if invoice else "",
              "new_billing_anchor": period_start.isoformat() if switching else "",
              "replaced_scheduled": replaced.code if replaced else ""},
        **columns,
    )
    return subscription, event


def schedule_plan(subscription, *, plan, effective_at, who, now) -> Subscription:
    replaced = subscription.pending_plan
    _move(
        subscription, "schedule_plan", event_kind=SubscriptionEvent.Kind.PLAN_CHANGE_SCHEDULED,
        at=now, who=who, pending_plan=plan,
        data={"from": subscription.plan.code, "to": plan.code,
              "effective_at": effective_at.isoformat(),
              "replaced_scheduled": replaced.code if replaced else ""},
    )
    return subscription


def withdraw_plan(subscription, *, who, now) -> Subscription:
    withdrawn = subscription.pending_plan
    _move(
        subscription, "withdraw_plan", event_kind=SubscriptionEvent.Kind.PLAN_CHANGE_WITHDRAWN,
        at=now, who=who, pending_plan=None,
        data={"plan": subscription.plan.code, "withdrawn": withdrawn.code},
    )
    return subscription


def extend(subscription, *, period_end, ends_at, days, who, now) -> Subscription:
    """Support gives days: billing is re-anchored on the new end, so the next period starts
    there (from the old anchor it would start at the old boundary and charge the days)."""
    previous_end, previous_ends_at = subscription.current_period_end, subscription.ends_at
    _move(
        subscription, "extend", event_kind=SubscriptionEvent.Kind.PERIOD_EXTENDED, at=now,
        who=who, current_period_end=period_end, billing_anchor=period_end, ends_at=ends_at,
        data={"days": days, "from": previous_end.isoformat(), "to": period_end.isoformat(),
              "ends_at_from": previous_ends_at.isoformat() if previous_ends_at else "",
              "ends_at_to": ends_at.isoformat() if ends_at else ""},
    )
    return subscription


def regenerate_licence(subscription, *, who, now) -> Subscription:
    old_key = subscription.licence_key
    new_key = new_licence_key()
    while Subscription.objects.filter(licence_key=new_key).exists():
        new_key = new_licence_key()
    _move(subscription, "regenerate_licence",
                 event_kind=SubscriptionEvent.Kind.LICENCE_REGENERATED, at=now, who=who,
                 licence_key=new_key, data={"old_key": old_key, "new_key": new_key})
    return subscription


def end(subscription, *, reason, at, now, who=SYSTEM, amount_cents=None, data=None) -> None:
    """Every way a subscription ends (expiry, unpaid, refund windows, withdrawal, staff, account
    deletion) goes through here: open invoices are voided (an issued one by a credit note),
    their retries stop, nothing more is renewed, charged or scheduled."""
    for invoice in subscription.invoices.filter(status__in=[Invoice.Status.DRAFT,
                                                            Invoice.Status.OPEN]):
        invoice_void(invoice=invoice, now=now)
    _move(subscription, "end", event_kind=SubscriptionEvent.Kind.ENDED, at=now, who=who,
          amount_cents=amount_cents,
          data={"reason": reason, "ended_at": at.isoformat(), **(data or {})},
          end_reason=reason, ended_at=at, ends_at=at, auto_renew=False, pending_plan=None)
