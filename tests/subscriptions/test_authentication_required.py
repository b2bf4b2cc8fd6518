"""3-D Secure on renewals (DESIGN §6 "authentication required", §9, §13; issue 9 item 4), with
the simulated provider's test cards 4000 0027 6000 3184 (the bank asks on every charge) and
4000 0025 0000 3155 (only when the card is set up).

The clock is frozen on March 10, 2026 at 09:30 (Paris). A monthly subscription bought on
February 7 renews on March 7; here its renewal runs now, on a card whose bank asks for
3-D Secure: the renewal invoice covers March 7 – April 7."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import signing
from django.test import Client
from django.urls import reverse

from billing.gateways import AuthenticationRequired, CardSetupRequest, get_gateway
from billing.gateways.simulated import challenge_complete
from billing.models import Charge, Invoice, Refund, SimulatedProviderOperation
from notifications.models import OutboxEmail
from subscriptions.jobs import run_due_jobs
from subscriptions.models import Status, SubscriptionEvent
from subscriptions.payment_links import (
    ConfirmLinkRefused,
    LinkRefusal,
    confirm_link_invoice,
    confirm_link_path,
)
from subscriptions.periods import add_days
from subscriptions.selectors import business_tz
from subscriptions.services import subscription_cancel
from subscriptions.services.payments import charge_resume_apply
from subscriptions.services.renew import subscription_renew, subscription_retry_payment
from tests.factories import (
    PlanFactory,
    UserFactory,
    card_token,
    days,
    open_renewal,
    saved_card,
    subscribed,
)

pytestmark = pytest.mark.django_db

AUTHENTICATE_ALWAYS = "4000002760003184"
AUTHENTICATE_AT_SETUP = "4000002500003155"
DECLINED = "4000000000000341"
LINK = re.compile(re.escape(settings.SITE_URL) + r"(/compte/paiement/[^/\s\"<>]+/)")




def _renewed_needing_authentication(now, *, card=AUTHENTICATE_ALWAYS):
    subscription = subscribed(plan=PlanFactory(name="Essentiel"), at=now - days(31))
    saved_card(subscription.customer, card, now - days(1))
    charge = subscription_renew(subscription_id=subscription.pk, now=now)
    subscription.refresh_from_db()
    return subscription, charge


def _client(customer):
    client = Client()
    client.force_login(customer)
    return client


def _emailed_link(subscription, kind="authentication_required"):
    email = OutboxEmail.objects.filter(subscription=subscription, kind=kind).latest("id")
    return LINK.search(email.body_text).group(1)


def _challenge(client, link, *, answer):
    """The customer's way through: the page's button, the provider's script (its challenge
    page, with the client secret and the return URL), the bank's answer, back to the portal."""
    started = client.post(link)
    assert started.status_code == 302
    assert started.url == link + "authentification/"
    page = client.get(started.url)
    assert page.status_code == 200
    html = page.content.decode()
    secret = re.search(r'data-client-secret="([^"]+)"', html).group(1)
    return_url = re.search(r'data-return-url="([^"]+)"', html).group(1)
    challenge_url = re.search(r'data-challenge-url="([^"]+)"', html).group(1)
    shown = client.get(challenge_url, {"client_secret": secret, "return_url": return_url})
    assert shown.status_code == 200
    assert "Valider" in shown.content.decode() and "Refuser" in shown.content.decode()
    answered = client.post(challenge_url, {"client_secret": secret, "return_url": return_url,
                                           "answer": answer})
    assert answered.status_code == 302 and answered.url == return_url
    back = client.get(return_url, follow=True)
    assert back.redirect_chain[-1][0] == reverse("subscriptions:billing")
    return back


# -- the renewal ------------------------------------------------------------------------------


