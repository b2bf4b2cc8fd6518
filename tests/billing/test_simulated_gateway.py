"""The built-in simulated payment provider (billing/gateways/simulated.py): test cards,
idempotency keys, refunds, what it keeps about a card, its ledger committed on its own
connection, and the faults it injects."""

import time

import pytest
from django.apps import apps
from django.db import models, transaction

from accounts.models import User
from billing.gateways import (
    CardDeclined,
    CardDetails,
    ChargeRequest,
    PaymentError,
    ProviderError,
    RefundRequest,
    UnknownOutcome,
)
from billing.gateways.simulated import SimulatedGateway, luhn_valid
from billing.models import PaymentMethod, SimulatedProviderCard, SimulatedProviderOperation
from billing.services import payment_method_add
from tests.factories import UserFactory, card_token

pytestmark = pytest.mark.django_db

SUCCESS = "4242424242424242"
GENERIC_DECLINE = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
EXPIRED = "4000000000000069"
PROVIDER_ERROR = "4000000000000119"
TIMEOUT_AFTER_SUCCESS = "4000000000000408"
ALL_TEST_CARDS = [SUCCESS, GENERIC_DECLINE, INSUFFICIENT_FUNDS, EXPIRED, PROVIDER_ERROR,
                  TIMEOUT_AFTER_SUCCESS]


@pytest.fixture
def gateway():
    return SimulatedGateway()


def _token(gateway, number):
    return gateway.tokenize_card(CardDetails(number, 12, 2029, "123")).token


def _charge(gateway, token, *, key="invoice-1-attempt-1", amount_cents=990):
    return gateway.charge(ChargeRequest(token=token, amount_cents=amount_cents, currency="EUR",
                                        idempotency_key=key, description="F2026-000001"))


def _refund(gateway, reference, *, key, amount_cents):
    return gateway.refund(RefundRequest(charge_reference=reference, amount_cents=amount_cents,
                                        currency="EUR", idempotency_key=key))


# Tokenization


def test_tokenize_keeps_brand_last4_and_expiry(gateway):
    # when
    token = gateway.tokenize_card(CardDetails(SUCCESS, 7, 2030, "314"))
    # then
    assert (token.brand, token.last4, token.exp_month, token.exp_year) == ("Visa", "4242", 7,
                                                                            2030)
    assert token.token.startswith("tok_sim_")
    card = SimulatedProviderCard.objects.get()
    assert (card.token, card.brand, card.last4, card.behaviour) == (token.token, "Visa", "4242",
                                                                   "success")


def test_each_tokenization_gets_its_own_token(gateway):
    # when
    first, second = _token(gateway, SUCCESS), _token(gateway, SUCCESS)
    # then
    assert first != second
    assert SimulatedProviderCard.objects.count() == 2


@pytest.mark.parametrize("number", [
    "4242424242424241",  # last digit off: fails the Luhn check
    "4000000000000003",
    "1234567812345678",
    "42424242424",  # too short
    "42424242424242424242",  # too long
    "4242x24242424242",
    "",
])
def test_tokenize_rejects_numbers_that_fail_luhn(gateway, number):
    # when
    with pytest.raises(CardDeclined) as declined:
        gateway.tokenize_card(CardDetails(number, 12, 2029, "123"))
    # then
    assert declined.value.code == "incorrect_number"
    assert not SimulatedProviderCard.objects.exists()


@pytest.mark.parametrize("number", ALL_TEST_CARDS + ["5555555555554444", "378282246310005"])
def test_every_documented_test_card_passes_luhn(number):
    assert luhn_valid(number)


# Charges


def test_success_card_is_charged_once(gateway):
    # given
    token = _token(gateway, SUCCESS)
    # when
    result = _charge(gateway, token, amount_cents=990)
    # then
    assert result.succeeded
    assert result.reference.startswith("ch_sim_")
    assert (result.amount_cents, result.currency) == (990, "EUR")
    operation = SimulatedProviderOperation.objects.get()
    assert (operation.kind, operation.status, operation.amount_cents, operation.reference) == (
        "charge", "success", 990, result.reference)


