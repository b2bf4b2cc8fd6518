"""The built-in simulated provider (the default). It keeps its own ledger in the database so
that idempotency is real: an idempotency key moves money at most once. The ledger is read and
written on a connection of its own (the database alias SIMULATED_PROVIDER_DATABASE), committed
independently of the portal's transaction, as a remote provider's would be: what it charged
stays charged if the portal's transaction rolls back.

Test cards (any future expiry, any CVC):

==================== ===========================================================
4242 4242 4242 4242  success (so does any other valid number)
4000 0000 0000 0002  declined (generic), also when the card is set up
4000 0000 0000 9995  declined: insufficient funds (the card sets up fine)
4000 0000 0000 0069  declined: expired card, also when the card is set up
4000 0000 0000 0341  sets up fine, then every charge is declined (as Stripe's card)
4000 0000 0000 0119  provider error, nothing charged (retry later)
4000 0000 0000 0408  timeout: the charge went through but the answer was lost
4000 0027 6000 3184  3-D Secure on every charge, off-session or not (and at setup)
4000 0025 0000 3155  3-D Secure at setup only: its charges then go through
==================== ===========================================================

The card's issuing country (location evidence, DESIGN §14) is reported for Stripe's country
test cards, ``400000`` + the country's ISO 3166 numeric code + a tail, which otherwise succeed:
4000 0025 0000 0003 France, 4000 0027 6000 0016 Germany, 4000 0024 6000 0001 Finland, one for
each member state and a few others (``COUNTRY_CARDS``). Every other card, the ones above
included, reports no country (""), as a provider that does not say: its invoices carry no card
country and are never flagged.

A charge that needs 3-D Secure is recorded in the ledger as a pending ``requires_action``
operation under its idempotency key, with a client secret, and answered
AuthenticationRequired(reference, client_secret); replaying the key or looking it up answers
the same until the cardholder settles it on the challenge page (``simulated_views``, standing
for the bank's page): "Valider" moves the money (``success``), "Refuser" declines it
(``authentication_failed``). The portal may give it up first (``cancel``): it is then
declined (``canceled``) and the challenge page no longer moves money. A setup that needs it
is recorded the same way (kind ``setup``); ``card_setup_confirmed`` reads the cardholder's
answer.

On top of the test cards, SIMULATED_PROVIDER_FAULTS injects faults into a share (0 to 1) of
the charges and refunds that would otherwise succeed: ``provider_error`` (nothing recorded,
ProviderError), ``timeout_after_charge`` (recorded, then UnknownOutcome; replaying the key
answers normally); into a share of lookups: ``lookup_failure`` (ProviderError); and a delay
before every answer: ``latency_ms``. ``seed`` makes the draws reproducible. Decline cards
always decline; with every share at 0 nothing is injected.
"""

import random
import secrets
import time

from django.conf import settings
from django.db import IntegrityError, transaction

from billing.models import SimulatedProviderCard, SimulatedProviderOperation

from .base import (
    AuthenticationRequired,
    CardDeclined,
    CardDetails,
    CardSetup,
    CardSetupRequest,
    CardToken,
    ChargeRequest,
    OperationResult,
    PaymentError,
    PaymentGateway,
    ProviderError,
    RefundRequest,
    UnknownOutcome,
)

SUCCESS = "success"
TIMEOUT_AFTER_SUCCESS = "timeout_after_success"
PROVIDER_ERROR = "provider_error"
REQUIRES_ACTION = "requires_action"  # a ledger status: waiting for the cardholder
AUTHENTICATION_FAILED = "authentication_failed"  # the decline code of a refused challenge
CANCELED = "canceled"  # the code of an operation the portal gave up while it waited
AUTHENTICATE_ALWAYS = "authenticate_always"
AUTHENTICATE_AT_SETUP = "authenticate_at_setup"
AUTHENTICATING = {
    "4000002760003184": AUTHENTICATE_ALWAYS,
    "4000002500003155": AUTHENTICATE_AT_SETUP,
}
DECLINES = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
}
# Setting a card up is a verification with the bank: these are refused there already.
REFUSED_AT_SETUP = {"card_declined", "expired_card"}
CHARGES_DECLINED = "charges_declined"
BEHAVIOURS = {
    "4000000000000341": CHARGES_DECLINED,
    "4000000000000119": PROVIDER_ERROR,
    "4000000000000408": TIMEOUT_AFTER_SUCCESS,
    **AUTHENTICATING,
    **DECLINES,
}

