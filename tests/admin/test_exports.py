"""The staff exports of the invoice list (issue 11 scopes 5 and 8): the e-reporting of consumer
sales and the accountant's export of invoices and credit notes, for staff who may view
invoices; a period form, then the file."""

import csv
import io
import json
from datetime import date, datetime, timedelta

import pytest
from django.urls import reverse

from accounts.models import CustomerType
from billing.exports.accounting import accounting_rows
from billing.exports.ereporting import ereporting_csv, ereporting_data
from billing.exports.period import Period
from billing.models import Charge, Invoice
from billing.services import invoice_create, invoice_void, refund_execute
from subscriptions.services.staff import staff_charge_refund
from tests.conftest import PARIS
from tests.factories import PlanFactory, UserFactory, subscribed

pytestmark = pytest.mark.django_db

EREPORTING = reverse("admin:billing_ereporting")
ACCOUNTING = reverse("admin:billing_accounting")
NOVEMBER = {"start": "2026-11-01", "end": "2026-11-30"}


def paris(day, hour, minute=0):
    return datetime(2026, 11, day, hour, minute, tzinfo=PARIS)


@pytest.fixture
def november(db):
    """A consumer in France paid on 2 November (0 h 30 in Paris, 1 November in UTC), refunded
    3,00 € on the 3rd, whose issued renewal of the 3rd was voided; a German professional under
    reverse charge paid on the 4th; a sale on 1 December, outside."""
    plan = PlanFactory(code="essentiel", price_cents=825)
    camille = subscribed(customer=UserFactory(first_name="Camille", last_name="Martin"),
                         plan=plan, at=paris(2, 0, 30))
    charge = Charge.objects.get(invoice__subscription=camille)
    refund = staff_charge_refund(subscription=camille, charge=charge, amount_cents=300,
                                 staff_user=UserFactory(is_staff=True), now=paris(3, 15))
    refund_execute(refund_id=refund.pk, now=paris(3, 15))
    renewal = invoice_create(
        customer=camille.customer, plan=plan, kind=Invoice.Kind.RENEWAL, subscription=camille,
        period_start=camille.current_period_end,
        period_end=camille.current_period_end + timedelta(days=30),
        description="Renouvellement", now=paris(3, 10))
    invoice_void(invoice=renewal, now=paris(3, 18))
    pro = subscribed(customer=UserFactory(billing_country="DE",
                                          customer_type=CustomerType.BUSINESS,
                                          company_name="Müller GmbH", vat_number="DE136695976"),
                     plan=plan, at=paris(4, 11), card="4000002760000016")
    # What the invoicing work records at issue: reverse charge, the customer as they were
    pro.invoices.update(reverse_charge=True, vat_rate=0, vat_cents=0, total_cents=825,
                        customer_name="Jonas Müller", customer_company="Müller GmbH",
                        customer_vat_number="DE136695976")
    subscribed(plan=plan, at=datetime(2026, 12, 1, 9, tzinfo=PARIS))
    return {"camille": camille.customer, "pro": pro.customer}


def _csv(response):
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=";"))


# The accountant's export


def test_the_accountant_export_lists_invoices_and_negative_credit_notes(support_client,
                                                                        november):
    # when
    response = support_client.get(ACCOUNTING, NOVEMBER)

    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="export-comptable_2026-11-01_2026-11-30.csv"')
    header, *rows = _csv(response)
    assert header == ["Type", "Numéro", "Date", "Facture d'origine", "N° client", "Client",
                      "Raison sociale", "N° TVA client", "Pays de facturation",
                      "Autoliquidation", "Devise", "Taux de TVA (%)", "HT", "TVA", "TTC",
                      "Date de paiement", "Moyen de paiement"]
    camille, pro = november["camille"].customer_number, november["pro"].customer_number
    assert rows == [
        ["Facture", "F2026-000001", "2026-11-02", "", camille, "Camille Martin", "", "", "FR",
         "non", "EUR", "20,00", "8,25", "1,65", "9,90", "2026-11-02", "Carte Visa •••• 4242"],
        ["Facture", "F2026-000002", "2026-11-03", "", camille, "Camille Martin", "", "", "FR",
         "non", "EUR", "20,00", "8,25", "1,65", "9,90", "", ""],
        ["Avoir", "A2026-000001", "2026-11-03", "F2026-000001", camille, "Camille Martin", "",
         "", "FR", "non", "EUR", "20,00", "-2,50", "-0,50", "-3,00", "2026-11-03",
         "Remboursement sur carte Visa •••• 4242"],
        ["Avoir", "A2026-000002", "2026-11-03", "F2026-000002", camille, "Camille Martin", "",
         "", "FR", "non", "EUR", "20,00", "-8,25", "-1,65", "-9,90", "", ""],
        ["Facture", "F2026-000003", "2026-11-04", "", pro, "Jonas Müller", "Müller GmbH",
         "DE136695976", "DE", "oui", "EUR", "0,00", "8,25", "0,00", "8,25", "2026-11-04",
         "Carte Visa •••• 0016"],
    ]


