"""Stripe behind the provider interface (DESIGN §6, §13), with the official ``stripe`` library.

Cards are entered in Stripe Elements, which hand the portal a PaymentMethod (``pm_…``), so
``tokenize_card`` is not used. ``card_setup`` saves it on the Stripe Customer through a
SetupIntent for later off-session charges; ``charge`` is a confirmed PaymentIntent; ``refund``
refunds one. Each write carries our idempotency key twice: as Stripe's ``Idempotency-Key``
(a request sent again under it is answered with the first answer, for 24 hours) and in the
object's ``metadata['idempotency_key']``, which is what ``lookup`` finds.

What Stripe answers, and what the portal is told (the mapping lives in ``_payment_error``
and ``_settled``):

======================================================== ==================================
Stripe's answer                                          raised / returned
======================================================== ==================================
PaymentIntent ``succeeded``                              OperationResult(succeeded=True)
PaymentIntent ``requires_action`` (3-D Secure while the  AuthenticationRequired(pi id,
customer is there)                                       client_secret)
CardError ``authentication_required`` (off-session       AuthenticationRequired(pi id,
charge the bank wants authenticated)                     client_secret)
other CardError (402)                                    CardDeclined(decline_code or code)
PaymentIntent ``processing`` and other unsettled states  UnknownOutcome (reconciled later)
IdempotencyError (key reused with other parameters)      PaymentError: a bug, never resent
InvalidRequestError (400, 404: the request is wrong)     PaymentError: resending it under
                                                         the same key changes nothing
AuthenticationError (401: bad API key), PermissionError  ProviderError: Stripe refused
(403: restricted key) — configuration errors             before doing anything, nothing
                                                         charged; sent again with backoff
RateLimitError (429)                                     ProviderError: refused, nothing
                                                         charged
APIError (500, 502, 503; 409 "request in progress with   UnknownOutcome: Stripe documents
this key" once the retries are spent)                    a 500 as indeterminate
APIConnectionError (refused, reset, timed out)           UnknownOutcome: the library cannot
                                                         tell whether the request reached
                                                         Stripe
any other StripeError                                    UnknownOutcome: reconciled by key
======================================================== ==================================

``card_setup``, ``card_setup_confirmed`` (a SetupIntent the cardholder authenticated),
``cancel`` (a PaymentIntent still waiting for 3-D Secure, read back when it can no longer be
cancelled) and ``lookup`` move no money: there, every error but a decline (and, for
``lookup``, AuthenticationRequired) is a ProviderError. A ``canceled`` PaymentIntent is a
refusal (``canceled``), whatever error its last attempt left. Refunds map the same way; a refund
Stripe records as ``failed`` or ``canceled`` is a PaymentError.

The library itself resends a request whose connection failed or that Stripe asks to be
retried (409, some 5xx), up to ``max_network_retries`` times, under the same idempotency key.
Customer-facing text is the portal's: Stripe's English messages are never passed on.
"""

import contextlib

import stripe
from django.conf import settings

from .base import (
    AuthenticationRequired,
    CardDeclined,
    CardSetup,
    CardSetupRequest,
    ChargeRequest,
    OperationResult,
    PaymentError,
    PaymentGateway,
    ProviderError,
    RefundRequest,
    UnknownOutcome,
)

# lookup reads at most this many of the most recent PaymentIntents and Refunds (see _find).
LOOKUP_PAGE_SIZE = 100
LOOKUP_PAGES = 10

BRANDS = {"amex": "American Express", "diners": "Diners Club", "jcb": "JCB",
          "unionpay": "UnionPay", "unknown": "Carte"}


def _field(obj, name):
    """A field of a Stripe object, None when the answer left it out."""
    return obj[name] if obj is not None and name in obj else None


def _decline_code(error) -> str:
    return _field(error, "decline_code") or _field(error, "code") or "card_declined"


def _payment_error(error: stripe.StripeError) -> PaymentError:
    """The table of the module docstring."""
    if isinstance(error, stripe.CardError):
        if error.code == "authentication_required":
            intent = _field(error.error, "payment_intent")
            return AuthenticationRequired(reference=_field(intent, "id") or "",
                                          client_secret=_field(intent, "client_secret") or "")
        return CardDeclined(_decline_code(error.error))
    if isinstance(error, stripe.IdempotencyError | stripe.InvalidRequestError):
        return PaymentError(str(error))
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError
                  | stripe.RateLimitError):
        return ProviderError(str(error))
    return UnknownOutcome(str(error))


