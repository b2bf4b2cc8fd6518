"""Loi Chatel (article L215-1 du Code de la consommation; DESIGN §8, §10): the notice of a tacit
renewal goes out between 3 months and 1 month before it, names the last date to refuse it in a
box, and is recorded (its outbox row). Renewed without that notice sent in time, the contract
may be ended at any time at no cost: the résiliation takes effect at once and the unused days
of the paid period are refunded (within 30 days).

The clock starts on 10 March 2026, 9 h 30; an annual subscription bought then renews on
10 March 2027, 9 h 30 (its notice: from 24 January 2027, 45 days before; legally from
10 December 2026 and before 10 February 2027, 9 h 30)."""

import re
from datetime import datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from billing.amounts import round_half_up
from billing.models import Invoice, Refund
from notifications.models import OutboxEmail
from subscriptions.jobs import run_due_jobs
from subscriptions.models import EndReason, Status
from subscriptions.policy import Rule
from subscriptions.selectors import cancellation_quote, chatel_free_exit
from subscriptions.services import subscription_cancel
from tests.factories import PlanFactory, UserFactory, subscribed

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
NBSP = "\u00a0"
RENEWAL = datetime(2027, 3, 10, 9, 30, tzinfo=PARIS)


def paris(year, month, day, hour=9, minute=30):
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


@pytest.fixture
def tick(django_capture_on_commit_callbacks):
    """Scheduled runs of every job as of each instant, with what waits for the commit."""

    def run(*instants):
        for at in instants:
            with django_capture_on_commit_callbacks(execute=True):
                run_due_jobs(now=at)

    return run


@pytest.fixture
def annual(now):
    return subscribed(customer=UserFactory(), plan=PlanFactory(name="Intégral", annual=True),
                      at=now)


def notices(subscription=None):
    emails = OutboxEmail.objects.filter(kind="annual_renewal_notice")
    if subscription is not None:
        emails = emails.filter(subscription=subscription)
    return list(emails.order_by("created_at"))


def squeeze(html: str) -> str:
    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def billing_page(client, subscription):
    client.force_login(subscription.customer)
    return client.get(reverse("subscriptions:billing")).content.decode()


def unused_days_refund(paid, *, unused, of):
    return round_half_up(Fraction(paid * unused, of))


# The notice: the deadline in a box, the send recorded


def test_the_notice_names_the_last_date_to_refuse_in_a_box_and_a_text_block(annual, tick):
    # when
    tick(paris(2027, 1, 24))
    # then
    [email] = notices(annual)
    box = re.search(r'<table role="presentation" class="chatel-deadline"[^>]*>(.*?)</table>',
                    email.body_html, re.S)
    assert box is not None
    assert "border:2px solid" in box.group(0)
    assert "Date limite pour refuser la reconduction : avant le 10 mars 2027 à 9 h 30" in (
        squeeze(box.group(1)))
    assert "vous pouvez vous opposer à cette reconduction" in squeeze(box.group(1))
    assert re.search(r'href="[^"]+/resilier/[^"]+/"', box.group(1))
    block = re.search(r"^={20,}\n(.*?)\n={20,}$", email.body_text, re.S | re.M)
    assert block is not None
    assert block.group(1).startswith(
        "DATE LIMITE POUR REFUSER LA RECONDUCTION :\navant le 10 mars 2027 à 9 h 30\n")
    assert "/resilier/" in block.group(1)


def test_the_notice_box_in_english(tick):
    # given
    subscription = subscribed(customer=UserFactory(preferred_language="en"),
                              plan=PlanFactory(annual=True), at=paris(2026, 3, 10))
    # when
    tick(paris(2027, 1, 24))
    # then
    [email] = notices(subscription)
    assert 'class="chatel-deadline"' in email.body_html
    assert "Last date to refuse the renewal: before March 10, 2027 at 9:30 AM" in squeeze(
        email.body_html)
    assert "LAST DATE TO REFUSE THE RENEWAL:\nbefore March 10, 2027 at 9:30 AM" in (
        email.body_text)


