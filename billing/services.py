"""Writes of the billing app: cards, invoices, charges, refunds (DESIGN §2, §8)."""

import logging

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from billing.amounts import tax_from_net, tax_from_total
from billing.gateways import (
    CardDeclined,
    CardDetails,
    ChargeRequest,
    PaymentError,
    ProviderError,
    RefundRequest,
    UnknownOutcome,
    get_gateway,
)
from billing.models import (
    Charge,
    CreditNote,
    DocumentSequence,
    Invoice,
    InvoiceLine,
    PaymentMethod,
    Refund,
)
from billing.vat import vat_rate_for_country

logger = logging.getLogger(__name__)

INVOICE_PREFIX = "F"
CREDIT_NOTE_PREFIX = "A"


class RefundNotAllowed(Exception):
    pass


def payment_method_add(*, customer, card: CardDetails, now=None) -> PaymentMethod:
    """Tokenize the card with the provider and make it the customer's default card.

    Raises CardDeclined when the provider rejects the number."""
    now = now or timezone.now()
    token = get_gateway().tokenize_card(card)
    with transaction.atomic():
        # Serialize a customer's card changes: two at once would both insert a default card.
        get_user_model().objects.select_for_update().get(pk=customer.pk)
        customer.payment_methods.filter(is_default=True).update(is_default=False)
        return PaymentMethod.objects.create(
            customer=customer,
            provider_token=token.token,
            brand=token.brand,
            last4=token.last4,
            exp_month=token.exp_month,
            exp_year=token.exp_year,
            is_default=True,
            created_at=now,
        )


def payment_method_withdraw(*, payment_method: PaymentMethod) -> None:
    """A new card whose first charge was refused is not kept as the default: the previous
    card, if any, becomes the default again."""
    with transaction.atomic():
        get_user_model().objects.select_for_update().get(pk=payment_method.customer_id)
        PaymentMethod.objects.filter(pk=payment_method.pk).update(is_default=False)
        previous = (
            PaymentMethod.objects.filter(customer_id=payment_method.customer_id)
            .exclude(pk=payment_method.pk)
            .order_by("-created_at", "-id")
            .first()
        )
        if previous is not None:
            PaymentMethod.objects.filter(pk=previous.pk).update(is_default=True)


def next_document_number(*, prefix: str, now) -> str:
    """Gapless: the counter row is locked and incremented in the caller's transaction."""
    year = timezone.localtime(now).year
    DocumentSequence.objects.get_or_create(prefix=prefix, year=year)
    sequence = DocumentSequence.objects.select_for_update().get(prefix=prefix, year=year)
    sequence.last_value += 1
    sequence.save(update_fields=["last_value"])
    return f"{prefix}{year}-{sequence.last_value:06d}"


@transaction.atomic
def invoice_create(
    *, customer, plan, kind, period_start, period_end, description, subscription=None,
    total_cents=None, now
) -> Invoice:
    """One line: the plan's price, or ``total_cents`` (tax-inclusive, a proration) split into
    net and VAT at the customer's rate."""
    vat_rate = vat_rate_for_country(customer.billing_country)
    if total_cents is None:
        amount = tax_from_net(net_cents=plan.price_cents, vat_rate=vat_rate)
    else:
        amount = tax_from_total(total_cents=total_cents, vat_rate=vat_rate)
    invoice = Invoice.objects.create(
        number=next_document_number(prefix=INVOICE_PREFIX, now=now),
        customer=customer,
        subscription=subscription,
        plan=plan,
        kind=kind,
        period_start=period_start,
        period_end=period_end,
        currency=plan.currency,
        vat_rate=amount.vat_rate,
        billing_country=customer.billing_country,
        net_cents=amount.net_cents,
        vat_cents=amount.vat_cents,
        total_cents=amount.total_cents,
        issued_at=now,
    )
    InvoiceLine.objects.create(
        invoice=invoice,
        description=description,
        net_cents=amount.net_cents,
        vat_cents=amount.vat_cents,
        total_cents=amount.total_cents,
    )
    return invoice


NOT_ATTEMPTED = "not_attempted"
NO_RECORD_AT_PROVIDER = "no_record"