@contextlib.contextmanager
def _stripe_errors():
    try:
        yield
    except stripe.StripeError as error:
        raise _payment_error(error) from error


@contextlib.contextmanager
def _nothing_moves():
    """For the calls that move no money: an unknown outcome is only a failure to ask."""
    try:
        with _stripe_errors():
            yield
    except (CardDeclined, ProviderError):
        raise
    except PaymentError as error:
        raise ProviderError(str(error)) from error


def _settled(intent) -> OperationResult:
    """What a PaymentIntent says of our charge: a result once Stripe settled it, declined or
    not. Raises AuthenticationRequired while the cardholder must authenticate (nothing is
    charged yet) and UnknownOutcome while it is on its way."""
    status, error = intent.status, _field(intent, "last_payment_error")
    if status == "succeeded":
        return OperationResult(reference=intent.id, amount_cents=intent.amount,
                               currency=intent.currency.upper(), succeeded=True)
    if status == "canceled":  # final, whatever error the last attempt left behind
        return OperationResult(reference=intent.id, amount_cents=intent.amount,
                               currency=intent.currency.upper(), succeeded=False,
                               failure_code="canceled")
    if status == "requires_action" or _field(error, "code") == "authentication_required":
        raise AuthenticationRequired(reference=intent.id,
                                     client_secret=_field(intent, "client_secret") or "")
    if status == "requires_payment_method" and error is not None:
        return OperationResult(reference=intent.id, amount_cents=intent.amount,
                               currency=intent.currency.upper(), succeeded=False,
                               failure_code=_decline_code(error))
    raise UnknownOutcome(f"payment {intent.id} is {status}")


def _refund_result(refund) -> OperationResult:
    """A refund Stripe accepted (``pending`` included: cards settle them later)."""
    failed = refund.status in ("failed", "canceled")
    return OperationResult(
        reference=refund.id, amount_cents=refund.amount, currency=refund.currency.upper(),
        succeeded=not failed,
        failure_code=(_field(refund, "failure_reason") or refund.status) if failed else "",
    )


def _brand(card) -> str:
    return BRANDS.get(card.brand, card.brand.capitalize())