def test_a_renewal_needing_authentication_is_past_due_with_the_reason_and_a_signed_link(now):
    # when
    subscription, charge = _renewed_needing_authentication(now)
    # then: the charge waits for the customer, nothing was charged
    invoice = Invoice.objects.get(pk=charge.invoice_id)
    assert charge.status == Charge.Status.REQUIRES_ACTION
    assert charge.failure_kind == "authentication_required"
    assert charge.client_secret and charge.provider_reference.startswith("ch_sim_")
    operation = SimulatedProviderOperation.objects.get(idempotency_key=charge.idempotency_key)
    assert (operation.status, operation.client_secret) == ("requires_action",
                                                           charge.client_secret)
    with pytest.raises(AuthenticationRequired):
        get_gateway().lookup(charge.idempotency_key)  # neither a success nor a decline
    # past due with the reason, not a decline; the retries are scheduled
    assert (subscription.status, subscription.licence_active) == (Status.PAST_DUE, True)
    assert invoice.last_failure_kind == "authentication_required"
    assert (invoice.declined_attempts, invoice.authentication_requests) == (0, 1)
    assert invoice.next_retry_at == add_days(charge.created_at, 1, tz=business_tz())
    event = subscription.events.get(kind=SubscriptionEvent.Kind.AUTHENTICATION_REQUIRED)
    assert event.data == {"invoice": invoice.number, "attempt": 1,
                          "reason": "authentication_required"}
    assert not subscription.events.filter(kind=SubscriptionEvent.Kind.PAYMENT_FAILED).exists()
    # the email: "authentification requise", with a link that opens the page for this invoice
    assert not OutboxEmail.objects.filter(kind="payment_failed").exists()
    email = OutboxEmail.objects.get(kind="authentication_required")
    assert "authentification requise" in email.body_text
    link = _emailed_link(subscription)
    token = link.removeprefix("/compte/paiement/").rstrip("/")
    assert confirm_link_invoice(token=token, customer=subscription.customer, now=now) == invoice
    page = _client(subscription.customer).get(link)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Confirmer votre paiement" in html and invoice.number in html
    assert "9,90" in html  # 8,25 € + 20 % TVA


def test_the_billing_page_shows_the_banner_while_the_invoice_awaits_authentication(now):
    subscription, _charge = _renewed_needing_authentication(now)
    page = _client(subscription.customer).get(reverse("subscriptions:billing")).content.decode()
    assert "authentication-required" in page
    assert f'href="{confirm_link_path(invoice=open_renewal(subscription))}"' in page


def test_a_declined_renewal_shows_no_authentication_banner(now):
    subscription = subscribed(plan=PlanFactory(), at=now - days(31))
    saved_card(subscription.customer, DECLINED, now)
    subscription_renew(subscription_id=subscription.pk, now=now)
    page = _client(subscription.customer).get(reverse("subscriptions:billing")).content.decode()
    assert "Payer maintenant" in page
    assert "authentication-required" not in page


def test_the_scheduled_retries_go_on_and_the_last_one_suspends(now):
    # given
    subscription, charge = _renewed_needing_authentication(now)
    invoice = Invoice.objects.get(pk=charge.invoice_id)
    # when: the three scheduled retries, the customer never confirming
    for retry in settings.DUNNING_RETRY_DAYS:
        subscription_retry_payment(invoice_id=invoice.pk,
                                   now=add_days(now, retry, tz=business_tz()))
    # then: each was one more authentication request, never a decline, never a second charge
    # (the waiting one could still move money); the fourth suspends
    invoice.refresh_from_db()
    subscription.refresh_from_db()
    assert (invoice.declined_attempts, invoice.authentication_requests) == (0, 4)
    assert invoice.next_retry_at is None
    assert subscription.status == Status.SUSPENDED
    assert list(invoice.charges.values_list("status", flat=True)) == ["requires_action"]
    assert list(subscription.events.filter(
        kind=SubscriptionEvent.Kind.AUTHENTICATION_REQUIRED).values_list(
        "data__attempt", flat=True)) == [1, 2, 3]
    assert OutboxEmail.objects.filter(kind="authentication_required").count() == 3
    assert not OutboxEmail.objects.filter(kind="payment_failed").exists()
    # the suspension email still carries the link, and it still works until the period end
    link = _emailed_link(subscription, kind="subscription_suspended")
    back = _challenge(_client(subscription.customer), link, answer="approve")
    assert "de nouveau actif" in back.content.decode()
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE


def test_a_retry_after_a_refused_challenge_charges_again(now):
    # given: the customer refused the challenge, and the portal has not heard of it yet
    subscription, charge = _renewed_needing_authentication(now)
    challenge_complete(client_secret=charge.client_secret, approved=False)
    # when
    retry = subscription_retry_payment(invoice_id=charge.invoice_id,
                                       now=add_days(now, 1, tz=business_tz()))
    # then: the refused one settled as such (no decline), a new charge asked again
    charge.refresh_from_db()
    assert (charge.status, charge.failure_code, charge.failure_kind) == (
        Charge.Status.FAILED, "authentication_failed", "authentication_required")
    assert (retry.attempt, retry.status) == (2, Charge.Status.REQUIRES_ACTION)
    invoice = Invoice.objects.get(pk=charge.invoice_id)
    assert (invoice.declined_attempts, invoice.authentication_requests) == (0, 2)


