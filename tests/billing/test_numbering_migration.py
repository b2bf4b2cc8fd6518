"""Existing data moves to numbering on issue (DESIGN §14) without renumbering anything issued,
and the dunning columns move from the subscription to its open renewal invoice (§6)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("billing", "0004_invoice_kind_proration"), ("subscriptions", "0004_staff_event_kinds")]
AFTER = [("billing", "0006_invoice_created_at_required"),
         ("subscriptions", "0005_dunning_moves_to_invoice")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture(autouse=True)
def _back_to_the_latest_schema():
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_issued_invoices_keep_their_numbers_and_voided_ones_get_a_credit_note():
    # given: the old shape, with a voided numbered first invoice and a past-due subscription
    apps = _migrate(BEFORE)
    now = timezone.now()
    User = apps.get_model("accounts", "User")
    Plan = apps.get_model("subscriptions", "Plan")
    Subscription = apps.get_model("subscriptions", "Subscription")
    Invoice = apps.get_model("billing", "Invoice")
    Charge = apps.get_model("billing", "Charge")
    customer = User.objects.create(email="ancien@example.com", customer_number="C00000001")
    plan = Plan.objects.create(code="p", name="P", tier=1, interval="month", price_cents=825)
    subscription = Subscription.objects.create(
        customer=customer, plan=plan, status="past_due", started_at=now - timedelta(days=40),
        billing_anchor=now - timedelta(days=40), current_period_start=now - timedelta(days=40),
        current_period_end=now - timedelta(days=10), licence_key="AAAAA-AAAAA-AAAAA-AAAAA-AAAAA",
        dunning_started_at=now - timedelta(days=10), next_retry_at=now - timedelta(days=7),
    )
    common = {"customer": customer, "plan": plan, "currency": "EUR", "vat_rate": 20,
              "billing_country": "FR", "net_cents": 825, "vat_cents": 165, "total_cents": 990}
    Invoice.objects.create(number="F2026-000001", kind="initial", status="void",
                           period_start=now, period_end=now, issued_at=now - days(41), **common)
    Invoice.objects.create(number="F2026-000002", kind="initial", status="paid",
                           subscription=subscription, period_start=now, period_end=now,
                           issued_at=now - days(40), **common)
    renewal = Invoice.objects.create(number="F2026-000003", kind="renewal", status="open",
                                     subscription=subscription, period_start=now,
                                     period_end=now, issued_at=now - days(10), **common)
    Charge.objects.create(invoice=renewal, customer=customer, attempt=1, amount_cents=990,
                          currency="EUR", status="failed", failure_code="card_declined",
                          idempotency_key="k1", created_at=now - days(10))
    # when
    apps = _migrate(AFTER)
    # then
    Invoice = apps.get_model("billing", "Invoice")
    CreditNote = apps.get_model("billing", "CreditNote")
    assert list(Invoice.objects.order_by("pk").values_list("number", "status")) == [
        ("F2026-000001", "void"), ("F2026-000002", "paid"), ("F2026-000003", "open")]
    note = CreditNote.objects.get()
    assert (note.invoice.number, note.refund_id, note.total_cents) == ("F2026-000001", None,
                                                                      990)
    moved = Invoice.objects.get(number="F2026-000003")
    assert (moved.dunning_started_at, moved.next_retry_at, moved.declined_attempts) == (
        now - days(10), now - days(7), 1)
    assert apps.get_model("billing", "Charge").objects.get().failure_kind == "decline"


def days(n):
    return timedelta(days=n)
