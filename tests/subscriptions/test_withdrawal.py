"""The withdrawal function (droit de rétractation, DESIGN §8; issue 10, item 1): "Renoncer au
contrat ici" while the 14 days run, a statement with name, contract reference and the address
for the acknowledgement, "Confirmer la rétractation", the end now with the refund of everything
paid, one acknowledgement (email, page, history) with the date and time received.

The clock is frozen at Tuesday 10 March 2026, 9:30 (Paris)."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse

from billing.models import Charge, CreditNote, Refund
from notifications.models import OutboxEmail
from subscriptions.models import Channel, EndReason, Status, Subscription, SubscriptionEvent
from subscriptions.rules import Refusal, withdrawal_refusal
from subscriptions.services import (
    WithdrawalError,
    subscription_cancel,
    subscription_withdraw,
)
from subscriptions.services.change_plan import subscription_upgrade
from subscriptions.timeline import subscription_timeline
from tests.factories import PASSWORD, PlanFactory, UserFactory, days, subscribed

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
SECOND = timedelta(seconds=1)
NBSP = "\u00a0"
Kind = SubscriptionEvent.Kind
LINK = "Renoncer au contrat ici"
CONFIRM = "Confirmer la rétractation"


def paris(*args):
    return datetime(*args, tzinfo=PARIS)


# Concluded at the frozen instant: Tuesday 10 March 2026, 9:30. The period's last day is
# Tuesday 24 March; from Wednesday 25 March at 0:00 withdrawing is no longer possible.
LAST_SECOND = paris(2026, 3, 24, 23, 59, 59)
FIRST_SECOND_AFTER = paris(2026, 3, 25, 0, 0, 0)


@pytest.fixture
def customer():
    return UserFactory(first_name="Camille", last_name="Martin", email="camille@example.com")


@pytest.fixture
def subscription(customer, now):
    """Monthly at 9,90 € TTC, bought three days ago (Saturday 7 March, 9:30)."""
    return subscribed(customer=customer, at=now - days(3))


@pytest.fixture
def logged_in(client, customer):
    client.force_login(customer)
    return client


@pytest.fixture
def run_after_commit(django_capture_on_commit_callbacks):
    """Run what waits for the commit (refund payments, email delivery) in the test."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def statement_url(subscription):
    return reverse("subscriptions:withdraw", args=[subscription.pk])


def withdrawal_emails():
    return OutboxEmail.objects.filter(kind="withdrawal_confirmation")


def withdrawn_events(subscription):
    return subscription.events.filter(kind=Kind.WITHDRAWN)


def refunds_of(subscription):
    return Refund.objects.filter(charge__invoice__subscription=subscription)


def state(subscription):
    """Everything a withdrawal changes."""
    subscription = Subscription.objects.get(pk=subscription.pk)
    return (subscription.status, subscription.end_reason, subscription.licence_active,
            subscription.auto_renew, withdrawn_events(subscription).count(),
            refunds_of(subscription).count(), withdrawal_emails().count())


def assert_withdrawn_once(subscription, *, refund_cents, now):
    subscription.refresh_from_db()
    assert (subscription.status, subscription.end_reason, subscription.ended_at,
            subscription.licence_active, subscription.auto_renew) == (
        Status.ENDED, EndReason.WITHDRAWN, now, False, False)
    refunds = list(refunds_of(subscription))
    assert sum(r.amount_cents for r in refunds) == refund_cents
    assert {(r.reason, r.status) for r in refunds} == {
        (Refund.Reason.WITHDRAWAL, Refund.Status.SUCCEEDED)}
    assert CreditNote.objects.filter(invoice__subscription=subscription).count() == len(refunds)
    assert withdrawn_events(subscription).count() == 1
    assert withdrawal_emails().count() == 1


# The window: at the last second of the 14 days, not at the first second after