# -- the challenge ----------------------------------------------------------------------------


def test_the_challenge_passed_reactivates_at_once_with_the_period_unchanged(now):
    # given
    subscription, charge = _renewed_needing_authentication(now)
    invoice = Invoice.objects.get(pk=charge.invoice_id)
    client = _client(subscription.customer)
    # when
    back = _challenge(client, _emailed_link(subscription), answer="approve")
    # then
    assert "Paiement confirmé : votre abonnement est de nouveau actif" in back.content.decode()
    subscription.refresh_from_db()
    invoice.refresh_from_db()
    charge.refresh_from_db()
    assert (subscription.status, subscription.licence_active) == (Status.ACTIVE, True)
    assert (subscription.current_period_start, subscription.current_period_end) == (
        invoice.period_start, invoice.period_end)
    assert invoice.status == Invoice.Status.PAID
    assert charge.status == Charge.Status.SUCCEEDED  # the same charge, under its own key
    assert Charge.objects.filter(invoice=invoice).count() == 1
    assert SimulatedProviderOperation.objects.filter(
        idempotency_key=charge.idempotency_key, status="success").count() == 1
    assert OutboxEmail.objects.filter(kind="subscription_reactivated").count() == 1
    assert subscription.events.filter(kind=SubscriptionEvent.Kind.REACTIVATED).count() == 1
    # the banner is gone, the link has served
    page = client.get(reverse("subscriptions:billing")).content.decode()
    assert "authentication-required" not in page
    again = client.get(_emailed_link(subscription))
    assert again.status_code == 410 and "déjà réglé" in again.content.decode()


def test_a_refused_challenge_leaves_it_past_due_with_the_banner(now):
    # given
    subscription, charge = _renewed_needing_authentication(now)
    client = _client(subscription.customer)
    # when
    back = _challenge(client, _emailed_link(subscription), answer="refuse")
    # then
    html = back.content.decode()
    assert "rien n&#x27;a été prélevé" in html or "rien n'a été prélevé" in html
    assert "authentication-required" in html  # the banner stays
    subscription.refresh_from_db()
    charge.refresh_from_db()
    invoice = Invoice.objects.get(pk=charge.invoice_id)
    assert subscription.status == Status.PAST_DUE
    assert (charge.status, charge.failure_code, charge.failure_kind) == (
        Charge.Status.FAILED, "authentication_failed", "authentication_required")
    assert (invoice.status, invoice.declined_attempts, invoice.authentication_requests) == (
        Invoice.Status.OPEN, 0, 1)
    assert not OutboxEmail.objects.filter(kind="payment_failed").exists()
    # when: the customer tries again: a new on-session charge, which needs it again
    back = _challenge(client, _emailed_link(subscription), answer="approve")
    # then
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE
    assert list(invoice.charges.values_list("attempt", "initiated_by", "status")) == [
        (1, "system", "failed"), (2, "customer", "succeeded")]


def test_a_challenge_completed_without_coming_back_is_learnt_by_the_reconciliation(now):
    # given: the customer passed the challenge and closed the tab
    subscription, charge = _renewed_needing_authentication(now)
    challenge_complete(client_secret=charge.client_secret, approved=True)
    # when: the reconciliation job, an hour later
    run_due_jobs(now=now + timedelta(minutes=59))
    charge.refresh_from_db()
    assert charge.status == Charge.Status.REQUIRES_ACTION  # not asked about yet
    run_due_jobs(now=now + timedelta(hours=1))
    # then
    charge.refresh_from_db()
    subscription.refresh_from_db()
    assert charge.status == Charge.Status.SUCCEEDED
    assert subscription.status == Status.ACTIVE


