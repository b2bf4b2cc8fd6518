"""Reminder emails (DESIGN §10): pre-charge notice, annual renewal notice (Loi Chatel),
pre-expiry notice and card-expiry reminder, each queued at most once per occasion by the
scheduled jobs, whatever the number of scans."""

from collections import Counter
from datetime import date, datetime, timedelta

import pytest
from django.conf import settings as django_settings

from billing.services import payment_method_add
from notifications.models import OutboxEmail
from subscriptions.jobs import JOBS, run_due_jobs
from subscriptions.models import Status, Subscription
from subscriptions.services import subscription_cancel, subscription_subscribe
from subscriptions.services.reminders import (
    chatel_window_open,
    pre_charge_notice_send,
    pre_charge_notices_due,
)
from tests.conftest import PARIS
from tests.factories import SUCCESS_CARD, PlanFactory, UserFactory, card_token, days, subscribed

pytestmark = pytest.mark.django_db

REMINDERS = [
    "pre_charge_notice",
    "annual_renewal_notice",
    "pre_expiry_notice",
    "card_expiry_notice",
]
REMINDER_JOBS = [
    "pre_charge_notices",
    "annual_renewal_notices",
    "pre_expiry_notices",
    "card_expiry_notices",
]
NBSP = "\u00a0"


def paris(year, month, day, hour=9, minute=30):
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


@pytest.fixture
def tick(django_capture_on_commit_callbacks):
    """Scheduled runs of every job as of each instant, emails delivered after commit; how
    many due rows each job went through, in all."""

    def run(*instants):
        handled = Counter()
        for at in instants:
            with django_capture_on_commit_callbacks(execute=True):
                handled.update(run_due_jobs(now=at))
        return handled

    return run


def sent(subscription=None, kinds=REMINDERS):
    """(kind, local date queued) of the reminder emails, oldest first."""
    emails = OutboxEmail.objects.filter(kind__in=kinds).order_by("created_at", "id")
    if subscription is not None:
        emails = emails.filter(subscription=subscription)
    return [(email.kind, email.created_at.astimezone(PARIS).date()) for email in emails]


def only(kind, subscription=None):
    return OutboxEmail.objects.get(kind=kind, **({"subscription": subscription}
                                                 if subscription else {}))


def subscribed_with_card(*, plan, at, exp_month, exp_year, customer=None):
    return subscription_subscribe(
        customer=customer or UserFactory(), plan=plan, now=at,
        card_token=card_token(SUCCESS_CARD, exp_month, exp_year, "123"),
    )


def each_day(first: date, last: date, *, hour=9, minute=30):
    day = first
    while day <= last:
        yield datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS)
        day += timedelta(days=1)


# Pre-charge notice


def test_pre_charge_notice_goes_out_3_days_before_a_monthly_renewal_and_only_once(now, tick):
    # given: renews on April 10 at 09:30
    subscription = subscribed(plan=PlanFactory(name="Essentiel"), at=now)
    # when: the day before the 3rd day before it
    tick(paris(2026, 4, 6), paris(2026, 4, 6, 23, 59))
    # then
    assert sent() == []
    # when: from midnight on April 7, and the scans go on the same day and the next ones
    handled = tick(paris(2026, 4, 7, 0, 0), paris(2026, 4, 7, 0, 5), paris(2026, 4, 7, 18, 0),
                   paris(2026, 4, 8), paris(2026, 4, 9), paris(2026, 4, 10, 9, 0))
    # then: the scans found it due once only
    assert sent() == [("pre_charge_notice", date(2026, 4, 7))]
    assert handled["pre_charge_notices"] == 1
    email = only("pre_charge_notice")
    assert email.status == OutboxEmail.Status.SENT
    assert email.occasion_key == (
        f"pre_charge_notice:subscription-{subscription.pk}-renewal-20260410T0730Z"
    )
    assert email.subject == "Votre abonnement Essentiel sera renouvelé le 10 avril 2026"
    assert "10 avril 2026" in email.body_text
    assert f"9,90{NBSP}€ TTC" in email.body_text
    assert f"9,90{NBSP}€ TTC" in email.body_html
    assert "Visa se terminant par 4242" in email.body_text
    assert f"{django_settings.SITE_URL}/compte/abonnement/" in email.body_text
    assert f'href="{django_settings.SITE_URL}/compte/abonnement/"' in email.body_html
    assert not pre_charge_notices_due(now=paris(2026, 4, 8)).exists()