def test_the_predicate_offers_it_at_the_last_second_and_not_at_the_first_second_after(now):
    # given
    subscription = subscribed(at=now)
    # when / then
    assert withdrawal_refusal(subscription, now=now) is None
    assert withdrawal_refusal(subscription, now=LAST_SECOND) is None
    assert withdrawal_refusal(subscription, now=FIRST_SECOND_AFTER) == (
        Refusal.WITHDRAWAL_PERIOD_OVER)


def test_the_service_accepts_it_at_the_last_second(now, run_after_commit):
    # given
    subscription = subscribed(at=now)
    # when
    with run_after_commit():
        withdrawal, created = subscription_withdraw(
            subscription=subscription, name="Camille Martin", email="camille@example.com",
            now=LAST_SECOND)
    # then
    assert created
    assert withdrawal.received_at == LAST_SECOND
    assert_withdrawn_once(subscription, refund_cents=990, now=LAST_SECOND)


def test_the_service_refuses_it_at_the_first_second_after(now):
    # given
    subscription = subscribed(at=now)
    before = state(subscription)
    # when
    with pytest.raises(WithdrawalError) as refused:
        subscription_withdraw(subscription=subscription, name="Camille Martin",
                              email="camille@example.com", now=FIRST_SECOND_AFTER)
    # then
    assert "délai de rétractation de 14 jours est écoulé" in str(refused.value)
    assert state(subscription) == before


def test_the_billing_page_and_the_footer_offer_it_until_the_last_second(now, customer, logged_in):
    # given
    subscribed(customer=customer, at=now)
    # when (signed in again: a session lasts two weeks)
    with time_machine.travel(LAST_SECOND, tick=False):
        logged_in.force_login(customer)
        during = logged_in.get(reverse("subscriptions:billing")).content.decode()
    with time_machine.travel(FIRST_SECOND_AFTER, tick=False):
        logged_in.force_login(customer)
        after = logged_in.get(reverse("subscriptions:billing")).content.decode()
    # then: in the subscription section, and in the footer
    assert during.count(LINK) == 2
    assert "jusqu'au 24 mars 2026 inclus" in during
    assert LINK not in after


def test_the_statement_url_says_it_is_no_longer_possible_after_the_14_days(
    now, customer, logged_in
):
    # given
    subscription = subscribed(customer=customer, at=now - days(15))
    before = state(subscription)
    # when
    page = logged_in.get(statement_url(subscription))
    posted = logged_in.post(statement_url(subscription),
                            {"name": "Camille Martin", "email": "camille@example.com"})
    # then
    for response in (page, posted):
        assert response.status_code == 410
        content = response.content.decode()
        assert "La rétractation n'est plus possible" in content
        assert "délai de rétractation de 14 jours est écoulé" in content
        assert CONFIRM not in content
    assert state(subscription) == before


# Statement → confirmation → ended, refunded 100 %, one acknowledgement


def test_the_statement_shows_name_reference_and_the_address_prefilled(
    subscription, customer, logged_in
):
    # when
    page = logged_in.get(statement_url(subscription)).content.decode()
    # then
    assert 'name="name" value="Camille Martin"' in page
    assert 'name="email" value="camille@example.com"' in page
    assert f'<dd class="customer-number">{customer.customer_number}</dd>' in page
    assert (f'<dd class="contract-reference">{customer.customer_number} · '
            f"{subscription.reference}</dd>") in page
    assert "conclu le 7 mars 2026 à 9 h 30" in page
    # the fourteenth day, Saturday 21 March, runs on to Monday 23 March
    assert "jusqu'au 23 mars 2026 inclus" in page
    assert f"Remboursement : 9,90{NBSP}€" in page
    assert f'<button type="submit" class="button danger">{CONFIRM}</button>' in page
    # GET changes nothing
    assert state(subscription)[:5] == (Status.ACTIVE, "", True, True, 0)


