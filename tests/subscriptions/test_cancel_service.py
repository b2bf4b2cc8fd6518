"""The cancellation table of DESIGN §8 through the real service, with refunds paid by the
simulated provider and the confirmation email delivered after commit.

The renewal-window row is covered by tests/subscriptions/test_policy.py only: renewals do not
exist yet, so no subscription here can have a renewal charge. For the same reason every
subscription is created inside its first period (monthly: less than a month ago, annual:
less than twelve months ago).
"""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from billing.models import Charge, CreditNote, Invoice, Refund, SimulatedProviderOperation
from billing.services import refund_create
from notifications.models import OutboxEmail
from subscriptions.models import Channel, EndReason, Status, Subscription, SubscriptionEvent
from subscriptions.periods import add_days, add_months
from subscriptions.services import (
    CancellationError,
    subscription_auto_renew_reactivate,
    subscription_cancel,
)
from tests.factories import PlanFactory, UserFactory, subscribed

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
SECOND = timedelta(seconds=1)
NBSP = "\u00a0"
Kind = SubscriptionEvent.Kind
FRENCH_MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
                 "septembre", "octobre", "novembre", "décembre"]


def french_date(instant):
    local = instant.astimezone(PARIS)
    day = "1er" if local.day == 1 else local.day
    return f"{day} {FRENCH_MONTHS[local.month - 1]} {local.year}"


def months_ago(now, months):
    return add_months(now, -months, tz=PARIS)


def days_ago(now, days):
    return add_days(now, -days, tz=PARIS)


@pytest.fixture
def cancel(django_capture_on_commit_callbacks):
    """Cancel and run what waits for the commit: refund payments and email delivery."""

    def run(subscription, *, now, reason="too_expensive"):
        with django_capture_on_commit_callbacks(execute=True):
            return subscription_cancel(subscription=subscription, reason=reason, now=now)

    return run


def cancellation_emails(subscription):
    return list(OutboxEmail.objects.filter(subscription=subscription,
                                           kind="cancellation_confirmation"))


def event_kinds(subscription):
    return list(subscription.events.order_by("at", "id").values_list("kind", flat=True))


def assert_cancelled_event(subscription, *, now, rule, refund_cents, ends_at,
                           reason="too_expensive"):
    event = subscription.events.get(kind=Kind.CANCELLED)
    assert event.at == now
    assert event.amount_cents == refund_cents
    assert event.data["rule"] == rule
    assert event.data["reason"] == reason
    assert datetime.fromisoformat(event.data["ends_at"]) == ends_at


def assert_one_refund(subscription, *, amount, net, vat):
    charge = Charge.objects.get(invoice__subscription=subscription)
    refund = Refund.objects.get(charge__invoice__subscription=subscription)
    assert refund.charge == charge
    assert refund.amount_cents == amount
    assert refund.status == Refund.Status.SUCCEEDED
    assert refund.reason == Refund.Reason.CANCELLATION
    credit_note = CreditNote.objects.get(refund=refund)
    assert credit_note.invoice == charge.invoice
    assert (credit_note.net_cents, credit_note.vat_cents, credit_note.total_cents) == (
        net, vat, amount
    )
    provider_refunds = SimulatedProviderOperation.objects.filter(
        kind="refund", charge_reference=charge.provider_reference
    )
    assert [op.amount_cents for op in provider_refunds] == [amount]


def assert_no_refund(subscription):
    assert not Refund.objects.filter(charge__invoice__subscription=subscription).exists()
    assert not CreditNote.objects.exists()
    assert not SimulatedProviderOperation.objects.filter(kind="refund").exists()


def assert_one_email(subscription, mailoutbox, *, contains):
    emails = cancellation_emails(subscription)
    assert len(emails) == 1
    email = emails[0]
    assert email.status == OutboxEmail.Status.SENT
    assert email.recipient == subscription.customer.email
    for text in contains:
        assert text in email.body_text, f"{text!r} not in\n{email.body_text}"
    sent = [m for m in mailoutbox if m.subject == email.subject]
    assert len(sent) == 1
    assert sent[0].to == [subscription.customer.email]
    return email


