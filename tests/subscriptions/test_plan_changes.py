"""Plan changes (DESIGN §7; issue 4, items 1–4): upgrade now with a prorated charge, monthly →
annual now, downgrade (or annual → monthly) at the end of the period, withdrawn or applied by
the renewal job; the guards; the pages.

Expected amounts are worked out here by hand from the prices (France, 20 % VAT): Essentiel
9,90 € TTC a month, Premium 15,00 €, Essentiel annual 99,00 €, Premium annual 150,00 €."""

import re
import threading
import time
from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import reverse

from billing.gateways import ProviderError
from billing.gateways.simulated import SimulatedGateway
from billing.models import Charge, Invoice, Refund, SimulatedProviderOperation
from billing.services import payment_method_add
from notifications.models import OutboxEmail
from subscriptions.jobs import run_due_jobs
from subscriptions.models import Channel, Status, Subscription, SubscriptionEvent
from subscriptions.services import change_plan, renew, subscription_cancel
from subscriptions.services.change_plan import (
    AmountChanged,
    ChangeKind,
    PlanChangeError,
    PlanChangeResult,
    plan_change_options,
    plan_change_quote,
    subscription_schedule_downgrade,
    subscription_switch_to_annual,
    subscription_upgrade,
    subscription_withdraw_plan_change,
)
from subscriptions.services.renew import subscription_renew
from tests.factories import PlanFactory, UserFactory, card_token, days, subscribed

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
NBSP = "\u00a0"
DECLINED_CARD = "4000000000000341"
TIMEOUT_AFTER_SUCCESS_CARD = "4000000000000408"
SUCCESS_CARD = "4242424242424242"

# Bought at the frozen now: the period runs March 10 → April 10, 2026, 09:30 Paris, across the
# change to summer time on March 29: 31 days minus one hour.
BOUGHT = datetime(2026, 3, 10, 9, 30, tzinfo=PARIS)
RENEWAL = datetime(2026, 4, 10, 9, 30, tzinfo=PARIS)
MARCH_20 = datetime(2026, 3, 20, 9, 30, tzinfo=PARIS)  # 21 days minus the hour left
UPGRADE_ON_MARCH_20 = 345  # 510 × 1 810 800 / 2 674 800 = 345.26…
CREDIT_ON_MARCH_20 = 670  # 990 × 1 810 800 / 2 674 800 = 670.22…


@pytest.fixture
def plans():
    return SimpleNamespace(
        essentiel=PlanFactory(code="essentiel-mensuel", name="Essentiel", tier=1,
                              price_cents=825),
        premium=PlanFactory(code="premium-mensuel", name="Premium", tier=2, price_cents=1250),
        essentiel_annual=PlanFactory(code="essentiel-annuel", name="Essentiel", tier=1,
                                     annual=True),
        premium_annual=PlanFactory(code="premium-annuel", name="Premium", tier=2,
                                   interval="year", price_cents=12500),
    )


@pytest.fixture
def essentiel(plans):
    """Essentiel monthly, bought on March 10."""
    return subscribed(plan=plans.essentiel, at=BOUGHT)


@pytest.fixture
def premium(plans):
    """Premium monthly, bought on March 10."""
    return subscribed(plan=plans.premium, at=BOUGHT)


def _add_card(subscription, number):
    payment_method_add(customer=subscription.customer, now=BOUGHT,
                       token=card_token(number, 12, 2030, "123"))


def _reload(subscription):
    return Subscription.objects.select_related("plan", "pending_plan").get(pk=subscription.pk)


def _state():
    """Everything a plan change could touch."""
    return {
        "subscriptions": [model_to_dict(s) for s in Subscription.objects.order_by("pk")],
        "events": list(SubscriptionEvent.objects.order_by("pk").values_list("kind", flat=True)),
        "invoices": list(Invoice.objects.order_by("pk").values_list("kind", "status",
                                                                   "total_cents")),
        "charges": list(Charge.objects.order_by("pk").values_list("status", "amount_cents")),
        "refunds": Refund.objects.count(),
        "emails": list(OutboxEmail.objects.order_by("pk").values_list("kind", flat=True)),
        "provider_operations": SimulatedProviderOperation.objects.count(),
    }


def _proration_invoices(**filters):
    return Invoice.objects.filter(kind=Invoice.Kind.PRORATION, **filters)


def _plan_changed_events(subscription):
    return subscription.events.filter(kind=SubscriptionEvent.Kind.PLAN_CHANGED)


# -- upgrade --------------------------------------------------------------------------------