# Stripe's international test cards (docs.stripe.com/testing#international-cards): the
# number's digits 7 to 9 are the country's ISO 3166 numeric code.
COUNTRY_CARDS = {
    "4000000400000008": "AT",
    "4000000560000004": "BE",
    "4000001000000000": "BG",
    "4000001910000009": "HR",
    "4000001960000008": "CY",
    "4000002030000002": "CZ",
    "4000002080000001": "DK",
    "4000002330000009": "EE",
    "4000002460000001": "FI",
    "4000002500000003": "FR",
    "4000002760000016": "DE",
    "4000003000000030": "GR",
    "4000003480000005": "HU",
    "4000003720000005": "IE",
    "4000003800000008": "IT",
    "4000004280000005": "LV",
    "4000004400000000": "LT",
    "4000004420000006": "LU",
    "4000004700000007": "MT",
    "4000005280000002": "NL",
    "4000006160000005": "PL",
    "4000006200000007": "PT",
    "4000006420000001": "RO",
    "4000007030000001": "SK",
    "4000007050000006": "SI",
    "4000007240000007": "ES",
    "4000007520000008": "SE",
    "4000005780000007": "NO",
    "4000007560000009": "CH",
    "4000008260000000": "GB",
    "4000001240000000": "CA",
    "4000000760000002": "BR",
}


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for position, digit in enumerate(int(c) for c in reversed(number)):
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def card_brand(number: str) -> str:
    if number.startswith("4"):
        return "Visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or 2221 <= int(number[:4]) <= 2720:
        return "Mastercard"
    if number[:2] in {"34", "37"}:
        return "American Express"
    return "Carte"


def _result(operation: SimulatedProviderOperation) -> OperationResult:
    return OperationResult(
        reference=operation.reference,
        amount_cents=operation.amount_cents,
        currency=operation.currency,
        succeeded=operation.status == SUCCESS,
        failure_code=operation.failure_code,
    )


def _new_reference(prefix: str) -> str:
    return f"{prefix}_sim_{secrets.token_hex(10)}"


def _new_client_secret() -> str:
    return f"sec_sim_{secrets.token_urlsafe(24)}"


def _database() -> str:
    return settings.SIMULATED_PROVIDER_DATABASE


class _Draws:
    """The fault draws, seeded with the setting's seed (reseeded when it changes), so a run
    with a seed injects the same faults into the same sequence of calls."""

    def __init__(self):
        self.seed, self.random = None, random.Random()

    def __call__(self) -> float:
        seed = settings.SIMULATED_PROVIDER_FAULTS["seed"]
        if seed != self.seed:
            self.seed, self.random = seed, random.Random(seed)
        return self.random.random()


_draw = _Draws()


def _latency() -> None:
    """The time the provider takes to answer."""
    if delay_ms := settings.SIMULATED_PROVIDER_FAULTS["latency_ms"]:
        time.sleep(delay_ms / 1000)


def _injected() -> str:
    """What the fault settings make of a charge or refund that would succeed: one draw, so
    each share is a share of all such operations."""
    faults, draw = settings.SIMULATED_PROVIDER_FAULTS, _draw()
    if draw < faults["provider_error"]:
        return PROVIDER_ERROR
    if draw < faults["provider_error"] + faults["timeout_after_charge"]:
        return TIMEOUT_AFTER_SUCCESS
    return SUCCESS


