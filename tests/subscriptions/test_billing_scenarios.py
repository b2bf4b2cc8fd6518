"""Clock-stepped billing scenarios (DESIGN §4, §5, §6, §8), in the style of killbill's beatrix
and lago's scenario specs.

The clock advances tick by tick over up to two years; at every tick all the scheduled jobs run
as of that instant, and right after it the exact invoices, charges, refunds, billing emails and
subscription state are compared with what a declarative spec says must exist by then, so a
duplicate or a missing document fails at the first tick after it happens. Ticks fall every day
where something happens (the dunning week) and around every date something is due (the
minute before, the instant, the next day); in between, where nothing can happen, they are
sparse, which keeps two years of jobs within seconds.

The expected dates are written out, or derived by the plain calendar rule "same day of the
month, clamped to the month's length, 09:30 on the Paris wall clock" in ``monthly_from``;
``subscriptions.periods`` is deliberately not used here.
"""

import calendar
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django.db.models import OuterRef, Subquery

from accounts.models import User
from billing.models import Charge, CreditNote, Invoice, Refund
from billing.services import payment_method_add
from notifications.models import OutboxEmail
from subscriptions.jobs import run_due_jobs
from subscriptions.models import Subscription
from subscriptions.services import subscription_cancel
from subscriptions.services.renew import subscription_pay_now
from tests.factories import PlanFactory, UserFactory, card_token, subscribed

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
DECLINED_CARD = "4000000000000341"
SUCCESS_CARD = "4242424242424242"
# Reminder kinds are somebody else's: only these are asserted here.
BILLING_EMAILS = (
    "welcome",
    "renewal_receipt",
    "payment_failed",
    "subscription_suspended",
    "subscription_reactivated",
    "cancellation_confirmation",
)
MONTHLY_TOTAL_FR = 990  # 8,25 € net + 20 % VAT
ANNUAL_TOTAL_FR = 9900  # 82,50 € net + 20 % VAT


# -- calendar, written independently of subscriptions.periods ---------------------------------


def paris(year, month, day, hour=9, minute=30) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def monthly_from(anchor: datetime, count: int) -> list[datetime]:
    """The ``count`` monthly boundaries after ``anchor``: its day of the month clamped to each
    month's length, at the same Paris wall-clock time."""
    boundaries = []
    for k in range(1, count + 1):
        years, month_zero = divmod(anchor.month - 1 + k, 12)
        year, month = anchor.year + years, month_zero + 1
        day = min(anchor.day, calendar.monthrange(year, month)[1])
        boundaries.append(paris(year, month, day, anchor.hour, anchor.minute))
    return boundaries


def daily(first: date, last: date, at: time = time(9, 30)) -> list[datetime]:
    """One tick a day at ``at`` Paris wall-clock time, ``first`` and ``last`` included."""
    return [
        datetime.combine(first + timedelta(days=n), at, tzinfo=PARIS)
        for n in range((last - first).days + 1)
    ]


def around(*instants: datetime) -> list[datetime]:
    """The minute before each instant, the instant itself and the same time the next day: a job
    that runs early, late, not at all or twice shows at one of these ticks."""
    ticks = set()
    for instant in instants:
        ticks |= {instant - timedelta(minutes=1), instant, instant + timedelta(days=1)}
    return sorted(ticks)


def show(instant: datetime | None) -> str | None:
    return None if instant is None else f"{instant.astimezone(PARIS):%Y-%m-%d %H:%M:%S %z}"


# -- the spec: what must exist, and since which instant ---------------------------------------


@dataclass
class Document:
    at: datetime
    fields: tuple
    history: list[tuple[datetime, str]]

    def becomes(self, status: str, *, at: datetime) -> "Document":
        self.history.append((at, status))
        return self

    def status_at(self, instant: datetime) -> str:
        return [status for since, status in self.history if since <= instant][-1]


