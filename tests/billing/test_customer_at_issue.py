"""An invoice names its customer as they were when it was issued (DESIGN §14): copied once, at
the number, so that a later change of the profile never alters an issued invoice."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from billing.models import Invoice
from subscriptions.services import SubscribeError
from tests.factories import PlanFactory, UserFactory, days, subscribed

pytestmark = pytest.mark.django_db


def _business(**fields):
    return UserFactory(customer_type="business", company_name="Beispiel GmbH",
                       vat_number="DE136695976", billing_country="DE",
                       address_line1="Hauptstraße 1", address_line2="Gebäude B",
                       postal_code="10115", city="Berlin", **fields)


def test_issuing_copies_the_customers_name_company_address_and_identifiers(now):
    # given
    customer = _business(first_name="Jonas", last_name="Weber")
    # when
    subscribed(customer=customer, plan=PlanFactory(), at=now)
    # then
    invoice = Invoice.objects.get(customer=customer)
    assert (invoice.customer_type, invoice.customer_name, invoice.customer_company,
            invoice.customer_address, invoice.customer_siren, invoice.customer_vat_number) == (
        "business", "Jonas Weber", "Beispiel GmbH", "Hauptstraße 1\nGebäude B\n10115 Berlin",
        "", "DE136695976")


def test_a_consumers_invoice_keeps_no_company_identifiers_left_in_the_profile(now):
    # given: a former professional who became a consumer, the old details still in the profile
    customer = UserFactory(customer_type="individual", company_name="Ancienne SARL",
                           siren="732829320", vat_number="FR44732829320",
                           address_line1="3 place du Marché", postal_code="69002", city="Lyon")
    # when
    subscribed(customer=customer, at=now)
    # then
    invoice = Invoice.objects.get(customer=customer)
    assert (invoice.customer_type, invoice.customer_company, invoice.customer_siren,
            invoice.customer_vat_number) == ("individual", "", "", "")
    assert invoice.customer_address == "3 place du Marché\n69002 Lyon"


def test_a_later_profile_change_leaves_the_issued_invoice_as_it_was(now):
    # given
    customer = _business()
    subscribed(customer=customer, at=now - days(2))
    # when
    customer.company_name = "Neuer Name AG"
    customer.address_line1 = "Neue Straße 9"
    customer.vat_number = "DE129273398"
    customer.save()
    # then
    invoice = Invoice.objects.get(customer=customer)
    assert (invoice.customer_company, invoice.customer_vat_number) == ("Beispiel GmbH",
                                                                       "DE136695976")
    assert invoice.customer_address.startswith("Hauptstraße 1\n")


def test_a_draft_copies_nothing_until_it_is_issued(now):
    # given: a refused first payment leaves its invoice an unnumbered draft (voided)
    customer = _business()
    with pytest.raises(SubscribeError):
        subscribed(customer=customer, at=now, card="4000000000000341")
    # then
    draft = Invoice.objects.get(customer=customer)
    assert (draft.number, draft.customer_name, draft.customer_address) == (None, "", "")


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_issued_invoices_from_the_customer_as_they_are_now():
    # given: an issued invoice and a draft from before the copy existed
    before = [("billing", "0013_simulated_card_country"), ("accounts", "0004_billing_details")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    User = apps.get_model("accounts", "User")
    Plan = apps.get_model("subscriptions", "Plan")
    OldInvoice = apps.get_model("billing", "Invoice")
    customer = User.objects.create(email="pro@example.com", first_name="Jonas",
                                   last_name="Weber", customer_type="business",
                                   company_name="Beispiel GmbH", vat_number="DE136695976",
                                   billing_country="DE", address_line1="Hauptstraße 1",
                                   postal_code="10115", city="Berlin", siren="")
    plan = Plan.objects.create(code="migration", name="Migration", tier=1, interval="month",
                               price_cents=1000, currency="EUR", features=[])
    at = timezone.now()
    common = dict(customer=customer, plan=plan, kind="renewal", period_start=at,
                  period_end=at + days(30), currency="EUR", vat_rate=0, billing_country="DE",
                  net_cents=1000, vat_cents=0, total_cents=1000, created_at=at)
    issued = OldInvoice.objects.create(number="F2026-000001", status="paid", issued_at=at,
                                       **common)
    draft = OldInvoice.objects.create(status="draft", **{**common, "kind": "initial"})
    try:
        # when
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
        # then
        issued, draft = (Invoice.objects.get(pk=issued.pk), Invoice.objects.get(pk=draft.pk))
        assert (issued.customer_type, issued.customer_name, issued.customer_company,
                issued.customer_address, issued.customer_vat_number) == (
            "business", "Jonas Weber", "Beispiel GmbH", "Hauptstraße 1\n10115 Berlin",
            "DE136695976")
        assert (draft.customer_type, draft.customer_name) == ("", "")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