def test_confirming_ends_refunds_everything_and_acknowledges_once(
    subscription, customer, logged_in, now, run_after_commit
):
    # given: the customer corrects their name and the address for the acknowledgement
    # when
    with run_after_commit():
        response = logged_in.post(statement_url(subscription),
                                  {"name": "Camille Durand", "email": "perso@example.org"})
    # then: on to the acknowledgement
    event = withdrawn_events(subscription).get()
    ack_url = reverse("subscriptions:withdrawal_acknowledgement", args=[event.pk])
    assert (response.status_code, response["Location"]) == (302, ack_url)
    assert_withdrawn_once(subscription, refund_cents=990, now=now)
    assert (event.at, event.amount_cents, event.data["name"], event.data["email"],
            event.data["reference"], event.data["customer_number"]) == (
        now, 990, "Camille Durand", "perso@example.org", f"{subscription.reference}",
        customer.customer_number)
    assert subscription.events.get(kind=Kind.ENDED).data["reason"] == EndReason.WITHDRAWN
    # one email, to the address given, restating it with the date and time received
    email = withdrawal_emails().get()
    assert (email.recipient, email.status) == ("perso@example.org", OutboxEmail.Status.SENT)
    assert [m.to for m in mail.outbox if m.subject == email.subject] == [["perso@example.org"]]
    assert email.subject == f"Accusé de réception de votre rétractation du contrat " \
                            f"{subscription.plan.name}"
    for body in (email.body_text, email.body_html):
        assert "Nous avons bien reçu votre rétractation" in body
        assert "10 mars 2026 à 9 h 30" in body
        assert "Camille Durand" in body
        assert f"{customer.customer_number} · {subscription.reference}" in body
        assert f"9,90{NBSP}€" in body
        assert "au plus tard le 24 mars 2026" in body
        assert ack_url in body
    # the acknowledgement page says the same
    page = logged_in.get(ack_url).content.decode()
    assert "Accusé de réception de votre rétractation" in page
    assert (f"Nous avons bien reçu votre rétractation du contrat {subscription.plan.name} le "
            "10 mars 2026 à 9 h 30.") in page
    assert '<dd class="received-at">10 mars 2026 à 9 h 30</dd>' in page
    assert '<dd class="email">perso@example.org</dd>' in page
    assert f"9,90{NBSP}€, tout ce que vous avez payé pour ce contrat" in page


def test_everything_paid_for_the_contract_is_refunded_an_upgrade_too(
    customer, now, run_after_commit
):
    # given: Essentiel monthly bought 5 days ago, upgraded to Premium 2 days ago
    essential = PlanFactory(code="w-essentiel", tier=1, price_cents=825)
    premium = PlanFactory(code="w-premium", tier=2, price_cents=1250)
    subscription = subscribed(customer=customer, plan=essential, at=now - days(5))
    subscription_upgrade(subscription=subscription, plan=premium, now=now - days(2))
    paid = sum(Charge.objects.filter(invoice__subscription=subscription,
                                     status=Charge.Status.SUCCEEDED)
               .values_list("amount_cents", flat=True))
    assert paid > 990  # the first month and the upgrade's proration
    # when
    with run_after_commit():
        withdrawal, _ = subscription_withdraw(subscription=subscription, name="Camille Martin",
                                              email=customer.email, now=now)
    # then
    assert withdrawal.refund_cents == paid
    assert_withdrawn_once(subscription, refund_cents=paid, now=now)
    assert refunds_of(subscription).count() == 2  # one per charge


def test_a_second_confirmation_refunds_and_emails_nothing_and_shows_the_acknowledgement(
    subscription, logged_in, now, run_after_commit
):
    # given
    data = {"name": "Camille Martin", "email": "camille@example.com"}
    with run_after_commit():
        first = logged_in.post(statement_url(subscription), data)
    # when: the same form posted again (double click, a second tab, back and resubmit)
    with run_after_commit():
        second = logged_in.post(statement_url(subscription), data)
        reopened = logged_in.get(statement_url(subscription))
    # then
    assert second.status_code == reopened.status_code == 302
    assert second["Location"] == reopened["Location"] == first["Location"]
    assert_withdrawn_once(subscription, refund_cents=990, now=now)