# Row 1: within refund_window_days of started_at ---------------------------------------------


def test_monthly_last_second_of_the_refund_window_ends_now_and_refunds_everything(
    now, cancel, mailoutbox
):
    # given: started 14 days minus 1 second ago
    subscription = subscribed(plan=PlanFactory(), at=days_ago(now, 14) + SECOND)
    # when
    subscription, terms = cancel(subscription, now=now)
    # then
    subscription.refresh_from_db()
    assert subscription.status == Status.ENDED
    assert subscription.end_reason == EndReason.REFUNDED
    assert subscription.ends_at == now
    assert subscription.ended_at == now
    assert subscription.licence_active is False
    assert subscription.auto_renew is False
    assert subscription.cancel_requested_at == now
    assert subscription.cancel_reason == "too_expensive"
    assert terms.refund_cents == 990
    assert_one_refund(subscription, amount=990, net=825, vat=165)
    assert event_kinds(subscription) == [Kind.SUBSCRIBED, Kind.CANCELLED, Kind.ENDED]
    assert_cancelled_event(subscription, now=now, rule="refund_window", refund_cents=990,
                           ends_at=now)
    assert_one_email(subscription, mailoutbox, contains=[
        "demande de résiliation le 10 mars 2026 à 9 h 30.",
        "Date d'effet : 10 mars 2026 à 9 h 30\n",
        f"Remboursement : 9,90{NBSP}€",
    ])


def test_annual_inside_the_refund_window_refunds_the_whole_year(now, cancel, mailoutbox):
    # given
    subscription = subscribed(plan=PlanFactory(annual=True), at=days_ago(now, 14) + SECOND)
    # when
    subscription, terms = cancel(subscription, now=now)
    # then
    subscription.refresh_from_db()
    assert subscription.status == Status.ENDED
    assert subscription.end_reason == EndReason.REFUNDED
    assert subscription.ends_at == now
    assert subscription.licence_active is False
    assert_one_refund(subscription, amount=9900, net=8250, vat=1650)
    assert_cancelled_event(subscription, now=now, rule="refund_window", refund_cents=9900,
                           ends_at=now)
    assert_one_email(subscription, mailoutbox, contains=[f"Remboursement : 99,00{NBSP}€"])


def test_refund_window_for_a_swiss_customer_splits_the_credit_note_at_8_1_percent(
    now, cancel, mailoutbox, settings
):
    # given: 8.25 € + 8.1 % VAT (0.67 €) = 8.92 €, the vendor registered in Switzerland
    settings.VAT_NON_EU_RATES = {"CH": "8.1"}
    customer = UserFactory(billing_country="CH")
    subscription = subscribed(customer=customer, plan=PlanFactory(), at=days_ago(now, 2))
    # when
    subscription, terms = cancel(subscription, now=now)
    # then
    assert Invoice.objects.get(subscription=subscription).vat_rate == Decimal("8.1")
    assert terms.refund_cents == 892
    assert_one_refund(subscription, amount=892, net=825, vat=67)
    assert_one_email(subscription, mailoutbox, contains=[f"Remboursement : 8,92{NBSP}€"])