def test_pay_now_needing_authentication_goes_to_the_same_challenge(now):
    # given: past due after a decline; the customer's new card needs 3-D Secure
    subscription = subscribed(plan=PlanFactory(), at=now - days(31))
    saved_card(subscription.customer, DECLINED, now - days(1))
    subscription_renew(subscription_id=subscription.pk, now=now)
    saved_card(subscription.customer, AUTHENTICATE_ALWAYS, now)
    client = _client(subscription.customer)
    # when
    response = client.post(reverse("subscriptions:pay_now", args=[subscription.pk]))
    # then: on to the challenge, nothing counted
    invoice = open_renewal(subscription)
    assert response.status_code == 302
    assert response.url == confirm_link_path(invoice=invoice) + "authentification/"
    charge = invoice.charges.get(attempt=2)
    assert (charge.initiated_by, charge.status) == ("customer", Charge.Status.REQUIRES_ACTION)
    assert (invoice.declined_attempts, invoice.authentication_requests) == (1, 0)
    # when: "Payer maintenant" again: the waiting charge, not a second one
    again = client.post(reverse("subscriptions:pay_now", args=[subscription.pk]))
    assert again.url == response.url
    assert invoice.charges.count() == 2
    # when: the challenge, then back
    page = client.get(response.url).content.decode()
    secret = re.search(r'data-client-secret="([^"]+)"', page).group(1)
    return_url = re.search(r'data-return-url="([^"]+)"', page).group(1)
    client.post(reverse("simulated_provider:challenge"),
                {"client_secret": secret, "return_url": return_url, "answer": "approve"})
    client.get(return_url)
    # then
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE


# -- the link ---------------------------------------------------------------------------------


def _nothing_changed(subscription, charge):
    subscription.refresh_from_db()
    charge.refresh_from_db()
    assert subscription.status == Status.PAST_DUE
    assert charge.status == Charge.Status.REQUIRES_ACTION
    assert Charge.objects.filter(invoice_id=charge.invoice_id).count() == 1
    assert SimulatedProviderOperation.objects.get(
        idempotency_key=charge.idempotency_key).status == "requires_action"


def test_a_tampered_link_changes_nothing_and_says_why(now):
    subscription, charge = _renewed_needing_authentication(now)
    link = _emailed_link(subscription)
    client = _client(subscription.customer)
    tampered = link[:-3] + ("A" if link[-3] != "A" else "B") + link[-2:]
    for response in (client.get(tampered), client.post(tampered)):
        assert response.status_code == 400
        assert "n&#x27;est pas valide" in response.content.decode() or \
            "n'est pas valide" in response.content.decode()
    # a token of another purpose (same payload, another salt) is no link either
    forged = signing.Signer(salt="subscriptions.email-cancel").sign_object(
        {"i": charge.invoice_id, "e": 0}, compress=True)
    assert client.post(f"/compte/paiement/{forged}/").status_code == 400
    with pytest.raises(ConfirmLinkRefused) as refused:
        confirm_link_invoice(token=forged, customer=subscription.customer, now=now)
    assert refused.value.reason == LinkRefusal.INVALID
    _nothing_changed(subscription, charge)


def test_an_expired_link_changes_nothing_and_says_why(now):
    # given: the link of an invoice whose period (March 7 – April 7) is over
    subscription, charge = _renewed_needing_authentication(now)
    link = _emailed_link(subscription)
    invoice = Invoice.objects.get(pk=charge.invoice_id)
    with pytest.raises(ConfirmLinkRefused) as refused:
        confirm_link_invoice(token=link.split("/")[3], customer=subscription.customer,
                             now=invoice.period_end)
    assert refused.value.reason == LinkRefusal.EXPIRED
    # when: opened and posted after the period end
    with time_machine.travel(invoice.period_end + timedelta(minutes=1), tick=False):
        client = _client(subscription.customer)
        responses = [client.get(link), client.post(link)]
    # then
    for response in responses:
        assert response.status_code == 410
        assert "n&#x27;est plus valable" in response.content.decode() or \
            "n'est plus valable" in response.content.decode()
        assert "7 avril 2026" in response.content.decode()
    _nothing_changed(subscription, charge)


def test_another_customer_cannot_use_the_link(now):
    subscription, charge = _renewed_needing_authentication(now)
    link = _emailed_link(subscription)
    # a logged-out visitor signs in first
    anonymous = Client().get(link)
    assert anonymous.status_code == 302 and anonymous.url.startswith("/comptes/login/")
    # another customer is refused, whatever they do
    intruder = _client(UserFactory())
    for response in (intruder.get(link), intruder.post(link),
                     intruder.get(link + "authentification/"), intruder.get(link + "retour/")):
        assert response.status_code == 403
        assert "concerne un autre compte" in response.content.decode()
    assert "client_secret" not in intruder.get(link + "authentification/").content.decode()
    _nothing_changed(subscription, charge)