class SimulatedGateway(PaymentGateway):
    card_fields_template = "billing/_card_fields_simulated.html"
    challenge_template = "subscriptions/_challenge_simulated.html"

    def tokenize_card(self, card: CardDetails) -> CardToken:
        _latency()
        number = card.number
        if not luhn_valid(number):
            raise CardDeclined("incorrect_number")
        token = _new_reference("tok")
        SimulatedProviderCard.objects.using(_database()).create(
            token=token,
            behaviour=BEHAVIOURS.get(number, SUCCESS),
            brand=card_brand(number),
            last4=number[-4:],
            exp_month=card.exp_month,
            exp_year=card.exp_year,
            country=COUNTRY_CARDS.get(number, ""),
        )
        return CardToken(token, card_brand(number), number[-4:], card.exp_month, card.exp_year)

    def card_setup(self, request: CardSetupRequest) -> CardSetup:
        """A card the bank refuses is not set up; the others are verified at once."""
        _latency()
        card = SimulatedProviderCard.objects.using(_database()).filter(
            token=request.token).first()
        if card is None:
            raise CardDeclined("invalid_token")
        if _injected() == PROVIDER_ERROR:
            raise ProviderError("simulated provider unavailable")
        if card.behaviour in REFUSED_AT_SETUP:
            raise CardDeclined(card.behaviour)
        reference = client_secret = ""
        if card.behaviour in AUTHENTICATING.values():
            # The bank asks for 3-D Secure before the card may be saved.
            setup = self._record(request.idempotency_key, kind="setup", amount_cents=0,
                                 currency="EUR", status=REQUIRES_ACTION,
                                 client_secret=_new_client_secret())
            if setup.status == REQUIRES_ACTION:
                reference, client_secret = setup.reference, setup.client_secret
        return CardSetup(
            token=card.token,
            customer_reference=request.customer_reference or _new_reference("cus"),
            brand=card.brand, last4=card.last4,
            exp_month=card.exp_month or 12, exp_year=card.exp_year or 2099,
            country=card.country, reference=reference, client_secret=client_secret,
        )

    def card_setup_confirmed(self, reference: str) -> bool:
        _latency()
        setup = SimulatedProviderOperation.objects.using(_database()).filter(
            reference=reference, kind="setup").first()
        if setup is None:
            raise ProviderError(f"no setup {reference}")
        if setup.status == REQUIRES_ACTION:
            raise AuthenticationRequired(setup.reference, setup.client_secret)
        return setup.status == SUCCESS

    def cancel(self, *, reference: str, idempotency_key: str) -> OperationResult:
        """The operation stops waiting: its challenge page then refuses to move money."""
        _latency()
        database = _database()
        with transaction.atomic(using=database):
            operation = (SimulatedProviderOperation.objects.using(database).select_for_update()
                         .filter(idempotency_key=idempotency_key).first())
            if operation is None:
                raise ProviderError(f"nothing recorded under {idempotency_key}")
            if operation.status == REQUIRES_ACTION:
                operation.status = "declined"
                operation.failure_code = CANCELED
                operation.save(update_fields=["status", "failure_code"])
        return _result(operation)

    def charge(self, request: ChargeRequest) -> OperationResult:
        _latency()
        replay = self._replay(request.idempotency_key, request.amount_cents)
        if replay is not None:
            return self._answer(replay)
        card = SimulatedProviderCard.objects.using(_database()).filter(token=request.token).first()
        if card is None:
            raise CardDeclined("invalid_token")
        behaviour = card.behaviour
        if behaviour == AUTHENTICATE_ALWAYS:
            # On-session too: the customer is there, but the bank still asks.
            operation = self._record(
                request.idempotency_key, kind="charge", amount_cents=request.amount_cents,
                currency=request.currency, status=REQUIRES_ACTION,
                client_secret=_new_client_secret(),
            )
            return self._answer(operation)
        if behaviour in (SUCCESS, AUTHENTICATE_AT_SETUP):  # authenticated when it was set up
            behaviour = _injected()
        if behaviour == CHARGES_DECLINED:
            behaviour = "card_declined"
        if behaviour == PROVIDER_ERROR:
            raise ProviderError("simulated provider unavailable")
        declined = behaviour in DECLINES.values()
        operation = self._record(
            request.idempotency_key,
            kind="charge",
            amount_cents=request.amount_cents,
            currency=request.currency,
            status="declined" if declined else SUCCESS,
            failure_code=behaviour if declined else "",
        )
        if behaviour == TIMEOUT_AFTER_SUCCESS and operation.created_now:
            raise UnknownOutcome("simulated timeout after the charge was made")
        return self._answer(operation)

    def refund(self, request: RefundRequest) -> OperationResult:
        _latency()
        replay = self._replay(request.idempotency_key, request.amount_cents)
        if replay is not None:
            return self._answer(replay)
        database = _database()
        with transaction.atomic(using=database):
            charged = (
                SimulatedProviderOperation.objects.using(database).select_for_update()
                .filter(reference=request.charge_reference, kind="charge", status=SUCCESS)
                .first()
            )
            if charged is None:
                raise PaymentError("unknown charge")
            # The same refund sent twice at once: the second one, once it holds the lock,
            # must find the first and replay it rather than count it against the charge.
            replay = self._replay(request.idempotency_key, request.amount_cents)
            if replay is not None:
                return self._answer(replay)
            refunded = sum(
                SimulatedProviderOperation.objects.using(database).filter(
                    charge_reference=charged.reference, kind="refund", status=SUCCESS
                ).values_list("amount_cents", flat=True)
            )
            if refunded + request.amount_cents > charged.amount_cents:
                raise PaymentError("refund exceeds the charge")
            behaviour = _injected()
            if behaviour == PROVIDER_ERROR:
                raise ProviderError("simulated provider unavailable")
            operation = self._record(
                request.idempotency_key,
                kind="refund",
                amount_cents=request.amount_cents,
                currency=request.currency,
                status=SUCCESS,
                charge_reference=charged.reference,
            )
        if behaviour == TIMEOUT_AFTER_SUCCESS and operation.created_now:
            raise UnknownOutcome("simulated timeout after the refund was made")
        return self._answer(operation)

    def lookup(self, idempotency_key: str) -> OperationResult | None:
        """Raises AuthenticationRequired for an operation still waiting for the cardholder:
        neither a success nor a decline (see PaymentGateway.lookup)."""
        _latency()
        if _draw() < settings.SIMULATED_PROVIDER_FAULTS["lookup_failure"]:
            raise ProviderError("simulated provider unavailable")
        operation = SimulatedProviderOperation.objects.using(_database()).filter(
            idempotency_key=idempotency_key
        ).first()
        if operation is not None and operation.status == REQUIRES_ACTION:
            raise AuthenticationRequired(operation.reference, operation.client_secret)
        return _result(operation) if operation else None

    @staticmethod
    def _replay(idempotency_key: str, amount_cents: int):
        operation = SimulatedProviderOperation.objects.using(_database()).filter(
            idempotency_key=idempotency_key
        ).first()
        if operation is not None and operation.amount_cents != amount_cents:
            raise PaymentError("idempotency key reused with a different amount")
        return operation

    @staticmethod
    def _record(idempotency_key, **fields):
        database = _database()
        prefix = {"charge": "ch", "refund": "re", "setup": "seti"}[fields["kind"]]
        try:
            with transaction.atomic(using=database):
                operation = SimulatedProviderOperation.objects.using(database).create(
                    idempotency_key=idempotency_key, reference=_new_reference(prefix), **fields
                )
                operation.created_now = True
        except IntegrityError:
            operation = SimulatedProviderOperation.objects.using(database).get(
                idempotency_key=idempotency_key
            )
            operation.created_now = False
        return operation

    @staticmethod
    def _answer(operation: SimulatedProviderOperation) -> OperationResult:
        if operation.status == REQUIRES_ACTION:
            raise AuthenticationRequired(operation.reference, operation.client_secret)
        if operation.status != SUCCESS:
            raise CardDeclined(operation.failure_code)
        return _result(operation)


# The challenge page's side (the bank's): simulated_views calls these.


def challenge_operation(client_secret: str) -> SimulatedProviderOperation | None:
    """The operation this client secret authenticates, whatever its status, or None."""
    if not client_secret:
        return None
    return SimulatedProviderOperation.objects.using(_database()).filter(
        client_secret=client_secret
    ).first()


def challenge_complete(*, client_secret: str, approved: bool) -> SimulatedProviderOperation | None:
    """The cardholder answers the challenge: approved moves the money (the operation succeeds),
    refused declines it (``authentication_failed``). Once only: an operation no longer
    waiting is returned unchanged."""
    database = _database()
    with transaction.atomic(using=database):
        operation = (
            SimulatedProviderOperation.objects.using(database).select_for_update()
            .filter(client_secret=client_secret).first()
            if client_secret else None
        )
        if operation is None or operation.status != REQUIRES_ACTION:
            return operation
        operation.status = SUCCESS if approved else "declined"
        operation.failure_code = "" if approved else AUTHENTICATION_FAILED
        operation.save(update_fields=["status", "failure_code"])
    return operation