@dataclass
class Spec:
    """The expected ledger, written as facts with the instant from which each one holds."""

    invoices: list[Document] = field(default_factory=list)
    charges: list[tuple[Document, Document]] = field(default_factory=list)
    refunds: list[tuple[Document, datetime, int, int]] = field(default_factory=list)
    emails: list[tuple[datetime, str, str]] = field(default_factory=list)
    states: dict[str, list[tuple[datetime, dict]]] = field(default_factory=dict)

    def invoice(self, who, *, at, kind, period_start, total, status="paid") -> Document:
        document = Document(at, (who, kind, show(period_start), total), [(at, status)])
        self.invoices.append(document)
        return document

    def charge(self, invoice: Document, *, at, attempt, status) -> Document:
        document = Document(at, (attempt,), [(at, status)])
        self.charges.append((invoice, document))
        return document

    def refund(self, invoice: Document, *, at, amount_cents, credit_note_total) -> None:
        self.refunds.append((invoice, at, amount_cents, credit_note_total))

    def cancelling_credit_note(self, invoice: Document, *, at, total) -> None:
        """An issued invoice nobody will collect is cancelled by a credit note (no refund)."""
        invoice.becomes("void", at=at)
        self.refunds.append((invoice, at, None, total))

    def email(self, who, kind, *, at) -> None:
        self.emails.append((at, who, kind))

    def state(self, who, *, since, **changes) -> None:
        history = self.states.setdefault(who, [])
        current = dict(history[-1][1]) if history else {
            "status": "active", "licence_active": True, "auto_renew": True, "ends_at": None,
            "end_reason": "", "ended_at": None, "next_retry_at": None,
        }
        current.update(
            {key: show(value) if isinstance(value, datetime) else value
             for key, value in changes.items()}
        )
        history.append((since, current))

    # the usual facts, as the design states them

    def subscribed(self, who, *, at, period_end, total=MONTHLY_TOTAL_FR) -> Document:
        invoice = self.invoice(who, at=at, kind="initial", period_start=at, total=total)
        self.charge(invoice, at=at, attempt=1, status="succeeded")
        self.email(who, "welcome", at=at)
        self.state(who, since=at, current_period_start=at, current_period_end=period_end)
        return invoice

    def renewed(self, who, *, at, period, total=MONTHLY_TOTAL_FR) -> Document:
        """§5: the next period is invoiced at its start, charged, and a receipt goes out."""
        invoice = self.invoice(who, at=at, kind="renewal", period_start=period[0], total=total)
        self.charge(invoice, at=at, attempt=1, status="succeeded")
        self.email(who, "renewal_receipt", at=at)
        self.state(who, since=at, current_period_start=period[0], current_period_end=period[1])
        return invoice

    def as_of(self, instant: datetime) -> dict:
        numbers, per_year = {}, {}
        for invoice in sorted(self.invoices, key=lambda document: document.at):
            year = invoice.at.astimezone(PARIS).year
            per_year[year] = per_year.get(year, 0) + 1
            numbers[id(invoice)] = f"F{year}-{per_year[year]:06d}"
        issued = [invoice for invoice in self.invoices if invoice.at <= instant]
        credit_notes = sorted((at, total) for _, at, _, total in self.refunds if at <= instant)
        return {
            "invoices": sorted(
                (invoice.fields[0], numbers[id(invoice)], *invoice.fields[1:],
                 invoice.status_at(instant))
                for invoice in issued
            ),
            "charges": sorted(
                (numbers[id(invoice)], *charge.fields, charge.status_at(instant))
                for invoice, charge in self.charges if charge.at <= instant
            ),
            "refunds": sorted(
                (numbers[id(invoice)], amount, "succeeded")
                for invoice, at, amount, _ in self.refunds if at <= instant and amount is not None
            ),
            "credit_notes": sorted(
                (f"A{at.astimezone(PARIS).year}-{n:06d}", total)
                for n, (at, total) in enumerate(credit_notes, start=1)
            ),
            "emails": sorted(
                (who, kind, show(at), "sent") for at, who, kind in self.emails if at <= instant
            ),
            "subscriptions": {
                who: [state for since, state in history if since <= instant][-1]
                for who, history in self.states.items()
                if history[0][0] <= instant
            },
        }