@pytest.mark.parametrize(
    ("cancelled_at", "refunded"),
    [
        (datetime(2026, 4, 3, 9, 29, 59, tzinfo=PARIS), True),
        (datetime(2026, 4, 3, 9, 30, tzinfo=PARIS), False),
        # 14 × 24 h − 1 s after subscribing, but 14 wall-clock days ended an hour before
        (datetime(2026, 4, 3, 10, 29, 59, tzinfo=PARIS), False),
    ],
    ids=["last-second", "first-second-after", "absolute-14-days"],
)
def test_refund_window_across_the_march_change_counts_wall_clock_days(
    cancel, cancelled_at, refunded
):
    # given: subscribed 2026-03-20 09:30 CET; the clocks go forward on 2026-03-29
    subscription = subscribed(plan=PlanFactory(), at=datetime(2026, 3, 20, 9, 30, tzinfo=PARIS))
    # when
    subscription, terms = cancel(subscription, now=cancelled_at)
    # then
    subscription.refresh_from_db()
    if refunded:
        assert subscription.status == Status.ENDED
        assert subscription.ends_at == cancelled_at
        assert_one_refund(subscription, amount=990, net=825, vat=165)
    else:
        assert subscription.status == Status.ACTIVE
        assert subscription.ends_at == datetime(2026, 4, 20, 9, 30, tzinfo=PARIS)
        assert_no_refund(subscription)


def test_monthly_first_second_after_the_refund_window_ends_at_period_end_without_refund(
    now, cancel, mailoutbox
):
    # given: started exactly 14 days ago, on 2026-02-24 09:30
    subscription = subscribed(plan=PlanFactory(), at=days_ago(now, 14))
    period_end = datetime(2026, 3, 24, 9, 30, tzinfo=PARIS)
    # when
    subscription, terms = cancel(subscription, now=now)
    # then
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE
    assert subscription.end_reason == ""
    assert subscription.ended_at is None
    assert subscription.licence_active is True
    assert subscription.auto_renew is False
    assert subscription.cancel_requested_at == now
    assert subscription.ends_at == period_end == subscription.current_period_end
    assert terms.refund_cents == 0
    assert_no_refund(subscription)
    assert event_kinds(subscription) == [Kind.SUBSCRIBED, Kind.CANCELLED]
    assert_cancelled_event(subscription, now=now, rule="monthly", refund_cents=0,
                           ends_at=period_end)
    assert_one_email(subscription, mailoutbox, contains=[
        "Date d'effet : 24 mars 2026\n",
        "Aucun remboursement",
        "réactiver le renouvellement automatique jusqu'à la date d'effet",
    ])


# Row 4: annual plan, otherwise --------------------------------------------------------------

# (name, started how long before now, k, refund, credit note net, credit note vat)
# Started exactly m months ago: now is the first second of slice m.
# Started m months ago + 1 s: now is the last second of slice m - 1.
ANNUAL_CASES = [
    ("k0-last-second", 1, SECOND, 0, 9075, 7563, 1512),
    ("k1-first-second", 1, timedelta(0), 1, 8250, 6875, 1375),
    ("k4-last-second", 5, SECOND, 4, 5775, 4813, 962),
    ("k5-first-second", 5, timedelta(0), 5, 4950, 4125, 825),
    ("k10-last-second", 11, SECOND, 10, 825, 688, 137),
    ("k10-first-second", 10, timedelta(0), 10, 825, 688, 137),
    ("k11-first-second", 11, timedelta(0), 11, 0, None, None),
]


@pytest.mark.parametrize(
    ("months", "plus", "k", "refund", "net", "vat"),
    [case[1:] for case in ANNUAL_CASES],
    ids=[case[0] for case in ANNUAL_CASES],
)
def test_annual_after_the_window_keeps_access_to_the_end_of_the_monthly_slice(
    now, cancel, mailoutbox, months, plus, k, refund, net, vat
):
    # given
    started_at = months_ago(now, months) + plus
    subscription = subscribed(plan=PlanFactory(annual=True), at=started_at)
    slice_end = add_months(started_at, k + 1, tz=PARIS)
    # when
    subscription, terms = cancel(subscription, now=now)
    # then
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE
    assert subscription.end_reason == ""
    assert subscription.licence_active is True
    assert subscription.auto_renew is False
    assert subscription.ends_at == slice_end
    assert terms.refund_cents == refund
    assert_cancelled_event(subscription, now=now, rule="annual", refund_cents=refund,
                           ends_at=slice_end)
    effective = f"Date d'effet : {french_date(slice_end)}\n"
    if refund:
        assert_one_refund(subscription, amount=refund, net=net, vat=vat)
        money = f"{refund // 100},{refund % 100:02d}{NBSP}€"
        assert_one_email(subscription, mailoutbox,
                         contains=[effective, f"Remboursement : {money}"])
    else:
        assert_no_refund(subscription)
        assert_one_email(subscription, mailoutbox, contains=[effective, "Aucun remboursement"])


