"""What a charge's answer does, per invoice kind (DESIGN §2, §6): one table, ``SETTLEMENTS``,
from the kind of the invoice to the function that applies a known outcome to the (locked)
subscription. The same functions serve an answer given at once and one reconciled later.

Money that arrives for an invoice nobody collects any more (voided meanwhile, or its
subscription ended or was cancelled for that period) goes back to the customer."""

from billing.dunning import FailureKind, authentication_record, decline_record
from billing.models import Charge, Invoice, Refund
from billing.selectors import plan_price
from billing.services import invoice_void, payment_method_withdraw, refund_create
from notifications.services import email_enqueue
from subscriptions.models import Actor, EndReason, Status
from subscriptions.payment_links import confirm_link_url
from subscriptions.rules import expiry_due, invoice_collectable, renewal_collectable
from subscriptions.selectors import business_tz
from subscriptions.services import lifecycle
from subscriptions.services.lifecycle import Who


def _who(charge, subscription_or_customer) -> Who:
    customer = getattr(subscription_or_customer, "customer", subscription_or_customer)
    return Who(charge.initiated_by,
               customer if charge.initiated_by == Actor.CUSTOMER else None)


def initial_settled(*, invoice, charge, subscription, now) -> None:
    """Paid opens the subscription (or restarts the ended one it was for); refused (declined,
    the bank's challenge refused or given up) drops the draft, which never got a number, and
    a card entered with this checkout does not stay the default."""
    if charge.status == Charge.Status.FAILED:
        invoice_void(invoice=invoice, now=now)
        card = charge.payment_method
        if card is not None and card.created_at == invoice.created_at:
            # Saved in the checkout's transaction, at the same instant as its invoice.
            payment_method_withdraw(payment_method=card)
        return
    who = _who(charge, invoice.customer)
    if subscription is None:
        subscription = lifecycle.open_subscription(invoice=invoice, who=who, now=now)
        occasion = f"subscription-{subscription.pk}"
        restart = False
    else:
        lifecycle.restart(subscription, invoice=invoice, who=who, now=now)
        occasion = f"subscription-{subscription.pk}-restart-{invoice.pk}"
        restart = True
    email_enqueue(
        kind="welcome", occasion=occasion, customer=subscription.customer,
        subscription=subscription,
        context={"invoice": invoice, "plan": invoice.plan, "restart": restart}, now=now,
    )


def renewal_settled(*, invoice, charge, subscription, now) -> None:
    if charge.status == Charge.Status.REQUIRES_ACTION:
        # A scheduled attempt the bank wants the customer to authenticate; "Payer maintenant"
        # that needs it sends the customer to the challenge at once (the view), no email.
        if charge.initiated_by == Actor.SYSTEM:
            renewal_authentication_required(invoice=invoice, charge=charge,
                                            subscription=subscription, now=now)
        return
    if charge.status == Charge.Status.SUCCEEDED:
        recovering = subscription.status in (Status.PAST_DUE, Status.SUSPENDED)
        lifecycle.period_paid(subscription, invoice=invoice, charge=charge,
                              who=_who(charge, subscription), now=now)
        email_enqueue(
            kind="subscription_reactivated" if recovering else "renewal_receipt",
            occasion=f"invoice-{invoice.pk}-paid", customer=subscription.customer,
            subscription=subscription,
            context={"invoice": invoice, "plan": invoice.plan, "charge": charge}, now=now,
        )
        return
    # Only a scheduled attempt's decline is a dunning attempt; "Payer maintenant" refused is
    # shown to whoever clicked, and an abandoned charge moved nothing.
    if (
        charge.failure_kind != FailureKind.DECLINE
        or charge.initiated_by != Actor.SYSTEM
        or invoice.status != Invoice.Status.OPEN
        or not renewal_collectable(subscription, invoice)
    ):
        return
    _scheduled_attempt_missed(
        subscription=subscription, invoice=invoice, charge=charge,
        outcome=decline_record(invoice=invoice, charge=charge, tz=business_tz()),
        still_due=(lifecycle.mark_past_due, "payment_failed"), now=now,
    )


def _scheduled_attempt_missed(*, subscription, invoice, charge, outcome, still_due, now,
                              context=None) -> None:
    """A scheduled attempt did not pay: past due (``still_due``: the transition and the email
    kind) with the next retry, or suspended after the last one; one email per attempt."""
    context = {"invoice": invoice, "plan": invoice.plan, "charge": charge,
               "attempt": outcome.attempt, "next_retry_at": outcome.next_retry_at,
               **(context or {})}
    if outcome.exhausted:
        lifecycle.suspend(subscription, invoice=invoice, charge=charge, attempt=outcome.attempt,
                          now=now)
        email_kind = "subscription_suspended"
    else:
        transition, email_kind = still_due
        transition(subscription, invoice=invoice, charge=charge, attempt=outcome.attempt,
                   now=now)
    email_enqueue(
        kind=email_kind, occasion=f"invoice-{invoice.pk}-failure-{outcome.attempt}",
        customer=subscription.customer, subscription=subscription, context=context, now=now,
    )