def test_the_upgrade_charges_the_prorated_difference_and_changes_the_plan_at_once(
    plans, essentiel
):
    # given: the quote shown to the customer on March 20
    quote = plan_change_quote(subscription=essentiel, plan=plans.premium, now=MARCH_20)
    assert (quote.kind, quote.amount.total_cents) == (ChangeKind.UPGRADE, UPGRADE_ON_MARCH_20)
    # when
    result = subscription_upgrade(subscription=essentiel, plan=plans.premium, now=MARCH_20,
                                  expected_amount_cents=quote.amount.total_cents,
                                  actor_user=essentiel.customer)
    # then: charged the previewed amount, once, on an invoice of its own
    assert (result.outcome, result.amount_cents) == (PlanChangeResult.CHANGED, 345)
    invoice = _proration_invoices().get()
    assert (invoice.status, invoice.plan, invoice.total_cents, invoice.net_cents,
            invoice.vat_cents) == (Invoice.Status.PAID, plans.premium, 345, 288, 57)
    assert (invoice.period_start, invoice.period_end) == (MARCH_20, RENEWAL)
    line = invoice.lines.get()
    assert line.description == "Prorata Essentiel (mensuel) → Premium (mensuel)"
    assert (line.net_cents, line.vat_cents, line.total_cents) == (288, 57, 345)
    charge = invoice.charges.get()
    assert (charge.status, charge.amount_cents, charge.initiated_by) == (
        Charge.Status.SUCCEEDED, 345, "customer")
    assert SimulatedProviderOperation.objects.get(
        idempotency_key=charge.idempotency_key).amount_cents == 345
    # and the new plan is active at once, the period and billing date unchanged
    subscription = _reload(essentiel)
    assert subscription.plan == plans.premium
    assert (subscription.billing_anchor, subscription.current_period_start,
            subscription.current_period_end) == (BOUGHT, BOUGHT, RENEWAL)
    event = _plan_changed_events(subscription).get()
    assert (event.actor, event.amount_cents, event.data["from"], event.data["to"]) == (
        "customer", 345, "essentiel-mensuel", "premium-mensuel")
    email = OutboxEmail.objects.get(kind="plan_changed")
    assert email.subject == "Changement de formule : votre abonnement passe à Premium (mensuel)"
    assert f"3,45{NBSP}€ TTC (2,88{NBSP}€ HT + 0,57{NBSP}€ TVA)" in email.body_text
    assert f"Prochain prélèvement : le 10 avril 2026, 15,00{NBSP}€ TTC" in email.body_text
    assert invoice.number in email.body_html


def test_the_email_is_in_the_customers_language(plans):
    # given
    subscription = subscribed(customer=UserFactory(preferred_language="en"), plan=plans.essentiel,
                              at=BOUGHT)
    # when
    subscription_upgrade(subscription=subscription, plan=plans.premium, now=MARCH_20)
    # then
    email = OutboxEmail.objects.get(kind="plan_changed")
    assert email.subject == "Plan changed: your subscription is now Premium (monthly)"
    assert "Amount charged: €3.45 incl. VAT (€2.88 excl. VAT + €0.57 VAT)" in email.body_text
    assert "Next charge: April 10, 2026, €15.00 incl. VAT." in email.body_text


def test_the_renewal_after_an_upgrade_charges_the_new_plan(plans, essentiel):
    # given
    subscription_upgrade(subscription=essentiel, plan=plans.premium, now=MARCH_20)
    # when
    run_due_jobs(now=RENEWAL)
    # then
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert (renewal.plan, renewal.total_cents, renewal.period_start, renewal.status) == (
        plans.premium, 1500, RENEWAL, Invoice.Status.PAID)


def test_an_annual_upgrade_is_prorated_over_the_year(plans):
    # given: Essentiel annual bought March 10, 2026; upgraded on September 10 at 09:30
    subscription = subscribed(plan=plans.essentiel_annual, at=BOUGHT)
    at = datetime(2026, 9, 10, 9, 30, tzinfo=PARIS)
    # when
    result = subscription_upgrade(subscription=subscription, plan=plans.premium_annual, now=at)
    # then: 5 100 × (181 days + 1 h) / 365 days = 2 529.62… → 25,30 €: the hour lost on
    # March 29, 2026 is before September 10, the one given back on October 25 after it
    assert result.amount_cents == 2530
    assert _reload(subscription).plan == plans.premium_annual


def test_a_declined_card_changes_nothing_and_says_so(plans, essentiel):
    # given
    _add_card(essentiel, DECLINED_CARD)
    # when
    with pytest.raises(PlanChangeError) as refused:
        subscription_upgrade(subscription=essentiel, plan=plans.premium, now=MARCH_20,
                             expected_amount_cents=UPGRADE_ON_MARCH_20)
    # then
    assert "refusé" in str(refused.value)
    subscription = _reload(essentiel)
    assert subscription.plan == plans.essentiel
    assert _proration_invoices().get().status == Invoice.Status.VOID
    assert Charge.objects.get(invoice__kind=Invoice.Kind.PRORATION).status == \
        Charge.Status.FAILED
    assert not _plan_changed_events(subscription).exists()
    assert not OutboxEmail.objects.filter(kind="plan_changed").exists()
    # and a new card can be used right away
    _add_card(essentiel, SUCCESS_CARD)
    result = subscription_upgrade(subscription=essentiel, plan=plans.premium, now=MARCH_20,
                                  expected_amount_cents=UPGRADE_ON_MARCH_20)
    assert result.outcome == PlanChangeResult.CHANGED


def test_an_amount_that_changed_since_the_preview_is_not_charged(plans, essentiel):
    # given: the customer saw the amount an hour and a half earlier (one cent more)
    seen = plan_change_quote(subscription=essentiel, plan=plans.premium,
                             now=MARCH_20 - timedelta(hours=1, minutes=30))
    assert seen.amount.total_cents == UPGRADE_ON_MARCH_20 + 1
    before = _state()
    # when
    with pytest.raises(AmountChanged) as changed:
        subscription_upgrade(subscription=essentiel, plan=plans.premium, now=MARCH_20,
                             expected_amount_cents=seen.amount.total_cents)
    # then: nothing happened; the new amount is there to be confirmed
    assert _state() == before
    assert changed.value.quote.amount.total_cents == UPGRADE_ON_MARCH_20
    assert "confirmez à nouveau" in str(changed.value)


