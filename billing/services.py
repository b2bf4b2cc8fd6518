"""Writes of the billing app: cards, invoices, charges, refunds (DESIGN §2, §8)."""

import logging
from dataclasses import replace
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import CustomerType
from billing.amounts import tax_from_net, tax_from_total
from billing.dunning import (
    FailureKind,
    challenge_deadline,
    next_authentication_check,
    provider_retry_delay,
)
from billing.gateways import (
    AuthenticationRequired,
    CardDeclined,
    CardSetup,
    CardSetupRequest,
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
from billing.vat import vat_treatment

logger = logging.getLogger(__name__)

INVOICE_PREFIX = "F"
CREDIT_NOTE_PREFIX = "A"
NOT_ATTEMPTED = "not_attempted"
PROVIDER_ERROR = "provider_error"
CANCELED = "canceled"  # what providers answer for a payment given up while it waited
# A charge that may still move money: nothing else may charge its invoice meanwhile.
IN_PROGRESS = (Charge.Status.PENDING, Charge.Status.UNKNOWN, Charge.Status.REQUIRES_ACTION)


class RefundNotAllowed(Exception):
    pass


class SetupAuthenticationRequired(Exception):
    """The bank asks the cardholder to authenticate the new card before it may be saved
    (3-D Secure at setup): nothing was saved. The customer goes through the provider's
    challenge with ``setup.client_secret``; card_setup_complete then saves it."""

    def __init__(self, setup: CardSetup):
        super().__init__("card setup requires authentication")
        self.setup = setup


def payment_method_add(*, customer, token: str, now=None) -> PaymentMethod:
    """Set up the card the provider's fields tokenized and make it the customer's default card.

    Raises CardDeclined when the provider refuses it (it is then not saved), and
    SetupAuthenticationRequired when the bank first wants it authenticated."""
    return payment_method_save(customer=customer, setup=card_setup(customer=customer,
                                                                   token=token), now=now)


def card_setup(*, customer, token: str) -> CardSetup:
    """Verify a tokenized card with the provider for later off-session charges (DESIGN §13).
    Raises CardDeclined, or SetupAuthenticationRequired when the bank wants the cardholder
    to authenticate it first. Call it outside any lock: it is a request to the provider."""
    latest = customer.payment_methods.exclude(provider_customer_reference="").first()
    try:
        setup = get_gateway().card_setup(CardSetupRequest(
            token=token,
            customer_reference=latest.provider_customer_reference if latest else "",
            email=customer.email,
            idempotency_key=f"customer-{customer.pk}-setup-{token}",
        ))
    except ProviderError as error:
        # Nothing was saved: the customer, who is there, is told to try again.
        raise CardDeclined(PROVIDER_ERROR) from error
    if setup.requires_action:
        raise SetupAuthenticationRequired(setup)
    return setup


def card_setup_complete(*, customer, setup: CardSetup, now=None) -> PaymentMethod:
    """The customer is back from the bank's challenge for a card setup: saved as the default
    card if the provider says it was authenticated. Raises CardDeclined (refused, or the
    provider could not tell: nothing saved) or SetupAuthenticationRequired (still waiting)."""
    try:
        confirmed = get_gateway().card_setup_confirmed(setup.reference)
    except AuthenticationRequired as waiting:
        raise SetupAuthenticationRequired(setup) from waiting
    except PaymentError as error:
        raise CardDeclined(PROVIDER_ERROR) from error
    if not confirmed:
        raise CardDeclined("setup_authentication_failed")
    return payment_method_save(customer=customer, setup=replace(setup, client_secret=""),
                               now=now)


def payment_method_save(*, customer, setup: CardSetup, now=None) -> PaymentMethod:
    now = now or timezone.now()
    with transaction.atomic():
        # Serialize a customer's card changes: two at once would both insert a default card.
        get_user_model().objects.select_for_update().get(pk=customer.pk)
        saved = customer.payment_methods.filter(provider_token=setup.token).first()
        if saved is not None:
            return saved  # the same setup saved again (a second return from the bank)
        customer.payment_methods.filter(is_default=True).update(is_default=False)
        return PaymentMethod.objects.create(
            customer=customer,
            provider_token=setup.token,
            provider_customer_reference=setup.customer_reference,
            brand=setup.brand,
            last4=setup.last4,
            exp_month=setup.exp_month,
            exp_year=setup.exp_year,
            country=setup.country,
            is_default=True,
            created_at=now,
        )


def payment_method_withdraw(*, payment_method: PaymentMethod) -> None:
    """A new card whose first charge was refused is not kept as the default: the previous
    card, if any, becomes the default again (unless another card became the default since)."""
    with transaction.atomic():
        get_user_model().objects.select_for_update().get(pk=payment_method.customer_id)
        updated = PaymentMethod.objects.filter(pk=payment_method.pk, is_default=True).update(
            is_default=False
        )
        previous = (
            PaymentMethod.objects.filter(customer_id=payment_method.customer_id)
            .exclude(pk=payment_method.pk)
            .order_by("-created_at", "-id")
            .first()
        )
        if updated and previous is not None:
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
    net and VAT at the customer's rate on the invoice's date (``vat_treatment``: 0 % under
    reverse charge for an EU business outside France).

    A renewal invoice is issued (numbered) at once; the others stay drafts until paid, so a
    refused first payment leaves no numbered invoice (DESIGN §14)."""
    rate, reverse_charge = vat_treatment(customer, on=now)
    if total_cents is None:
        amount = tax_from_net(net_cents=plan.price_cents, vat_rate=rate)
    else:
        amount = tax_from_total(total_cents=total_cents, vat_rate=rate)
    invoice = Invoice.objects.create(
        customer=customer,
        subscription=subscription,
        plan=plan,
        kind=kind,
        period_start=period_start,
        period_end=period_end,
        currency=plan.currency,
        vat_rate=amount.vat_rate,
        reverse_charge=reverse_charge,
        billing_country=customer.billing_country,
        net_cents=amount.net_cents,
        vat_cents=amount.vat_cents,
        total_cents=amount.total_cents,
        created_at=now,
    )
    InvoiceLine.objects.create(
        invoice=invoice,
        description=description,
        net_cents=amount.net_cents,
        vat_cents=amount.vat_cents,
        total_cents=amount.total_cents,
    )
    if kind == Invoice.Kind.RENEWAL:
        _invoice_issue(invoice, status=Invoice.Status.OPEN, now=now)
    return invoice


CUSTOMER_AT_ISSUE = ["customer_type", "customer_name", "customer_company", "customer_address",
                     "customer_siren", "customer_vat_number"]


def _invoice_issue(invoice: Invoice, *, status, now) -> None:
    """Give the invoice the next number of the series (once), the customer as they are at
    that moment (DESIGN §14) and the status."""
    fields = ["status"]
    if invoice.number is None:
        invoice.number = next_document_number(prefix=INVOICE_PREFIX, now=now)
        invoice.issued_at = now
        _invoice_address(invoice, customer=invoice.customer)
        fields += ["number", "issued_at", *CUSTOMER_AT_ISSUE]
    invoice.status = status
    invoice.save(update_fields=fields)


def _invoice_address(invoice: Invoice, *, customer) -> None:
    """Who the invoice is addressed to, copied so that a later change of the profile never
    alters it; a company's identifiers only for a professional."""
    business = customer.customer_type == CustomerType.BUSINESS
    invoice.customer_type = customer.customer_type
    invoice.customer_name = customer.get_full_name() or customer.email
    invoice.customer_company = customer.company_name if business else ""
    invoice.customer_address = "\n".join(line for line in (
        customer.address_line1, customer.address_line2,
        f"{customer.postal_code} {customer.city}".strip(),
    ) if line)
    invoice.customer_siren = customer.siren if business else ""
    invoice.customer_vat_number = customer.vat_number if business else ""


UNCOLLECTED = (Invoice.Status.DRAFT, Invoice.Status.OPEN)


def invoice_void(*, invoice: Invoice, now) -> None:
    """Nobody will collect this invoice any more. A draft is simply dropped (it has no number);
    an issued invoice is cancelled by a credit note for its whole amount, never silently."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status not in UNCOLLECTED:
        return
    invoice.status = Invoice.Status.VOID
    invoice.next_retry_at = None
    invoice.save(update_fields=["status", "next_retry_at"])
    if invoice.number is not None:
        CreditNote.objects.create(
            number=next_document_number(prefix=CREDIT_NOTE_PREFIX, now=now),
            invoice=invoice,
            net_cents=invoice.net_cents,
            vat_cents=invoice.vat_cents,
            total_cents=invoice.total_cents,
            issued_at=now,
        )


def charge_prepare(*, invoice: Invoice, now, initiated_by: str = "system") -> Charge:
    """Commit a pending charge of an uncollected invoice on the customer's default card.

    The row and its idempotency key exist before the provider is ever called, so a crash
    leaves a pending charge to reconcile, never money without a record. Raises PaymentError
    while another charge of the invoice is pending, unknown or waiting for the customer's
    3-D Secure (it may still move money). Without a saved card the
    attempt is still recorded, and refused ("no_card") when sent, so dunning goes on."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status not in UNCOLLECTED:
            raise PaymentError("invoice is not open")
        if invoice.charges.filter(status__in=IN_PROGRESS):
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


def _locked_charge(charge: Charge) -> Charge:
    return (
        Charge.objects.select_for_update(of=("self",))
        .select_related("payment_method", "invoice")
        .get(pk=charge.pk)
    )


def charge_attempt(*, charge: Charge, now) -> Charge | None:
    """Send a prepared charge to the provider and record the answer (DESIGN §6): succeeded
    (the invoice is paid and issued), declined, a provider error (nothing charged: the system
    sends it again later; a customer or staff member waiting is told instead), or unknown.

    Runs inside the caller's transaction, which holds whatever must not change meanwhile; the
    charge row is locked, so a charge is sent once. Returns None if it was not pending."""
    charge = _locked_charge(charge)
    if charge.status != Charge.Status.PENDING:
        return None
    return _send(charge, now=now)


def _send(charge: Charge, *, now) -> Charge:
    if charge.payment_method is None:
        return _charge_failed(charge, now=now, code="no_card", kind=FailureKind.DECLINE)
    gateway = get_gateway()
    request = ChargeRequest(
        token=charge.payment_method.provider_token,
        amount_cents=charge.amount_cents,
        currency=charge.currency,
        idempotency_key=charge.idempotency_key,
        description=charge.invoice.number or f"invoice-{charge.invoice_id}",
        customer_reference=charge.payment_method.provider_customer_reference,
        # Only the customer's own charges (first payment, "Payer maintenant", "Confirmer votre
        # paiement") are made while they are there to authenticate; renewals, scheduled retries
        # and support's "retry now" are merchant-initiated.
        off_session=charge.initiated_by != "customer",
    )
    try:
        result = gateway.charge(request)
    except AuthenticationRequired as required:
        return _charge_requires_action(charge, now=now, required=required)
    except CardDeclined as declined:
        return _charge_failed(charge, now=now, code=declined.code, kind=FailureKind.DECLINE)
    except UnknownOutcome:
        try:
            result = _lookup_quietly(gateway, charge.idempotency_key)
        except AuthenticationRequired as required:
            return _charge_requires_action(charge, now=now, required=required)
        if result is None:
            charge.status = Charge.Status.UNKNOWN
            charge.next_attempt_at = now + timedelta(
                minutes=settings.UNKNOWN_CHARGE_MIN_AGE_MINUTES
            )
            charge.save(update_fields=["status", "next_attempt_at"])
            return charge
    except PaymentError as error:
        # A provider error, or a request it refused as such (invalid parameters): nothing was
        # charged and it is not the card's doing.
        if charge.initiated_by != "system":
            return _charge_failed(charge, now=now, code=PROVIDER_ERROR,
                                  kind=FailureKind.NOT_SENT)
        return _charge_send_later(charge, now=now, error=error)
    return _charge_record_result(charge, result, now=now)


def charge_resume(*, charge: Charge, now, send: bool) -> Charge | None:
    """A charge that may or may not have reached the provider (unknown outcome, a provider
    error's backoff over, a process that died around the call): ask the provider by
    idempotency key first, never blindly. What it recorded settles the charge; a key it never
    saw moved no money, so the charge is sent again under the same key (``send``) or, when
    nobody collects the invoice any more, abandoned. A look-up that fails is tried later.

    A charge waiting for the customer's 3-D Secure is asked about the same way: completed or
    refused, it settles; still waiting, it is asked about again later and None is returned
    (nothing new to apply).

    Runs inside the caller's transaction. Returns None if the charge was already settled."""
    charge = _locked_charge(charge)
    if charge.status not in IN_PROGRESS:
        return None
    waiting = charge.status == Charge.Status.REQUIRES_ACTION
    try:
        result = get_gateway().lookup(charge.idempotency_key)
    except AuthenticationRequired as required:
        if waiting:
            return _still_waiting(charge, now=now, collected=send)
        return _charge_requires_action(charge, now=now, required=required)
    except PaymentError as error:
        if waiting:
            return _ask_again(charge, at=now + provider_retry_delay(1))
        return _charge_send_later(charge, now=now, error=error)
    if result is not None:
        return _charge_record_result(charge, result, now=now)
    if waiting:
        # The provider gave us this operation: it cannot forget it. Ask again later.
        return _ask_again(charge, at=next_authentication_check(charge, now=now))
    if not send:
        return _charge_failed(charge, now=now, code=NOT_ATTEMPTED, kind=FailureKind.NOT_SENT)
    charge.status = Charge.Status.PENDING
    return _send(charge, now=now)


def _still_waiting(charge, *, now, collected: bool) -> Charge | None:
    """A charge the cardholder has still not authenticated: cancelled at the provider once
    nobody collects its invoice or its challenge deadline passed, otherwise asked about
    again later."""
    deadline = challenge_deadline(charge)
    if not collected or (deadline is not None and now >= deadline):
        return _charge_cancel_waiting(charge, now=now)
    return _ask_again(charge, at=next_authentication_check(charge, now=now))


def _ask_again(charge, *, at) -> None:
    """A charge still waiting for 3-D Secure: asked about again ``at``; nothing to apply."""
    charge.next_attempt_at = at
    charge.save(update_fields=["next_attempt_at"])


def charge_abandon(*, charge: Charge, now) -> Charge | None:
    """A prepared charge that must not be sent any more (the subscription was cancelled)."""
    charge = _locked_charge(charge)
    if charge.status != Charge.Status.PENDING:
        return None
    return _charge_failed(charge, now=now, code=NOT_ATTEMPTED, kind=FailureKind.NOT_SENT)


def charge_challenge_cancel(*, charge: Charge, now) -> Charge | None:
    """The customer starts the same payment again rather than finish its 3-D Secure: the
    waiting one is cancelled at the provider first. Returns it settled (refused, or paid if
    the cardholder completed it meanwhile), None if it was no longer waiting or the provider
    could not be asked (it then still waits). Runs inside the caller's transaction."""
    charge = _locked_charge(charge)
    if charge.status != Charge.Status.REQUIRES_ACTION:
        return None
    return _charge_cancel_waiting(charge, now=now)


def _charge_cancel_waiting(charge, *, now) -> Charge | None:
    """Cancel at the provider before giving up: until the provider says so, the cardholder
    could still complete the challenge and move money the portal no longer expects."""
    try:
        result = get_gateway().cancel(reference=charge.provider_reference,
                                      idempotency_key=charge.idempotency_key)
    except PaymentError:
        return _ask_again(charge, at=now + provider_retry_delay(1))
    if result.succeeded:
        return _charge_succeeded(charge, now=now, reference=result.reference)
    # Cancelled by us, unless the cardholder had refused the challenge first (its own code).
    code = (result.failure_code if result.failure_code not in ("", CANCELED)
            else "authentication_abandoned")
    return _charge_failed(charge, now=now, code=code, kind=FailureKind.AUTHENTICATION_REQUIRED)


def _lookup_quietly(gateway, idempotency_key):
    """None when the look-up fails; AuthenticationRequired (the operation waits for the
    cardholder) goes through to the caller."""
    try:
        return gateway.lookup(idempotency_key)
    except AuthenticationRequired:
        raise
    except PaymentError:
        logger.warning("lookup of %s failed; the charge stays unknown", idempotency_key)
        return None


def _charge_record_result(charge, result, *, now) -> Charge:
    if result.succeeded:
        return _charge_succeeded(charge, now=now, reference=result.reference)
    # A charge that waited for 3-D Secure and was then refused (the challenge failed or was
    # declined) keeps its kind: never a decline, so never a dunning attempt of its own (the
    # scheduled attempt it answered was already counted as an authentication request).
    kind = (FailureKind.AUTHENTICATION_REQUIRED
            if charge.status == Charge.Status.REQUIRES_ACTION else FailureKind.DECLINE)
    return _charge_failed(charge, now=now, code=result.failure_code or "card_declined",
                          kind=kind)


def _charge_requires_action(charge, *, now, required: AuthenticationRequired) -> Charge:
    """The bank asks the cardholder to authenticate: nothing charged yet. The charge waits
    (it still may move money: nothing else charges the invoice meanwhile) and the provider is
    asked about it from time to time, in case the customer completes it elsewhere."""
    charge.status = Charge.Status.REQUIRES_ACTION
    charge.provider_reference = required.reference[:64]
    charge.client_secret = required.client_secret
    charge.failure_kind = FailureKind.AUTHENTICATION_REQUIRED
    charge.failure_code = ""
    charge.next_attempt_at = next_authentication_check(charge, now=now)
    charge.save(update_fields=["status", "provider_reference", "client_secret",
                               "failure_kind", "failure_code", "next_attempt_at"])
    return charge


def _charge_send_later(charge, *, now, error) -> Charge:
    charge.provider_errors += 1
    charge.next_attempt_at = now + provider_retry_delay(charge.provider_errors)
    charge.last_error = str(error)[:200]
    charge.save(update_fields=["status", "provider_errors", "next_attempt_at", "last_error"])
    logger.warning("charge %s: provider unavailable (%s); sent again at %s", charge.pk, error,
                   charge.next_attempt_at)
    return charge


def _charge_failed(charge, *, now, code, kind) -> Charge:
    charge.status = Charge.Status.FAILED
    charge.failure_code = code
    charge.failure_kind = kind
    charge.settled_at = now
    charge.next_attempt_at = None
    charge.save(update_fields=["status", "failure_code", "failure_kind", "settled_at",
                               "next_attempt_at"])
    return charge


def _charge_succeeded(charge, *, now, reference) -> Charge:
    charge.status = Charge.Status.SUCCEEDED
    charge.provider_reference = reference
    charge.settled_at = now
    charge.next_attempt_at = None
    charge.save(update_fields=["status", "provider_reference", "settled_at", "next_attempt_at"])
    invoice = Invoice.objects.select_for_update().get(pk=charge.invoice_id)
    # A void invoice stays void: the caller refunds money that arrived for it.
    if invoice.status in UNCOLLECTED:
        invoice.paid_at = now
        invoice.next_retry_at = None
        # Evidence of the customer's location (DESIGN §14): the country of the card that paid.
        invoice.card_country = charge.payment_method.country if charge.payment_method else ""
        invoice.save(update_fields=["paid_at", "next_retry_at", "card_country"])
        _invoice_issue(invoice, status=Invoice.Status.PAID, now=now)
    return charge


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
        return _refund_failed(refund, reason=str(error))
    if not result.succeeded:  # what the look-up found: a refund the provider refused
        return _refund_failed(refund, reason=result.failure_code or "refused")
    return _refund_settle(refund, reference=result.reference, now=now)


def _refund_failed(refund: Refund, *, reason: str) -> Refund:
    Refund.objects.filter(pk=refund.pk, status=Refund.Status.PENDING).update(
        status=Refund.Status.FAILED, failure_message=reason[:200]
    )
    logger.error("refund %s refused by the provider: %s", refund.pk, reason)
    refund.refresh_from_db()
    return refund


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
    if invoice.status == Invoice.Status.VOID:
        # Money that arrived for an invoice nobody collects any more: a draft was never
        # issued, an issued one is already cancelled by its own credit note (invoice_void).
        return refund
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
