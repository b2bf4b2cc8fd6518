"""3-D Secure on the customer's own payments and card setups (DESIGN §6, §13; issue 9 items 2
and 4): a first payment or a plan change the bank wants authenticated sends the customer to
the challenge and settles on their return; one left unfinished is cancelled at the provider
before it is given up; a card the bank wants authenticated at setup is saved only once the
cardholder confirmed it.

Simulated test cards: 4000 0027 6000 3184 (3-D Secure on every charge and at setup),
4000 0025 0000 3155 (at setup only). The clock is frozen (tests/conftest.py)."""

import html
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from billing.gateways.simulated import challenge_complete
from billing.models import Charge, Invoice, PaymentMethod, SimulatedProviderOperation
from legal.models import TermsAcceptance, TermsVersion
from notifications.models import OutboxEmail
from subscriptions.jobs import run_due_jobs
from subscriptions.models import Status
from subscriptions.payment_links import confirm_link_path
from subscriptions.services.change_plan import plan_change_quote, subscription_upgrade
from subscriptions.services.payments import ChallengeRequired
from subscriptions.services.subscribe import subscription_subscribe
from tests.factories import PlanFactory, UserFactory, card_token, saved_card, subscribed

pytestmark = pytest.mark.django_db

AUTHENTICATE_ALWAYS = "4000002760003184"
AUTHENTICATE_AT_SETUP = "4000002500003155"
SUCCESS = "4242424242424242"


def _client(customer):
    client = Client()
    client.force_login(customer)
    return client


def _through_the_challenge(client, response, *, answer):
    """From the portal's redirect to a challenge page: the provider's script (its challenge
    page, with the client secret and the return URL), the bank's answer, back to the portal.
    Returns the page the customer ends on."""
    assert response.status_code == 302, response
    page = client.get(response.url)
    assert page.status_code == 200
    source = page.content.decode()
    secret = re.search(r'data-client-secret="([^"]+)"', source).group(1)
    return_url = re.search(r'data-return-url="([^"]+)"', source).group(1)
    challenge_url = re.search(r'data-challenge-url="([^"]+)"', source).group(1)
    answered = client.post(challenge_url, {"client_secret": secret, "return_url": return_url,
                                           "answer": answer})
    assert answered.status_code == 302 and answered.url == return_url
    return client.get(return_url, follow=True)


def _text(page) -> str:
    return html.unescape(page.content.decode())


def _checkout(client, plan, **card):
    fields = {"accept_terms": "1", **(card or {"use_saved_card": "1"})}
    return client.post(reverse("subscriptions:subscribe", args=[plan.code]), fields)


def _waiting_first_payment(now):
    customer = UserFactory()
    saved_card(customer, AUTHENTICATE_ALWAYS, now)
    plan = PlanFactory(name="Essentiel")
    client = _client(customer)
    response = _checkout(client, plan)
    return customer, plan, client, response


def _operation(charge):
    return SimulatedProviderOperation.objects.get(idempotency_key=charge.idempotency_key)


# -- a first payment --------------------------------------------------------------------------


def test_a_first_payment_the_bank_wants_authenticated_waits_for_the_challenge(now):
    # given: terms in force
    version = TermsVersion.objects.create(
        version="2026-01", title="Conditions d'abonnement", body="…",
        effective_date=now.date() - timedelta(days=30), published_at=now - timedelta(days=30))
    # when
    customer, plan, _client_, response = _waiting_first_payment(now)
    # then: on to the challenge, nothing opened yet, the terms accepted now
    charge = Charge.objects.get(customer=customer)
    assert response.status_code == 302
    assert response.url == confirm_link_path(invoice=charge.invoice) + "authentification/"
    assert charge.status == Charge.Status.REQUIRES_ACTION
    assert charge.invoice.status == Invoice.Status.DRAFT and charge.invoice.number is None
    assert not customer.subscriptions.exists()
    acceptance = TermsAcceptance.objects.get(customer=customer)
    assert (acceptance.version, acceptance.accepted_at) == (version, now)


def test_a_first_payment_confirmed_at_the_bank_opens_the_subscription_once(now):
    # given
    customer, plan, client, response = _waiting_first_payment(now)
    # when
    page = _through_the_challenge(client, response, answer="approve")
    # then
    assert page.redirect_chain[-1][0] == reverse("subscriptions:billing")
    assert "Bienvenue ! Votre abonnement Essentiel est actif." in _text(page)
    subscription = customer.subscriptions.get()
    assert subscription.status == Status.ACTIVE
    invoice = subscription.invoices.get()
    assert invoice.status == Invoice.Status.PAID and invoice.number
    assert OutboxEmail.objects.filter(customer=customer, kind="welcome").count() == 1
    # and coming back again changes nothing
    client.get(response.url.replace("authentification/", "retour/"))
    assert customer.subscriptions.count() == 1
    assert OutboxEmail.objects.filter(customer=customer, kind="welcome").count() == 1