def test_at_the_last_second_the_plan_changes_without_a_charge(plans, essentiel):
    # given
    at = RENEWAL - timedelta(seconds=1)
    assert plan_change_quote(subscription=essentiel, plan=plans.premium,
                             now=at).amount.total_cents == 0
    # when
    result = subscription_upgrade(subscription=essentiel, plan=plans.premium, now=at,
                                  expected_amount_cents=0)
    # then
    assert (result.outcome, result.amount_cents) == (PlanChangeResult.CHANGED, 0)
    assert _reload(essentiel).plan == plans.premium
    assert not _proration_invoices().exists()
    assert Charge.objects.count() == 1  # the first payment
    assert _plan_changed_events(essentiel).get().amount_cents == 0
    assert "Aucun montant n'a été prélevé" in OutboxEmail.objects.get(
        kind="plan_changed").body_text


def test_confirming_twice_in_a_row_charges_once(plans, essentiel):
    # given: two tabs showing the same confirmation
    expected = UPGRADE_ON_MARCH_20
    first = subscription_upgrade(subscription=essentiel, plan=plans.premium, now=MARCH_20,
                                 expected_amount_cents=expected)
    # when: the second tab confirms too
    second = subscription_upgrade(subscription=essentiel, plan=plans.premium,
                                  now=MARCH_20 + timedelta(seconds=3),
                                  expected_amount_cents=expected)
    # then
    assert (first.outcome, second.outcome) == (PlanChangeResult.CHANGED,
                                               PlanChangeResult.ALREADY_DONE)
    assert _proration_invoices().count() == 1
    assert SimulatedProviderOperation.objects.filter(kind="charge").count() == 2
    assert _plan_changed_events(essentiel).count() == 1
    assert OutboxEmail.objects.filter(kind="plan_changed").count() == 1


# -- unknown outcome, reconciled later ------------------------------------------------------


def _unreachable_lookup(self, idempotency_key):
    raise ProviderError("simulated provider unreachable")


def test_an_unknown_outcome_is_reconciled_and_then_applies_the_upgrade(
    plans, essentiel, monkeypatch
):
    # given: the provider charges the card and the answer is lost
    _add_card(essentiel, TIMEOUT_AFTER_SUCCESS_CARD)
    with monkeypatch.context() as patched:
        patched.setattr(SimulatedGateway, "lookup", _unreachable_lookup)
        result = subscription_upgrade(subscription=essentiel, plan=plans.premium, now=MARCH_20)
    assert result.outcome == PlanChangeResult.PENDING
    assert _reload(essentiel).plan == plans.essentiel
    # when: the customer tries again meanwhile
    with pytest.raises(PlanChangeError, match="en cours de paiement"):
        subscription_upgrade(subscription=essentiel, plan=plans.premium, now=MARCH_20)
    # and the reconcile job runs
    run_due_jobs(now=MARCH_20 + timedelta(hours=1))
    # then: charged once, applied once
    assert _reload(essentiel).plan == plans.premium
    assert _proration_invoices().get().status == Invoice.Status.PAID
    assert SimulatedProviderOperation.objects.filter(kind="charge").count() == 2
    assert _plan_changed_events(essentiel).count() == 1
    assert OutboxEmail.objects.filter(kind="plan_changed").count() == 1


def test_money_reconciled_after_the_renewal_moved_on_is_refunded_and_nothing_changes(
    plans, essentiel, monkeypatch
):
    # given: an upgrade whose outcome stays unknown until after the renewal
    _add_card(essentiel, TIMEOUT_AFTER_SUCCESS_CARD)
    at = RENEWAL - timedelta(days=1)
    with monkeypatch.context() as patched:
        patched.setattr(SimulatedGateway, "lookup", _unreachable_lookup)
        subscription_upgrade(subscription=essentiel, plan=plans.premium, now=at)
        _add_card(essentiel, SUCCESS_CARD)
        run_due_jobs(now=RENEWAL)
    # when: the provider answers again
    run_due_jobs(now=RENEWAL + timedelta(hours=1))
    # then: the period it prorated is over: the money goes back and the plan stays
    subscription = _reload(essentiel)
    assert subscription.plan == plans.essentiel
    assert subscription.current_period_start == RENEWAL
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert (renewal.plan, renewal.total_cents) == (plans.essentiel, 990)
    charge = Charge.objects.get(invoice__kind=Invoice.Kind.PRORATION)
    refund = Refund.objects.get()
    assert (refund.charge, refund.amount_cents, refund.reason, refund.status) == (
        charge, charge.amount_cents, Refund.Reason.UNCOLLECTED, Refund.Status.SUCCEEDED)
    assert not _plan_changed_events(subscription).exists()


# -- the renewal job --------------------------------------------------------------------------


def test_an_upgrade_after_the_period_ended_waits_for_the_renewal(plans, essentiel):
    # given: the period is over and the renewal job has not run yet
    at = RENEWAL + timedelta(minutes=1)
    # when / then
    with pytest.raises(PlanChangeError, match="en cours de renouvellement"):
        subscription_upgrade(subscription=essentiel, plan=plans.premium, now=at)
    assert not _proration_invoices().exists()
    # when: the renewal runs, then the customer upgrades
    run_due_jobs(now=at)
    result = subscription_upgrade(subscription=essentiel, plan=plans.premium,
                                  now=at + timedelta(minutes=1))
    # then: the renewal billed the old plan for the new period; the upgrade prorates the new
    # period only (the whole of it but two minutes: 30 days)
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert (renewal.plan, renewal.period_start, renewal.total_cents) == (plans.essentiel,
                                                                          RENEWAL, 990)
    proration = _proration_invoices().get()
    assert proration.period_start == at + timedelta(minutes=1)
    assert proration.period_end == datetime(2026, 5, 10, 9, 30, tzinfo=PARIS)
    assert result.amount_cents == 510  # 510 × (30 days − 2 min) / 30 days = 509.98…


