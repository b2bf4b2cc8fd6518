"""E-reporting of consumer sales (DESIGN §14, issue 11 scope 5): per day of the business time
zone and per VAT rate, the sums equal the invoices minus the credit notes of the range, and
the payments received are the charges minus the refunds paid; CSV, JSON and the command."""

import csv
import io
import json
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from accounts.models import CustomerType
from billing.exports.ereporting import ereporting_csv, ereporting_data, ereporting_rows
from billing.exports.period import Period
from billing.models import Charge, CreditNote, Invoice
from billing.services import invoice_create, invoice_void, refund_execute
from subscriptions.services.staff import staff_charge_refund
from tests.conftest import PARIS
from tests.factories import PlanFactory, UserFactory, subscribed

pytestmark = pytest.mark.django_db

NOVEMBER_2, NOVEMBER_3 = date(2026, 11, 2), date(2026, 11, 3)
RANGE = Period(NOVEMBER_2, NOVEMBER_3)


def paris(day, hour, minute=0):
    return datetime(2026, day.month, day.day, hour, minute, tzinfo=PARIS)


def _refund(subscription, amount_cents, at):
    charge = Charge.objects.get(invoice__subscription=subscription,
                                invoice__kind=Invoice.Kind.INITIAL)
    refund = staff_charge_refund(subscription=subscription, charge=charge,
                                 amount_cents=amount_cents,
                                 staff_user=UserFactory(is_staff=True), now=at)
    refund_execute(refund_id=refund.pk, now=at)


@pytest.fixture
def sales():
    """Consumers in France (20 %), Germany (19 %) and Finland (25,5 %) on 8,25 € HT a month,
    over 2 and 3 November 2026 in Paris (UTC+1), with documents just outside on either side
    of midnight, a business customer's sale, refunds (one of an October invoice) and an
    issued renewal invoice voided by its credit note."""
    plan = PlanFactory(code="essentiel", price_cents=825)

    def consumer(country, at, **fields):
        return subscribed(customer=UserFactory(billing_country=country, **fields), plan=plan,
                          at=at)

    consumer("FR", paris(date(2026, 11, 1), 23, 30))  # 1 November in Paris: outside
    consumer("FR", paris(NOVEMBER_2, 0, 30))  # still 1 November in UTC: inside
    consumer("FR", paris(NOVEMBER_2, 10))
    germany = consumer("DE", paris(NOVEMBER_2, 23, 30))
    consumer("FI", paris(NOVEMBER_3, 0, 15))  # still 2 November in UTC: on 3 November
    refunded = consumer("FR", paris(NOVEMBER_3, 9))
    consumer("FR", paris(date(2026, 11, 4), 0, 10))  # 3 November in UTC: outside
    consumer("FR", paris(NOVEMBER_2, 11), customer_type=CustomerType.BUSINESS,
             company_name="Dupont SARL")  # a professional: not in the e-reporting
    october = consumer("FR", paris(date(2026, 10, 3), 10))

    _refund(october, 500, paris(NOVEMBER_2, 12))  # an October sale, refunded in the range
    _refund(refunded, 300, paris(NOVEMBER_3, 15))
    _refund(germany, 982, paris(NOVEMBER_3, 16))  # in full
    with transaction.atomic():
        renewal = invoice_create(
            customer=october.customer, plan=plan, kind=Invoice.Kind.RENEWAL,
            subscription=october, period_start=october.current_period_end,
            period_end=october.current_period_end + timedelta(days=30),
            description="Renouvellement", now=paris(NOVEMBER_3, 10))
        invoice_void(invoice=renewal, now=paris(NOVEMBER_3, 18))


def test_the_rows_per_day_and_rate(sales):
    # when
    rows = ereporting_rows(RANGE)

    # then: (day, rate, net, VAT, total, invoices, credit notes, received, VAT received)
    assert [(row.day, str(row.vat_rate), row.net_cents, row.vat_cents, row.total_cents,
             row.invoices, row.credit_notes, row.received_cents, row.received_vat_cents)
            for row in rows] == [
        # 00:30 and 10:00 (825 + 165 each), minus the October refund of 5,00 € TTC (417 + 83);
        # received: 9,90 + 9,90 − 5,00
        (NOVEMBER_2, "19.00", 825, 157, 982, 1, 0, 982, 157),
        (NOVEMBER_2, "20.00", 1233, 247, 1480, 2, 1, 1480, 247),
        # the German sale refunded in full
        (NOVEMBER_3, "19.00", -825, -157, -982, 0, 1, -982, -157),
        # 09:00 and the renewal (825 + 165 each), minus the renewal's cancelling credit note
        # and the 3,00 € refund (250 + 50); received: 9,90 − 3,00 (the renewal was not paid)
        (NOVEMBER_3, "20.00", 575, 115, 690, 2, 2, 690, 115),
        (NOVEMBER_3, "25.50", 825, 210, 1035, 1, 0, 1035, 210),
    ]
    assert {row.currency for row in rows} == {"EUR"}
    assert [row.transactions for row in rows] == [1, 3, 1, 4, 1]


def _business_day(moment):
    return moment.astimezone(PARIS).date()