def observed() -> dict:
    invoices = Invoice.objects.values_list(
        "customer__email", "number", "kind", "period_start", "total_cents", "status")
    retry_at = Invoice.objects.filter(subscription=OuterRef("pk"), kind=Invoice.Kind.RENEWAL,
                                      status=Invoice.Status.OPEN).values("next_retry_at")[:1]
    subscriptions = Subscription.objects.annotate(next_retry_at=Subquery(retry_at)).values(
        "customer__email", "status", "licence_active", "auto_renew", "ends_at", "end_reason",
        "ended_at", "next_retry_at", "current_period_start", "current_period_end")
    return {
        "invoices": sorted(
            (who, number, kind, show(start), total, status)
            for who, number, kind, start, total, status in invoices
        ),
        "charges": sorted(Charge.objects.values_list("invoice__number", "attempt", "status")),
        "refunds": sorted(
            Refund.objects.values_list("charge__invoice__number", "amount_cents", "status")
        ),
        "credit_notes": sorted(CreditNote.objects.values_list("number", "total_cents")),
        "emails": sorted(
            (who, kind, show(at), status)
            for who, kind, at, status in OutboxEmail.objects.filter(
                kind__in=BILLING_EMAILS).values_list("recipient", "kind", "created_at", "status")
        ),
        "subscriptions": {
            state["customer__email"]: {
                key: show(value) if isinstance(value, datetime) else value
                for key, value in state.items() if key != "customer__email"
            }
            for state in subscriptions
        },
    }


# -- driving the clock ------------------------------------------------------------------------


class Clock:
    """``run(spec, ticks)``: every due job at each tick, then the whole ledger compared with the
    spec. ``at(instant)``: anything else (a customer's click) at an instant, with the frozen
    clock moved there and the after-commit work (email delivery, refunds) executed."""

    def __init__(self, capture_on_commit_callbacks):
        self.capture = capture_on_commit_callbacks
        self.now = None

    @contextmanager
    def at(self, instant):
        assert self.now is None or instant >= self.now, "the clock only moves forward"
        self.now = instant
        with time_machine.travel(instant, tick=False), self.capture(execute=True):
            yield

    def run(self, spec: Spec, ticks) -> None:
        for tick in ticks:
            with self.at(tick):
                run_due_jobs(now=tick)
            assert observed() == spec.as_of(tick), f"after the tick at {show(tick)}"


@pytest.fixture
def clock(django_capture_on_commit_callbacks):
    return Clock(django_capture_on_commit_callbacks)


def customer(email, country="FR"):
    return UserFactory(email=email, billing_country=country)


def subscribe(clock, *, who, plan, at, card=SUCCESS_CARD):
    with clock.at(at):
        return subscribed(customer=customer(who), plan=plan, at=at, card=card)


def add_card(clock, subscription, number, *, at):
    with clock.at(at):
        payment_method_add(customer=subscription.customer,
                           token=card_token(number, 12, at.year + 3, "123"), now=at)


# -- renewals on the right dates --------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "written_out", "every_day_until"),
    [
        (31, {1: paris(2027, 2, 28), 2: paris(2027, 3, 31), 3: paris(2027, 4, 30),
              9: paris(2027, 10, 31), 12: paris(2028, 1, 31), 13: paris(2028, 2, 29),
              14: paris(2028, 3, 31), 24: paris(2029, 1, 31), 25: paris(2029, 2, 28)},
         date(2027, 5, 1)),
        (30, {1: paris(2027, 2, 28), 2: paris(2027, 3, 30), 3: paris(2027, 4, 30),
              13: paris(2028, 2, 29), 14: paris(2028, 3, 30), 25: paris(2029, 2, 28)},
         None),
        (29, {1: paris(2027, 2, 28), 2: paris(2027, 3, 29), 12: paris(2028, 1, 29),
              13: paris(2028, 2, 29), 14: paris(2028, 3, 29), 25: paris(2029, 2, 28)},
         None),
    ],
)
def test_a_monthly_subscription_renews_on_its_day_clamped_to_short_months_for_two_years(
    clock, day, written_out, every_day_until
):
    # given: bought on January <day> 2027 at 09:30, Paris time
    who, start = "anchor@example.com", paris(2027, 1, day)
    boundaries = monthly_from(start, 26)
    assert {k: boundaries[k - 1] for k in written_out} == written_out
    subscription = subscribe(clock, who=who, plan=PlanFactory(), at=start)
    spec = Spec()
    spec.subscribed(who, at=start, period_end=boundaries[0])
    for k in range(25):
        spec.renewed(who, at=boundaries[k], period=(boundaries[k], boundaries[k + 1]))
    # ticks around every boundary for two years (and every day of the first quarter, with its
    # clamped February, for the 31st)
    ticks = {*around(*boundaries[:25])}
    if every_day_until:
        ticks |= {*daily(start.date() + timedelta(days=1), every_day_until)}
    first_renewal = boundaries[0]
    clock.run(spec, sorted(tick for tick in ticks if tick < first_renewal))
    # when: the first renewal is run by the time-travel command (a naive --at is Paris time),
    # then the jobs at every later tick
    output = StringIO()
    with clock.at(first_renewal):
        call_command("billing_tick", "--at", f"{first_renewal:%Y-%m-%dT%H:%M}", stdout=output)
    # then
    assert "renew: 1" in output.getvalue()
    assert observed() == spec.as_of(first_renewal)
    clock.run(spec, sorted(tick for tick in ticks if tick > first_renewal))
    subscription.refresh_from_db()
    assert subscription.billing_anchor == start