def test_a_renewal_that_runs_between_the_prepared_charge_and_its_sending_wins(
    plans, essentiel, monkeypatch
):
    # given: the renewal runs right after the upgrade committed its charge, before it is
    # sent (the subscription is not locked in between)
    send = change_plan.charge_send

    def renewal_first(*, charge, now):
        subscription_renew(subscription_id=essentiel.pk, now=RENEWAL)
        return send(charge=charge, now=now)

    monkeypatch.setattr(change_plan, "charge_send", renewal_first)
    # when
    with pytest.raises(PlanChangeError, match="vient d'être renouvelé"):
        subscription_upgrade(subscription=essentiel, plan=plans.premium,
                             now=RENEWAL - timedelta(days=1))
    # then: the prorated charge of the period that is over was never sent
    subscription = _reload(essentiel)
    assert subscription.plan == plans.essentiel
    assert subscription.current_period_start == RENEWAL
    proration = _proration_invoices().get()
    assert proration.status == Invoice.Status.VOID
    assert list(proration.charges.values_list("status", "failure_code")) == [
        ("failed", "not_attempted")]
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert (renewal.plan, renewal.total_cents, renewal.status) == (plans.essentiel, 990, "paid")
    assert SimulatedProviderOperation.objects.filter(kind="charge").count() == 2


def test_a_renewal_invoiced_before_the_upgrade_charge_was_sent_wins(
    plans, essentiel, monkeypatch
):
    # given: the renewal job invoices the next period (its charge prepared, not sent yet)
    # right after the upgrade committed its charge, before that one is sent
    send, renewal_charges = change_plan.charge_send, []

    def renewal_prepared_first(*, charge, now):
        with monkeypatch.context() as patched:
            patched.setattr(renew, "charge_send", lambda *, charge, now: renewal_charges.append(
                charge))
            subscription_renew(subscription_id=essentiel.pk, now=RENEWAL)
        return send(charge=charge, now=now)

    monkeypatch.setattr(change_plan, "charge_send", renewal_prepared_first)
    # when
    with pytest.raises(PlanChangeError, match="vient d'être renouvelé"):
        subscription_upgrade(subscription=essentiel, plan=plans.premium,
                             now=RENEWAL - timedelta(days=1))
    renew.charge_send(charge=renewal_charges[0], now=RENEWAL)
    # then: the renewal billed the plan it found, once; the upgrade was never charged
    assert _proration_invoices().get().status == Invoice.Status.VOID
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert (renewal.plan, renewal.total_cents, renewal.status) == (plans.essentiel, 990, "paid")
    assert _reload(essentiel).plan == plans.essentiel
    assert SimulatedProviderOperation.objects.filter(kind="charge").count() == 2


# -- monthly → annual -----------------------------------------------------------------------


def test_switching_to_annual_starts_a_year_now_charged_the_annual_total_minus_the_credit(
    plans, essentiel
):
    # given
    quote = plan_change_quote(subscription=essentiel, plan=plans.essentiel_annual, now=MARCH_20)
    assert (quote.kind, quote.credit_cents, quote.amount.total_cents) == (
        ChangeKind.SWITCH_TO_ANNUAL, CREDIT_ON_MARCH_20, 9900 - CREDIT_ON_MARCH_20)
    # when
    result = subscription_switch_to_annual(subscription=essentiel, plan=plans.essentiel_annual,
                                           now=MARCH_20, expected_amount_cents=9230)
    # then
    assert (result.outcome, result.amount_cents) == (PlanChangeResult.CHANGED, 9230)
    next_year = datetime(2027, 3, 20, 9, 30, tzinfo=PARIS)
    subscription = _reload(essentiel)
    assert subscription.plan == plans.essentiel_annual
    assert (subscription.billing_anchor, subscription.current_period_start,
            subscription.current_period_end) == (MARCH_20, MARCH_20, next_year)
    assert subscription.started_at == BOUGHT
    invoice = _proration_invoices().get()
    assert (invoice.total_cents, invoice.net_cents, invoice.vat_cents, invoice.period_start,
            invoice.period_end) == (9230, 7692, 1538, MARCH_20, next_year)
    assert invoice.lines.get().description == (
        "Passage à Essentiel (annuel), crédit non utilisé de Essentiel (mensuel) déduit")
    email = OutboxEmail.objects.get(kind="plan_changed")
    assert "Votre nouvelle période annuelle court jusqu'au 20 mars 2027" in email.body_text
    # when: the monthly renewal date passes, then the new anniversary
    run_due_jobs(now=RENEWAL)
    assert not Invoice.objects.filter(kind=Invoice.Kind.RENEWAL).exists()
    run_due_jobs(now=next_year)
    # then
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert (renewal.plan, renewal.total_cents, renewal.period_start, renewal.period_end) == (
        plans.essentiel_annual, 9900, next_year, datetime(2028, 3, 20, 9, 30, tzinfo=PARIS))


def test_switching_to_a_higher_annual_plan(plans, essentiel):
    # when
    result = subscription_switch_to_annual(subscription=essentiel, plan=plans.premium_annual,
                                           now=MARCH_20)
    # then
    assert result.amount_cents == 15000 - CREDIT_ON_MARCH_20
    assert _reload(essentiel).plan == plans.premium_annual