def test_a_first_payment_refused_at_the_bank_charges_nothing_and_goes_back_to_the_offer(now):
    # given
    customer, plan, client, response = _waiting_first_payment(now)
    # when
    page = _through_the_challenge(client, response, answer="refuse")
    # then
    assert page.redirect_chain[-1][0] == reverse("subscriptions:subscribe", args=[plan.code])
    assert "pas été confirmé auprès de votre banque" in _text(page)
    charge = Charge.objects.get(customer=customer)
    assert charge.status == Charge.Status.FAILED
    assert charge.invoice.status == Invoice.Status.VOID and charge.invoice.number is None
    assert not customer.subscriptions.exists()
    # and another card goes through at once
    response = _checkout(client, plan, card_token=card_token(SUCCESS, 12, now.year + 2))
    assert response.status_code == 302
    assert customer.subscriptions.get().status == Status.ACTIVE


def test_an_unfinished_first_payment_is_cancelled_at_the_provider_then_dropped(now):
    # given: the customer left the bank's page without answering
    customer, plan, client, response = _waiting_first_payment(now)
    charge = Charge.objects.get(customer=customer)
    deadline = now + timedelta(minutes=settings.AUTHENTICATION_CHALLENGE_MINUTES)
    # when: the reconciliation runs before, then at the deadline
    run_due_jobs(now=deadline - timedelta(minutes=1))
    charge.refresh_from_db()
    assert charge.status == Charge.Status.REQUIRES_ACTION
    run_due_jobs(now=deadline)
    # then: cancelled at the provider first, so the bank's page can no longer move money
    charge.refresh_from_db()
    assert (charge.status, charge.failure_code) == (Charge.Status.FAILED,
                                                    "authentication_abandoned")
    assert charge.invoice.status == Invoice.Status.VOID
    assert _operation(charge).status == "declined"
    challenge_complete(client_secret=charge.client_secret, approved=True)
    assert _operation(charge).status == "declined"
    assert not customer.subscriptions.exists()
    # and the way back tells the customer, nothing charged
    page = client.get(response.url, follow=True)
    assert "rien n'a été débité" in _text(page)


def test_paying_again_cancels_the_waiting_first_payment_at_the_provider_first(now):
    # given
    customer, plan, client, _response = _waiting_first_payment(now)
    waiting = Charge.objects.get(customer=customer)
    # when: the customer starts again with another card
    response = _checkout(client, plan, card_token=card_token(SUCCESS, 12, now.year + 2))
    # then: one payment only moved money
    assert response.status_code == 302
    waiting.refresh_from_db()
    assert waiting.status == Charge.Status.FAILED
    assert _operation(waiting).status == "declined"
    assert customer.subscriptions.get().status == Status.ACTIVE
    assert Charge.objects.filter(customer=customer, status=Charge.Status.SUCCEEDED).count() == 1


def test_a_challenge_passed_just_before_paying_again_counts_and_nothing_is_charged_twice(now):
    # given: the customer passed the challenge in another tab, the portal has not heard of it
    customer, plan, client, _response = _waiting_first_payment(now)
    waiting = Charge.objects.get(customer=customer)
    challenge_complete(client_secret=waiting.client_secret, approved=True)
    # when
    response = _checkout(client, plan, card_token=card_token(SUCCESS, 12, now.year + 2))
    # then: the cancel found it paid; the subscription it paid for is the one
    waiting.refresh_from_db()
    assert waiting.status == Charge.Status.SUCCEEDED
    assert customer.subscriptions.get().status == Status.ACTIVE
    assert Charge.objects.filter(customer=customer).count() == 1
    assert response.status_code in (200, 302)
    assert SimulatedProviderOperation.objects.filter(kind="charge", status="success").count() == 1


def test_another_customer_cannot_reach_a_waiting_first_payment(now):
    # given
    customer, _plan, _client_, response = _waiting_first_payment(now)
    intruder = _client(UserFactory())
    # when / then
    challenge = intruder.get(response.url)
    back = intruder.get(response.url.replace("authentification/", "retour/"))
    assert (challenge.status_code, back.status_code) == (403, 403)
    assert Charge.objects.get(customer=customer).status == Charge.Status.REQUIRES_ACTION


def test_the_service_says_a_challenge_is_needed(now):
    customer = UserFactory()
    saved_card(customer, AUTHENTICATE_ALWAYS, now)
    with pytest.raises(ChallengeRequired) as required:
        subscription_subscribe(customer=customer, plan=PlanFactory(), now=now)
    assert required.value.charge.status == Charge.Status.REQUIRES_ACTION
    assert required.value.charge.client_secret


# -- a plan change ----------------------------------------------------------------------------


def _upgrade_waiting(now):
    subscription = subscribed(plan=PlanFactory(code="essentiel", tier=1),
                              at=now - timedelta(days=10))
    premium = PlanFactory(code="premium", name="Premium", tier=2, price_cents=1650)
    saved_card(subscription.customer, AUTHENTICATE_ALWAYS, now)
    client = _client(subscription.customer)
    quote = plan_change_quote(subscription=subscription, plan=premium, now=now)
    response = client.post(reverse("subscriptions:change_confirm",
                                   args=[subscription.pk, premium.code]),
                           {"expected_amount_cents": quote.amount.total_cents})
    return subscription, premium, client, response