def test_the_notice_is_recorded_as_sent_in_the_window(annual, tick):
    # when
    tick(paris(2027, 1, 24), paris(2027, 1, 25))
    # then: one outbox row names the renewal, queued and sent on 24 January
    [email] = notices(annual)
    assert email.occasion_key == (
        f"annual_renewal_notice:subscription-{annual.pk}-renewal-20270310T0830Z")
    assert email.created_at == paris(2027, 1, 24)
    assert email.status == OutboxEmail.Status.SENT


# Notice sent in time: no free exit


def test_a_notice_sent_in_the_window_leaves_the_ordinary_rules(annual, tick, client):
    # given: the notice on 24 January, the renewal paid on 10 March 2027
    tick(paris(2027, 1, 24), RENEWAL)
    annual.refresh_from_db()
    assert annual.current_period_start == RENEWAL
    # when
    at = paris(2027, 3, 20)
    # then
    assert chatel_free_exit(subscription=annual, now=at) is False
    quote = cancellation_quote(subscription=annual, now=at)
    assert (quote.rule, quote.immediate, quote.access_ends_at) == (
        Rule.ANNUAL, False, paris(2027, 4, 10))
    assert "chatel-free-exit" not in billing_page(client, annual)


# Notice missing at the deadline: free exit, unused part refunded


def test_without_a_notice_the_renewed_contract_may_end_at_any_time_with_the_unused_days_refunded(
    annual, tick, client, django_capture_on_commit_callbacks, mailoutbox
):
    # given: the reminder job did not run before the renewal (first run at the renewal)
    tick(RENEWAL)
    annual.refresh_from_db()
    assert annual.current_period_start == RENEWAL
    assert notices(annual) == []
    at = paris(2027, 3, 20, 15, 0)
    # then: ten days into a 366-day year (29 February 2028), 355 days unused
    refund = unused_days_refund(9900, unused=355, of=366)
    assert refund == 9602
    assert chatel_free_exit(subscription=annual, now=at) is True
    quote = cancellation_quote(subscription=annual, now=at)
    assert (quote.rule, quote.immediate, quote.refund_cents) == (Rule.CHATEL, True, refund)
    # and the billing page and its dialog say so
    with time_machine.travel(at, tick=False):
        page = billing_page(client, annual)
    section = squeeze(page)
    assert ("vous pouvez mettre fin à votre contrat à tout moment, sans frais. La résiliation "
            "prend effet immédiatement et la part non utilisée de la période en cours vous est "
            "remboursée sous 30 jours au plus tard.") in section
    dialog = squeeze(page.split(f'<dialog id="cancel-dialog-{annual.pk}"')[1].split(
        "</dialog>")[0])
    assert "vous pouvez mettre fin à votre contrat à tout moment, sans frais." in dialog
    assert "Votre accès prendra fin immédiatement" in dialog
    assert (f"Remboursement de la part non utilisée de la période en cours : 96,02{NBSP}€, sur "
            "votre carte sous 30 jours au plus tard.") in dialog

    # when: the customer cancels
    with django_capture_on_commit_callbacks(execute=True):
        subscription, terms = subscription_cancel(subscription=annual, now=at)
    # then: ended now, the unused part refunded through the provider
    subscription.refresh_from_db()
    assert (subscription.status, subscription.end_reason, subscription.ended_at) == (
        Status.ENDED, EndReason.REFUNDED, at)
    assert subscription.licence_active is False
    [paid_back] = Refund.objects.all()
    assert (paid_back.amount_cents, paid_back.status, paid_back.reason) == (
        refund, Refund.Status.SUCCEEDED, Refund.Reason.CANCELLATION)
    assert paid_back.charge.invoice.period_start == RENEWAL
    email = OutboxEmail.objects.get(kind="cancellation_confirmation")
    assert (f"Remboursement de la part non utilisée de la période en cours : 96,02{NBSP}€, "
            "versé sur votre carte sous 30 jours au plus tard.") in email.body_text
    # and nothing is charged again
    tick(paris(2028, 3, 10), paris(2028, 3, 11))
    assert not subscription.invoices.filter(kind=Invoice.Kind.RENEWAL,
                                            period_start__gt=RENEWAL).exists()