def test_the_services_refuse_a_change_of_the_wrong_kind(plans, essentiel, premium):
    with pytest.raises(PlanChangeError, match="Changer de formule"):
        subscription_upgrade(subscription=essentiel, plan=plans.essentiel_annual, now=MARCH_20)
    with pytest.raises(PlanChangeError, match="Changer de formule"):
        subscription_switch_to_annual(subscription=essentiel, plan=plans.premium, now=MARCH_20)
    with pytest.raises(PlanChangeError, match="Changer de formule"):
        subscription_schedule_downgrade(subscription=essentiel, plan=plans.premium,
                                        now=MARCH_20)
    with pytest.raises(PlanChangeError, match="Changer de formule"):
        subscription_upgrade(subscription=premium, plan=plans.essentiel, now=MARCH_20)


# -- downgrade --------------------------------------------------------------------------------


def test_a_downgrade_is_scheduled_then_withdrawn(plans, premium):
    # when
    result = subscription_schedule_downgrade(subscription=premium, plan=plans.essentiel,
                                             now=MARCH_20, actor_user=premium.customer)
    # then: nothing charged, the plan stays until the renewal
    assert result.outcome == PlanChangeResult.SCHEDULED
    subscription = _reload(premium)
    assert (subscription.plan, subscription.pending_plan) == (plans.premium, plans.essentiel)
    assert Charge.objects.count() == 1
    # when
    withdrawn = subscription_withdraw_plan_change(subscription=premium,
                                                  now=MARCH_20 + days(1))
    again = subscription_withdraw_plan_change(subscription=premium, now=MARCH_20 + days(1))
    # then
    assert (withdrawn.outcome, again.outcome) == (PlanChangeResult.WITHDRAWN,
                                                  PlanChangeResult.ALREADY_DONE)
    assert _reload(premium).pending_plan is None
    assert list(premium.events.values_list("kind", flat=True)) == [
        "subscribed", "plan_change_scheduled", "plan_change_withdrawn"]
    # when: the renewal comes
    run_due_jobs(now=RENEWAL)
    # then: on the current plan
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert (renewal.plan, renewal.total_cents) == (plans.premium, 1500)
    assert _reload(premium).plan == plans.premium


def test_a_scheduled_downgrade_is_applied_by_the_renewal_at_the_lower_price(plans, premium):
    # given
    subscription_schedule_downgrade(subscription=premium, plan=plans.essentiel, now=MARCH_20)
    # when: the day before, nothing; then the renewal
    run_due_jobs(now=RENEWAL - timedelta(minutes=1))
    assert _reload(premium).plan == plans.premium
    run_due_jobs(now=RENEWAL)
    # then
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert (renewal.plan, renewal.total_cents, renewal.status, renewal.period_start,
            renewal.period_end) == (plans.essentiel, 990, Invoice.Status.PAID, RENEWAL,
                                    datetime(2026, 5, 10, 9, 30, tzinfo=PARIS))
    subscription = _reload(premium)
    assert (subscription.plan, subscription.pending_plan) == (plans.essentiel, None)
    assert subscription.current_period_end == datetime(2026, 5, 10, 9, 30, tzinfo=PARIS)


def test_a_downgrade_cannot_be_withdrawn_once_the_period_is_over(plans, premium):
    # given: scheduled, and the period over; the renewal job has not run yet
    subscription_schedule_downgrade(subscription=premium, plan=plans.essentiel, now=MARCH_20)
    # when / then
    with pytest.raises(PlanChangeError, match="ne peut plus être annulé"):
        subscription_withdraw_plan_change(subscription=premium,
                                          now=RENEWAL + timedelta(seconds=1))
    assert _reload(premium).pending_plan == plans.essentiel


def test_annual_to_monthly_is_applied_at_the_anniversary(plans):
    # given
    subscription = subscribed(plan=plans.premium_annual, at=BOUGHT)
    quote = plan_change_quote(subscription=subscription, plan=plans.premium, now=MARCH_20)
    assert (quote.kind, quote.effective_at) == (ChangeKind.DOWNGRADE,
                                                datetime(2027, 3, 10, 9, 30, tzinfo=PARIS))
    subscription_schedule_downgrade(subscription=subscription, plan=plans.premium,
                                    now=MARCH_20)
    anniversary = datetime(2027, 3, 10, 9, 30, tzinfo=PARIS)
    # when
    run_due_jobs(now=anniversary)
    run_due_jobs(now=datetime(2027, 4, 10, 9, 30, tzinfo=PARIS))
    # then: monthly from the anniversary, re-anchored there (an interval switch, DESIGN §4)
    renewals = list(Invoice.objects.filter(kind=Invoice.Kind.RENEWAL).order_by("period_start")
                    .values_list("plan__code", "total_cents", "period_start"))
    assert renewals == [
        ("premium-mensuel", 1500, anniversary),
        ("premium-mensuel", 1500, datetime(2027, 4, 10, 9, 30, tzinfo=PARIS)),
    ]
    subscription = _reload(subscription)
    assert (subscription.plan, subscription.pending_plan, subscription.billing_anchor) == (
        plans.premium, None, anniversary)


def test_scheduling_another_downgrade_replaces_the_first_and_an_upgrade_drops_it(plans):
    # given: Premium annual, Essentiel annual scheduled
    subscription = subscribed(plan=plans.premium_annual, at=BOUGHT)
    subscription_schedule_downgrade(subscription=subscription, plan=plans.essentiel_annual,
                                    now=MARCH_20)
    # when
    subscription_schedule_downgrade(subscription=subscription, plan=plans.essentiel,
                                    now=MARCH_20)
    # then
    assert _reload(subscription).pending_plan == plans.essentiel