def test_an_annual_subscription_anchored_on_february_29_renews_on_february_28_until_a_leap_year(
    clock,
):
    # given
    who, start = "leap@example.com", paris(2028, 2, 29)
    anniversaries = [paris(2029, 2, 28), paris(2030, 2, 28), paris(2031, 2, 28),
                     paris(2032, 2, 29), paris(2033, 2, 28)]
    subscribe(clock, who=who, plan=PlanFactory(annual=True), at=start)
    spec = Spec()
    spec.subscribed(who, at=start, period_end=anniversaries[0], total=ANNUAL_TOTAL_FR)
    for k in range(4):
        spec.renewed(who, at=anniversaries[k], period=(anniversaries[k], anniversaries[k + 1]),
                     total=ANNUAL_TOTAL_FR)
    # when: every month for two years (nothing is due between anniversaries), around each
    # anniversary, and on Feb 28 of the leap year 2032, which is not one
    ticks = {*monthly_from(start, 24), *around(*anniversaries[:4]), paris(2032, 2, 28)}
    # then
    clock.run(spec, sorted(ticks))


def test_a_monthly_subscription_keeps_renewing_at_0930_paris_time_across_dst_changes(clock):
    # given: bought at 09:30 on Feb 15 2027; summer time runs from Mar 28 to Oct 31 2027 and
    # from Mar 26 2028, so 09:30 in Paris is 08:30 UTC in winter and 07:30 UTC in summer
    who, start = "dst@example.com", paris(2027, 2, 15)
    renewals = [
        datetime(2027, 3, 15, 8, 30, tzinfo=UTC),
        datetime(2027, 4, 15, 7, 30, tzinfo=UTC),
        datetime(2027, 5, 15, 7, 30, tzinfo=UTC),
        datetime(2027, 6, 15, 7, 30, tzinfo=UTC),
        datetime(2027, 7, 15, 7, 30, tzinfo=UTC),
        datetime(2027, 8, 15, 7, 30, tzinfo=UTC),
        datetime(2027, 9, 15, 7, 30, tzinfo=UTC),
        datetime(2027, 10, 15, 7, 30, tzinfo=UTC),
        datetime(2027, 11, 15, 8, 30, tzinfo=UTC),
        datetime(2027, 12, 15, 8, 30, tzinfo=UTC),
        datetime(2028, 1, 15, 8, 30, tzinfo=UTC),
        datetime(2028, 2, 15, 8, 30, tzinfo=UTC),
        datetime(2028, 3, 15, 8, 30, tzinfo=UTC),
        datetime(2028, 4, 15, 7, 30, tzinfo=UTC),
        datetime(2028, 5, 15, 7, 30, tzinfo=UTC),
    ]
    assert {show(instant)[11:] for instant in renewals} == {"09:30:00 +0100", "09:30:00 +0200"}
    subscribe(clock, who=who, plan=PlanFactory(), at=start)
    spec = Spec()
    spec.subscribed(who, at=start, period_end=renewals[0])
    for k in range(14):
        spec.renewed(who, at=renewals[k], period=(renewals[k], renewals[k + 1]))
    # when: ticks at 09:29 and 09:30 Paris time on every renewal day and the day after, and on
    # the days the clocks change
    dst_days = [paris(2027, 3, 28), paris(2027, 10, 31), paris(2028, 3, 26)]
    # then: renewed at 09:30 local every month, never an hour early or late
    clock.run(spec, sorted({*around(*renewals[:14]), *dst_days}))