@pytest.mark.parametrize(("number", "code"), [
    (GENERIC_DECLINE, "card_declined"),
    (INSUFFICIENT_FUNDS, "insufficient_funds"),
    (EXPIRED, "expired_card"),
])
def test_decline_cards_are_refused_with_their_code(gateway, number, code):
    # given
    token = _token(gateway, number)
    # when
    with pytest.raises(CardDeclined) as declined:
        _charge(gateway, token)
    # then
    assert declined.value.code == code
    operation = SimulatedProviderOperation.objects.get()
    assert (operation.status, operation.failure_code) == ("declined", code)
    looked_up = gateway.lookup("invoice-1-attempt-1")
    assert not looked_up.succeeded
    assert looked_up.failure_code == code


@pytest.mark.parametrize("number", [GENERIC_DECLINE, INSUFFICIENT_FUNDS, EXPIRED])
def test_replaying_a_declined_key_declines_again_without_a_new_operation(gateway, number):
    # given
    token = _token(gateway, number)
    with pytest.raises(CardDeclined):
        _charge(gateway, token)
    # when
    with pytest.raises(CardDeclined):
        _charge(gateway, token)
    # then
    assert SimulatedProviderOperation.objects.count() == 1


def test_provider_error_card_moves_no_money(gateway):
    # given
    token = _token(gateway, PROVIDER_ERROR)
    # when
    with pytest.raises(ProviderError):
        _charge(gateway, token)
    # then
    assert not SimulatedProviderOperation.objects.exists()
    assert gateway.lookup("invoice-1-attempt-1") is None


def test_timeout_card_raises_unknown_outcome_but_the_charge_went_through(gateway):
    # given
    token = _token(gateway, TIMEOUT_AFTER_SUCCESS)
    # when
    with pytest.raises(UnknownOutcome):
        _charge(gateway, token, key="invoice-7-attempt-1", amount_cents=9900)
    # then
    found = gateway.lookup("invoice-7-attempt-1")
    assert found.succeeded
    assert found.amount_cents == 9900
    assert found.reference == SimulatedProviderOperation.objects.get().reference


def test_replaying_a_timed_out_charge_returns_the_same_reference_and_no_second_row(gateway):
    # given
    token = _token(gateway, TIMEOUT_AFTER_SUCCESS)
    with pytest.raises(UnknownOutcome):
        _charge(gateway, token, key="invoice-7-attempt-1", amount_cents=9900)
    # when
    replay = _charge(gateway, token, key="invoice-7-attempt-1", amount_cents=9900)
    again = _charge(gateway, token, key="invoice-7-attempt-1", amount_cents=9900)
    # then
    assert replay.succeeded
    assert replay.reference == again.reference == gateway.lookup("invoice-7-attempt-1").reference
    assert SimulatedProviderOperation.objects.count() == 1


def test_the_same_idempotency_key_never_charges_twice(gateway):
    # given
    token = _token(gateway, SUCCESS)
    first = _charge(gateway, token, key="invoice-3-attempt-1")
    # when
    second = _charge(gateway, token, key="invoice-3-attempt-1")
    # then
    assert second == first
    assert SimulatedProviderOperation.objects.count() == 1


def test_the_same_key_with_another_card_still_charges_once(gateway):
    # given
    first = _charge(gateway, _token(gateway, SUCCESS), key="invoice-3-attempt-1")
    # when
    second = _charge(gateway, _token(gateway, SUCCESS), key="invoice-3-attempt-1")
    # then
    assert second.reference == first.reference
    assert SimulatedProviderOperation.objects.count() == 1


