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

from billing.gateways import ProviderError
from billing.gateways.simulated import SimulatedGateway, challenge_complete
from billing.models import Charge, Invoice, PaymentMethod, Refund, SimulatedProviderOperation
from legal.models import TermsAcceptance, TermsVersion
from notifications.models import OutboxEmail
from subscriptions.jobs import run_due_jobs
from subscriptions.models import Status
from subscriptions.payment_links import confirm_link_path
from subscriptions.services import SubscribeError, subscription_cancel
from subscriptions.services.change_plan import (
    PlanChangeError,
    plan_change_quote,
    subscription_upgrade,
)
from subscriptions.services.payments import ChallengeRequired
from subscriptions.services.renew import subscription_renew
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


def _answered_at_the_bank(client, response, *, answer):
    """From the portal's redirect to a challenge page: the provider's script (its challenge
    page, with the client secret and the return URL) and the bank's answer. Returns the URL
    the bank sends the customer back to."""
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
    return return_url


def _through_the_challenge(client, response, *, answer):
    """The bank's answer, then back to the portal: the page the customer ends on."""
    return client.get(_answered_at_the_bank(client, response, answer=answer), follow=True)


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


def _terms_in_force(now):
    return TermsVersion.objects.create(
        version="2026-01", title="Conditions d'abonnement", body="…",
        effective_date=now.date() - timedelta(days=30), published_at=now - timedelta(days=30))


def _provider_down(self, **kwargs):
    raise ProviderError("down")


def _operation(charge):
    return SimulatedProviderOperation.objects.get(idempotency_key=charge.idempotency_key)


# -- a first payment --------------------------------------------------------------------------


def test_a_first_payment_the_bank_wants_authenticated_waits_for_the_challenge(now):
    # given: terms in force
    version = _terms_in_force(now)
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


# -- 1. terms acceptance --------------------------------------------------------------------


def test_terms_accepted_before_a_challenge_are_linked_to_the_subscription_it_opens(now):
    _terms_in_force(now)
    customer, _plan, client, response = _waiting_first_payment(now)
    client.get(_answered_at_the_bank(client, response, answer="approve"))
    subscription = customer.subscriptions.get()
    # As for a payment without a challenge: the acceptance belongs to the subscription.
    assert TermsAcceptance.objects.get(customer=customer).subscription == subscription


def test_terms_accepted_for_a_first_payment_refused_at_the_bank_belong_to_no_subscription(now):
    _terms_in_force(now)
    customer, _plan, client, response = _waiting_first_payment(now)
    client.get(_answered_at_the_bank(client, response, answer="refuse"))
    assert not customer.subscriptions.exists()
    # what the customer accepted when they paid is kept, attached to nothing
    assert TermsAcceptance.objects.get(customer=customer).subscription is None


# -- 2. the return page says the plan changed, though the money was refunded ----------------


def test_a_plan_change_paid_after_it_stopped_being_collectable_is_not_announced_as_done(now):
    # given: an upgrade waiting for the challenge; meanwhile the customer cancels (other tab)
    subscription, premium, client, response = _upgrade_waiting(now)
    subscription_cancel(subscription=subscription, reason="too_expensive",
                        actor_user=subscription.customer, now=now)
    # when: they pass the challenge and come back
    page = client.get(_answered_at_the_bank(client, response, answer="approve"), follow=True)
    # then: the money is refunded and the plan is unchanged...
    subscription.refresh_from_db()
    assert subscription.plan.code == "essentiel"
    assert Refund.objects.filter(reason=Refund.Reason.UNCOLLECTED).count() == 1
    # ...so the page does not say it changed, and says the money comes back
    assert "votre abonnement est passé à" not in _text(page)
    assert "il vous est remboursé intégralement" in _text(page)


# -- 3. a stale pending card setup replaces a newer card on a GET ---------------------------


def test_a_stale_card_verification_does_not_replace_the_card_saved_since(now):
    customer = UserFactory()
    client = _client(customer)
    # given: card A verification started; the cardholder passed the challenge but never came
    # back to the portal (tab closed)
    response = client.post(reverse("billing:card_update"),
                           {"card_token": card_token(AUTHENTICATE_AT_SETUP, 12, now.year + 2)})
    assert response.url == reverse("billing:card_verification")
    _answered_at_the_bank(client, response, answer="approve")
    # and: later the customer saved card B
    client.post(reverse("billing:card_update"),
                {"card_token": card_token(SUCCESS, 12, now.year + 2)})
    assert PaymentMethod.objects.get(customer=customer, is_default=True).last4 == "4242"
    # when: the old return URL is opened again (history, reload, back button)
    client.get(reverse("billing:card_verification_return"))
    # then: B, the card the customer chose last, is still the card charged at renewal
    assert PaymentMethod.objects.get(customer=customer, is_default=True).last4 == "4242"