# -- VAT ----------------------------------------------------------------------------------------


def test_each_invoice_carries_the_vat_of_the_customers_billing_country_when_it_is_issued(
        clock, settings):
    # given: 8,25 € net a month (82,50 € a year) for customers in several countries, the
    # vendor registered for VAT in Switzerland
    settings.VAT_NON_EU_RATES = {"CH": "8.1"}
    start = paris(2027, 1, 10)
    renewals = [paris(2027, 2, 10), paris(2027, 3, 10), paris(2027, 4, 10), paris(2027, 5, 10)]
    monthly, annual = PlanFactory(), PlanFactory(annual=True)
    expected = {  # email: (country, plan, net, VAT, total), VAT rounded half up to the cent
        "fr@example.com": ("FR", monthly, 825, 165, 990),
        "de@example.com": ("DE", monthly, 825, 157, 982),  # 156,75 → 157
        "it@example.com": ("IT", monthly, 825, 182, 1007),  # 181,50 → 182
        "ch@example.com": ("CH", monthly, 825, 67, 892),  # 66,825 → 67
        "lu@example.com": ("LU", monthly, 825, 140, 965),  # 140,25 → 140
        "be@example.com": ("BE", monthly, 825, 173, 998),  # 173,25 → 173
        "us@example.com": ("US", monthly, 825, 0, 825),  # outside the EU: no VAT
        "it-annual@example.com": ("IT", annual, 8250, 1815, 10065),
        "ch-annual@example.com": ("CH", annual, 8250, 668, 8918),  # 668,25 → 668
    }
    rates = {"FR": Decimal(20), "DE": Decimal(19), "IT": Decimal(22), "CH": Decimal("8.1"),
             "LU": Decimal(17), "BE": Decimal(21), "US": Decimal(0)}
    spec, splits = Spec(), []
    for who, (country, plan, net, vat, total) in expected.items():
        with clock.at(start):
            subscribed(customer=customer(who, country), plan=plan, at=start)
        period_end = renewals[0] if plan == monthly else paris(2028, 1, 10)
        spec.subscribed(who, at=start, period_end=period_end, total=total)
        splits.append((who, show(start), rates[country], net, vat, total))
    moves_to_germany = paris(2027, 3, 20, 15, 0)
    for k in range(3):
        for who, (country, plan, net, vat, total) in expected.items():
            if plan != monthly:
                continue
            if who == "fr@example.com" and renewals[k] > moves_to_germany:
                country, vat, total = "DE", 157, 982
            spec.renewed(who, at=renewals[k], period=(renewals[k], renewals[k + 1]), total=total)
            splits.append((who, show(renewals[k]), rates[country], net, vat, total))
    ticks = around(*renewals[:3])
    # when: the French customer moves to Germany on Mar 20, between two renewals
    clock.run(spec, [tick for tick in ticks if tick < moves_to_germany])
    User.objects.filter(email="fr@example.com").update(billing_country="DE")
    clock.run(spec, [tick for tick in ticks if tick > moves_to_germany])
    # then: the net / VAT / total split of every invoice and of its line
    invoices = Invoice.objects.select_related("customer").prefetch_related("lines")
    assert sorted(
        (i.customer.email, show(i.period_start), i.vat_rate, i.net_cents, i.vat_cents,
         i.total_cents)
        for i in invoices
    ) == sorted(splits)
    assert all(
        [(line.net_cents, line.vat_cents, line.total_cents) for line in i.lines.all()]
        == [(i.net_cents, i.vat_cents, i.total_cents)]
        for i in invoices
    )


# -- failed payments (§6) -----------------------------------------------------------------------

BOUGHT = paris(2027, 2, 25)
RENEWAL = paris(2027, 3, 25)  # attempt 1; summer time starts on Sunday Mar 28 2027
RETRIES = [paris(2027, 3, 26), paris(2027, 3, 28), paris(2027, 4, 1)]  # +1, +3, +7 days
NEXT_RENEWAL = paris(2027, 4, 25)