def test_reusing_a_key_with_a_different_amount_is_an_error(gateway):
    # given
    token = _token(gateway, SUCCESS)
    _charge(gateway, token, key="invoice-3-attempt-1", amount_cents=990)
    # when
    with pytest.raises(PaymentError, match="different amount") as error:
        _charge(gateway, token, key="invoice-3-attempt-1", amount_cents=1990)
    # then
    assert not isinstance(error.value, CardDeclined | ProviderError | UnknownOutcome)
    operation = SimulatedProviderOperation.objects.get()
    assert operation.amount_cents == 990


def test_different_keys_are_different_charges(gateway):
    # given
    token = _token(gateway, SUCCESS)
    # when
    first = _charge(gateway, token, key="invoice-3-attempt-1")
    second = _charge(gateway, token, key="invoice-4-attempt-1")
    # then
    assert first.reference != second.reference
    assert SimulatedProviderOperation.objects.count() == 2


def test_unknown_token_is_declined(gateway):
    # when
    with pytest.raises(CardDeclined) as declined:
        _charge(gateway, "tok_sim_doesnotexist")
    # then
    assert declined.value.code == "invalid_token"
    assert not SimulatedProviderOperation.objects.exists()


def test_lookup_of_an_unseen_key_finds_nothing(gateway):
    assert gateway.lookup("never-used") is None


# Refunds


@pytest.fixture
def charged(gateway):
    return _charge(gateway, _token(gateway, SUCCESS), key="invoice-1-attempt-1", amount_cents=9900)


def test_full_refund(gateway, charged):
    # when
    refund = _refund(gateway, charged.reference, key="charge-1-refund-1", amount_cents=9900)
    # then
    assert refund.succeeded
    assert refund.reference.startswith("re_sim_")
    operation = SimulatedProviderOperation.objects.get(kind="refund")
    assert (operation.amount_cents, operation.charge_reference) == (9900, charged.reference)


def test_partial_refunds_up_to_the_charge_then_nothing_more(gateway, charged):
    # given
    _refund(gateway, charged.reference, key="charge-1-refund-1", amount_cents=6000)
    _refund(gateway, charged.reference, key="charge-1-refund-2", amount_cents=3900)
    # when
    with pytest.raises(PaymentError, match="exceeds"):
        _refund(gateway, charged.reference, key="charge-1-refund-3", amount_cents=1)
    # then
    refunded = SimulatedProviderOperation.objects.filter(kind="refund")
    assert sorted(refunded.values_list("amount_cents", flat=True)) == [3900, 6000]


def test_a_refund_above_the_remainder_is_refused_whole(gateway, charged):
    # given
    _refund(gateway, charged.reference, key="charge-1-refund-1", amount_cents=5000)
    # when
    with pytest.raises(PaymentError, match="exceeds"):
        _refund(gateway, charged.reference, key="charge-1-refund-2", amount_cents=4901)
    # then
    assert SimulatedProviderOperation.objects.filter(kind="refund").count() == 1
    assert gateway.lookup("charge-1-refund-2") is None


def test_a_refund_larger_than_the_charge_is_refused(gateway, charged):
    # when
    with pytest.raises(PaymentError, match="exceeds"):
        _refund(gateway, charged.reference, key="charge-1-refund-1", amount_cents=9901)
    # then
    assert not SimulatedProviderOperation.objects.filter(kind="refund").exists()


def test_replaying_a_refund_key_refunds_once(gateway, charged):
    # given
    first = _refund(gateway, charged.reference, key="charge-1-refund-1", amount_cents=9900)
    # when
    second = _refund(gateway, charged.reference, key="charge-1-refund-1", amount_cents=9900)
    # then
    assert second.reference == first.reference
    assert SimulatedProviderOperation.objects.filter(kind="refund").count() == 1


def test_replaying_a_refund_key_with_another_amount_is_an_error(gateway, charged):
    # given
    _refund(gateway, charged.reference, key="charge-1-refund-1", amount_cents=1000)
    # when
    with pytest.raises(PaymentError, match="different amount"):
        _refund(gateway, charged.reference, key="charge-1-refund-1", amount_cents=2000)
    # then
    assert SimulatedProviderOperation.objects.filter(kind="refund").get().amount_cents == 1000


