"""Charging a subscription's invoices and what follows from the answer (DESIGN §5, §6).

Every charge is prepared (committed with its idempotency key) before it is sent, and is sent
while the subscription row is locked, so a cancellation that committed first is always seen:
nothing is charged after a cancel."""

from django.conf import settings
from django.db import transaction

from billing.models import Charge, Invoice, Refund
from billing.services import (
    charge_abandon,
    charge_attempt,
    charge_reconcile,
    invoice_void,
    refund_create,
)
from notifications.services import email_enqueue
from subscriptions.models import Actor, Status, Subscription, SubscriptionEvent
from subscriptions.periods import add_days
from subscriptions.selectors import business_tz
from subscriptions.services.events import subscription_event_record


def lock_subscription(pk) -> Subscription:
    """Lock the subscription row, then read it with its plans and customer.

    Locked alone: PostgreSQL re-checks a row it waited for against the joined rows it read
    before waiting, so locking through a join on a plan that a plan change replaced meanwhile
    would not find the row. Read after the lock, it is the committed state."""
    Subscription.objects.select_for_update().filter(pk=pk).values_list("pk", flat=True).get()
    return Subscription.objects.select_related("plan", "customer", "pending_plan").get(pk=pk)


def renewal_collectable(subscription, invoice) -> bool:
    """May this renewal invoice still be charged? Not once the subscription ended or was
    cancelled for that period (a commitment keeps it chargeable until its end)."""
    if subscription.status == Status.ENDED:
        return False
    return subscription.auto_renew or (
        subscription.ends_at is not None and subscription.ends_at > invoice.period_start
    )


def charge_send(*, charge: Charge, now) -> Charge:
    """Send a prepared charge and apply its outcome, under the subscription's lock."""
    with transaction.atomic():
        invoice = Invoice.objects.get(pk=charge.invoice_id)
        subscription = lock_subscription(invoice.subscription_id) if invoice.subscription_id \
            else None
        if subscription is not None and not _collectable(subscription, invoice):
            abandoned = charge_abandon(charge=charge, now=now)
            invoice_void(invoice=invoice)
            return abandoned or Charge.objects.get(pk=charge.pk)
        attempted = charge_attempt(charge=charge, now=now)
        if attempted is None:
            return Charge.objects.get(pk=charge.pk)
        charge_outcome_apply(charge=attempted, subscription=subscription, now=now)
        return attempted


def _collectable(subscription, invoice) -> bool:
    if invoice.kind == Invoice.Kind.PRORATION:
        from subscriptions.services.change_plan import proration_collectable

        return proration_collectable(subscription, invoice)
    return invoice.kind != Invoice.Kind.RENEWAL or renewal_collectable(subscription, invoice)


def charge_reconcile_apply(*, charge_id: int, now) -> Charge | None:
    """Settle an unknown (or stale pending) charge from the provider's record, then apply the
    outcome exactly as if the provider had answered at once."""
    with transaction.atomic():
        charge = Charge.objects.select_related("invoice").get(pk=charge_id)
        subscription_id = charge.invoice.subscription_id
        subscription = lock_subscription(subscription_id) if subscription_id else None
        settled = charge_reconcile(charge=charge, now=now)
        if settled is not None:
            charge_outcome_apply(charge=settled, subscription=subscription, now=now)
        return settled