def _subscribed_then_card_always_fails(clock, who):
    """Subscribed on a good card, then a card that is always declined becomes the default."""
    subscription = subscribe(clock, who=who, plan=PlanFactory(), at=BOUGHT)
    add_card(clock, subscription, DECLINED_CARD, at=paris(2027, 3, 1, 12, 0))
    return subscription


def _failures_spec(spec, who, unpaid, *, attempts):
    """§6 with the card always declined: past due with an email after each of the scheduled
    attempts 1–3 (the next one at +1, +3, +7 Paris calendar days from the first), suspended
    with an email after the fourth. ``attempts``: (instant, attempt number) of every charge."""
    for at, attempt in attempts:
        spec.charge(unpaid, at=at, attempt=attempt, status="failed")
    for at, retry_at in zip([RENEWAL, *RETRIES[:2]], RETRIES, strict=True):
        spec.email(who, "payment_failed", at=at)
        spec.state(who, since=at, status="past_due", next_retry_at=retry_at)
    spec.email(who, "subscription_suspended", at=RETRIES[2])
    spec.state(who, since=RETRIES[2], status="suspended", licence_active=False,
               next_retry_at=None)


def test_a_card_that_always_fails_is_retried_three_times_then_suspended_and_paying_reactivates(
    clock,
):
    # given
    who = "dunning@example.com"
    subscription = _subscribed_then_card_always_fails(clock, who)
    spec = Spec()
    spec.subscribed(who, at=BOUGHT, period_end=RENEWAL)
    unpaid = spec.invoice(who, at=RENEWAL, kind="renewal", period_start=RENEWAL,
                          total=MONTHLY_TOTAL_FR, status="open")
    _failures_spec(spec, who, unpaid, attempts=[
        (RENEWAL, 1), (RETRIES[0], 2), (RETRIES[1], 3), (RETRIES[2], 4),
    ])
    paid_at = paris(2027, 4, 3, 15, 0)
    spec.charge(unpaid, at=paid_at, attempt=5, status="succeeded")
    unpaid.becomes("paid", at=paid_at)
    spec.email(who, "subscription_reactivated", at=paid_at)
    spec.state(who, since=paid_at, status="active", licence_active=True,
               current_period_start=RENEWAL, current_period_end=NEXT_RENEWAL)
    later = [NEXT_RENEWAL, paris(2027, 5, 25), paris(2027, 6, 25)]
    for k in range(2):
        spec.renewed(who, at=later[k], period=(later[k], later[k + 1]))
    # when: every day of the dunning week and after
    clock.run(spec, [RENEWAL - timedelta(minutes=1), *daily(RENEWAL.date(), date(2027, 4, 3))])
    # then: the customer adds a working card and pays the open invoice
    add_card(clock, subscription, SUCCESS_CARD, at=paid_at)
    with clock.at(paid_at):
        charge = subscription_pay_now(subscription=subscription, now=paid_at)
    assert (charge.status, charge.initiated_by) == ("succeeded", "customer")
    assert observed() == spec.as_of(paid_at)
    subscription.refresh_from_db()
    assert subscription.current_period_start == Invoice.objects.get(kind="renewal").period_start
    # and it renews as usual on the working card, on the dates it always had
    clock.run(spec, [paris(2027, 4, 4), *around(*later[:2])])