def charge_prepare(*, invoice: Invoice, now, initiated_by: str = "system") -> Charge:
    """Commit a pending charge of an open invoice on the customer's default card.

    The row and its idempotency key exist before the provider is ever called, so a crash
    leaves a pending charge to reconcile, never money without a record. Raises PaymentError
    while another charge of the invoice is pending or unknown. Without a saved card the
    attempt is still recorded, and refused ("no_card") when sent, so dunning goes on."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status != Invoice.Status.OPEN:
            raise PaymentError("invoice is not open")
        if invoice.charges.filter(status__in=[Charge.Status.PENDING, Charge.Status.UNKNOWN]):
            raise PaymentError("a charge of this invoice is still in progress")
        card = invoice.customer.payment_methods.filter(is_default=True).first()
        attempt = invoice.charges.count() + 1
        return Charge.objects.create(
            invoice=invoice,
            customer=invoice.customer,
            payment_method=card,
            attempt=attempt,
            initiated_by=initiated_by,
            amount_cents=invoice.total_cents,
            currency=invoice.currency,
            idempotency_key=f"invoice-{invoice.pk}-attempt-{attempt}",
            created_at=now,
        )


def charge_attempt(*, charge: Charge, now) -> Charge | None:
    """Send a prepared charge to the provider and record the answer: succeeded (the invoice
    is paid), failed, or unknown (the provider did not answer and a lookup could not tell).

    Runs inside the caller's transaction, which holds whatever must not change meanwhile; the
    charge row is locked, so a charge is sent once. Returns None if it was not pending."""
    charge = (
        Charge.objects.select_for_update(of=("self",))
        .select_related("payment_method", "invoice")
        .get(pk=charge.pk)
    )
    if charge.status != Charge.Status.PENDING:
        return None
    if charge.payment_method is None:
        return _charge_record(charge, now=now, failure_code="no_card")
    gateway = get_gateway()
    request = ChargeRequest(
        token=charge.payment_method.provider_token,
        amount_cents=charge.amount_cents,
        currency=charge.currency,
        idempotency_key=charge.idempotency_key,
        description=charge.invoice.number,
    )
    try:
        result = gateway.charge(request)
    except CardDeclined as declined:
        return _charge_record(charge, now=now, failure_code=declined.code)
    except ProviderError:
        return _charge_record(charge, now=now, failure_code="provider_error")
    except UnknownOutcome:
        result = _lookup_quietly(gateway, charge.idempotency_key)
        if result is None:
            charge.status = Charge.Status.UNKNOWN
            charge.save(update_fields=["status"])
            return charge
    return _charge_record_result(charge, result, now=now)


def charge_reconcile(*, charge: Charge, now) -> Charge | None:
    """Ask the provider, by idempotency key, what became of a charge whose outcome is unknown
    (or that was left pending by a crash). A key the provider never saw moved no money.

    Runs inside the caller's transaction; raises PaymentError when the provider cannot answer
    yet. Returns None if the charge was already settled."""
    charge = Charge.objects.select_for_update().get(pk=charge.pk)
    if charge.status not in (Charge.Status.PENDING, Charge.Status.UNKNOWN):
        return None
    result = get_gateway().lookup(charge.idempotency_key)
    if result is None:
        return _charge_record(charge, now=now, failure_code=NO_RECORD_AT_PROVIDER)
    return _charge_record_result(charge, result, now=now)


def charge_abandon(*, charge: Charge, now) -> Charge | None:
    """A prepared charge that must not be sent any more (the subscription was cancelled)."""
    charge = Charge.objects.select_for_update().get(pk=charge.pk)
    if charge.status != Charge.Status.PENDING:
        return None
    return _charge_record(charge, now=now, failure_code=NOT_ATTEMPTED)


def _lookup_quietly(gateway, idempotency_key):
    try:
        return gateway.lookup(idempotency_key)
    except PaymentError:
        logger.warning("lookup of %s failed; the charge stays unknown", idempotency_key)
        return None


def _charge_record_result(charge, result, *, now) -> Charge:
    if result.succeeded:
        return _charge_record(charge, now=now, reference=result.reference)
    return _charge_record(charge, now=now, failure_code=result.failure_code or "card_declined")


def _charge_record(charge, *, now, reference="", failure_code="") -> Charge:
    charge.settled_at = now
    if failure_code:
        charge.status = Charge.Status.FAILED
        charge.failure_code = failure_code
        charge.save(update_fields=["status", "failure_code", "settled_at"])
        return charge
    charge.status = Charge.Status.SUCCEEDED
    charge.provider_reference = reference
    charge.save(update_fields=["status", "provider_reference", "settled_at"])
    # A void invoice stays void: the caller refunds money that arrived for it.
    Invoice.objects.filter(pk=charge.invoice_id, status=Invoice.Status.OPEN).update(
        status=Invoice.Status.PAID, paid_at=now
    )
    return charge


def invoice_void(*, invoice: Invoice) -> None:
    Invoice.objects.filter(pk=invoice.pk, status=Invoice.Status.OPEN).update(
        status=Invoice.Status.VOID
    )


def charge_refundable_cents(charge: Charge) -> int:
    if charge.status != Charge.Status.SUCCEEDED:
        return 0
    committed = charge.refunds.exclude(status=Refund.Status.FAILED).aggregate(
        total=Sum("amount_cents")
    )["total"]
    return charge.amount_cents - (committed or 0)


def refund_create(*, charge: Charge, amount_cents: int, reason: str, now) -> Refund:
    """Record a refund to be paid; the provider is called after commit by refund_execute.

    Must run inside the caller's transaction; the charge row is locked so two refunds can
    never together exceed what was charged."""
    charge = Charge.objects.select_for_update().get(pk=charge.pk)
    if amount_cents <= 0:
        raise RefundNotAllowed("Le montant du remboursement doit être positif.")
    if amount_cents > charge_refundable_cents(charge):
        raise RefundNotAllowed("Le montant dépasse ce qui reste remboursable sur ce paiement.")
    sequence = charge.refunds.count() + 1
    refund = Refund.objects.create(
        charge=charge,
        amount_cents=amount_cents,
        currency=charge.currency,
        reason=reason,
        idempotency_key=f"charge-{charge.pk}-refund-{sequence}",
        created_at=now,
    )
    from billing.tasks import refund_execute_task

    # robust: the refund row is committed and stays pending if enqueueing fails.
    transaction.on_commit(lambda: refund_execute_task.delay(refund.pk), robust=True)
    return refund


def refund_execute(*, refund_id: int, now=None) -> Refund:
    """Pay a recorded refund through the provider. Safe to run twice: the status guard and the
    provider's idempotency key make the second run a no-op.

    Raises ProviderError / UnknownOutcome (when the provider cannot tell) for the task to retry."""
    now = now or timezone.now()
    refund = Refund.objects.select_related("charge").get(pk=refund_id)
    if refund.status != Refund.Status.PENDING:
        return refund
    gateway = get_gateway()
    request = RefundRequest(
        charge_reference=refund.charge.provider_reference,
        amount_cents=refund.amount_cents,
        currency=refund.currency,
        idempotency_key=refund.idempotency_key,
    )
    try:
        result = gateway.refund(request)
    except UnknownOutcome:
        result = gateway.lookup(refund.idempotency_key)
        if result is None:
            raise
    except ProviderError:
        raise
    except PaymentError as error:
        Refund.objects.filter(pk=refund.pk, status=Refund.Status.PENDING).update(
            status=Refund.Status.FAILED, failure_message=str(error)[:200]
        )
        logger.error("refund %s refused by the provider: %s", refund.pk, error)
        refund.refresh_from_db()
        return refund
    return _refund_settle(refund, reference=result.reference, now=now)


@transaction.atomic
def _refund_settle(refund: Refund, *, reference: str, now) -> Refund:
    refund = Refund.objects.select_for_update().select_related("charge__invoice").get(pk=refund.pk)
    if refund.status != Refund.Status.PENDING:
        return refund
    refund.status = Refund.Status.SUCCEEDED
    refund.provider_reference = reference
    refund.refunded_at = now
    refund.save(update_fields=["status", "provider_reference", "refunded_at"])
    invoice = refund.charge.invoice
    amount = tax_from_total(total_cents=refund.amount_cents, vat_rate=invoice.vat_rate)
    CreditNote.objects.create(
        number=next_document_number(prefix=CREDIT_NOTE_PREFIX, now=now),
        invoice=invoice,
        refund=refund,
        net_cents=amount.net_cents,
        vat_cents=amount.vat_cents,
        total_cents=amount.total_cents,
        issued_at=now,
    )
    return refund
