"""Money rows are read-only in admin, even for a superuser; the Support group can do its job
but cannot edit plan prices nor delete money rows (issue 5, scope 1 and 4)."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.urls import reverse

from billing.models import Charge, CreditNote, Invoice, InvoiceLine, PaymentMethod, Refund
from notifications.models import OutboxEmail
from subscriptions.models import Plan
from subscriptions.services import subscription_cancel
from tests.factories import PlanFactory, UserFactory, days, subscribed

pytestmark = pytest.mark.django_db

HISTORY_MODELS = [Invoice, InvoiceLine, Charge, Refund, CreditNote, PaymentMethod, OutboxEmail]


@pytest.fixture
def subscription(now, django_capture_on_commit_callbacks):
    subscription = subscribed(customer=UserFactory(email="camille@example.com"),
                              plan=PlanFactory(code="essentiel"), at=now - days(3))
    with django_capture_on_commit_callbacks(execute=True):
        subscription_cancel(subscription=subscription, reason="other",
                            actor_user=subscription.customer, now=now)
    return subscription


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", HISTORY_MODELS, ids=lambda m: m.__name__)
def test_no_one_adds_changes_or_deletes_history_not_even_a_superuser(rf, superuser, model):
    # given
    request = rf.get("/admin/")
    request.user = superuser
    model_admin = admin.site._registry[model]

    # then
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert model_admin.has_view_permission(request)


@pytest.mark.parametrize("model", HISTORY_MODELS, ids=lambda m: m.__name__)
def test_history_pages_refuse_edits_through_the_admin(admin_client, subscription, model):
    # given
    row = model.objects.first()
    assert row is not None

    # when
    add = admin_client.get(_url(model, "add"))
    delete = admin_client.post(_url(model, "delete", row.pk), {"post": "yes"})
    change = admin_client.get(_url(model, "change", row.pk))

    # then
    assert add.status_code == 403
    assert delete.status_code == 403
    assert model.objects.filter(pk=row.pk).exists()
    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode()


def test_cards_are_masked_and_their_token_never_shown(admin_client, subscription):
    # given
    card = PaymentMethod.objects.get(customer=subscription.customer)

    # when
    listing = admin_client.get(_url(PaymentMethod, "changelist"))
    detail = admin_client.get(_url(PaymentMethod, "change", card.pk))

    # then
    for response in (listing, detail):
        body = response.content.decode()
        assert f"{card.brand} •••• {card.last4}" in body
        assert card.provider_token not in body


def test_money_columns_are_formatted(admin_client, subscription):
    # when
    response = admin_client.get(_url(Charge, "changelist"))

    # then
    assert "9,90\u00a0€" in response.content.decode()


def test_the_support_group_has_exactly_its_permissions():
    # given
    group = Group.objects.get(name="Support")

    # when
    codenames = set(group.permissions.exclude(content_type__app_label="support")
                    .values_list("content_type__app_label", "codename"))

    # then
    assert codenames == {
        ("accounts", "view_user"),
        ("account", "view_emailaddress"),
        ("subscriptions", "view_plan"),
        ("subscriptions", "view_subscription"),
        ("subscriptions", "change_subscription"),
        ("subscriptions", "view_subscriptionevent"),
        ("billing", "view_invoice"),
        ("billing", "view_invoiceline"),
        ("billing", "view_charge"),
        ("billing", "view_refund"),
        ("billing", "view_creditnote"),
        ("billing", "view_paymentmethod"),
        ("notifications", "view_outboxemail"),
        ("notifications", "change_outboxemail"),
    }
    # never: plan prices, customers' rights (is_superuser, groups), deleting anything
    assert not group.permissions.filter(codename__startswith="delete_").exists()


@pytest.mark.parametrize("name", ["accounts_user", "subscriptions_subscription",
                                  "billing_invoice", "billing_charge", "billing_refund",
                                  "billing_creditnote", "billing_paymentmethod",
                                  "notifications_outboxemail", "subscriptions_plan"])
def test_support_sees_customers_and_money(support_client, subscription, name):
    # when
    response = support_client.get(reverse(f"admin:{name}_changelist"))

    # then
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1


def test_support_sees_a_customer_and_an_invoice(support_client, subscription):
    # given
    invoice = Invoice.objects.get(subscription=subscription, kind="initial")

    # then
    assert support_client.get(
        reverse("admin:accounts_user_change", args=[subscription.customer.pk])
    ).status_code == 200
    assert support_client.get(
        reverse("admin:billing_invoice_change", args=[invoice.pk])
    ).status_code == 200


def test_support_cannot_change_a_plan_price(support_client, subscription):
    # given
    plan = subscription.plan
    url = reverse("admin:subscriptions_plan_change", args=[plan.pk])

    # when
    page = support_client.get(url)
    post = support_client.post(url, {
        "code": plan.code, "name": plan.name, "tier": plan.tier, "interval": plan.interval,
        "price_cents": 1, "currency": plan.currency, "features": "[]",
        "refund_window_days": 14, "renewal_refund_window_days": 0, "commitment_months": 0,
        "is_active": "on",
    })

    # then
    assert page.status_code == 200
    assert 'name="price_cents"' not in page.content.decode()
    assert post.status_code == 403
    assert Plan.objects.get(pk=plan.pk).price_cents == plan.price_cents


def test_support_cannot_delete_a_charge(support_client, subscription):
    # given
    charge = Charge.objects.filter(customer=subscription.customer).first()

    # when
    response = support_client.post(_url(Charge, "delete", charge.pk), {"post": "yes"})

    # then
    assert response.status_code == 403
    assert Charge.objects.filter(pk=charge.pk).exists()


def test_support_cannot_make_itself_superuser(support_client, support_user):
    # when
    response = support_client.post(
        reverse("admin:accounts_user_change", args=[support_user.pk]),
        {"email": support_user.email, "is_staff": "on", "is_superuser": "on", "is_active": "on"},
    )

    # then
    assert response.status_code == 403
    support_user.refresh_from_db()
    assert not support_user.is_superuser