# -- guards -----------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", [c for c in Channel.values if c != Channel.DIRECT])
def test_subscriptions_bought_elsewhere_cannot_change_plan_here(plans, premium, channel):
    # given
    Subscription.objects.filter(pk=premium.pk).update(channel=channel,
                                                      pending_plan=plans.essentiel)
    before = _state()
    # when / then
    for attempt in (
        lambda: subscription_upgrade(subscription=premium, plan=plans.premium_annual,
                                     now=MARCH_20),
        lambda: subscription_switch_to_annual(subscription=premium, plan=plans.premium_annual,
                                              now=MARCH_20),
        lambda: subscription_schedule_downgrade(subscription=premium,
                                                plan=plans.essentiel_annual, now=MARCH_20),
        lambda: subscription_withdraw_plan_change(subscription=premium, now=MARCH_20),
    ):
        with pytest.raises(PlanChangeError, match="a été souscrit via"):
            attempt()
    assert _state() == before
    assert all(not option.available
               for option in plan_change_options(subscription=_reload(premium), now=MARCH_20))


def test_a_cancelled_subscription_must_reactivate_before_changing(plans, essentiel):
    # given: cancelled after the refund window (access until April 10)
    subscription_cancel(subscription=essentiel, now=BOUGHT + days(15))
    # when / then
    with pytest.raises(PlanChangeError, match="réactivez-le"):
        subscription_upgrade(subscription=essentiel, plan=plans.premium,
                             now=BOUGHT + days(16))


def test_a_past_due_subscription_must_pay_first(plans, essentiel):
    # given
    _add_card(essentiel, DECLINED_CARD)
    run_due_jobs(now=RENEWAL)
    assert _reload(essentiel).status == Status.PAST_DUE
    # when / then
    with pytest.raises(PlanChangeError, match="facture en attente"):
        subscription_upgrade(subscription=essentiel, plan=plans.premium,
                             now=RENEWAL + days(1))


def test_what_each_plan_offers_from_a_monthly_plan(plans, essentiel):
    # given: a plan of the same tier, one with a commitment, one no longer sold
    PlanFactory(code="essentiel-plus", name="Essentiel plus", tier=1, price_cents=900)
    PlanFactory(code="premium-engagement", name="Premium engagé", tier=2, price_cents=1000,
                commitment_months=12)
    PlanFactory(code="ancien", name="Ancien", tier=3, price_cents=2000, is_active=False)
    subscription = subscribed(plan=plans.premium, at=BOUGHT)
    # when
    options = {o.plan.code: o for o in plan_change_options(subscription=subscription,
                                                            now=MARCH_20)}
    # then
    assert {code: option.kind for code, option in options.items()} == {
        "essentiel-mensuel": ChangeKind.DOWNGRADE,
        "essentiel-plus": ChangeKind.DOWNGRADE,
        "essentiel-annuel": ChangeKind.UNAVAILABLE,  # monthly → a lower annual plan
        "premium-annuel": ChangeKind.SWITCH_TO_ANNUAL,
        "premium-engagement": ChangeKind.UNAVAILABLE,
    }
    assert "même niveau ou supérieure" in options["essentiel-annuel"].reason
    assert "engagement" in options["premium-engagement"].reason
    assert options["essentiel-mensuel"].effective_at == RENEWAL
    assert plan_change_quote(subscription=subscription, plan=plans.premium,
                             now=MARCH_20).reason == "C'est votre formule actuelle."
    # 150,00 € minus 1 500 × 1 810 800 / 2 674 800 = 1 015.48… → 10,15 € of credit
    assert options["premium-annuel"].amount.total_cents == 15000 - 1015


def test_inside_a_commitment_no_change_is_offered(plans):
    # given: 12 months committed from March 10, 2026
    committed = PlanFactory(code="essentiel-engagement", name="Engagé", tier=1,
                            price_cents=700, commitment_months=12)
    subscription = subscribed(plan=committed, at=BOUGHT)
    # when
    options = plan_change_options(subscription=subscription, now=MARCH_20)
    # then
    reasons = {option.reason for option in options}
    assert reasons == {"Vous êtes engagé jusqu'au 10 mars 2027 : vous pourrez changer de "
                       "formule à partir de cette date."}
    with pytest.raises(PlanChangeError, match="engagé"):
        subscription_upgrade(subscription=subscription, plan=plans.premium, now=MARCH_20)


# -- under real concurrency (threads, PostgreSQL) --------------------------------------------


@pytest.fixture
def slow_provider(monkeypatch):
    """The provider takes 200 ms to answer a charge."""
    charge = SimulatedGateway.charge

    def slow_charge(self, request):
        time.sleep(0.2)
        return charge(self, request)

    monkeypatch.setattr(SimulatedGateway, "charge", slow_charge)


def _at_once(*calls):
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except Exception as error:  # noqa: BLE001 - examined by the test
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    return results


@pytest.mark.django_db(transaction=True)
def test_two_tabs_confirming_at_once_charge_once(plans, essentiel, slow_provider):
    # given
    def confirm():
        return subscription_upgrade(subscription=essentiel, plan=plans.premium, now=MARCH_20,
                                    expected_amount_cents=UPGRADE_ON_MARCH_20)

    # when
    results = _at_once(confirm, confirm)
    # then: one changed it; the other found it changed, or its charge in progress
    outcomes = sorted(r.outcome if isinstance(r, PlanChangeResult) else str(r)
                      for r in results)
    assert outcomes[0] == PlanChangeResult.CHANGED or outcomes[1] == PlanChangeResult.CHANGED
    others = [o for o in outcomes if o != PlanChangeResult.CHANGED]
    assert len(others) == 1
    assert others[0] == PlanChangeResult.ALREADY_DONE or "en cours de paiement" in others[0]
    assert _reload(essentiel).plan == plans.premium
    assert list(_proration_invoices().values_list("status", "total_cents")) == [("paid", 345)]
    assert SimulatedProviderOperation.objects.filter(kind="charge").count() == 2
    assert _plan_changed_events(essentiel).count() == 1
    assert OutboxEmail.objects.filter(kind="plan_changed").count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("renewal_delay", [0, 0.1, 0.25, 0.5])