class StripeGateway(PaymentGateway):
    card_fields_template = "billing/_card_fields_stripe.html"  # Stripe Elements
    challenge_template = "subscriptions/_challenge_stripe.html"  # Stripe.js handleNextAction
    timeout = (5, 30)  # seconds to connect, to wait for an answer
    max_network_retries = 2

    def __init__(self):
        self.client = stripe.StripeClient(
            settings.STRIPE_SECRET_KEY,
            base_addresses={"api": settings.STRIPE_API_BASE},
            max_network_retries=self.max_network_retries,
            http_client=stripe.RequestsClient(timeout=self.timeout),
        )

    def card_setup(self, request: CardSetupRequest) -> CardSetup:
        """A SetupIntent created, then confirmed with the PaymentMethod (two requests rather
        than ``confirm=True`` at creation, which localstripe does not take; Stripe takes
        both). Each request has its own key derived from ours, so a setup sent again creates
        no second customer."""
        key = request.idempotency_key
        with _nothing_moves():
            customer = request.customer_reference or self.client.v1.customers.create(
                {"email": request.email}, {"idempotency_key": f"{key}:customer"}
            ).id
            intent = self.client.v1.setup_intents.create(
                {"customer": customer, "usage": "off_session", "payment_method_types": ["card"],
                 "metadata": {"idempotency_key": key}},
                {"idempotency_key": key},
            )
            intent = self.client.v1.setup_intents.confirm(
                intent.id, {"payment_method": request.token, "expand": ["payment_method"]},
                {"idempotency_key": f"{key}:confirm"},
            )
        if intent.status not in ("succeeded", "requires_action"):
            raise ProviderError(f"card setup {intent.id} is {intent.status}")
        method = intent.payment_method
        return CardSetup(
            token=method.id, customer_reference=customer, brand=_brand(method.card),
            last4=method.card.last4, exp_month=method.card.exp_month,
            exp_year=method.card.exp_year, country=_field(method.card, "country") or "",
            reference=intent.id if intent.status == "requires_action" else "",
            client_secret=intent.client_secret if intent.status == "requires_action" else "",
        )

    def card_setup_confirmed(self, reference: str) -> bool:
        with _nothing_moves():
            intent = self.client.v1.setup_intents.retrieve(reference)
        if intent.status == "succeeded":
            return True
        if intent.status == "requires_action":
            raise AuthenticationRequired(reference=intent.id,
                                         client_secret=_field(intent, "client_secret") or "")
        if intent.status in ("requires_payment_method", "canceled"):
            return False  # the bank refused the authentication
        raise ProviderError(f"card setup {intent.id} is {intent.status}")

    def cancel(self, *, reference: str, idempotency_key: str) -> OperationResult:
        """Cancels the PaymentIntent; one that can no longer be cancelled (the cardholder
        completed it meanwhile) is read back and reported as it is. No idempotency key: a
        cancel is safe to repeat, and Stripe would replay a failed first answer under one
        for 24 hours instead of cancelling."""
        try:
            with _nothing_moves():
                intent = self.client.v1.payment_intents.cancel(reference)
        except PaymentError:
            with _nothing_moves():
                intent = self.client.v1.payment_intents.retrieve(reference)
        try:
            return _settled(intent)
        except (AuthenticationRequired, UnknownOutcome) as still:
            raise ProviderError(f"payment {reference} could not be cancelled") from still

    def charge(self, request: ChargeRequest) -> OperationResult:
        metadata = {"idempotency_key": request.idempotency_key}
        if request.description:
            metadata["description"] = request.description
        params = {
            "amount": request.amount_cents,
            "currency": request.currency.lower(),
            "payment_method": request.token,
            "payment_method_types": ["card"],
            "confirm": True,
            "off_session": request.off_session,
            "metadata": metadata,
        }
        if request.customer_reference:
            params["customer"] = request.customer_reference
        with _stripe_errors():
            intent = self.client.v1.payment_intents.create(
                params, {"idempotency_key": request.idempotency_key}
            )
        result = _settled(intent)
        if not result.succeeded:
            raise CardDeclined(result.failure_code)
        return result

    def refund(self, request: RefundRequest) -> OperationResult:
        with _stripe_errors():
            refund = self.client.v1.refunds.create(
                {"payment_intent": request.charge_reference, "amount": request.amount_cents,
                 "metadata": {"idempotency_key": request.idempotency_key}},
                {"idempotency_key": request.idempotency_key},
            )
        result = _refund_result(refund)
        if not result.succeeded:
            raise PaymentError(f"refund {refund.id} {result.failure_code}")
        return result

    def lookup(self, idempotency_key: str) -> OperationResult | None:
        """The PaymentIntent or Refund recorded under our key. A PaymentIntent waiting for
        the cardholder raises AuthenticationRequired (it is neither paid nor declined, and
        "None" would have the portal send it again), one still on its way UnknownOutcome."""
        intent = self._find(self.client.v1.payment_intents, idempotency_key)
        if intent is not None:
            return _settled(intent)
        refund = self._find(self.client.v1.refunds, idempotency_key)
        return _refund_result(refund) if refund is not None else None

    @staticmethod
    def _find(service, idempotency_key: str):
        """The newest object of the list whose metadata holds our key, among the most recent
        LOOKUP_PAGES × LOOKUP_PAGE_SIZE; ProviderError if it is not there and the list goes on
        (we cannot tell, so the portal asks again later rather than send it twice).

        Not the Search API: it is eventually consistent ("up to an hour behind during
        outages"), so right after a timeout, when a look-up is asked, it may not see what
        Stripe just recorded; it does not cover Refunds; and localstripe lacks it. Lists are
        consistent, newest first, and localstripe has them."""
        params = {"limit": LOOKUP_PAGE_SIZE}
        with _nothing_moves():
            for _ in range(LOOKUP_PAGES):
                page = service.list(params)
                for item in page.data:
                    if _field(item.metadata, "idempotency_key") == idempotency_key:
                        return item
                if not page.has_more:
                    return None
                params = {**params, "starting_after": page.data[-1].id}
        raise ProviderError(f"{idempotency_key} is not among the "
                            f"{LOOKUP_PAGES * LOOKUP_PAGE_SIZE} most recent: cannot tell")