def test_a_suspended_subscription_never_paid_ends_unpaid_when_the_unpaid_period_is_over(clock):
    # given: while past due the customer clicks "Payer maintenant" with the same declined card:
    # refused, no email, and not one of the four scheduled attempts
    who = "unpaid@example.com"
    subscription = _subscribed_then_card_always_fails(clock, who)
    clicked_at = paris(2027, 3, 27, 12, 0)
    spec = Spec()
    spec.subscribed(who, at=BOUGHT, period_end=RENEWAL)
    unpaid = spec.invoice(who, at=RENEWAL, kind="renewal", period_start=RENEWAL,
                          total=MONTHLY_TOTAL_FR, status="open")
    _failures_spec(spec, who, unpaid, attempts=[
        (RENEWAL, 1), (RETRIES[0], 2), (clicked_at, 3), (RETRIES[1], 4), (RETRIES[2], 5),
    ])
    spec.cancelling_credit_note(unpaid, at=NEXT_RENEWAL, total=MONTHLY_TOTAL_FR)
    spec.state(who, since=NEXT_RENEWAL, status="ended", end_reason="unpaid",
               ended_at=NEXT_RENEWAL, ends_at=NEXT_RENEWAL, auto_renew=False)
    clock.run(spec, [RENEWAL - timedelta(minutes=1), *daily(RENEWAL.date(), date(2027, 3, 27))])
    with clock.at(clicked_at):
        refused = subscription_pay_now(subscription=subscription, now=clicked_at)
    assert (refused.status, refused.failure_code) == ("failed", "card_declined")
    assert observed() == spec.as_of(clicked_at)
    # when: the dunning week goes on, then the unpaid period runs out
    clock.run(spec, daily(date(2027, 3, 28), date(2027, 4, 2)))
    clock.run(spec, around(NEXT_RENEWAL))
    # then: ended (unpaid) when the period is over, its invoice void, and never renewed
    clock.run(spec, monthly_from(NEXT_RENEWAL, 22))
    subscription.refresh_from_db()
    assert subscription.licence_active is False


# -- cancellation (§8) --------------------------------------------------------------------------


def test_a_cancelled_monthly_subscription_is_not_renewed_and_expires_at_the_end_of_its_period(
    clock,
):
    # given: bought Jan 31 2027, cancelled Feb 20, after the 14-day window: no refund
    who = "monthly-cancel@example.com"
    start, cancelled_at, ends_at = paris(2027, 1, 31), paris(2027, 2, 20, 11, 0), paris(2027, 2, 28)
    subscription = subscribe(clock, who=who, plan=PlanFactory(), at=start)
    spec = Spec()
    spec.subscribed(who, at=start, period_end=ends_at)
    spec.email(who, "cancellation_confirmation", at=cancelled_at)
    spec.state(who, since=cancelled_at, auto_renew=False, ends_at=ends_at)
    spec.state(who, since=ends_at, status="ended", licence_active=False, end_reason="expired",
               ended_at=ends_at)
    clock.run(spec, [paris(2027, 2, 1), paris(2027, 2, 14), paris(2027, 2, 20)])
    # when
    with clock.at(cancelled_at):
        _, terms = subscription_cancel(subscription=subscription, now=cancelled_at)
    # then
    assert (terms.immediate, terms.refund_cents, terms.access_ends_at) == (False, 0, ends_at)
    assert observed() == spec.as_of(cancelled_at)
    clock.run(spec, sorted({*around(ends_at), *monthly_from(start, 24)}))


def test_a_cancelled_annual_subscription_ends_with_its_monthly_slice_and_is_never_renewed(
    clock,
):
    # given: annual, bought Jan 31 2027, cancelled Feb 20 (after the 14-day window): access
    # until the end of the first monthly slice, Feb 28 (clamped); 11 of 12 months refunded
    who = "annual-cancel@example.com"
    start, cancelled_at, ends_at = paris(2027, 1, 31), paris(2027, 2, 20, 11, 0), paris(2027, 2, 28)
    subscription = subscribe(clock, who=who, plan=PlanFactory(annual=True), at=start)
    spec = Spec()
    initial = spec.subscribed(who, at=start, period_end=paris(2028, 1, 31), total=ANNUAL_TOTAL_FR)
    spec.email(who, "cancellation_confirmation", at=cancelled_at)
    spec.refund(initial, at=cancelled_at, amount_cents=9075, credit_note_total=9075)
    spec.state(who, since=cancelled_at, auto_renew=False, ends_at=ends_at)
    spec.state(who, since=ends_at, status="ended", licence_active=False, end_reason="expired",
               ended_at=ends_at)
    clock.run(spec, [paris(2027, 2, 1), paris(2027, 2, 14), paris(2027, 2, 20)])
    # when
    with clock.at(cancelled_at):
        _, terms = subscription_cancel(subscription=subscription, now=cancelled_at)
    # then
    assert (terms.immediate, terms.refund_cents, terms.access_ends_at) == (False, 9075, ends_at)
    assert observed() == spec.as_of(cancelled_at)
    anniversaries = around(paris(2028, 1, 31), paris(2029, 1, 31))
    clock.run(spec, sorted({*around(ends_at), *monthly_from(start, 24), *anniversaries}))