def charge_outcome_apply(*, charge: Charge, subscription, now) -> None:
    invoice = Invoice.objects.select_related("plan", "customer").get(pk=charge.invoice_id)
    if invoice.kind == Invoice.Kind.INITIAL:
        from subscriptions.services.subscribe import initial_charge_settled

        initial_charge_settled(invoice=invoice, charge=charge, now=now)
        return
    if invoice.kind == Invoice.Kind.PRORATION:
        from subscriptions.services.change_plan import proration_charge_settled

        proration_charge_settled(invoice=invoice, charge=charge, subscription=subscription,
                                 now=now)
        return
    collectable = invoice.status == Invoice.Status.PAID and renewal_collectable(
        subscription, invoice
    )
    if charge.status == Charge.Status.SUCCEEDED and not collectable:
        # Money that came in late (reconciled) for an invoice nobody collects any more: voided,
        # or its subscription ended or was cancelled for that period meanwhile.
        refund_create(charge=charge, amount_cents=charge.amount_cents,
                      reason=Refund.Reason.UNCOLLECTED, now=now)
    elif charge.status == Charge.Status.SUCCEEDED:
        _renewal_paid(subscription=subscription, invoice=invoice, charge=charge, now=now)
    elif (
        charge.status == Charge.Status.FAILED
        and charge.initiated_by == Actor.SYSTEM
        # A charge settled late (reconciled) must not dun an invoice nobody collects any more:
        # voided, or its subscription ended or was cancelled for that period meanwhile.
        and invoice.status == Invoice.Status.OPEN
        and renewal_collectable(subscription, invoice)
    ):
        _scheduled_attempt_failed(subscription=subscription, invoice=invoice, charge=charge,
                                  now=now)


def _renewal_paid(*, subscription, invoice, charge, now) -> None:
    recovering = subscription.status in (Status.PAST_DUE, Status.SUSPENDED)
    subscription.plan = invoice.plan
    if subscription.pending_plan_id == invoice.plan_id:
        subscription.pending_plan = None
    subscription.current_period_start = invoice.period_start
    subscription.current_period_end = invoice.period_end
    subscription.status = Status.ACTIVE
    subscription.licence_active = True
    subscription.dunning_started_at = None
    subscription.next_retry_at = None
    subscription.save()
    subscription_event_record(
        subscription=subscription,
        kind=SubscriptionEvent.Kind.REACTIVATED if recovering
        else SubscriptionEvent.Kind.RENEWED,
        actor=charge.initiated_by,
        actor_user=subscription.customer if charge.initiated_by == Actor.CUSTOMER else None,
        at=now,
        amount_cents=charge.amount_cents,
        data={"invoice": invoice.number, "attempt": charge.attempt},
    )
    email_enqueue(
        kind="subscription_reactivated" if recovering else "renewal_receipt",
        occasion=f"invoice-{invoice.pk}-paid",
        customer=subscription.customer,
        subscription=subscription,
        context={"invoice": invoice, "plan": invoice.plan, "charge": charge},
        now=now,
    )


def _scheduled_attempt_failed(*, subscription, invoice, charge, now) -> None:
    """Attempt 1 is the renewal; attempts 2–4 follow DUNNING_RETRY_DAYS after it; the fourth
    failure suspends the subscription (DESIGN §6)."""
    retry_days = settings.DUNNING_RETRY_DAYS
    failures = (
        invoice.charges.filter(status=Charge.Status.FAILED, initiated_by=Actor.SYSTEM)
        .exclude(failure_code__in=["not_attempted"])
        .count()
    )
    if subscription.dunning_started_at is None:
        subscription.dunning_started_at = charge.created_at
    context = {"invoice": invoice, "plan": invoice.plan, "charge": charge, "attempt": failures}
    if failures <= len(retry_days):
        subscription.status = Status.PAST_DUE
        subscription.next_retry_at = add_days(
            subscription.dunning_started_at, retry_days[failures - 1], tz=business_tz()
        )
        context["next_retry_at"] = subscription.next_retry_at
        kind, email_kind = SubscriptionEvent.Kind.PAYMENT_FAILED, "payment_failed"
    else:
        subscription.status = Status.SUSPENDED
        subscription.next_retry_at = None
        subscription.licence_active = False
        kind, email_kind = SubscriptionEvent.Kind.SUSPENDED, "subscription_suspended"
    subscription.save()
    subscription_event_record(
        subscription=subscription,
        kind=kind,
        at=now,
        amount_cents=charge.amount_cents,
        data={"invoice": invoice.number, "attempt": failures, "code": charge.failure_code},
    )
    email_enqueue(
        kind=email_kind,
        occasion=f"invoice-{invoice.pk}-failure-{failures}",
        customer=subscription.customer,
        subscription=subscription,
        context=context,
        now=now,
    )
