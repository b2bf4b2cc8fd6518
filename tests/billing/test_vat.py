"""The VAT rate of an invoice or a price (DESIGN §3; issue 11 item 1): the 27 member states'
standard rates, dated; the invoice's date picks the rate; no VAT outside the EU unless the
vendor is registered there; French VAT for all under the one-stop-shop threshold."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from billing.amounts import tax_from_net
from billing.models import VatRate
from billing.selectors import plan_price
from billing.services import invoice_create
from billing.vat import MissingVatRate, vat_rate
from billing.vat_rates import EU_COUNTRIES
from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db

DESIGN_RATES = {
    "AT": "20", "BE": "21", "BG": "20", "CY": "19", "CZ": "21", "DE": "19", "DK": "25",
    "EE": "24", "GR": "24", "ES": "21", "FI": "25.5", "FR": "20", "HR": "25", "HU": "27",
    "IE": "23", "IT": "22", "LT": "21", "LU": "17", "LV": "21", "MT": "18", "NL": "21",
    "PL": "23", "PT": "23", "RO": "21", "SE": "25", "SI": "22", "SK": "23",
}


def test_the_27_member_states_have_the_rates_of_the_design_in_2026():
    assert len(EU_COUNTRIES) == 27
    assert {c: vat_rate(c, on=date(2026, 12, 1)) for c in EU_COUNTRIES} == {
        c: Decimal(r) for c, r in DESIGN_RATES.items()}


@pytest.mark.parametrize(("country", "changed_on", "before", "after"), [
    ("FI", date(2024, 9, 1), "24", "25.5"),
    ("SK", date(2025, 1, 1), "20", "23"),
    ("EE", date(2025, 7, 1), "22", "24"),
    ("RO", date(2025, 8, 1), "19", "21"),
])
def test_a_rate_applies_from_its_day(country, changed_on, before, after):
    day_before = date.fromordinal(changed_on.toordinal() - 1)
    assert vat_rate(country, on=day_before) == Decimal(before)
    assert vat_rate(country, on=changed_on) == Decimal(after)


def test_the_day_is_the_business_time_zones():
    # 31 July 2025, 23:30 in Paris is already 1 August there: the new Romanian rate
    assert vat_rate("RO", on=datetime(2025, 7, 31, 21, 30, tzinfo=UTC)) == Decimal("19")
    assert vat_rate("RO", on=datetime(2025, 7, 31, 22, 30, tzinfo=UTC)) == Decimal("21")


@pytest.mark.parametrize(("country", "total"), [
    ("FI", 1254), ("EE", 1239), ("RO", 1209), ("HU", 1269), ("FR", 1199), ("DE", 1189),
])
def test_9_99_net_costs_in_each_country(country, total):
    rate = vat_rate(country, on=date(2026, 12, 1))
    assert tax_from_net(net_cents=999, vat_rate=rate).total_cents == total


def test_outside_the_eu_no_vat_unless_the_vendor_is_registered_there(settings):
    assert vat_rate("US", on=date(2026, 12, 1)) == Decimal("0")
    assert vat_rate("CH", on=date(2026, 12, 1)) == Decimal("0")
    settings.VAT_NON_EU_RATES = {"CH": "8.1"}
    assert vat_rate("CH", on=date(2026, 12, 1)) == Decimal("8.1")


def test_under_the_one_stop_shop_threshold_every_eu_consumer_pays_french_vat(settings):
    settings.VAT_OSS = False
    assert vat_rate("FI", on=date(2026, 12, 1)) == Decimal("20")
    assert vat_rate("US", on=date(2026, 12, 1)) == Decimal("0")


def test_a_day_before_the_table_is_refused_rather_than_guessed():
    with pytest.raises(MissingVatRate):
        vat_rate("FR", on=date(2020, 1, 1))


def test_a_future_rate_added_in_admin_applies_from_its_day(now):
    VatRate.objects.create(country="FR", rate=Decimal("21"), valid_from=date(2027, 1, 1))
    assert vat_rate("FR", on=date(2026, 12, 31)) == Decimal("20")
    assert vat_rate("FR", on=date(2027, 1, 1)) == Decimal("21")


def test_the_invoice_date_picks_the_rate(now):
    customer = UserFactory(billing_country="FI")
    plan = PlanFactory(price_cents=999)
    august = datetime(2024, 8, 31, 12, tzinfo=UTC)
    september = datetime(2024, 9, 1, 12, tzinfo=UTC)
    invoices = [invoice_create(customer=customer, plan=plan, kind="renewal",
                               period_start=at, period_end=at, description="…", now=at)
                for at in (august, september)]
    assert [(i.vat_rate, i.total_cents) for i in invoices] == [
        (Decimal("24"), 1239), (Decimal("25.5"), 1254)]
    assert plan_price(plan=plan, country="FI", on=august).total_cents == 1239


def test_only_superusers_add_rates_in_admin(client, now):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_vatrate"))
    client.force_login(staff)
    assert client.get(reverse("admin:billing_vatrate_changelist")).status_code == 200
    assert client.get(reverse("admin:billing_vatrate_add")).status_code == 403
    superuser = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(superuser)
    response = client.post(reverse("admin:billing_vatrate_add"),
                           {"country": "FR", "rate": "21", "valid_from": "2027-01-01"})
    assert response.status_code == 302
    assert vat_rate("FR", on=date(2027, 1, 2)) == Decimal("21")
    # a past day is not rewritten: invoices already issued were taxed with the old rate
    response = client.post(reverse("admin:billing_vatrate_add"),
                           {"country": "FR", "rate": "5", "valid_from": "2026-01-01"})
    assert response.status_code == 200
    assert vat_rate("FR", on=date(2026, 6, 1)) == Decimal("20")