def test_the_service_called_twice_withdraws_once(subscription, now, run_after_commit):
    # when
    with run_after_commit():
        first, created = subscription_withdraw(subscription=subscription, name="A",
                                               email="a@example.com", now=now)
        again, created_again = subscription_withdraw(subscription=subscription, name="B",
                                                     email="b@example.com", now=now + SECOND)
    # then
    assert (created, created_again) == (True, False)
    assert again.event == first.event and again.name == "A"
    assert_withdrawn_once(subscription, refund_cents=990, now=now)


def test_an_invalid_address_gets_a_french_error_and_changes_nothing(subscription, logged_in):
    # given
    before = state(subscription)
    # when
    response = logged_in.post(statement_url(subscription),
                              {"name": "Camille Martin", "email": "pas-une-adresse"})
    # then
    assert response.status_code == 200
    assert "Saisissez une adresse de courriel valide." in response.content.decode()
    assert state(subscription) == before


def test_confirming_without_a_csrf_token_is_refused(subscription):
    # given
    client = Client(enforce_csrf_checks=True)
    client.force_login(subscription.customer)
    before = state(subscription)
    # when
    response = client.post(statement_url(subscription),
                           {"name": "Camille Martin", "email": "camille@example.com"})
    # then
    assert response.status_code == 403
    assert state(subscription) == before


# Refusals


def test_refused_for_a_contract_concluded_through_another_channel(
    subscription, logged_in, now
):
    # given
    Subscription.objects.filter(pk=subscription.pk).update(channel=Channel.APP_STORE)
    subscription.refresh_from_db()
    before = state(subscription)
    # when
    with pytest.raises(WithdrawalError) as refused:
        subscription_withdraw(subscription=subscription, name="Camille Martin",
                              email="camille@example.com", now=now)
    page = logged_in.get(statement_url(subscription))
    billing = logged_in.get(reverse("subscriptions:billing")).content.decode()
    # then
    assert "App Store" in str(refused.value)
    assert page.status_code == 410 and "App Store" in page.content.decode()
    assert LINK not in billing
    assert state(subscription) == before


def test_refused_once_ended_otherwise(subscription, now):
    # given: cancelled inside the refund window, so it ended with its refund
    subscription, _ = subscription_cancel(subscription=subscription, now=now - days(1))
    assert subscription.status == Status.ENDED
    before = state(subscription)
    # when / then
    assert withdrawal_refusal(subscription, now=now) == Refusal.ENDED
    with pytest.raises(WithdrawalError):
        subscription_withdraw(subscription=subscription, name="Camille Martin",
                              email="camille@example.com", now=now)
    assert state(subscription) == before


def test_another_customers_contract_is_not_found(subscription, now, run_after_commit):
    # given
    with run_after_commit():
        withdrawal, _ = subscription_withdraw(subscription=subscribed(at=now - days(1)),
                                              name="X", email="x@example.com", now=now)
    stranger = Client()
    stranger.force_login(UserFactory())
    before = state(subscription)
    # when
    responses = [
        stranger.get(statement_url(subscription)),
        stranger.post(statement_url(subscription), {"name": "X", "email": "x@example.com"}),
        stranger.get(reverse("subscriptions:withdrawal_acknowledgement",
                             args=[withdrawal.event.pk])),
    ]
    # then
    assert [r.status_code for r in responses] == [404, 404, 404]
    assert state(subscription) == before


# The doors: footer (logged out: through sign-in), checkout, history


def test_logged_out_the_footer_link_leads_through_sign_in_to_the_statement(subscription):
    # given
    client = Client()
    shortcut = reverse("subscriptions:withdraw_shortcut")
    footer = client.get(reverse("subscriptions:plans")).content.decode()
    assert f'href="{shortcut}"' in footer and LINK in footer
    # when
    to_login = client.get(shortcut)
    landed = client.post(reverse("account_login"),
                         {"login": subscription.customer.email, "password": PASSWORD,
                          "next": shortcut}, follow=True)
    # then
    assert to_login.status_code == 302
    assert to_login["Location"] == f"{reverse('account_login')}?next={shortcut}"
    assert landed.redirect_chain[-1][0] == statement_url(subscription)
    assert CONFIRM in landed.content.decode()