def test_before_the_renewal_date_there_is_no_free_exit_yet(annual, tick):
    # given: the window closed without a notice
    tick(paris(2027, 2, 20))
    # then: until the renewal, the ordinary cancellation applies
    assert notices(annual) == []
    assert chatel_free_exit(subscription=annual, now=paris(2027, 3, 10, 9, 29)) is False


def test_a_notice_the_outbox_gave_up_on_was_not_sent(annual, tick):
    # given: the notice could not be delivered (the outbox gave up on it)
    tick(paris(2027, 1, 24))
    OutboxEmail.objects.filter(kind="annual_renewal_notice").update(
        status=OutboxEmail.Status.FAILED)
    # when
    tick(RENEWAL)
    # then
    annual.refresh_from_db()
    assert annual.current_period_start == RENEWAL
    assert chatel_free_exit(subscription=annual, now=paris(2027, 3, 11)) is True


def test_the_first_period_and_a_monthly_plan_have_no_free_exit(now, tick):
    # given
    first_year = subscribed(plan=PlanFactory(annual=True), at=now)
    monthly = subscribed(plan=PlanFactory(), at=now)
    tick(paris(2026, 4, 10), paris(2026, 5, 10))
    # then
    monthly.refresh_from_db()
    assert monthly.current_period_start == paris(2026, 5, 10)
    assert chatel_free_exit(subscription=first_year, now=paris(2026, 5, 11)) is False
    assert chatel_free_exit(subscription=monthly, now=paris(2026, 5, 11)) is False


# A commitment: its end is a tacit renewal too


def test_the_end_of_a_commitment_gets_its_notice_once_and_then_no_free_exit(now, tick):
    # given: monthly, 12 months committed from 10 March 2026 (ends 10 March 2027)
    plan = PlanFactory(name="Essentiel engagement", price_cents=700, commitment_months=12)
    subscription = subscribed(plan=plan, at=now)
    renewals = [paris(2026 + (2 + k) // 12, (2 + k) % 12 + 1, 10) for k in range(1, 13)]
    # when: the jobs at each renewal, and every day around the notice's date
    days = [paris(2027, 1, d) for d in range(20, 32)] + [paris(2027, 2, d) for d in (1, 9)]
    tick(*sorted(renewals + days))
    # then: one notice, 45 days before the end of the commitment
    [email] = notices(subscription)
    assert email.occasion_key == (
        f"annual_renewal_notice:subscription-{subscription.pk}-commitment-end")
    assert email.created_at == paris(2027, 1, 24)
    assert email.subject == ("Fin de votre engagement Essentiel engagement le 10 mars 2027 : "
                             "reconduction tacite")
    assert "La période d'engagement de 12 mois" in email.body_text
    assert "de mois en mois" in email.body_text
    assert "Date limite pour refuser la reconduction : avant le 10 mars 2027 à 9 h 30" in (
        squeeze(email.body_html))
    assert "/compte/resilier/" in email.body_text
    subscription.refresh_from_db()
    assert subscription.current_period_start == paris(2027, 3, 10)
    assert chatel_free_exit(subscription=subscription, now=paris(2027, 3, 20)) is False


def test_a_commitment_too_short_for_a_notice_may_end_at_any_time_after_it(now, tick):
    # given: one month committed: the notice window closed before the customer subscribed
    plan = PlanFactory(price_cents=825, commitment_months=1)
    subscription = subscribed(plan=plan, at=now)
    tick(paris(2026, 4, 10))
    subscription.refresh_from_db()
    assert subscription.current_period_start == paris(2026, 4, 10)
    assert notices(subscription) == []
    # when: on 20 April, ten days into the 30-day period from 10 April
    at = paris(2026, 4, 20)
    quote = cancellation_quote(subscription=subscription, now=at)
    # then: 19 days unused
    assert chatel_free_exit(subscription=subscription, now=at) is True
    assert (quote.rule, quote.immediate, quote.refund_cents) == (
        Rule.CHATEL, True, unused_days_refund(990, unused=19, of=30))
    assert quote.refund_cents == 627