def test_annual_refund_email_states_amount_and_effective_date(now, cancel, mailoutbox):
    # given: started 2026-02-10 09:30, one full month ago
    subscription = subscribed(plan=PlanFactory(annual=True), at=months_ago(now, 1))
    # when
    cancel(subscription, now=now)
    # then
    email = assert_one_email(subscription, mailoutbox, contains=[
        "Date d'effet : 10 avril 2026",
        f"Remboursement : 82,50{NBSP}€, versé sur votre carte sous 3 à 5 jours ouvrables",
    ])
    assert "réactiver" not in email.body_text


def test_annual_refund_is_rounded_half_up_through_the_service(now, cancel):
    # given: 82.55 € + 20 % = 99.06 €; 11/12 of it is 90.805 €
    plan = PlanFactory(annual=True, price_cents=8255)
    subscription = subscribed(plan=plan, at=days_ago(now, 20))
    # when
    subscription, terms = cancel(subscription, now=now)
    # then
    assert Charge.objects.get(invoice__subscription=subscription).amount_cents == 9906
    assert terms.refund_cents == 9081
    assert_one_refund(subscription, amount=9081, net=7568, vat=1513)  # 7567.5 → 7568


def test_annual_refund_is_capped_at_what_support_left_refundable(
    now, cancel, django_capture_on_commit_callbacks
):
    # given: support already refunded 20 € of the year
    subscription = subscribed(plan=PlanFactory(annual=True), at=days_ago(now, 20))
    charge = Charge.objects.get(invoice__subscription=subscription)
    with django_capture_on_commit_callbacks(execute=True):
        refund_create(charge=charge, amount_cents=2000, reason=Refund.Reason.STAFF,
                      now=days_ago(now, 19))
    # when
    subscription, terms = cancel(subscription, now=now)
    # then
    assert terms.refund_cents == 7900
    cancellation_refund = Refund.objects.get(reason=Refund.Reason.CANCELLATION)
    assert cancellation_refund.amount_cents == 7900
    assert cancellation_refund.status == Refund.Status.SUCCEEDED
    provider_refunds = SimulatedProviderOperation.objects.filter(kind="refund")
    assert sorted(op.amount_cents for op in provider_refunds) == [2000, 7900]


# commitment_months -------------------------------------------------------------------------


def test_monthly_cancelled_inside_the_commitment_ends_at_its_end_without_refund(
    now, cancel, mailoutbox
):
    # given: 12 months committed from 2026-02-18 09:30
    plan = PlanFactory(commitment_months=12)
    subscription = subscribed(plan=plan, at=days_ago(now, 20))
    commitment_end = datetime(2027, 2, 18, 9, 30, tzinfo=PARIS)
    # when
    subscription, terms = cancel(subscription, now=now)
    # then
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE
    assert subscription.licence_active is True
    assert subscription.ends_at == commitment_end
    assert terms.refund_cents == 0
    assert_no_refund(subscription)
    assert_cancelled_event(subscription, now=now, rule="commitment", refund_cents=0,
                           ends_at=commitment_end)
    assert_one_email(subscription, mailoutbox, contains=["Date d'effet : 18 février 2027"])


def test_refund_window_takes_precedence_over_the_commitment(now, cancel):
    # given
    plan = PlanFactory(commitment_months=12)
    subscription = subscribed(plan=plan, at=days_ago(now, 14) + SECOND)
    # when
    subscription, terms = cancel(subscription, now=now)
    # then
    subscription.refresh_from_db()
    assert subscription.status == Status.ENDED
    assert subscription.end_reason == EndReason.REFUNDED
    assert subscription.ends_at == now
    assert_one_refund(subscription, amount=990, net=825, vat=165)