def test_a_plan_change_the_bank_wants_authenticated_applies_once_confirmed(now):
    # given
    subscription, premium, client, response = _upgrade_waiting(now)
    subscription.refresh_from_db()
    assert subscription.plan.code == "essentiel"
    # when
    page = _through_the_challenge(client, response, answer="approve")
    # then
    assert f"C'est fait : votre abonnement est passé à {premium}." in _text(page)
    subscription.refresh_from_db()
    assert subscription.plan == premium
    assert OutboxEmail.objects.filter(subscription=subscription, kind="plan_changed").count() == 1


def test_a_plan_change_refused_at_the_bank_changes_nothing(now):
    subscription, _premium, client, response = _upgrade_waiting(now)
    page = _through_the_challenge(client, response, answer="refuse")
    assert page.redirect_chain[-1][0] == reverse("subscriptions:change_options",
                                                 args=[subscription.pk])
    subscription.refresh_from_db()
    assert subscription.plan.code == "essentiel"
    assert subscription.invoices.get(kind=Invoice.Kind.PRORATION).status == Invoice.Status.VOID


def test_choosing_again_cancels_the_waiting_plan_change_first(now):
    # given: the customer left the challenge of an upgrade and comes back to it
    subscription, premium, _client_, _response = _upgrade_waiting(now)
    waiting = Charge.objects.get(invoice__kind=Invoice.Kind.PRORATION)
    # when
    with pytest.raises(ChallengeRequired) as required:
        subscription_upgrade(subscription=subscription, plan=premium, now=now)
    # then: the first one was cancelled at the provider; only the new one waits
    waiting.refresh_from_db()
    assert waiting.status == Charge.Status.FAILED and _operation(waiting).status == "declined"
    assert required.value.charge.pk != waiting.pk
    assert Charge.objects.filter(status=Charge.Status.REQUIRES_ACTION).count() == 1


# -- a card the bank verifies at setup --------------------------------------------------------


def _card_update(client, number, now):
    return client.post(reverse("billing:card_update"),
                       {"card_token": card_token(number, 12, now.year + 2)})


def test_a_card_the_bank_wants_authenticated_is_saved_once_confirmed(now):
    # given
    customer = UserFactory()
    client = _client(customer)
    # when
    response = _card_update(client, AUTHENTICATE_AT_SETUP, now)
    # then: nothing saved before the bank's answer
    assert response.status_code == 302 and response.url == reverse("billing:card_verification")
    assert not PaymentMethod.objects.filter(customer=customer).exists()
    # when
    page = _through_the_challenge(client, response, answer="approve")
    # then
    assert page.redirect_chain[-1][0] == reverse("subscriptions:billing")
    assert "vérifiée par votre banque et enregistrée" in _text(page)
    card = PaymentMethod.objects.get(customer=customer)
    assert (card.last4, card.is_default) == ("3155", True)
    # and its charges then go through off-session
    subscription = subscription_subscribe(customer=customer, plan=PlanFactory(), now=now)
    assert subscription.status == Status.ACTIVE


def test_a_card_whose_setup_the_bank_refused_is_not_saved(now):
    # given
    customer = UserFactory()
    previous = saved_card(customer, SUCCESS, now)
    client = _client(customer)
    response = _card_update(client, AUTHENTICATE_AT_SETUP, now)
    # when
    page = _through_the_challenge(client, response, answer="refuse")
    # then
    assert page.redirect_chain[-1][0] == reverse("billing:card_update")
    assert "Votre banque n'a pas confirmé cette carte" in _text(page)
    assert list(PaymentMethod.objects.filter(customer=customer, is_default=True)) == [previous]


def test_subscribing_with_a_card_verified_at_setup_comes_back_to_the_checkout(now):
    # given
    customer = UserFactory()
    plan = PlanFactory(name="Essentiel")
    client = _client(customer)
    response = _checkout(client, plan,
                         card_token=card_token(AUTHENTICATE_AT_SETUP, 12, now.year + 2))
    assert response.url == reverse("billing:card_verification")
    assert not Charge.objects.filter(customer=customer).exists()
    # when
    page = _through_the_challenge(client, response, answer="approve")
    # then: back at the checkout, with the card saved
    assert page.redirect_chain[-1][0] == reverse("subscriptions:subscribe", args=[plan.code])
    assert "•••• 3155" in _text(page)
    assert _checkout(client, plan).status_code == 302
    assert customer.subscriptions.get().status == Status.ACTIVE


def test_the_verification_pages_without_a_card_waiting_go_back_to_the_card_form(now):
    client = _client(UserFactory())
    for name in ("billing:card_verification", "billing:card_verification_return"):
        response = client.get(reverse(name))
        assert (response.status_code, response.url) == (302, reverse("billing:card_update"))