def test_a_declined_charge_cannot_be_refunded(gateway):
    # given
    with pytest.raises(CardDeclined):
        _charge(gateway, _token(gateway, GENERIC_DECLINE), key="invoice-1-attempt-1")
    declined = SimulatedProviderOperation.objects.get()
    # when
    with pytest.raises(PaymentError, match="unknown charge"):
        _refund(gateway, declined.reference, key="charge-1-refund-1", amount_cents=990)
    # then
    assert not SimulatedProviderOperation.objects.filter(kind="refund").exists()


def test_an_unknown_charge_cannot_be_refunded(gateway):
    # when
    with pytest.raises(PaymentError, match="unknown charge"):
        _refund(gateway, "ch_sim_unknown", key="charge-1-refund-1", amount_cents=100)
    # then
    assert not SimulatedProviderOperation.objects.exists()


# What is stored


def _text_values(instance):
    return [
        getattr(instance, field.attname)
        for field in instance._meta.concrete_fields
        if isinstance(field, models.CharField | models.TextField)
    ]


def test_no_card_number_is_stored_in_saved_cards_or_the_provider_vault():
    # given
    customer = UserFactory()
    # when
    saved = [n for n in ALL_TEST_CARDS if n not in (GENERIC_DECLINE, EXPIRED)]
    for number in ALL_TEST_CARDS:
        token = card_token(number, 12, 2029, "123")
        if number in saved:
            payment_method_add(customer=customer, token=token)
        else:
            with pytest.raises(CardDeclined):  # refused by the bank when set up
                payment_method_add(customer=customer, token=token)
    # then
    rows = [*PaymentMethod.objects.all(), *SimulatedProviderCard.objects.all()]
    assert len(rows) == len(saved) + len(ALL_TEST_CARDS)
    for row in rows:
        for value in _text_values(row):
            assert not any(number in value for number in ALL_TEST_CARDS), (row, value)
    assert {card.last4 for card in PaymentMethod.objects.all()} == {n[-4:] for n in saved}


def test_no_card_number_is_stored_in_any_text_column_after_paying(gateway):
    # given
    token = _token(gateway, TIMEOUT_AFTER_SUCCESS)
    with pytest.raises(UnknownOutcome):
        _charge(gateway, token)
    _charge(gateway, _token(gateway, SUCCESS), key="invoice-2-attempt-1")
    # when
    project_models = [
        model for app in ("accounts", "billing", "subscriptions", "notifications")
        for model in apps.get_app_config(app).get_models()
    ]
    # then
    for model in project_models:
        for row in model.objects.all():
            for value in _text_values(row):
                assert SUCCESS not in value and TIMEOUT_AFTER_SUCCESS not in value, (model, value)


# Its own connection (DESIGN §13): committed whatever becomes of the portal's transaction

WITH_THE_PROVIDERS_CONNECTION = pytest.mark.django_db(
    transaction=True, databases=["default", "simulated_provider"]
)


class Crash(Exception):
    """The portal's process fails after the provider answered."""


@WITH_THE_PROVIDERS_CONNECTION
def test_a_charge_stays_made_when_the_portals_transaction_rolls_back(gateway):
    # given
    token = _token(gateway, SUCCESS)
    # when
    with pytest.raises(Crash), transaction.atomic():
        UserFactory()
        charged = _charge(gateway, token, key="invoice-1-attempt-1", amount_cents=990)
        raise Crash
    # then
    assert not User.objects.exists()
    assert SimulatedProviderOperation.objects.get().reference == charged.reference
    assert gateway.lookup("invoice-1-attempt-1") == charged
    assert _charge(gateway, token, key="invoice-1-attempt-1", amount_cents=990) == charged
    assert SimulatedProviderOperation.objects.count() == 1