def test_pre_charge_notice_goes_out_7_days_before_an_annual_renewal(now, tick):
    # given: renews on March 10, 2027
    subscribed(plan=PlanFactory(annual=True), at=now)
    # when
    tick(paris(2027, 3, 2, 23, 59))
    # then
    assert sent(kinds=["pre_charge_notice"]) == []
    # when
    tick(paris(2027, 3, 3, 0, 0), paris(2027, 3, 4), paris(2027, 3, 9))
    # then
    assert sent(kinds=["pre_charge_notice"]) == [("pre_charge_notice", date(2027, 3, 3))]
    email = only("pre_charge_notice")
    assert "10 mars 2027" in email.body_text
    assert f"99,00{NBSP}€ TTC" in email.body_text


def test_pre_charge_notice_states_the_price_of_the_scheduled_downgrade(now, tick):
    # given: Premium now, Essentiel scheduled for the renewal
    premium = PlanFactory(code="premium", name="Premium", tier=2, price_cents=1650)
    essentiel = PlanFactory(code="essentiel", name="Essentiel", tier=1, price_cents=825)
    subscription = subscribed(plan=premium, at=now)
    Subscription.objects.filter(pk=subscription.pk).update(pending_plan=essentiel)
    # when
    tick(paris(2026, 4, 7))
    # then: 8,25 € HT + 20 % TVA
    email = only("pre_charge_notice")
    assert f"9,90{NBSP}€ TTC" in email.body_text
    assert f"19,80{NBSP}€" not in email.body_text
    assert "formule Essentiel" in email.body_text


def test_pre_charge_notice_uses_the_customers_vat_rate(now, tick):
    # given: a Belgian customer (21 %)
    subscribed(customer=UserFactory(billing_country="BE"), plan=PlanFactory(), at=now)
    # when
    tick(paris(2026, 4, 7))
    # then: 825 + 173.25 → 998
    assert f"9,98{NBSP}€ TTC" in only("pre_charge_notice").body_text


def test_pre_charge_notice_is_not_sent_once_cancelled(now, tick):
    # given: cancelled after the refund window: it ends on April 10 without renewing
    subscription = subscribed(plan=PlanFactory(), at=now)
    subscription_cancel(subscription=subscription, now=now + days(20))
    # when
    tick(*each_day(date(2026, 4, 6), date(2026, 4, 10)))
    # then
    assert sent(kinds=["pre_charge_notice", "card_expiry_notice"]) == []


def test_the_service_re_checks_and_queues_nothing_twice(now):
    # given
    subscription = subscribed(plan=PlanFactory(), at=now)
    at = paris(2026, 4, 7)
    # when
    first = pre_charge_notice_send(subscription_id=subscription.pk, now=at)
    second = pre_charge_notice_send(subscription_id=subscription.pk, now=at + days(1))
    too_early = pre_charge_notice_send(subscription_id=subscription.pk, now=paris(2026, 4, 6))
    # then
    assert first is not None
    assert (second, too_early) == (None, None)
    assert OutboxEmail.objects.filter(kind="pre_charge_notice").count() == 1


def test_no_reminder_for_an_ended_subscription(now, tick):
    # given: cancelled within the refund window, so ended at once
    subscription = subscribed(plan=PlanFactory(annual=True),
                              customer=UserFactory(), at=now)
    subscription_cancel(subscription=subscription, now=now + days(2))
    assert Subscription.objects.get(pk=subscription.pk).status == Status.ENDED
    # when: every day until after what would have been the renewal
    tick(*each_day(date(2026, 3, 13), date(2026, 4, 15)),
         *each_day(date(2027, 1, 20), date(2027, 3, 12)))
    # then
    assert sent() == []


# Annual renewal notice (Loi Chatel)