def test_an_upgrade_racing_the_renewal_never_bills_the_same_period_twice(
    plans, essentiel, slow_provider, renewal_delay, settings
):
    # given: confirmed six hours before the renewal (510 × 21 600 / 2 674 800 → 4 cents), as
    # the clocks go here; really milliseconds apart, so the reconcile job must not take the
    # charge in flight for a stale one
    settings.STALE_PENDING_CHARGE_MINUTES = 24 * 60
    at = RENEWAL - timedelta(hours=6)

    def upgrade():
        return subscription_upgrade(subscription=essentiel, plan=plans.premium, now=at)

    def renewal():
        time.sleep(renewal_delay)
        return run_due_jobs(now=RENEWAL)

    # when
    _at_once(upgrade, renewal)
    # then: one renewal invoice for the new period; the old period prorated at most once, and
    # only if the renewal then billed the new plan
    renewal_invoices = list(Invoice.objects.filter(kind=Invoice.Kind.RENEWAL)
                            .values_list("period_start", "plan__code", "total_cents", "status"))
    paid_prorations = list(_proration_invoices(status=Invoice.Status.PAID)
                           .values_list("period_start", "period_end", "total_cents"))
    if paid_prorations:
        assert paid_prorations == [(at, RENEWAL, 4)]
        assert renewal_invoices == [(RENEWAL, "premium-mensuel", 1500, "paid")]
    else:
        assert renewal_invoices == [(RENEWAL, "essentiel-mensuel", 990, "paid")]
        assert _reload(essentiel).plan == plans.essentiel
    assert SimulatedProviderOperation.objects.filter(kind="charge").count() == \
        2 + len(paid_prorations)
    assert not Refund.objects.exists()
    assert _reload(essentiel).current_period_start == RENEWAL


# -- the pages --------------------------------------------------------------------------------


@pytest.fixture
def page_subscription(plans, now):
    """Essentiel monthly bought 10 days before the frozen now: February 28 → March 28, 2026
    (28 days), 18 days left."""
    return subscribed(plan=plans.essentiel, at=now - days(10))


def _options_url(subscription):
    return reverse("subscriptions:change_options", args=[subscription.pk])


def _confirm_url(subscription, plan):
    return reverse("subscriptions:change_confirm", args=[subscription.pk, plan.code])


def _schedule_url(subscription, plan):
    return reverse("subscriptions:change_schedule", args=[subscription.pk, plan.code])


def _withdraw_url(subscription):
    return reverse("subscriptions:change_withdraw", args=[subscription.pk])


def _previewed_amount(response):
    return int(re.search(r'name="expected_amount_cents" value="(\d+)"',
                         response.content.decode()).group(1))


def test_the_options_page_shows_what_each_change_does_and_costs_now(
    client, plans, page_subscription
):
    # given
    client.force_login(page_subscription.customer)
    # when
    page = client.get(_options_url(page_subscription)).content.decode()
    # then: 510 × 18/28 = 327.86 → 3,28 € (2,73 € HT + 0,55 € TVA); the credit is
    # 990 × 18/28 = 636.43 → 6,36 €
    assert f"3,28{NBSP}€ TTC" in page
    assert f"(2,73{NBSP}€ HT + 0,55{NBSP}€ TVA 20 %)" in page
    assert "au prorata du temps restant jusqu'au 28 mars 2026" in page
    assert f"92,64{NBSP}€ TTC" in page  # 99,00 − 6,36
    assert f"(77,20{NBSP}€ HT + 15,44{NBSP}€ TVA 20 %)" in page
    assert f"143,64{NBSP}€ TTC" in page  # 150,00 − 6,36
    assert f"moins 6,36{NBSP}€ de crédit" in page
    for plan in (plans.premium, plans.essentiel_annual, plans.premium_annual):
        assert _confirm_url(page_subscription, plan) in page


def test_the_billing_page_links_to_the_change_page(client, page_subscription):
    # given
    client.force_login(page_subscription.customer)
    # when
    page = client.get(reverse("subscriptions:billing")).content.decode()
    # then
    assert _options_url(page_subscription) in page
    assert "Changer de formule" in page


def test_confirming_the_upgrade_charges_the_previewed_amount(client, plans, page_subscription):
    # given
    client.force_login(page_subscription.customer)
    confirm_page = client.get(_confirm_url(page_subscription, plans.premium))
    previewed = _previewed_amount(confirm_page)
    assert previewed == 328
    assert f"Confirmer et payer 3,28{NBSP}€" in confirm_page.content.decode()
    # when
    response = client.post(_confirm_url(page_subscription, plans.premium),
                           {"expected_amount_cents": previewed}, follow=True)
    # then
    assert Charge.objects.get(invoice__kind=Invoice.Kind.PRORATION).amount_cents == previewed
    assert _reload(page_subscription).plan == plans.premium
    assert "votre abonnement est passé à Premium (mensuel)" in response.content.decode()