@WITH_THE_PROVIDERS_CONNECTION
def test_a_refund_stays_made_when_the_portals_transaction_rolls_back(gateway):
    # given
    charged = _charge(gateway, _token(gateway, SUCCESS), amount_cents=9900)
    # when
    with pytest.raises(Crash), transaction.atomic():
        refund = _refund(gateway, charged.reference, key="charge-1-refund-1", amount_cents=9900)
        raise Crash
    # then
    assert gateway.lookup("charge-1-refund-1") == refund
    assert _refund(gateway, charged.reference, key="charge-1-refund-1",
                   amount_cents=9900) == refund
    with pytest.raises(PaymentError, match="exceeds"):
        _refund(gateway, charged.reference, key="charge-1-refund-2", amount_cents=1)
    assert SimulatedProviderOperation.objects.filter(kind="refund").count() == 1


@WITH_THE_PROVIDERS_CONNECTION
def test_the_provider_does_not_see_what_the_portal_has_not_committed(gateway):
    # given
    with transaction.atomic():
        SimulatedProviderCard.objects.create(token="tok_sim_uncommitted", behaviour="success",
                                             brand="Visa", last4="4242")
        # when
        with pytest.raises(CardDeclined) as declined:
            _charge(gateway, "tok_sim_uncommitted")
    # then
    assert declined.value.code == "invalid_token"
    assert not SimulatedProviderOperation.objects.exists()


# Injected faults (SIMULATED_PROVIDER_FAULTS)


@pytest.fixture
def faults(settings):
    def inject(**faults):
        settings.SIMULATED_PROVIDER_FAULTS = {**settings.SIMULATED_PROVIDER_FAULTS, **faults}

    return inject


def test_every_share_is_zero_by_default(settings):
    assert settings.SIMULATED_PROVIDER_FAULTS == {
        "provider_error": 0.0, "timeout_after_charge": 0.0, "lookup_failure": 0.0,
        "latency_ms": 0, "seed": None,
    }


def test_a_provider_error_charges_nothing(gateway, faults):
    # given
    token = _token(gateway, SUCCESS)
    faults(provider_error=1.0)
    # when
    with pytest.raises(ProviderError):
        _charge(gateway, token)
    # then
    assert not SimulatedProviderOperation.objects.exists()
    assert gateway.lookup("invoice-1-attempt-1") is None


def test_a_provider_error_refunds_nothing(gateway, faults, charged):
    # given
    faults(provider_error=1.0)
    # when
    with pytest.raises(ProviderError):
        _refund(gateway, charged.reference, key="charge-1-refund-1", amount_cents=9900)
    # then
    assert not SimulatedProviderOperation.objects.filter(kind="refund").exists()
    assert gateway.lookup("charge-1-refund-1") is None


def test_a_timeout_after_charge_moves_the_money_once_and_the_replay_answers(gateway, faults):
    # given
    token = _token(gateway, SUCCESS)
    faults(timeout_after_charge=1.0)
    # when
    with pytest.raises(UnknownOutcome):
        _charge(gateway, token, key="invoice-7-attempt-1", amount_cents=9900)
    replay = _charge(gateway, token, key="invoice-7-attempt-1", amount_cents=9900)
    # then
    operation = SimulatedProviderOperation.objects.get()
    assert (operation.status, operation.amount_cents) == ("success", 9900)
    assert replay.succeeded
    assert replay.reference == operation.reference
    assert gateway.lookup("invoice-7-attempt-1").reference == operation.reference


def test_a_timeout_after_a_refund_refunds_once_and_the_replay_answers(gateway, faults, charged):
    # given
    faults(timeout_after_charge=1.0)
    # when
    with pytest.raises(UnknownOutcome):
        _refund(gateway, charged.reference, key="charge-1-refund-1", amount_cents=9900)
    replay = _refund(gateway, charged.reference, key="charge-1-refund-1", amount_cents=9900)
    # then
    refund = SimulatedProviderOperation.objects.get(kind="refund")
    assert (refund.amount_cents, refund.charge_reference) == (9900, charged.reference)
    assert replay.reference == refund.reference