def test_annual_renewal_notice_goes_out_45_days_before_and_only_once(now, tick):
    # given: an annual plan renewing on March 10, 2027; 45 days before is January 24
    subscription = subscribed(plan=PlanFactory(name="Intégral", annual=True), at=now)
    # when
    tick(paris(2027, 1, 23), paris(2027, 1, 23, 23, 59))
    # then
    assert sent(kinds=["annual_renewal_notice"]) == []
    # when
    tick(*each_day(date(2027, 1, 24), date(2027, 3, 9), hour=0, minute=0))
    tick(*each_day(date(2027, 1, 24), date(2027, 2, 20), hour=15, minute=0))
    # then
    assert sent(kinds=["annual_renewal_notice"]) == [("annual_renewal_notice", date(2027, 1, 24))]
    email = only("annual_renewal_notice")
    assert email.occasion_key == (
        f"annual_renewal_notice:subscription-{subscription.pk}-renewal-20270310T0830Z"
    )
    assert email.subject == "Reconduction de votre abonnement Intégral le 10 mars 2027"
    for body in (email.body_text, email.body_html):
        assert "10 mars 2027" in body
        assert f"99,00{NBSP}€ TTC" in body
        assert "vous pouvez vous opposer à cette reconduction" in body
        assert "article L215-1 du Code de la consommation" in body
        assert f"{django_settings.SITE_URL}/compte/abonnement/" in body


def test_annual_renewal_notice_is_not_sent_for_a_monthly_plan(now, tick):
    # given
    subscribed(plan=PlanFactory(), at=now)
    # when: every day of its first two months
    tick(*each_day(date(2026, 3, 11), date(2026, 5, 11)))
    # then
    assert sent(kinds=["annual_renewal_notice"]) == []


def test_annual_renewal_notice_is_not_sent_once_cancelled(now, tick):
    # given: cancelled 50 days before the renewal; access ends at the end of the monthly slice
    subscription = subscribed(plan=PlanFactory(annual=True), at=now)
    subscription_cancel(subscription=subscription, now=paris(2027, 1, 19))
    # when
    tick(*each_day(date(2027, 1, 20), date(2027, 2, 12)))
    # then
    assert sent(kinds=["annual_renewal_notice", "pre_charge_notice"]) == []


def test_a_late_annual_renewal_notice_goes_out_until_one_month_before_the_renewal(now, tick):
    # given: the scans did not run from 45 days before (renewal on March 10, 2027 09:30)
    subscribed(plan=PlanFactory(annual=True), at=now)
    # when: the first scan is one minute before the legal deadline
    tick(paris(2027, 2, 10, 9, 29))
    # then
    assert sent(kinds=["annual_renewal_notice"]) == [("annual_renewal_notice", date(2027, 2, 10))]


def test_an_annual_renewal_notice_later_than_one_month_before_is_not_sent(now, tick):
    # given
    subscribed(plan=PlanFactory(annual=True), at=now)
    # when: the first scan is at the deadline, then every day until the renewal
    tick(paris(2027, 2, 10, 9, 30), *each_day(date(2027, 2, 11), date(2027, 3, 9)))
    # then
    assert sent(kinds=["annual_renewal_notice"]) == []


def test_annual_renewal_notice_never_goes_out_earlier_than_three_months(now, tick, settings):
    # given: a setting further than the legal window
    settings.ANNUAL_RENEWAL_NOTICE_DAYS = 120
    subscribed(plan=PlanFactory(annual=True), at=now)
    # when: from 120 days before until just before the 3 months
    tick(*each_day(date(2026, 11, 10), date(2026, 12, 9)), paris(2026, 12, 10, 9, 29))
    # then
    assert sent(kinds=["annual_renewal_notice"]) == []
    # when
    tick(paris(2026, 12, 10, 9, 30), paris(2026, 12, 11))
    # then
    assert sent(kinds=["annual_renewal_notice"]) == [("annual_renewal_notice", date(2026, 12, 10))]


