"""Contract tests of the Stripe adapter (billing/gateways/stripe.py) against localstripe, a
Stripe-compatible server started on 127.0.0.1 for the session (tests/billing/
localstripe_server.py: localstripe plus Stripe's Idempotency-Key semantics, which it lacks).

What localstripe cannot produce (an off-session charge the bank wants authenticated, rate
limits, Stripe's 5xx, a restricted key, unsettled PaymentIntents, failed refunds) is driven by
patching one method of the library's client to raise the library's own exception, or return
its own object, built from the JSON Stripe documents for that answer. Connection failures and
timeouts are real: a closed port, and a port that never answers."""

import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import stripe

from billing.gateways import (
    AuthenticationRequired,
    CardDeclined,
    CardSetup,
    CardSetupRequest,
    ChargeRequest,
    OperationResult,
    PaymentError,
    ProviderError,
    RefundRequest,
    UnknownOutcome,
    get_gateway,
)
from billing.gateways import stripe as stripe_gateway
from billing.gateways.stripe import StripeGateway

SERVER = Path(__file__).with_name("localstripe_server.py")
SECRET_KEY = "sk_test_contract"
PUBLISHABLE_KEY = "pk_test_contract"

# Stripe's test cards, as localstripe plays them.
SUCCESS = "4242424242424242"
DECLINED = "4000000000000002"  # refused when it is set up
DECLINED_ON_CHARGE = "4000000000000341"  # set up, then every charge declined
AUTHENTICATION = "4000002500003155"  # 3-D Secure asked


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_it_answers(process, url, log):
    for _ in range(200):
        if process.poll() is not None:
            log.seek(0)
            pytest.fail(f"localstripe (pid {process.pid}) exited: {log.read().decode()}")
        request = urllib.request.Request(f"{url}/v1/balance",
                                         headers={"Authorization": f"Bearer {SECRET_KEY}"})
        try:
            with urllib.request.urlopen(request, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"localstripe (pid {process.pid}) did not answer on {url}")


@pytest.fixture(scope="session")
def localstripe_url():
    """localstripe on a free port of 127.0.0.1 for the session, stopped by its pid."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([sys.executable, str(SERVER), "--port", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_it_answers(process, url, log)
            yield url
        finally:
            process.terminate()  # SIGTERM to process.pid, the server we started
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def stripe_settings(settings, localstripe_url):
    settings.PAYMENT_GATEWAY = "billing.gateways.stripe.StripeGateway"
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    return settings


@pytest.fixture
def gateway(stripe_settings):
    return get_gateway()


@pytest.fixture
def stripe_client(localstripe_url):
    """The test's own access to localstripe (what Elements and the dashboard would see)."""
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": localstripe_url})


@pytest.fixture
def unreachable(monkeypatch, stripe_settings):
    """A gateway pointed at an address, without the library's own retries."""
    monkeypatch.setattr(StripeGateway, "max_network_retries", 0)
    monkeypatch.setattr(StripeGateway, "timeout", (1, 0.5))

    def gateway_at(url):
        stripe_settings.STRIPE_API_BASE = url
        return StripeGateway()

    return gateway_at


