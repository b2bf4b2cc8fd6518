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


class AuthenticationRequired(PaymentError):
    """The bank asks the cardholder to authenticate (PSD2 strong customer authentication,
    3-D Secure): nothing was charged yet. The customer completes it on a page where the
    provider's script runs the challenge with ``client_secret``; ``reference`` is the
    provider's payment (Stripe: the PaymentIntent) that then settles."""

    def __init__(self, reference: str = "", client_secret: str = ""):
        super().__init__("authentication required")
        self.reference = reference
        self.client_secret = client_secret


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
    customer_reference: str = ""  # the customer at the provider (Stripe: cus_…)
    # Merchant-initiated (renewals, scheduled retries); False while the customer is there
    # (first payment, "Payer maintenant"), who can then authenticate at once.
    off_session: bool = True


@dataclass(frozen=True)
class CardSetupRequest:
    """Save a card entered in the provider's own fields (DESIGN §13): ``token`` is what they
    returned (Stripe: pm_…; simulated: tok_…). The portal never sees the number."""

    token: str
    customer_reference: str  # "" the first time: the provider creates the customer
    email: str
    idempotency_key: str


@dataclass(frozen=True)
class CardSetup:
    """A card the provider set up for later off-session charges (Stripe: a SetupIntent),
    verified, or waiting for the cardholder's 3-D Secure when ``requires_action``."""

    token: str
    customer_reference: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    # The card's issuing country as the provider reports it (ISO 3166 alpha-2), "" when it
    # does not: evidence of the customer's location (DESIGN §14).
    country: str = ""
    # Set when the bank asks the cardholder to authenticate before the card may be saved:
    # the provider's setup (Stripe: the SetupIntent) and the secret its script completes.
    reference: str = ""
    client_secret: str = ""

    @property
    def requires_action(self) -> bool:
        return bool(self.client_secret)


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
    # The provider's card fields and script: they tokenize the card in the browser.
    card_fields_template = ""
    # The provider's script that runs a 3-D Secure challenge ("Confirmer votre paiement").
    challenge_template = ""

    def tokenize_card(self, card: CardDetails) -> CardToken:
        """The provider's side of its card fields (only the simulated provider's own endpoint
        calls it; Stripe's Elements tokenize in the browser)."""
        raise NotImplementedError

    def card_setup(self, request: CardSetupRequest) -> CardSetup:
        """Raises CardDeclined (the bank refused the card) or ProviderError. A setup the bank
        wants authenticated first comes back ``requires_action``, with the setup's reference
        and client secret (then card_setup_confirmed)."""
        raise NotImplementedError

    def charge(self, request: ChargeRequest) -> OperationResult:
        """Raises CardDeclined, ProviderError, UnknownOutcome or AuthenticationRequired."""
        raise NotImplementedError

    def refund(self, request: RefundRequest) -> OperationResult:
        raise NotImplementedError

    def card_setup_confirmed(self, reference: str) -> bool:
        """Whether the cardholder authenticated the card setup ``reference`` (True: the card
        may be saved; False: the bank refused it). Raises AuthenticationRequired while it
        still waits, ProviderError when the provider cannot tell."""
        raise NotImplementedError

    def cancel(self, *, reference: str, idempotency_key: str) -> OperationResult:
        """Give up a charge still waiting for the cardholder's authentication, so that it can
        never move money any more. Returns its final state: refused (``canceled``) once
        cancelled, or paid if the cardholder completed it first. Raises ProviderError when
        the provider could not be asked (the charge then still waits)."""
        raise NotImplementedError

    def lookup(self, idempotency_key: str) -> OperationResult | None:
        """What the provider recorded under this key, or None if it never saw it.

        Raises AuthenticationRequired (reference, client secret) for an operation still waiting
        for the cardholder's authentication: it is neither a success nor a decline yet. (A
        caller that knows nothing of it sees a PaymentError, i.e. "could not tell": it asks
        again later, and never reads it as an outcome.)"""
        raise NotImplementedError
