"""The payment-provider interface (DESIGN §2). Only this package talks to a provider."""

from dataclasses import dataclass


class PaymentError(Exception):
    """Base of the provider errors the rest of the code may catch."""


class CardDeclined(PaymentError):
    """The provider refused the card: shown to the customer, retried on the dunning schedule."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(message or code)
        self.code = code
        self.message = message


class ProviderError(PaymentError):
    """The provider failed before moving money: safe to retry with backoff."""


class UnknownOutcome(PaymentError):
    """No answer: the money may have moved. Reconcile by idempotency key, never retry blindly."""


@dataclass(frozen=True)
class CardDetails:
    number: str
    exp_month: int
    exp_year: int
    cvc: str


@dataclass(frozen=True)
class CardToken:
    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class ChargeRequest:
    token: str
    amount_cents: int
    currency: str
    idempotency_key: str
    description: str = ""


@dataclass(frozen=True)
class RefundRequest:
    charge_reference: str
    amount_cents: int
    currency: str
    idempotency_key: str


@dataclass(frozen=True)
class OperationResult:
    """A charge or refund the provider has recorded."""

    reference: str
    amount_cents: int
    currency: str
    succeeded: bool
    failure_code: str = ""


class PaymentGateway:
    def tokenize_card(self, card: CardDetails) -> CardToken:
        raise NotImplementedError

    def charge(self, request: ChargeRequest) -> OperationResult:
        """Raises CardDeclined, ProviderError or UnknownOutcome."""
        raise NotImplementedError

    def refund(self, request: RefundRequest) -> OperationResult:
        raise NotImplementedError

    def lookup(self, idempotency_key: str) -> OperationResult | None:
        """What the provider recorded under this key, or None if it never saw it."""
        raise NotImplementedError