def test_logged_in_the_footer_shows_the_link_only_while_a_contract_may_be_withdrawn(
    now, customer, logged_in
):
    # given
    profile = reverse("accounts:profile")
    without = logged_in.get(profile).content.decode()
    subscribed(customer=customer, at=now - days(1))
    # when
    with_one = logged_in.get(profile).content.decode()
    # then
    assert LINK not in without
    assert LINK in with_one


def test_the_shortcut_without_a_contract_to_withdraw_says_so(customer, logged_in, now):
    # given
    subscribed(customer=customer, at=now - days(20))
    # when
    response = logged_in.get(reverse("subscriptions:withdraw_shortcut"), follow=True)
    # then
    assert response.redirect_chain[-1][0] == reverse("subscriptions:billing")
    assert "délai de rétractation de 14 jours" in response.content.decode()


def test_the_checkout_page_says_the_function_exists_and_where(logged_in):
    # given
    plan = PlanFactory()
    # when
    page = logged_in.get(reverse("subscriptions:subscribe", args=[plan.code])).content.decode()
    # then
    assert ("vous pouvez renoncer au contrat sans frais ni justification avec « Renoncer au "
            "contrat ici », dans Mon compte → Abonnement et facturation ou en bas de chaque "
            "page") in page


def test_the_acknowledgement_stays_in_the_history_of_mon_compte(
    subscription, logged_in, now, run_after_commit
):
    # given
    with run_after_commit():
        logged_in.post(statement_url(subscription),
                       {"name": "Camille Martin", "email": "camille@example.com"})
    event = withdrawn_events(subscription).get()
    # when: a week later
    with time_machine.travel(now + days(7), tick=False):
        billing = logged_in.get(reverse("subscriptions:billing")).content.decode()
        page = logged_in.get(reverse("subscriptions:withdrawal_acknowledgement",
                                     args=[event.pk])).content.decode()
    # then
    history = billing[billing.index('id="historique"'):]
    assert (f"Rétractation du contrat {subscription.plan.name}, reçue le 10 mars 2026 à "
            "9 h 30") in history
    assert reverse("subscriptions:withdrawal_acknowledgement", args=[event.pk]) in history
    assert LINK not in billing
    assert "10 mars 2026 à 9 h 30" in page and "Camille Martin" in page


def test_the_acknowledgement_email_in_english(now, run_after_commit):
    # given
    customer = UserFactory(preferred_language="en", first_name="Alex", last_name="Smith")
    subscription = subscribed(customer=customer, at=now - days(1))
    # when
    with run_after_commit():
        subscription_withdraw(subscription=subscription, name="Alex Smith",
                              email=customer.email, now=now)
    # then
    email = withdrawal_emails().get()
    assert email.subject.startswith("Acknowledgement of your withdrawal")
    assert "We received your withdrawal" in email.body_text
    assert "March 10, 2026 at 9:30 AM" in email.body_text
    assert "€9.90" in email.body_text


def test_support_sees_the_statement_in_the_timeline(subscription, now):
    # given
    subscription_withdraw(subscription=subscription, name="Camille Martin",
                          email="perso@example.org", now=now)
    # when
    entries = subscription_timeline(subscription=Subscription.objects.get(pk=subscription.pk))
    # then
    withdrawn = next(e for e in entries if e.kind == Kind.WITHDRAWN)
    assert withdrawn.label == "Rétractation"
    assert "Camille Martin" in withdrawn.details and "perso@example.org" in withdrawn.details
    assert [e.kind for e in entries if e.source == "event"][-2:] == ["withdrawn", "ended"]