@pytest.mark.parametrize(
    ("renews_at", "at", "expected"),
    [
        (paris(2027, 3, 10), paris(2026, 12, 10, 9, 29), False),
        (paris(2027, 3, 10), paris(2026, 12, 10, 9, 30), True),
        (paris(2027, 3, 10), paris(2027, 2, 10, 9, 29), True),
        (paris(2027, 3, 10), paris(2027, 2, 10, 9, 30), False),
        # a month before May 31 is April 30 (clamped), three months before is February 28
        (paris(2027, 5, 31), paris(2027, 4, 30, 9, 29), True),
        (paris(2027, 5, 31), paris(2027, 4, 30, 9, 30), False),
        (paris(2027, 5, 31), paris(2027, 2, 28, 9, 30), True),
        (paris(2027, 5, 31), paris(2027, 2, 28, 9, 29), False),
    ],
)
def test_chatel_window_is_counted_in_calendar_months_from_the_renewal(renews_at, at, expected):
    # when / then
    assert chatel_window_open(renews_at=renews_at, now=at) is expected


# Pre-expiry notice


def test_pre_expiry_notices_go_out_7_days_and_1_day_before_the_end(now, tick):
    # given: cancelled after the refund window, ends on April 10, 09:30
    subscription = subscribed(plan=PlanFactory(name="Essentiel"), at=now)
    subscription_cancel(subscription=subscription, now=paris(2026, 3, 30))
    # when: the day before J-7
    tick(paris(2026, 4, 2), paris(2026, 4, 2, 23, 59))
    # then
    assert sent() == []
    # when: several scans a day until after the end
    tick(*each_day(date(2026, 4, 3), date(2026, 4, 12), hour=0, minute=0),
         *each_day(date(2026, 4, 3), date(2026, 4, 12), hour=9, minute=30),
         *each_day(date(2026, 4, 3), date(2026, 4, 12), hour=20, minute=0))
    # then
    assert sent() == [("pre_expiry_notice", date(2026, 4, 3)),
                      ("pre_expiry_notice", date(2026, 4, 9))]
    seven, one = OutboxEmail.objects.filter(kind="pre_expiry_notice").order_by("created_at")
    assert seven.subject == "Votre abonnement Essentiel prend fin dans 7 jours"
    assert one.subject == "Votre abonnement Essentiel prend fin demain"
    assert seven.occasion_key.endswith("-expiry-20260410T0730Z-7d")
    assert "10 avril 2026 à 9 h 30" in seven.body_text
    assert f"{django_settings.SITE_URL}/offres/" in one.body_text
    assert f'href="{django_settings.SITE_URL}/offres/">Renouveler</a>' in one.body_html
    assert Subscription.objects.get(pk=subscription.pk).status == Status.ENDED


def test_a_late_cancellation_gets_only_the_1_day_notice(now, tick):
    # given: cancelled 3 days before the end
    subscription = subscribed(plan=PlanFactory(), at=now)
    subscription_cancel(subscription=subscription, now=paris(2026, 4, 7, 10, 0))
    # when
    tick(*each_day(date(2026, 4, 7), date(2026, 4, 11), hour=11, minute=0),
         *each_day(date(2026, 4, 8), date(2026, 4, 11), hour=0, minute=0))
    # then
    assert sent() == [("pre_expiry_notice", date(2026, 4, 9))]


def test_a_missed_7_day_notice_is_caught_up_before_the_1_day_one(now, tick):
    # given: cancelled long before; the scans did not run on April 3
    subscription = subscribed(plan=PlanFactory(), at=now)
    subscription_cancel(subscription=subscription, now=paris(2026, 3, 30))
    # when
    tick(paris(2026, 4, 5), paris(2026, 4, 6), paris(2026, 4, 9), paris(2026, 4, 9, 12, 0))
    # then
    assert sent() == [("pre_expiry_notice", date(2026, 4, 5)),
                      ("pre_expiry_notice", date(2026, 4, 9))]


def test_no_pre_expiry_notice_while_auto_renewal_is_on(now, tick):
    # given
    subscribed(plan=PlanFactory(), at=now)
    # when
    tick(*each_day(date(2026, 4, 1), date(2026, 4, 11)))
    # then
    assert sent(kinds=["pre_expiry_notice"]) == []


# Card-expiry reminder