# -- 4. the deadline of a charge found waiting after it passed ------------------------------


def test_a_customer_charge_found_waiting_after_its_deadline_is_cancelled_at_once(now):
    customer = UserFactory()
    saved_card(customer, AUTHENTICATE_ALWAYS, now)
    plan = PlanFactory()
    # given: a first payment whose answer was lost (unknown), learned much later
    with pytest.raises(ChallengeRequired) as required:
        subscription_subscribe(customer=customer, plan=plan, now=now)
    charge = required.value.charge
    Charge.objects.filter(pk=charge.pk).update(status=Charge.Status.UNKNOWN,
                                               client_secret="", next_attempt_at=now)
    later = now + timedelta(hours=3)
    run_due_jobs(now=later)
    charge.refresh_from_db()
    assert charge.status == Charge.Status.REQUIRES_ACTION
    # then: its deadline (60 min after it was made) is long over: it should be due now, not
    # in another hour (or day, for one older than a day)
    assert charge.next_attempt_at <= later + timedelta(minutes=5)


# -- what a cancel that fails, and a scheduled attempt, must still hold ------------------


def test_a_failed_cancel_never_lets_a_second_plan_change_charge(now, monkeypatch):
    subscription, premium, _client_, _response = _upgrade_waiting(now)
    ultimate = PlanFactory(code="ultimate", name="Ultimate", tier=3, price_cents=2450)

    monkeypatch.setattr(SimulatedGateway, "cancel", _provider_down)
    with pytest.raises(PlanChangeError):
        subscription_upgrade(subscription=subscription, plan=ultimate, now=now)
    assert Charge.objects.filter(invoice__kind=Invoice.Kind.PRORATION).count() == 1


def test_a_failed_cancel_never_lets_a_second_first_payment_charge(now, monkeypatch):
    customer = UserFactory()
    saved_card(customer, AUTHENTICATE_ALWAYS, now)
    plan = PlanFactory()
    with pytest.raises(ChallengeRequired):
        subscription_subscribe(customer=customer, plan=plan, now=now)

    monkeypatch.setattr(SimulatedGateway, "cancel", _provider_down)
    with pytest.raises(SubscribeError):
        subscription_subscribe(customer=customer, plan=plan,
                               card_token=card_token(SUCCESS, 12, now.year + 2), now=now)
    assert Charge.objects.filter(customer=customer).count() == 1


def test_a_scheduled_renewal_attempt_keeps_waiting_past_the_challenge_deadline(now):
    subscription = subscribed(plan=PlanFactory(), at=now - timedelta(days=31))
    saved_card(subscription.customer, AUTHENTICATE_ALWAYS, now - timedelta(days=2))
    renewal = subscription.current_period_end
    charge = subscription_renew(subscription_id=subscription.pk, now=renewal)
    assert charge.status == Charge.Status.REQUIRES_ACTION
    later = renewal + timedelta(minutes=settings.AUTHENTICATION_CHALLENGE_MINUTES + 5)
    run_due_jobs(now=later)
    run_due_jobs(now=later + timedelta(hours=2))
    charge.refresh_from_db()
    assert charge.status == Charge.Status.REQUIRES_ACTION


def test_a_new_card_whose_first_payment_was_refused_at_the_challenge_does_not_stay_default(
        now, monkeypatch):
    # given: a card the bank let through at setup (frictionless) but challenges at payment;
    # the customer had another card before
    from dataclasses import replace

    customer = UserFactory()
    previous = saved_card(customer, SUCCESS, now)
    real_setup = SimulatedGateway.card_setup
    monkeypatch.setattr(SimulatedGateway, "card_setup",
                        lambda self, request: replace(real_setup(self, request), reference="",
                                                      client_secret=""))
    client = _client(customer)
    plan = PlanFactory(name="Essentiel")
    response = client.post(reverse("subscriptions:subscribe", args=[plan.code]),
                           {"accept_terms": "1",
                            "card_token": card_token(AUTHENTICATE_ALWAYS, 12, now.year + 2)})
    # when: the cardholder refuses the payment at the bank
    client.get(_answered_at_the_bank(client, response, answer="refuse"))
    # then (subscription_subscribe's docstring): "a new card that was refused does not stay
    # the default", as when it is declined at once
    assert not customer.subscriptions.exists()
    assert PaymentMethod.objects.get(customer=customer, is_default=True) == previous