def test_two_tabs_confirming_one_after_the_other_charge_once(client, plans, page_subscription):
    # given: two tabs open on the confirmation
    client.force_login(page_subscription.customer)
    url = _confirm_url(page_subscription, plans.premium)
    previewed = [_previewed_amount(client.get(url)), _previewed_amount(client.get(url))]
    # when
    client.post(url, {"expected_amount_cents": previewed[0]})
    second = client.post(url, {"expected_amount_cents": previewed[1]}, follow=True)
    # then
    assert "est déjà passé à Premium (mensuel)" in second.content.decode()
    assert Charge.objects.filter(invoice__kind=Invoice.Kind.PRORATION).count() == 1
    assert SimulatedProviderOperation.objects.filter(kind="charge").count() == 2


def test_a_stale_previewed_amount_shows_the_new_one_to_confirm(client, plans,
                                                                 page_subscription):
    # given
    client.force_login(page_subscription.customer)
    before = _state()
    # when
    response = client.post(_confirm_url(page_subscription, plans.premium),
                           {"expected_amount_cents": 329})
    # then
    assert response.status_code == 200
    assert _previewed_amount(response) == 328
    assert "confirmez à nouveau" in response.content.decode()
    assert _state() == before


def test_a_declined_card_is_explained_on_the_page(client, plans, page_subscription):
    # given
    _add_card(page_subscription, DECLINED_CARD)
    client.force_login(page_subscription.customer)
    # when
    response = client.post(_confirm_url(page_subscription, plans.premium),
                           {"expected_amount_cents": 328}, follow=True)
    # then
    assert "Paiement refusé" in response.content.decode()
    assert _reload(page_subscription).plan == plans.essentiel


def test_a_downgrade_is_scheduled_shown_and_withdrawn_from_the_pages(client, plans, now):
    # given
    subscription = subscribed(plan=plans.premium, at=now - days(10))
    client.force_login(subscription.customer)
    confirm_page = client.get(_confirm_url(subscription, plans.essentiel)).content.decode()
    assert "vous gardez Premium jusqu'au 28 mars 2026" in confirm_page
    # when
    client.post(_schedule_url(subscription, plans.essentiel))
    # then
    page = client.get(reverse("subscriptions:billing")).content.decode()
    assert "Changement de formule prévu" in page
    assert "Essentiel à partir du 28 mars 2026" in page
    assert f"9,90{NBSP}€ TTC" in page
    assert _withdraw_url(subscription) in page
    # when
    response = client.post(_withdraw_url(subscription), follow=True)
    # then
    assert _reload(subscription).pending_plan is None
    assert "Changement de formule prévu" not in response.content.decode()
    assert "Le changement de formule prévu est annulé" in response.content.decode()


def test_a_subscription_bought_elsewhere_has_no_change_button_and_its_page_says_why(
    client, plans, page_subscription
):
    # given
    Subscription.objects.filter(pk=page_subscription.pk).update(channel=Channel.APP_STORE)
    client.force_login(page_subscription.customer)
    # when
    billing = client.get(reverse("subscriptions:billing")).content.decode()
    options = client.get(_options_url(page_subscription)).content.decode()
    # then
    assert _options_url(page_subscription) not in billing
    assert "a été souscrit via App Store" in options
    assert _confirm_url(page_subscription, plans.premium) not in options


def _every_new_url(subscription, plans):
    return [
        ("get", _options_url(subscription)),
        ("get", _confirm_url(subscription, plans.premium)),
        ("get", _confirm_url(subscription, plans.essentiel_annual)),
        ("post", _confirm_url(subscription, plans.premium)),
        ("post", _confirm_url(subscription, plans.essentiel_annual)),
        ("post", _schedule_url(subscription, plans.essentiel)),
        ("post", _withdraw_url(subscription)),
    ]


def test_another_customer_gets_404_on_every_plan_change_url(client, plans, now):
    # given: Premium with a scheduled downgrade, and an intruder
    subscription = subscribed(plan=plans.premium, at=now - days(10))
    subscription_schedule_downgrade(subscription=subscription, plan=plans.essentiel, now=now)
    client.force_login(UserFactory())
    before = _state()
    # when / then
    for method, url in _every_new_url(subscription, plans):
        response = getattr(client, method)(url, {"expected_amount_cents": 0})
        assert response.status_code == 404, (method, url)
    assert _state() == before


def test_anonymous_visitors_are_sent_to_log_in_and_change_nothing(client, plans,
                                                                    page_subscription):
    # given
    before = _state()
    # when / then
    for method, url in _every_new_url(page_subscription, plans):
        response = getattr(client, method)(url)
        assert response.status_code == 302, (method, url)
        assert response.url.startswith(reverse("account_login"))
    assert _state() == before


def test_get_changes_nothing(client, plans, now):
    # given: one subscription with a change scheduled, one without
    scheduled = subscribed(plan=plans.premium, at=now - days(10))
    subscription_schedule_downgrade(subscription=scheduled, plan=plans.essentiel, now=now)
    other = subscribed(plan=plans.essentiel, at=now - days(10))
    before = _state()
    # when: every page, and GETs of the POST-only URLs
    for subscription in (scheduled, other):
        client.force_login(subscription.customer)
        for _method, url in _every_new_url(subscription, plans):
            assert client.get(url).status_code in (200, 302, 405), url
    # then
    assert _state() == before


def test_the_confirmations_need_the_csrf_token(plans, page_subscription):
    # given
    client = Client(enforce_csrf_checks=True)
    client.force_login(page_subscription.customer)
    before = _state()
    # when / then
    for _method, url in [u for u in _every_new_url(page_subscription, plans)
                         if u[0] == "post"]:
        assert client.post(url, {"expected_amount_cents": 328}).status_code == 403
    assert _state() == before