def test_annual_after_its_commitment_follows_the_annual_rule(now, cancel):
    # given: 3 months committed, cancelled 5 full months in
    plan = PlanFactory(annual=True, commitment_months=3)
    started_at = months_ago(now, 5)
    subscription = subscribed(plan=plan, at=started_at)
    # when
    subscription, terms = cancel(subscription, now=now)
    # then
    subscription.refresh_from_db()
    assert subscription.ends_at == add_months(started_at, 6, tz=PARIS)
    assert_one_refund(subscription, amount=4950, net=4125, vat=825)
    assert_cancelled_event(subscription, now=now, rule="annual", refund_cents=4950,
                           ends_at=add_months(started_at, 6, tz=PARIS))


# Reactivation ------------------------------------------------------------------------------


def test_reactivation_after_a_cancellation_without_refund_turns_auto_renewal_back_on(
    now, cancel
):
    # given
    subscription = subscribed(plan=PlanFactory(), at=days_ago(now, 20))
    subscription, _ = cancel(subscription, now=now)
    later = now + timedelta(days=3)
    # when
    subscription = subscription_auto_renew_reactivate(subscription=subscription, now=later)
    # then
    subscription.refresh_from_db()
    assert subscription.auto_renew is True
    assert subscription.status == Status.ACTIVE
    assert subscription.ends_at is None
    assert subscription.cancel_requested_at is None
    assert subscription.cancel_reason == ""
    assert event_kinds(subscription) == [Kind.SUBSCRIBED, Kind.CANCELLED,
                                         Kind.AUTO_RENEW_REACTIVATED]
    assert subscription.events.get(kind=Kind.AUTO_RENEW_REACTIVATED).at == later


def test_reactivation_of_an_annual_cancellation_with_nothing_to_refund(now, cancel):
    # given: k = 11, nothing to refund
    subscription = subscribed(plan=PlanFactory(annual=True), at=months_ago(now, 11))
    subscription, terms = cancel(subscription, now=now)
    assert terms.refund_cents == 0
    # when
    subscription = subscription_auto_renew_reactivate(subscription=subscription, now=now)
    # then
    subscription.refresh_from_db()
    assert subscription.auto_renew is True
    assert subscription.ends_at is None


def test_reactivation_works_until_the_last_second_before_ends_at(now, cancel):
    # given
    subscription = subscribed(plan=PlanFactory(), at=days_ago(now, 20))
    subscription, _ = cancel(subscription, now=now)
    # when
    subscription = subscription_auto_renew_reactivate(
        subscription=subscription, now=subscription.ends_at - SECOND
    )
    # then
    subscription.refresh_from_db()
    assert subscription.auto_renew is True


@pytest.mark.parametrize("after", [timedelta(0), timedelta(days=1)], ids=["at", "after"])
def test_reactivation_is_refused_from_ends_at(now, cancel, after):
    # given
    subscription = subscribed(plan=PlanFactory(), at=days_ago(now, 20))
    subscription, _ = cancel(subscription, now=now)
    ends_at = subscription.ends_at
    # when / then
    with pytest.raises(CancellationError):
        subscription_auto_renew_reactivate(subscription=subscription, now=ends_at + after)
    subscription.refresh_from_db()
    assert subscription.auto_renew is False
    assert subscription.ends_at == ends_at
    assert Kind.AUTO_RENEW_REACTIVATED not in event_kinds(subscription)