def key(prefix="invoice") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def payment_method(client, number=SUCCESS) -> str:
    """A PaymentMethod as Elements create it in the browser (card details go to Stripe, the
    portal gets pm_…). Real Elements use the publishable key; localstripe takes the
    secret key for this call."""
    return client.v1.payment_methods.create({"type": "card", "card": {
        "number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}).id


def saved_card(gateway, client, number=SUCCESS):
    return gateway.card_setup(CardSetupRequest(
        token=payment_method(client, number), customer_reference="",
        email="camille@example.com", idempotency_key=key("setup")))


def charge(gateway, card, *, idempotency_key=None, amount_cents=990, off_session=True):
    return gateway.charge(ChargeRequest(
        token=card.token, amount_cents=amount_cents, currency="EUR",
        idempotency_key=idempotency_key or key(), description="F2026-000001",
        customer_reference=card.customer_reference, off_session=off_session))


def refund(gateway, reference, *, idempotency_key, amount_cents=500):
    return gateway.refund(RefundRequest(charge_reference=reference, amount_cents=amount_cents,
                                        currency="EUR", idempotency_key=idempotency_key))


def authenticate(localstripe_url, error: AuthenticationRequired, *, success: bool):
    """The cardholder's 3-D Secure challenge, as localstripe's stripe.js completes it in the
    browser (publishable key, client secret)."""
    data = urllib.parse.urlencode({"key": PUBLISHABLE_KEY, "client_secret": error.client_secret,
                                   "success": "true" if success else "false"}).encode()
    url = f"{localstripe_url}/v1/payment_intents/{error.reference}/_authenticate"
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5) as answer:
        assert answer.status == 200


def intents_under(client, idempotency_key):
    return [intent for intent in client.v1.payment_intents.list({"limit": 100}).auto_paging_iter()
            if intent.metadata["idempotency_key"] == idempotency_key]


def stripe_error(cls, status, error, **kwargs):
    """A library exception as the library builds it from Stripe's answer."""
    body = {"error": error}
    return cls(error.get("message"), **kwargs, http_body=json.dumps(body), http_status=status,
               json_body=body)


def raiser(error):
    def raise_it(*args, **kwargs):
        raise error
    return raise_it


# A saved card, for the tests that never reach a server.
STUB_CARD = CardSetup(token="pm_card_visa", customer_reference="cus_stub", brand="Visa",
                      last4="4242", exp_month=12, exp_year=2034)


def payment_intent(**fields):
    return stripe.PaymentIntent.construct_from({
        "id": "pi_3Documented", "object": "payment_intent", "amount": 990, "currency": "eur",
        "client_secret": "pi_3Documented_secret_abc", "metadata": {}, "last_payment_error": None,
        **fields}, SECRET_KEY)


# Selection


def test_the_setting_selects_the_stripe_gateway(gateway):
    assert isinstance(gateway, StripeGateway)


# Card setup


def test_card_setup_creates_the_customer_and_saves_the_card_for_off_session_charges(
        gateway, stripe_client):
    # given
    token = payment_method(stripe_client)
    # when
    card = gateway.card_setup(CardSetupRequest(token=token, customer_reference="",
                                               email="camille@example.com",
                                               idempotency_key="setup-card-1"))
    # then
    assert card.token == token
    assert card.customer_reference.startswith("cus_")
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("Visa", "4242", 12, 2034)
    assert card.country == "FR"  # payment_method.card.country (localstripe says FR for all)
    assert not card.requires_action
    assert stripe_client.v1.customers.retrieve(card.customer_reference).email == (
        "camille@example.com")
    [intent] = [setup for setup in stripe_client.v1.setup_intents.list({"limit": 100})
                if setup.metadata["idempotency_key"] == "setup-card-1"]
    assert (intent.status, intent.usage, intent.customer) == (
        "succeeded", "off_session", card.customer_reference)


def test_card_setup_keeps_an_existing_customer(gateway, stripe_client):
    # given
    first = saved_card(gateway, stripe_client)
    # when
    second = gateway.card_setup(CardSetupRequest(
        token=payment_method(stripe_client), customer_reference=first.customer_reference,
        email="camille@example.com", idempotency_key=key("setup")))
    # then
    assert second.customer_reference == first.customer_reference
    assert second.token != first.token


def test_card_setup_sent_again_under_its_key_creates_one_customer(gateway, stripe_client):
    # given
    request = CardSetupRequest(token=payment_method(stripe_client), customer_reference="",
                               email="camille@example.com", idempotency_key=key("setup"))
    # when
    first, again = gateway.card_setup(request), gateway.card_setup(request)
    # then
    assert again == first


def test_a_card_the_bank_refuses_is_not_set_up(gateway, stripe_client):
    with pytest.raises(CardDeclined) as declined:
        saved_card(gateway, stripe_client, DECLINED)
    assert declined.value.code == "card_declined"


def test_a_card_whose_bank_asks_for_3d_secure_comes_back_with_the_client_secret(
        gateway, stripe_client):
    # when
    card = saved_card(gateway, stripe_client, AUTHENTICATION)
    # then
    assert card.requires_action
    assert card.client_secret.startswith("seti_")
    assert card.last4 == "3155"


def confirm_setup_in_the_browser(localstripe_url, card):
    """The cardholder passes the SetupIntent's 3-D Secure, as stripe.js confirms it with the
    publishable key and the client secret."""
    data = urllib.parse.urlencode({"key": PUBLISHABLE_KEY,
                                   "client_secret": card.client_secret}).encode()
    url = f"{localstripe_url}/v1/setup_intents/{card.reference}/confirm"
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5) as answer:
        assert answer.status == 200


def test_a_card_setup_waiting_for_3d_secure_is_saved_once_the_cardholder_confirmed_it(
        gateway, stripe_client, localstripe_url):
    # given
    card = saved_card(gateway, stripe_client, AUTHENTICATION)
    assert card.reference.startswith("seti_")
    # then: neither saved nor refused while the cardholder has not answered
    with pytest.raises(AuthenticationRequired):
        gateway.card_setup_confirmed(card.reference)
    # when
    confirm_setup_in_the_browser(localstripe_url, card)
    # then
    assert gateway.card_setup_confirmed(card.reference) is True


def test_a_card_setup_whose_3d_secure_was_given_up_is_refused(gateway, stripe_client):
    card = saved_card(gateway, stripe_client, AUTHENTICATION)
    stripe_client.v1.setup_intents.cancel(card.reference)
    assert gateway.card_setup_confirmed(card.reference) is False


# Charges


def test_a_charge_succeeds_with_our_key_and_description_on_the_payment_intent(
        gateway, stripe_client):
    # given
    card = saved_card(gateway, stripe_client)
    # when
    result = charge(gateway, card, idempotency_key="invoice-7-attempt-1")
    # then
    assert result == OperationResult(reference=result.reference, amount_cents=990,
                                     currency="EUR", succeeded=True)
    intent = stripe_client.v1.payment_intents.retrieve(result.reference)
    assert (intent.status, intent.amount, intent.currency) == ("succeeded", 990, "eur")
    assert (intent.customer, intent.payment_method) == (card.customer_reference, card.token)
    assert intent.metadata["idempotency_key"] == "invoice-7-attempt-1"
    assert intent.metadata["description"] == "F2026-000001"


def test_a_declined_charge_raises_card_declined_with_the_code(gateway, stripe_client):
    # given
    card = saved_card(gateway, stripe_client, DECLINED_ON_CHARGE)
    # when
    with pytest.raises(CardDeclined) as declined:
        charge(gateway, card)
    # then
    assert declined.value.code == "card_declined"
    assert declined.value.message == ""  # Stripe's English is never shown to the customer


def test_a_charge_sent_again_under_its_key_is_one_payment_intent(gateway, stripe_client):
    # given
    card = saved_card(gateway, stripe_client)
    idempotency_key = key()
    # when
    first = charge(gateway, card, idempotency_key=idempotency_key)
    again = charge(gateway, card, idempotency_key=idempotency_key)
    # then
    assert again == first
    assert [intent.id for intent in intents_under(stripe_client, idempotency_key)] == [
        first.reference]


def test_a_decline_sent_again_under_its_key_is_the_same_decline(gateway, stripe_client):
    # given
    card = saved_card(gateway, stripe_client, DECLINED_ON_CHARGE)
    idempotency_key = key()
    with pytest.raises(CardDeclined):
        charge(gateway, card, idempotency_key=idempotency_key)
    # when
    with pytest.raises(CardDeclined):
        charge(gateway, card, idempotency_key=idempotency_key)
    # then
    assert len(intents_under(stripe_client, idempotency_key)) == 1


def test_a_key_reused_with_another_amount_is_refused(gateway, stripe_client):
    # given
    card = saved_card(gateway, stripe_client)
    idempotency_key = key()
    charge(gateway, card, idempotency_key=idempotency_key)
    # when
    with pytest.raises(PaymentError) as refused:
        charge(gateway, card, idempotency_key=idempotency_key, amount_cents=1990)
    # then
    assert type(refused.value) is PaymentError
    assert len(intents_under(stripe_client, idempotency_key)) == 1


def test_a_charge_on_an_unknown_card_is_refused_as_a_bad_request(gateway):
    with pytest.raises(PaymentError) as refused:
        gateway.charge(ChargeRequest(token="pm_unknown", amount_cents=990, currency="EUR",
                                     idempotency_key=key()))
    assert type(refused.value) is PaymentError


def test_3d_secure_while_the_customer_is_there_raises_authentication_required(
        gateway, stripe_client, localstripe_url):
    # given
    card = saved_card(gateway, stripe_client, AUTHENTICATION)
    idempotency_key = key()
    # when
    with pytest.raises(AuthenticationRequired) as required:
        charge(gateway, card, idempotency_key=idempotency_key, off_session=False)
    # then
    assert required.value.reference.startswith("pi_")
    assert required.value.client_secret.startswith(f"{required.value.reference}_secret_")
    intent = stripe_client.v1.payment_intents.retrieve(required.value.reference)
    assert intent.status == "requires_action"
    assert intent.metadata["idempotency_key"] == idempotency_key


def test_an_off_session_charge_the_bank_wants_authenticated_raises_authentication_required(
        gateway, monkeypatch):
    # given: Stripe's answer to an off-session confirmation that needs 3-D Secure (localstripe
    # answers requires_action instead, as for an on-session one).
    error = stripe_error(stripe.CardError, 402, {
        "type": "card_error", "code": "authentication_required",
        "decline_code": "authentication_required",
        "message": "Your card was declined. This transaction requires authentication.",
        "payment_intent": {"id": "pi_3Offsession", "object": "payment_intent",
                           "status": "requires_payment_method",
                           "client_secret": "pi_3Offsession_secret_xyz"},
    }, param=None, code="authentication_required")
    monkeypatch.setattr(gateway.client.v1.payment_intents, "create", raiser(error))
    # when
    with pytest.raises(AuthenticationRequired) as required:
        charge(gateway, STUB_CARD)
    # then
    assert (required.value.reference, required.value.client_secret) == (
        "pi_3Offsession", "pi_3Offsession_secret_xyz")


@pytest.mark.parametrize(("error", "outcome"), [
    (stripe_error(stripe.CardError, 402, {
        "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds."}, param=None, code="card_declined"),
     CardDeclined),
    (stripe_error(stripe.RateLimitError, 429, {
        "type": "invalid_request_error", "code": "rate_limit",
        "message": "Too many requests hit the API too quickly."}), ProviderError),
    (stripe_error(stripe.PermissionError, 403, {
        "type": "invalid_request_error",
        "message": "The provided key does not have the required permissions."}), ProviderError),
    (stripe_error(stripe.APIError, 500, {
        "type": "api_error", "message": "An unknown error occurred"}), UnknownOutcome),
    (stripe_error(stripe.APIError, 409, {
        "type": "invalid_request_error", "code": "lock_timeout",
        "message": "There is currently another in-progress request using this Stripe API "
                   "key and idempotency key."}), UnknownOutcome),
    (stripe_error(stripe.IdempotencyError, 400, {
        "type": "idempotency_error",
        "message": "Keys for idempotent requests can only be used with the same parameters "
                   "they were first used with."}), PaymentError),
])
def test_stripe_errors_map_to_the_outcome_kinds(gateway, monkeypatch, error, outcome):
    # given
    monkeypatch.setattr(gateway.client.v1.payment_intents, "create", raiser(error))
    # when
    with pytest.raises(PaymentError) as raised:
        charge(gateway, STUB_CARD)
    # then
    assert type(raised.value) is outcome
    if outcome is CardDeclined:
        assert raised.value.code == "insufficient_funds"


def test_a_payment_intent_still_processing_is_an_unknown_outcome(gateway, monkeypatch):
    intent = payment_intent(status="processing")
    monkeypatch.setattr(gateway.client.v1.payment_intents, "create", lambda *a, **k: intent)
    with pytest.raises(UnknownOutcome):
        charge(gateway, STUB_CARD)


def test_a_bad_api_key_is_a_provider_error_and_charges_nothing(
        gateway, stripe_client, stripe_settings):
    # given
    card = saved_card(gateway, stripe_client)
    stripe_settings.STRIPE_SECRET_KEY = "not-a-key"  # localstripe answers 401, as Stripe does
    idempotency_key = key()
    # when
    with pytest.raises(ProviderError):
        charge(get_gateway(), card, idempotency_key=idempotency_key)
    # then
    assert intents_under(stripe_client, idempotency_key) == []


def test_no_connection_is_an_unknown_outcome(unreachable):
    # given: nothing listens there
    gateway = unreachable(f"http://127.0.0.1:{_free_port()}")
    # when / then
    with pytest.raises(UnknownOutcome):
        charge(gateway, STUB_CARD)
    with pytest.raises(ProviderError):
        gateway.lookup(key())
    with pytest.raises(ProviderError):
        gateway.card_setup(CardSetupRequest(token="pm_x", customer_reference="cus_x",
                                            email="camille@example.com",
                                            idempotency_key=key("setup")))


def test_no_answer_in_time_is_an_unknown_outcome(unreachable):
    # given: a port that takes the connection and never answers
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        gateway = unreachable(f"http://127.0.0.1:{silent.getsockname()[1]}")
        # when / then
        with pytest.raises(UnknownOutcome):
            charge(gateway, STUB_CARD)


# Refunds


def test_a_refund_is_recorded_under_its_key_once(gateway, stripe_client):
    # given
    paid = charge(gateway, saved_card(gateway, stripe_client))
    idempotency_key = key("refund")
    # when
    first = refund(gateway, paid.reference, idempotency_key=idempotency_key)
    again = refund(gateway, paid.reference, idempotency_key=idempotency_key)
    # then
    assert first == OperationResult(reference=first.reference, amount_cents=500,
                                    currency="EUR", succeeded=True)
    assert first.reference.startswith("re_")
    assert again == first
    refunds = stripe_client.v1.refunds.list({"payment_intent": paid.reference})
    assert [(r.id, r.amount, r.metadata["idempotency_key"]) for r in refunds] == [
        (first.reference, 500, idempotency_key)]


def test_a_refund_of_an_unknown_payment_is_refused(gateway):
    with pytest.raises(PaymentError) as refused:
        refund(gateway, "pi_unknown", idempotency_key=key("refund"))
    assert type(refused.value) is PaymentError


def test_a_refund_stripe_records_as_failed_is_refused(gateway, monkeypatch):
    failed = stripe.Refund.construct_from({
        "id": "re_3Failed", "object": "refund", "amount": 500, "currency": "eur",
        "status": "failed", "failure_reason": "expired_or_canceled_card", "metadata": {},
    }, SECRET_KEY)
    monkeypatch.setattr(gateway.client.v1.refunds, "create", lambda *a, **k: failed)
    with pytest.raises(PaymentError, match="expired_or_canceled_card") as refused:
        refund(gateway, "pi_3Paid", idempotency_key=key("refund"))
    assert type(refused.value) is PaymentError


# Look-up by key


def test_lookup_of_a_key_stripe_never_saw_is_none(gateway):
    assert gateway.lookup(key()) is None


def test_lookup_finds_a_charge_by_its_key(gateway, stripe_client):
    # given
    idempotency_key = key()
    paid = charge(gateway, saved_card(gateway, stripe_client), idempotency_key=idempotency_key)
    # when / then
    assert gateway.lookup(idempotency_key) == paid


def test_lookup_finds_a_declined_charge(gateway, stripe_client):
    # given
    idempotency_key = key()
    with pytest.raises(CardDeclined):
        charge(gateway, saved_card(gateway, stripe_client, DECLINED_ON_CHARGE),
               idempotency_key=idempotency_key)
    # when
    found = gateway.lookup(idempotency_key)
    # then
    assert found.reference.startswith("pi_")
    assert (found.succeeded, found.failure_code, found.amount_cents) == (
        False, "card_declined", 990)


def test_lookup_finds_a_refund_by_its_key(gateway, stripe_client):
    # given
    paid = charge(gateway, saved_card(gateway, stripe_client))
    refunded = refund(gateway, paid.reference, idempotency_key="charge-9-refund-1",
                      amount_cents=300)
    # when / then
    assert gateway.lookup("charge-9-refund-1") == refunded


def test_lookup_of_a_charge_waiting_for_3d_secure_follows_the_cardholder(
        gateway, stripe_client, localstripe_url):
    # given
    card = saved_card(gateway, stripe_client, AUTHENTICATION)
    idempotency_key = key()
    with pytest.raises(AuthenticationRequired) as required:
        charge(gateway, card, idempotency_key=idempotency_key, off_session=False)
    # when / then: neither paid nor declined while the cardholder has not answered
    with pytest.raises(AuthenticationRequired) as still:
        gateway.lookup(idempotency_key)
    assert still.value.reference == required.value.reference
    assert still.value.client_secret == required.value.client_secret
    # when the cardholder passes the challenge
    authenticate(localstripe_url, required.value, success=True)
    # then
    found = gateway.lookup(idempotency_key)
    assert (found.reference, found.succeeded) == (required.value.reference, True)


def test_lookup_of_a_failed_3d_secure_is_a_decline(gateway, stripe_client, localstripe_url):
    # given
    card = saved_card(gateway, stripe_client, AUTHENTICATION)
    idempotency_key = key()
    with pytest.raises(AuthenticationRequired) as required:
        charge(gateway, card, idempotency_key=idempotency_key, off_session=False)
    # when
    authenticate(localstripe_url, required.value, success=False)
    # then
    found = gateway.lookup(idempotency_key)
    assert (found.succeeded, found.failure_code) == (
        False, "payment_intent_authentication_failure")


def _listed(*intents):
    return stripe.ListObject.construct_from({
        "object": "list", "url": "/v1/payment_intents", "has_more": False,
        "data": [intent.to_dict() for intent in intents]}, SECRET_KEY)


@pytest.mark.parametrize(("fields", "outcome"), [
    # An off-session charge the bank wanted authenticated, as Stripe leaves it.
    ({"status": "requires_payment_method", "last_payment_error": {
        "type": "card_error", "code": "authentication_required"}}, AuthenticationRequired),
    ({"status": "processing"}, UnknownOutcome),
    ({"status": "requires_confirmation"}, UnknownOutcome),
])
def test_lookup_of_an_unsettled_payment_intent_raises(gateway, monkeypatch, fields, outcome):
    # given
    idempotency_key = key()
    intent = payment_intent(metadata={"idempotency_key": idempotency_key}, **fields)
    monkeypatch.setattr(gateway.client.v1.payment_intents, "list",
                        lambda *a, **k: _listed(intent))
    # when / then
    with pytest.raises(outcome):
        gateway.lookup(idempotency_key)


def test_lookup_of_a_canceled_payment_intent_is_a_failure(gateway, monkeypatch):
    idempotency_key = key()
    intent = payment_intent(status="canceled", metadata={"idempotency_key": idempotency_key})
    monkeypatch.setattr(gateway.client.v1.payment_intents, "list",
                        lambda *a, **k: _listed(intent))
    found = gateway.lookup(idempotency_key)
    assert (found.reference, found.succeeded, found.failure_code) == (
        "pi_3Documented", False, "canceled")


def test_lookup_pages_through_the_lists(gateway, stripe_client, monkeypatch):
    # given: one PaymentIntent a page
    card = saved_card(gateway, stripe_client)
    keys = [key() for _ in range(3)]
    paid = [charge(gateway, card, idempotency_key=k) for k in keys]
    monkeypatch.setattr(stripe_gateway, "LOOKUP_PAGE_SIZE", 1)
    monkeypatch.setattr(stripe_gateway, "LOOKUP_PAGES", 10_000)
    # when / then
    assert [gateway.lookup(k) for k in keys] == paid


def test_lookup_beyond_its_bound_cannot_tell(gateway, stripe_client, monkeypatch):
    # given: three PaymentIntents, and a look-up that reads two (localstripe lists the oldest
    # first, Stripe the newest: either way one of the three is out of reach)
    card = saved_card(gateway, stripe_client)
    keys = [key() for _ in range(3)]
    for k in keys:
        charge(gateway, card, idempotency_key=k)
    monkeypatch.setattr(stripe_gateway, "LOOKUP_PAGE_SIZE", 1)
    monkeypatch.setattr(stripe_gateway, "LOOKUP_PAGES", 2)
    # when
    answers = []
    for k in keys:
        try:
            answers.append(gateway.lookup(k))
        except ProviderError:
            answers.append("cannot tell")
    # then: never "never saw it" for a key Stripe has
    assert "cannot tell" in answers
    assert None not in answers


# Giving up a payment waiting for 3-D Secure


def test_cancelling_a_payment_waiting_for_3d_secure_leaves_it_unable_to_move_money(
        gateway, stripe_client, localstripe_url):
    # given
    card = saved_card(gateway, stripe_client, AUTHENTICATION)
    idempotency_key = key()
    with pytest.raises(AuthenticationRequired) as required:
        charge(gateway, card, idempotency_key=idempotency_key, off_session=False)
    # when
    result = gateway.cancel(reference=required.value.reference,
                            idempotency_key=idempotency_key)
    # then
    assert (result.succeeded, result.failure_code) == (False, "canceled")
    assert stripe_client.v1.payment_intents.retrieve(
        required.value.reference).status == "canceled"
    assert gateway.lookup(idempotency_key).succeeded is False


def test_cancelling_a_payment_the_cardholder_completed_meanwhile_reports_it_paid(
        gateway, stripe_client, localstripe_url):
    # given: the challenge passed just before the portal gives up
    card = saved_card(gateway, stripe_client, AUTHENTICATION)
    idempotency_key = key()
    with pytest.raises(AuthenticationRequired) as required:
        charge(gateway, card, idempotency_key=idempotency_key, off_session=False)
    authenticate(localstripe_url, required.value, success=True)
    # when
    result = gateway.cancel(reference=required.value.reference,
                            idempotency_key=idempotency_key)
    # then: paid, as Stripe says
    assert (result.reference, result.succeeded) == (required.value.reference, True)


def test_a_cancelled_off_session_payment_is_reported_cancelled(gateway, monkeypatch):
    # An off-session confirmation that needed 3-D Secure leaves last_payment_error
    # {code: authentication_required} on the PaymentIntent; once cancelled its status is
    # "canceled" (localstripe keeps last_payment_error after a cancel too).
    cancelled = stripe.PaymentIntent.construct_from({
        "id": "pi_3Off", "object": "payment_intent", "amount": 990, "currency": "eur",
        "status": "canceled", "client_secret": "pi_3Off_secret", "metadata": {},
        "last_payment_error": {"type": "card_error", "code": "authentication_required"},
    }, SECRET_KEY)
    monkeypatch.setattr(gateway.client.v1.payment_intents, "cancel", lambda *a, **k: cancelled)
    # when / then: cancelled, i.e. refused -- not "could not be cancelled" for ever
    result = gateway.cancel(reference="pi_3Off", idempotency_key="invoice-1-attempt-1")
    assert result.succeeded is False


def test_a_cancel_that_failed_once_is_really_sent_again(gateway, stripe_client, monkeypatch):
    # given: a payment waiting for 3-D Secure
    card = saved_card(gateway, stripe_client, AUTHENTICATION)
    idempotency_key = key()
    with pytest.raises(AuthenticationRequired) as required:
        charge(gateway, card, idempotency_key=idempotency_key, off_session=False)
    reference = required.value.reference
    # and: Stripe as documented -- the first answer under an Idempotency-Key (a 500 too) is
    # saved and replayed for 24 hours; the first cancel got a 500
    service = gateway.client.v1.payment_intents
    real_cancel, saved = service.cancel, {}

    def stripe_cancel(intent, params=None, options=None):
        k = (options or {}).get("idempotency_key")
        if k in saved:
            raise saved[k]
        if not saved.get("first_done"):
            saved["first_done"] = True
            body = {"error": {"type": "api_error", "message": "An unknown error occurred"}}
            error = stripe.APIError("An unknown error occurred", http_body=json.dumps(body),
                                    http_status=500, json_body=body)
            if k is not None:
                saved[k] = error
            raise error
        return real_cancel(intent, params, options)

    monkeypatch.setattr(service, "cancel", stripe_cancel)
    with pytest.raises(ProviderError):
        gateway.cancel(reference=reference, idempotency_key=idempotency_key)
    # when: the portal tries again later, Stripe healthy
    try:
        result = gateway.cancel(reference=reference, idempotency_key=idempotency_key)
    except ProviderError:
        result = None
    # then: it is cancelled now, not in 24 hours
    assert stripe_client.v1.payment_intents.retrieve(reference).status == "canceled"
    assert result is not None and result.succeeded is False