def test_the_link_is_refused_once_the_invoice_no_longer_awaits_authentication(now):
    # given: the customer changed the card, the refused challenge was learnt, and a retry
    # on a declining card made the last failure a decline
    subscription, charge = _renewed_needing_authentication(now)
    link = _emailed_link(subscription)
    challenge_complete(client_secret=charge.client_secret, approved=False)
    saved_card(subscription.customer, DECLINED, now)
    subscription_retry_payment(invoice_id=charge.invoice_id,
                               now=add_days(now, 1, tz=business_tz()))
    assert open_renewal(subscription).last_failure_kind == "decline"
    # when
    response = _client(subscription.customer).post(link)
    # then
    assert response.status_code == 409
    assert "Payer maintenant" in response.content.decode()
    assert Charge.objects.filter(invoice_id=charge.invoice_id).count() == 2


# -- the simulated provider -------------------------------------------------------------------


def test_a_card_authenticated_at_setup_is_charged_off_session(now):
    # given: its setup asks for 3-D Secure
    customer = UserFactory()
    token = card_token(AUTHENTICATE_AT_SETUP, 12, now.year + 3)
    setup = get_gateway().card_setup(CardSetupRequest(
        token=token, customer_reference="", email=customer.email,
        idempotency_key="setup-1"))
    assert setup.requires_action
    with pytest.raises(AuthenticationRequired):
        get_gateway().lookup("setup-1")
    # when: renewed off-session on it
    subscription, charge = _renewed_needing_authentication(now, card=AUTHENTICATE_AT_SETUP)
    # then
    assert charge.status == Charge.Status.SUCCEEDED
    assert subscription.status == Status.ACTIVE


def test_the_challenge_page_only_returns_to_the_portal(now):
    _subscription, charge = _renewed_needing_authentication(now)
    client = Client()
    url = reverse("simulated_provider:challenge")
    for return_url in ("https://evil.example/", "//evil.example/x"):
        assert client.get(url, {"client_secret": charge.client_secret,
                                "return_url": return_url}).status_code == 400
        assert client.post(url, {"client_secret": charge.client_secret, "answer": "approve",
                                 "return_url": return_url}).status_code == 400
    assert client.get(url, {"client_secret": "sec_sim_unknown",
                            "return_url": "/"}).status_code == 400
    assert SimulatedProviderOperation.objects.get(
        idempotency_key=charge.idempotency_key).status == "requires_action"


def test_with_stripe_the_challenge_runs_in_stripe_js(now, settings):
    # given: a renewal waiting for the customer's 3-D Secure
    subscription, charge = _renewed_needing_authentication(now)
    invoice = open_renewal(subscription)
    client = Client()
    client.force_login(subscription.customer)
    settings.PAYMENT_GATEWAY = "billing.gateways.stripe.StripeGateway"
    settings.STRIPE_SECRET_KEY = "sk_test_portal"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_portal"
    # when
    page = client.get(confirm_link_path(invoice=invoice) + "authentification/").content.decode()
    # then: Stripe.js with the PaymentIntent's client secret, and the way back to the portal
    assert '<script src="https://js.stripe.com/v3/"></script>' in page
    assert f'data-client-secret="{charge.client_secret}"' in page
    assert 'data-publishable-key="pk_test_portal"' in page
    assert "/retour/" in page
    assert "simulated-provider" not in page


def test_a_challenge_passed_after_the_resiliation_is_refunded_and_the_contract_ends(now):
    # given: a renewal waiting for 3-D Secure (past due), then the customer résilie: the
    # contract ends with the period already paid, and the renewal is no longer collected
    subscription, charge = _renewed_needing_authentication(now)
    subscription_cancel(subscription=subscription, now=now)
    subscription.refresh_from_db()
    assert subscription.status == Status.PAST_DUE and subscription.ends_at <= now
    # when: the cardholder passes the challenge anyway, and the portal learns it
    challenge_complete(client_secret=charge.client_secret, approved=True)
    charge_resume_apply(charge_id=charge.pk, now=now)
    # then: the money goes back, and nothing is left past due with nothing to pay
    subscription.refresh_from_db()
    assert Refund.objects.get(charge=charge).amount_cents == charge.amount_cents
    assert subscription.status == Status.ENDED
    assert not subscription.invoices.filter(status__in=[Invoice.Status.DRAFT,
                                                        Invoice.Status.OPEN]).exists()