def test_card_expiry_reminder_when_the_card_expires_before_the_renewal(now, tick):
    # given: the card expires at the end of March, the renewal is on April 10
    subscription = subscribed_with_card(plan=PlanFactory(name="Essentiel"), at=now,
                                        exp_month=3, exp_year=2026)
    # when: the day before the renewal is 30 days away
    tick(paris(2026, 3, 10, 23, 59))
    # then
    assert sent(kinds=["card_expiry_notice"]) == []
    # when
    tick(*each_day(date(2026, 3, 11), date(2026, 3, 20), hour=0, minute=0),
         paris(2026, 3, 25), paris(2026, 4, 9))
    # then
    assert sent(kinds=["card_expiry_notice"]) == [("card_expiry_notice", date(2026, 3, 11))]
    email = only("card_expiry_notice")
    card = subscription.customer.payment_methods.get()
    assert email.occasion_key == (
        f"card_expiry_notice:subscription-{subscription.pk}-card-{card.pk}"
        "-renewal-20260410T0730Z"
    )
    assert email.subject == "Mettez à jour votre carte avant le renouvellement du 10 avril 2026"
    assert "Visa se terminant par 4242 expire fin mars 2026" in email.body_text
    assert f"9,90{NBSP}€ TTC le 10 avril 2026" in email.body_text
    assert f'href="{django_settings.SITE_URL}/compte/carte/"' in email.body_html


def test_card_expiry_reminder_is_not_sent_when_the_card_outlives_the_renewal(now, tick):
    # given: the card is valid until the end of April; the renewal is on April 10
    subscribed_with_card(plan=PlanFactory(), at=now, exp_month=4, exp_year=2026)
    # when
    tick(*each_day(date(2026, 3, 11), date(2026, 4, 9)))
    # then
    assert sent(kinds=["card_expiry_notice"]) == []


def test_card_expiry_reminder_again_for_the_next_renewal_but_not_after_a_new_card(now, tick):
    # given: a reminder was sent for the April renewal
    subscription = subscribed_with_card(plan=PlanFactory(), at=now, exp_month=3, exp_year=2026)
    tick(paris(2026, 3, 11))
    # when: it renews on April 10 with the old card still the default
    tick(paris(2026, 4, 10), paris(2026, 4, 11))
    # then: a new occasion, the May renewal
    assert sent(kinds=["card_expiry_notice"]) == [("card_expiry_notice", date(2026, 3, 11)),
                                                   ("card_expiry_notice", date(2026, 4, 10))]
    # when: a new card, then the May renewal and the days before the June one
    payment_method_add(customer=subscription.customer,
                       token=card_token(SUCCESS_CARD, 12, 2030, "123"), now=paris(2026, 4, 12))
    tick(*each_day(date(2026, 4, 12), date(2026, 6, 9)))
    # then
    assert len(sent(kinds=["card_expiry_notice"])) == 2


def test_card_expiry_reminder_not_sent_when_cancelled(now, tick):
    # given
    subscription = subscribed_with_card(plan=PlanFactory(), at=now, exp_month=3, exp_year=2026)
    subscription_cancel(subscription=subscription, now=now + days(1) + days(14))
    # when
    tick(*each_day(date(2026, 3, 26), date(2026, 4, 9)))
    # then
    assert sent(kinds=["card_expiry_notice"]) == []


# Language


@pytest.mark.parametrize(
    ("kind", "setup", "at", "subject", "in_body"),
    [
        ("pre_charge_notice", None, paris(2026, 4, 7),
         "Your Essentiel subscription renews on April 10, 2026",
         ["April 10, 2026", "€9.90 incl. VAT", "Visa ending in 4242"]),
        ("pre_expiry_notice", "cancel", paris(2026, 4, 9),
         "Your Essentiel subscription ends tomorrow",
         ["April 10, 2026 at 9:30 AM", "/offres/"]),
        ("card_expiry_notice", "card", paris(2026, 3, 11),
         "Update your card before your renewal on April 10, 2026",
         ["expires at the end of March 2026", "€9.90 incl. VAT on April 10, 2026",
          "/compte/carte/"]),
    ],
)
def test_reminders_are_in_english_for_an_english_speaking_customer(
    now, tick, kind, setup, at, subject, in_body
):
    # given
    customer = UserFactory(preferred_language="en")
    plan = PlanFactory(name="Essentiel")
    if setup == "card":
        subscription = subscribed_with_card(customer=customer, plan=plan, at=now,
                                            exp_month=3, exp_year=2026)
    else:
        subscription = subscribed(customer=customer, plan=plan, at=now)
    if setup == "cancel":
        subscription_cancel(subscription=subscription, now=paris(2026, 3, 30))
    # when
    tick(at)
    # then
    email = only(kind)
    assert (email.language, email.subject) == ("en", subject)
    for text in in_body:
        assert text in email.body_text
    assert "Bonjour" not in email.body_text + email.body_html