def test_the_accountant_export_reconciles_with_the_e_reporting(november):
    # given: the consumers' documents of the accountant's export
    period = Period(date(2026, 11, 1), date(2026, 11, 30))
    consumers = [row for row in accounting_rows(period) if not row.reverse_charge]

    # when
    reported = ereporting_data(period)["rows"]

    # then
    assert sum(row.net_cents for row in consumers) == sum(r["net_cents"] for r in reported)
    assert sum(row.vat_cents for row in consumers) == sum(r["vat_cents"] for r in reported)
    assert len(consumers) == sum(r["transactions"] for r in reported) == 4


def test_a_customer_name_never_runs_as_a_formula(support_client, november):
    # given
    camille = november["camille"]
    camille.invoices.update(customer_name='=HYPERLINK("http://example.com","x")',
                            customer_company="@SUM(A1)")

    # when
    header, first, *_rows = _csv(support_client.get(ACCOUNTING, NOVEMBER))

    # then
    assert (first[5], first[6]) == ("'=HYPERLINK(\"http://example.com\",\"x\")", "'@SUM(A1)")


# The e-reporting


def test_the_e_reporting_downloads_as_csv_or_json(support_client, november):
    # when
    as_csv = support_client.get(EREPORTING, {**NOVEMBER, "format": "csv"})
    as_json = support_client.get(EREPORTING, {**NOVEMBER, "format": "json"})

    # then
    period = Period(date(2026, 11, 1), date(2026, 11, 30))
    assert as_csv["Content-Disposition"] == (
        'attachment; filename="e-reporting_2026-11-01_2026-11-30.csv"')
    assert as_csv.content.decode("utf-8") == ereporting_csv(period)
    assert as_json["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(as_json.content) == ereporting_data(period)
    assert [row["day"] for row in json.loads(as_json.content)["rows"]] == [
        "2026-11-02", "2026-11-03"]


@pytest.mark.parametrize("url", [EREPORTING, ACCOUNTING])
def test_the_form_proposes_last_month(support_client, url, now):
    # when: 10 March 2026
    response = support_client.get(url)

    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert 'name="start" value="2026-02-01"' in body
    assert 'name="end" value="2026-02-28"' in body
    assert "Content-Disposition" not in response


@pytest.mark.parametrize("url", [EREPORTING, ACCOUNTING])
def test_a_period_ending_before_it_starts_gives_no_file(support_client, url):
    # when
    response = support_client.get(url, {"start": "2026-11-30", "end": "2026-11-01",
                                         "format": "csv"})

    # then
    assert response.status_code == 200
    assert "Content-Disposition" not in response
    assert "La fin de la période précède son début." in response.content.decode()


# Who may export


@pytest.mark.parametrize("url", [EREPORTING, ACCOUNTING])
def test_staff_who_may_not_view_invoices_are_refused(client, url, november):
    # given: staff without the permission to view invoices
    client.force_login(UserFactory(is_staff=True))

    # when
    responses = [client.get(url), client.get(url, {**NOVEMBER, "format": "json"})]

    # then
    assert [response.status_code for response in responses] == [403, 403]


@pytest.mark.parametrize("url", [EREPORTING, ACCOUNTING])
def test_a_customer_is_sent_to_the_admin_login(client, url, november):
    # given
    client.force_login(november["camille"])

    # when
    response = client.get(url, {**NOVEMBER, "format": "csv"})

    # then
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_the_invoice_list_links_to_both_exports(support_client):
    # when
    body = support_client.get(reverse("admin:billing_invoice_changelist")).content.decode()

    # then
    assert f'href="{EREPORTING}"' in body
    assert f'href="{ACCOUNTING}"' in body