def test_the_sums_per_day_and_rate_equal_the_invoices_minus_the_credit_notes(sales):
    # given: the consumers' documents of the range, added up one by one
    expected = defaultdict(lambda: [0, 0, 0])
    for invoice in Invoice.objects.filter(number__isnull=False,
                                          customer__customer_type=CustomerType.INDIVIDUAL):
        if NOVEMBER_2 <= _business_day(invoice.issued_at) <= NOVEMBER_3:
            key = (_business_day(invoice.issued_at), invoice.vat_rate)
            for i, cents in enumerate([invoice.net_cents, invoice.vat_cents,
                                       invoice.total_cents]):
                expected[key][i] += cents
    for note in CreditNote.objects.filter(
            invoice__customer__customer_type=CustomerType.INDIVIDUAL).select_related("invoice"):
        if NOVEMBER_2 <= _business_day(note.issued_at) <= NOVEMBER_3:
            key = (_business_day(note.issued_at), note.invoice.vat_rate)
            for i, cents in enumerate([note.net_cents, note.vat_cents, note.total_cents]):
                expected[key][i] -= cents

    # when
    rows = ereporting_rows(RANGE)

    # then
    assert {(row.day, row.vat_rate): [row.net_cents, row.vat_cents, row.total_cents]
            for row in rows} == dict(expected)
    assert len(expected) == 5


def test_the_payments_received_are_the_charges_minus_the_refunds_paid(sales):
    # given
    charged = sum(Charge.objects.filter(
        status=Charge.Status.SUCCEEDED, customer__customer_type=CustomerType.INDIVIDUAL,
        settled_at__gte=RANGE.since, settled_at__lt=RANGE.until).values_list("amount_cents",
                                                                            flat=True))
    refunded = sum(CreditNote.objects.filter(refund__isnull=False).values_list("total_cents",
                                                                              flat=True))

    # when
    rows = ereporting_rows(RANGE)

    # then
    assert sum(row.received_cents for row in rows) == charged - refunded == 3205


def test_a_day_is_the_business_time_zones(sales, settings):
    # when: the same documents on the calendar of UTC
    settings.BUSINESS_TIME_ZONE = "UTC"
    days = {row.day for row in ereporting_rows(Period(date(2026, 11, 1), date(2026, 11, 1)))}

    # then: 00:30 in Paris on 2 November was 1 November
    assert days == {date(2026, 11, 1)}


def test_the_csv_opens_in_a_french_excel(sales):
    # when
    text = ereporting_csv(RANGE)

    # then
    assert text.startswith("\ufeff")
    lines = list(csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=";"))
    assert lines[0] == ["Jour", "Devise", "Taux de TVA (%)", "Base HT", "TVA", "TTC",
                        "Transactions", "Factures", "Avoirs", "Encaissements TTC",
                        "TVA sur encaissements"]
    assert lines[2] == ["2026-11-02", "EUR", "20,00", "12,33", "2,47", "14,80", "3", "2", "1",
                        "14,80", "2,47"]
    assert lines[3] == ["2026-11-03", "EUR", "19,00", "-8,25", "-1,57", "-9,82", "1", "0", "1",
                        "-9,82", "-1,57"]
    assert lines[5][2] == "25,50"
    assert len(lines) == 6
    assert "\r\n" in text


def test_the_json_has_integer_cents(sales):
    # when
    data = json.loads(json.dumps(ereporting_data(RANGE)))

    # then
    assert {key: data[key] for key in ("from", "to", "time_zone")} == {
        "from": "2026-11-02", "to": "2026-11-03", "time_zone": "Europe/Paris"}
    assert data["rows"][1] == {
        "day": "2026-11-02", "currency": "EUR", "vat_rate": "20.00", "net_cents": 1233,
        "vat_cents": 247, "total_cents": 1480, "transactions": 3, "invoices": 2,
        "credit_notes": 1, "received_cents": 1480, "received_vat_cents": 247}
    assert len(data["rows"]) == 5


def test_the_command_writes_either_format(sales):
    # when
    as_json, as_csv = io.StringIO(), io.StringIO()
    call_command("ereporting", "--from", "2026-11-02", "--to", "2026-11-03", "--format",
                 "json", stdout=as_json)
    call_command("ereporting", "--from", "2026-11-02", "--to", "2026-11-03", "--format",
                 "csv", stdout=as_csv)

    # then
    assert json.loads(as_json.getvalue()) == ereporting_data(RANGE)
    assert as_csv.getvalue() == ereporting_csv(RANGE)


def test_the_command_covers_the_days_asked(sales):
    # when
    out = io.StringIO()
    call_command("ereporting", "--from", "2026-11-03", "--to", "2026-11-03", "--format",
                 "json", stdout=out)

    # then
    assert {row["day"] for row in json.loads(out.getvalue())["rows"]} == {"2026-11-03"}


@pytest.mark.parametrize(("start", "end"), [("2026-11-31", "2026-12-01"),
                                            ("2026-11-03", "2026-11-02")])
def test_the_command_refuses_a_wrong_period(start, end):
    with pytest.raises(CommandError):
        call_command("ereporting", "--from", start, "--to", end, stdout=io.StringIO())


def test_a_period_with_nothing_has_no_rows():
    assert ereporting_rows(Period(date(2026, 1, 1), date(2026, 1, 31))) == []
    assert ereporting_csv(Period(date(2026, 1, 1), date(2026, 1, 31))).count("\r\n") == 1


def test_a_reverse_charge_invoice_is_not_a_consumer_sale(sales):
    # given: a sale whose invoice says reverse charge
    Invoice.objects.filter(issued_at=paris(NOVEMBER_3, 0, 15)).update(reverse_charge=True)

    # when
    rates = {row.vat_rate for row in ereporting_rows(RANGE)}

    # then
    assert Decimal("25.50") not in rates