def test_reactivation_is_refused_after_a_prorated_annual_refund(now, cancel):
    # given
    subscription = subscribed(plan=PlanFactory(annual=True), at=months_ago(now, 1))
    subscription, terms = cancel(subscription, now=now)
    assert terms.refund_cents == 8250
    ends_at = subscription.ends_at
    # when / then
    with pytest.raises(CancellationError, match="remboursement"):
        subscription_auto_renew_reactivate(subscription=subscription, now=now + SECOND)
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE
    assert subscription.auto_renew is False
    assert subscription.ends_at == ends_at
    assert Kind.AUTO_RENEW_REACTIVATED not in event_kinds(subscription)


def test_reactivation_is_refused_after_a_refund_window_cancellation(now, cancel):
    # given
    subscription = subscribed(plan=PlanFactory(), at=days_ago(now, 2))
    subscription, _ = cancel(subscription, now=now)
    # when / then
    with pytest.raises(CancellationError):
        subscription_auto_renew_reactivate(subscription=subscription, now=now)
    subscription.refresh_from_db()
    assert subscription.status == Status.ENDED
    assert subscription.auto_renew is False


# Idempotence -------------------------------------------------------------------------------


def test_cancelling_twice_refunds_once_and_emails_once(now, cancel, mailoutbox):
    # given
    subscription = subscribed(plan=PlanFactory(annual=True), at=months_ago(now, 1))
    first, first_terms = cancel(subscription, now=now)
    # when
    second, second_terms = cancel(subscription, now=now + timedelta(minutes=1))
    # then
    assert first_terms.refund_cents == 8250
    assert second_terms is None
    second.refresh_from_db()
    assert second.ends_at == first.ends_at
    assert second.cancel_requested_at == now
    assert_one_refund(subscription, amount=8250, net=6875, vat=1375)
    assert event_kinds(second) == [Kind.SUBSCRIBED, Kind.CANCELLED]
    assert_one_email(subscription, mailoutbox, contains=[f"82,50{NBSP}€"])


def test_cancelling_an_ended_subscription_again_changes_nothing(now, cancel, mailoutbox):
    # given
    subscription = subscribed(plan=PlanFactory(), at=days_ago(now, 2))
    cancel(subscription, now=now)
    # when
    _, terms = cancel(subscription, now=now + timedelta(days=1))
    # then
    assert terms is None
    assert Refund.objects.count() == 1
    assert len(cancellation_emails(subscription)) == 1


def test_cancel_reactivate_cancel_confirms_each_cancellation(now, cancel, mailoutbox):
    # given
    subscription = subscribed(plan=PlanFactory(), at=days_ago(now, 20))
    cancel(subscription, now=now)
    subscription_auto_renew_reactivate(subscription=subscription, now=now + timedelta(hours=1))
    # when
    subscription, terms = cancel(subscription, now=now + timedelta(hours=2))
    # then
    assert terms is not None
    assert event_kinds(subscription) == [Kind.SUBSCRIBED, Kind.CANCELLED,
                                         Kind.AUTO_RENEW_REACTIVATED, Kind.CANCELLED]
    assert len(cancellation_emails(subscription)) == 2
    assert_no_refund(subscription)


# Channels ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "channel", [Channel.APP_STORE, Channel.GOOGLE_PLAY, Channel.RESELLER, Channel.ISP]
)
def test_a_subscription_bought_elsewhere_cannot_be_cancelled_here(now, cancel, mailoutbox,
                                                                   channel):
    # given: inside the refund window, so a direct subscription would be refunded
    subscription = subscribed(plan=PlanFactory(annual=True), at=days_ago(now, 2))
    Subscription.objects.filter(pk=subscription.pk).update(channel=channel)
    subscription.refresh_from_db()
    # when / then
    with pytest.raises(CancellationError):
        cancel(subscription, now=now)
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE
    assert subscription.auto_renew is True
    assert subscription.ends_at is None
    assert subscription.cancel_requested_at is None
    assert subscription.licence_active is True
    assert_no_refund(subscription)
    assert event_kinds(subscription) == [Kind.SUBSCRIBED]
    assert cancellation_emails(subscription) == []
    assert mailoutbox == []