def test_annual_renewal_notice_in_english(now, tick):
    # given
    subscribed(customer=UserFactory(preferred_language="en"),
               plan=PlanFactory(name="Intégral", annual=True), at=now)
    # when
    tick(paris(2027, 1, 24))
    # then
    email = only("annual_renewal_notice")
    assert email.subject == "Your Intégral subscription renews on March 10, 2027"
    assert "€99.00 incl. VAT" in email.body_text
    assert "you may object to this renewal" in email.body_text
    assert "article L215-1" in email.body_html


# Over two years


def test_two_years_day_by_day_send_each_reminder_once_on_its_day(now, tick):
    # given: a monthly subscription whose card expires at the end of May 2027 (its customer
    # adds a new card on June 20, 2027) and an annual one whose card expires in January 2028
    monthly = subscribed_with_card(plan=PlanFactory(code="mensuel"), at=now,
                                   exp_month=5, exp_year=2027)
    annual = subscribed_with_card(plan=PlanFactory(code="annuel", annual=True), at=now,
                                  exp_month=1, exp_year=2028)
    # when: one scan a day at the renewals' time of day, for 24 months
    handled = Counter()
    for at in each_day(date(2026, 3, 11), date(2028, 3, 10)):
        if at.date() == date(2027, 6, 20):
            payment_method_add(customer=monthly.customer,
                               token=card_token(SUCCESS_CARD, 12, 2031, "123"), now=at)
        handled += tick(at)
    # then
    monthly_pre_charges = [
        ("pre_charge_notice", date(2026 + (3 + k) // 12, (3 + k) % 12 + 1, 7))
        for k in range(24)
    ]
    assert sent(monthly) == sorted(monthly_pre_charges + [
        ("card_expiry_notice", date(2027, 5, 11)),
        ("card_expiry_notice", date(2027, 6, 10)),
    ], key=lambda row: row[1])
    assert sent(annual) == [
        ("annual_renewal_notice", date(2027, 3, 10) - timedelta(days=45)),
        ("pre_charge_notice", date(2027, 3, 3)),
        ("annual_renewal_notice", date(2028, 3, 10) - timedelta(days=45)),
        ("card_expiry_notice", date(2028, 2, 9)),
        ("pre_charge_notice", date(2028, 3, 3)),
    ]
    assert monthly_pre_charges[0][1] == date(2026, 4, 7)
    assert monthly_pre_charges[-1][1] == date(2028, 3, 7)
    assert monthly.invoices.filter(kind="renewal", status="paid").count() == 24
    assert annual.invoices.filter(kind="renewal", status="paid").count() == 2
    assert not OutboxEmail.objects.filter(kind__in=REMINDERS).exclude(status="sent").exists()
    # and each scan found a reminder due once, when it was queued, never again
    assert {job: handled[job] for job in REMINDER_JOBS} == {
        "pre_charge_notices": 26, "annual_renewal_notices": 2, "pre_expiry_notices": 0,
        "card_expiry_notices": 3,
    }


# Scheduling


def test_each_reminder_is_a_job_scanned_hourly_by_beat():
    # given
    scheduled = {entry["args"][0]: entry["schedule"]
                 for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    reminder_jobs = REMINDER_JOBS
    # then
    assert set(scheduled) == set(JOBS)
    assert {name: scheduled[name] for name in reminder_jobs} == dict.fromkeys(reminder_jobs, 3600)
    names = list(JOBS)
    assert names.index("expire") < min(map(names.index, reminder_jobs))
    assert max(map(names.index, reminder_jobs)) < names.index("deliver_emails")