def renewal_authentication_required(*, invoice, charge, subscription, now) -> None:
    """A scheduled attempt of the (locked) subscription's renewal invoice is waiting for the
    customer's 3-D Secure (DESIGN §6): the attempt takes its place in the retry schedule
    (billing.dunning.authentication_record), the subscription is past due with the reason
    "authentification requise" (suspended if it was the last scheduled attempt), and the
    customer gets an email with the signed link to "Confirmer votre paiement".

    Also called by a scheduled retry that finds the charge still waiting."""
    invoice = Invoice.objects.select_for_update().select_related("plan").get(pk=invoice.pk)
    if (
        invoice.status != Invoice.Status.OPEN
        or subscription.status not in (Status.ACTIVE, Status.PAST_DUE)
        or not renewal_collectable(subscription, invoice)
    ):
        return
    _scheduled_attempt_missed(
        subscription=subscription, invoice=invoice, charge=charge,
        outcome=authentication_record(invoice=invoice, charge=charge, tz=business_tz()),
        still_due=(lifecycle.await_authentication, "authentication_required"), now=now,
        context={"confirm_url": confirm_link_url(invoice=invoice)},
    )


def proration_settled(*, invoice, charge, subscription, now) -> None:
    """Paid applies the plan change; refused drops the draft and nothing changes."""
    if charge.status == Charge.Status.FAILED:
        invoice_void(invoice=invoice, now=now)
        return
    plan_change_apply(subscription, plan=invoice.plan, period_start=invoice.period_start,
                      period_end=invoice.period_end, invoice=invoice,
                      amount_cents=charge.amount_cents, who=_who(charge, subscription), now=now)


def plan_change_apply(subscription, *, plan, period_start, period_end, invoice, amount_cents,
                      who, now) -> None:
    """An immediate plan change takes effect (paid, or nothing to pay) and is confirmed."""
    old_plan = subscription.plan
    switching = plan.interval != old_plan.interval
    subscription, event = lifecycle.change_plan(
        subscription, plan=plan, period_start=period_start, period_end=period_end,
        invoice=invoice, amount_cents=amount_cents, who=who, now=now,
    )
    email_enqueue(
        kind="plan_changed",
        occasion=f"subscription-{subscription.pk}-plan-change-{event.pk}",
        customer=subscription.customer,
        subscription=subscription,
        context={
            "old_plan": old_plan,
            "plan": subscription.plan,
            "invoice": invoice,
            "amount_cents": amount_cents,
            "price": plan_price(plan=subscription.plan, customer=subscription.customer),
            "switching": switching,
            "next_charge_at": subscription.current_period_end,
        },
        now=now,
    )


SETTLEMENTS = {
    Invoice.Kind.INITIAL: initial_settled,
    Invoice.Kind.RENEWAL: renewal_settled,
    Invoice.Kind.PRORATION: proration_settled,
}


def charge_settled(*, charge: Charge, subscription, now) -> None:
    """Apply a charge's known outcome; an unsettled one (pending, unknown) changes nothing.
    A charge that now waits for 3-D Secure is an answer for a scheduled renewal attempt (past
    due, email); a customer's own payment (first payment, plan change, "Payer maintenant")
    waits while their flow sends them to the challenge, and settles when it is answered or
    given up (billing.dunning.challenge_deadline)."""
    if charge.status in (Charge.Status.PENDING, Charge.Status.UNKNOWN):
        return
    invoice = Invoice.objects.select_related("plan", "customer").get(pk=charge.invoice_id)
    if charge.status == Charge.Status.REQUIRES_ACTION:
        if invoice.kind == Invoice.Kind.RENEWAL and subscription is not None:
            renewal_settled(invoice=invoice, charge=charge, subscription=subscription, now=now)
        return
    if charge.status == Charge.Status.SUCCEEDED and (
        invoice.status != Invoice.Status.PAID or not invoice_collectable(subscription, invoice)
    ):
        refund_create(charge=charge, amount_cents=charge.amount_cents,
                      reason=Refund.Reason.UNCOLLECTED, now=now)
        if subscription is not None and expiry_due(subscription, now=now):
            # Paid for a period after the one it was cancelled at (a past-due renewal's
            # 3-D Secure completed after the résiliation): refunded, and the contract ends
            # now rather than at the next expiry scan, as past due with nothing to pay.
            lifecycle.end(subscription, reason=EndReason.EXPIRED, at=subscription.ends_at,
                          now=now)
        return
    if charge.status == Charge.Status.FAILED and charge.failure_kind == FailureKind.NOT_SENT:
        if invoice.kind != Invoice.Kind.RENEWAL or not invoice_collectable(subscription,
                                                                           invoice):
            invoice_void(invoice=invoice, now=now)
        return
    SETTLEMENTS[invoice.kind](invoice=invoice, charge=charge, subscription=subscription,
                              now=now)