def test_a_lookup_failure_raises_provider_error(gateway, faults):
    # given
    _charge(gateway, _token(gateway, SUCCESS), key="invoice-1-attempt-1")
    faults(lookup_failure=1.0)
    # when
    with pytest.raises(ProviderError):
        gateway.lookup("invoice-1-attempt-1")
    # then
    assert _charge(gateway, _token(gateway, SUCCESS), key="invoice-2-attempt-1").succeeded


def test_the_latency_is_waited_before_every_answer(gateway, faults, charged):
    # given
    faults(latency_ms=30)
    calls = [
        lambda: _token(gateway, SUCCESS),
        lambda: _charge(gateway, _token(gateway, SUCCESS), key="invoice-2-attempt-1"),
        lambda: _refund(gateway, charged.reference, key="charge-1-refund-1", amount_cents=100),
        lambda: gateway.lookup("invoice-1-attempt-1"),
    ]
    for call in calls:
        # when
        started = time.perf_counter()
        call()
        # then
        assert time.perf_counter() - started >= 0.03


def test_faults_never_touch_a_replay(gateway, faults, charged):
    # given
    faults(provider_error=1.0)
    # when
    replay = _charge(gateway, _token(gateway, SUCCESS), key="invoice-1-attempt-1",
                     amount_cents=9900)
    # then
    assert replay == charged


@pytest.mark.parametrize("fault", ["provider_error", "timeout_after_charge"])
@pytest.mark.parametrize(("number", "code"), [
    (GENERIC_DECLINE, "card_declined"),
    (INSUFFICIENT_FUNDS, "insufficient_funds"),
    (EXPIRED, "expired_card"),
])
def test_a_decline_card_still_declines(gateway, faults, fault, number, code):
    # given
    token = _token(gateway, number)
    faults(**{fault: 1.0})
    # when
    with pytest.raises(CardDeclined) as declined:
        _charge(gateway, token)
    # then
    assert declined.value.code == code
    assert SimulatedProviderOperation.objects.get().status == "declined"


def _outcome(call):
    try:
        call()
    except PaymentError as error:
        return type(error)
    return "answered"


@pytest.mark.parametrize(("fault", "error"), [
    ("provider_error", ProviderError),
    ("timeout_after_charge", UnknownOutcome),
])
def test_a_share_of_charges_gets_the_fault(gateway, faults, fault, error):
    # given
    token = _token(gateway, SUCCESS)
    faults(**{fault: 0.2, "seed": 2026})
    # when
    outcomes = [_outcome(lambda n=n: _charge(gateway, token, key=f"invoice-{n}-attempt-1"))
                for n in range(500)]
    # then
    assert set(outcomes) == {error, "answered"}
    assert 70 <= outcomes.count(error) <= 130


def test_a_share_of_lookups_fails(gateway, faults):
    # given
    faults(lookup_failure=0.2, seed=2026)
    # when
    outcomes = [_outcome(lambda: gateway.lookup("invoice-1-attempt-1")) for _ in range(500)]
    # then
    assert set(outcomes) == {ProviderError, "answered"}
    assert 70 <= outcomes.count(ProviderError) <= 130


def test_the_same_seed_injects_the_same_faults(gateway, faults):
    # given
    token = _token(gateway, SUCCESS)

    def run(seed, prefix):
        faults(provider_error=0.5, seed=seed)
        return [_outcome(lambda n=n: _charge(gateway, token, key=f"{prefix}-{n}"))
                for n in range(40)]

    # when
    first, other, again = run(7, "first"), run(8, "other"), run(7, "again")
    # then
    assert first == again
    assert first != other
