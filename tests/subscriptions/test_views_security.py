"""Who may see and change a subscription through the pages, what a GET may do (nothing), and
what "Abonnement et facturation" shows and costs (DESIGN §9)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from billing.models import (
    Charge,
    CreditNote,
    Invoice,
    PaymentMethod,
    Refund,
    SimulatedProviderOperation,
)
from notifications.models import OutboxEmail
from subscriptions.models import Status, Subscription, SubscriptionEvent
from subscriptions.services import subscription_cancel
from tests.factories import PlanFactory, UserFactory, days, subscribed

pytestmark = pytest.mark.django_db

NBSP = "\u00a0"


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def in_refund_window(owner, now):
    """Annual, bought 3 days ago: cancelling it now would end it and refund 99,00 €."""
    return subscribed(customer=owner, plan=PlanFactory(code="essentiel-annuel", annual=True),
                      at=now - days(3))


@pytest.fixture
def cancelled(owner, now):
    """Monthly, bought 20 days ago and cancelled: runs until 18 March, can be reactivated."""
    subscription = subscribed(customer=owner, plan=PlanFactory(code="essentiel-mensuel",
                                                               name="Essentiel"),
                              at=now - days(20))
    subscription, _ = subscription_cancel(subscription=subscription, now=now - days(1))
    return subscription


def _state():
    """Everything a state-changing request could touch."""
    return {
        "subscriptions": [model_to_dict(s) for s in Subscription.objects.order_by("pk")],
        "events": SubscriptionEvent.objects.count(),
        "refunds": Refund.objects.count(),
        "credit_notes": CreditNote.objects.count(),
        "emails": OutboxEmail.objects.count(),
        "invoices": list(Invoice.objects.order_by("pk").values_list("number", "status")),
        "charges": Charge.objects.count(),
        "cards": list(PaymentMethod.objects.order_by("pk").values_list("pk", "is_default")),
        "provider_operations": SimulatedProviderOperation.objects.count(),
    }


def _cancel_url(subscription):
    return reverse("subscriptions:cancel", args=[subscription.pk])


def _reactivate_url(subscription):
    return reverse("subscriptions:reactivate", args=[subscription.pk])


PAGES = ["profile", "billing", "cancel", "cancel_shortcut", "card_update", "plans", "subscribe"]


def _page_url(page, subscription):
    return {
        "profile": reverse("accounts:profile"),
        "billing": reverse("subscriptions:billing"),
        "cancel": _cancel_url(subscription),
        "cancel_shortcut": reverse("subscriptions:cancel_shortcut"),
        "card_update": reverse("billing:card_update"),
        "plans": reverse("subscriptions:plans"),
        "subscribe": reverse("subscriptions:subscribe", args=[subscription.plan.code]),
    }[page]


# Another customer's subscription


@pytest.mark.parametrize("method", ["get", "post"])
def test_another_customer_cannot_open_or_confirm_the_cancel_of_a_subscription(
    client, in_refund_window, method, django_capture_on_commit_callbacks
):
    # given
    client.force_login(UserFactory())
    before = _state()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = getattr(client, method)(_cancel_url(in_refund_window), {"reason": "other"})
    # then
    assert response.status_code == 404
    assert _state() == before


def test_another_customer_cannot_reactivate_a_subscription(client, cancelled):
    # given
    client.force_login(UserFactory())
    before = _state()
    # when
    response = client.post(_reactivate_url(cancelled))
    # then
    assert response.status_code == 404
    assert _state() == before
    assert not Subscription.objects.get(pk=cancelled.pk).auto_renew


def test_the_owner_can_open_the_cancel_page(client, owner, in_refund_window):
    # given
    client.force_login(owner)
    # when
    response = client.get(_cancel_url(in_refund_window))
    # then
    assert response.status_code == 200


def test_another_customers_billing_page_shows_nothing_of_the_first(client, in_refund_window):
    # given
    client.force_login(UserFactory())
    # when
    response = client.get(reverse("subscriptions:billing"))
    # then
    page = response.content.decode()
    assert in_refund_window.licence_key not in page
    assert "F2026-000001" not in page
    assert "Vous n'avez pas encore d'abonnement." in page


# Anonymous visitors


@pytest.mark.parametrize("page", [page for page in PAGES if page != "plans"])
def test_anonymous_visitors_are_sent_to_the_login_page(client, in_refund_window, page):
    # given
    url = _page_url(page, in_refund_window)
    # when
    response = client.get(url)
    # then
    assert response.status_code == 302
    assert response.url == f"{reverse('account_login')}?next={url}"


@pytest.mark.parametrize(("subscription", "url"), [
    ("in_refund_window", _cancel_url),
    ("cancelled", _reactivate_url),
])
def test_anonymous_posts_change_nothing(client, request, subscription, url):
    # given
    url = url(request.getfixturevalue(subscription))
    before = _state()
    # when
    response = client.post(url)
    # then
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))
    assert _state() == before


def test_the_plans_page_is_public(client):
    # when
    response = client.get(reverse("subscriptions:plans"))
    # then
    assert response.status_code == 200


# CSRF


@pytest.fixture
def csrf_client(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    return client


def test_cancel_without_a_csrf_token_is_refused(csrf_client, in_refund_window):
    # given
    before = _state()
    # when
    response = csrf_client.post(_cancel_url(in_refund_window), {"reason": "other"})
    # then
    assert response.status_code == 403
    assert _state() == before


def test_cancel_with_the_pages_csrf_token_goes_through(csrf_client, in_refund_window):
    # given
    csrf_client.get(_cancel_url(in_refund_window))
    token = csrf_client.cookies["csrftoken"].value
    # when
    response = csrf_client.post(_cancel_url(in_refund_window), {"csrfmiddlewaretoken": token})
    # then
    assert response.status_code == 302
    assert Subscription.objects.get(pk=in_refund_window.pk).status == Status.ENDED


def test_reactivate_without_a_csrf_token_is_refused(csrf_client, cancelled):
    # given
    before = _state()
    # when
    response = csrf_client.post(_reactivate_url(cancelled))
    # then
    assert response.status_code == 403
    assert _state() == before


def test_subscribe_and_card_update_without_a_csrf_token_are_refused(csrf_client, now):
    # given
    plan = PlanFactory(code="essentiel-mensuel")
    card = {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2029, "cvc": "123"}
    # when
    responses = [
        csrf_client.post(reverse("subscriptions:subscribe", args=[plan.code]), card),
        csrf_client.post(reverse("billing:card_update"), card),
    ]
    # then
    assert [r.status_code for r in responses] == [403, 403]
    assert not PaymentMethod.objects.exists()
    assert not Invoice.objects.exists()
    assert not Subscription.objects.exists()


# GET never changes state


@pytest.mark.parametrize("page", PAGES)
def test_opening_a_page_changes_nothing(client, owner, in_refund_window, page,
                                        django_capture_on_commit_callbacks):
    # given
    client.force_login(owner)
    url = _page_url(page, in_refund_window)
    before = _state()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(url, follow=True)
    # then
    assert response.status_code == 200
    assert _state() == before
    assert Subscription.objects.get().status == Status.ACTIVE


def test_get_on_reactivate_is_not_allowed(client, owner, cancelled):
    # given
    client.force_login(owner)
    before = _state()
    # when
    response = client.get(_reactivate_url(cancelled))
    # then
    assert response.status_code == 405
    assert _state() == before


# The "Abonnement et facturation" page


def _add_refunded_invoices(subscription, count, *, now, first=1):
    """Past invoices of the subscription, each paid and refunded with a credit note."""
    for index in range(first, first + count):
        issued_at = now - days(400 + 31 * index)
        invoice = Invoice.objects.create(
            number=f"F2024-{index:06d}", customer=subscription.customer,
            subscription=subscription, plan=subscription.plan, kind=Invoice.Kind.RENEWAL,
            status=Invoice.Status.PAID, period_start=issued_at, period_end=issued_at + days(31),
            currency="EUR", vat_rate=Decimal("20.00"), billing_country="FR", net_cents=825,
            vat_cents=165, total_cents=990, issued_at=issued_at, paid_at=issued_at,
            created_at=issued_at,
        )
        charge = Charge.objects.create(
            invoice=invoice, customer=subscription.customer, amount_cents=990, currency="EUR",
            status=Charge.Status.SUCCEEDED, idempotency_key=f"extra-{invoice.pk}",
            created_at=issued_at, settled_at=issued_at,
        )
        refund = Refund.objects.create(
            charge=charge, amount_cents=990, currency="EUR", status=Refund.Status.SUCCEEDED,
            reason=Refund.Reason.STAFF, idempotency_key=f"extra-refund-{invoice.pk}",
            created_at=issued_at, refunded_at=issued_at,
        )
        CreditNote.objects.create(
            number=f"A2024-{index:06d}", invoice=invoice, refund=refund, net_cents=825,
            vat_cents=165, total_cents=990, issued_at=issued_at + timedelta(hours=1),
        )


def _billing_page(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("subscriptions:billing"))
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_billing_page_runs_the_same_number_of_queries_whatever_the_invoices(
    client, owner, in_refund_window, now
):
    # given
    client.force_login(owner)
    _add_refunded_invoices(in_refund_window, 1, now=now)
    queries_with_one, page = _billing_page(client)
    assert page.count('<tr class="invoice">') == 2
    assert page.count('<tr class="credit-note">') == 1
    # when
    _add_refunded_invoices(in_refund_window, 11, now=now, first=2)
    queries_with_twelve, page = _billing_page(client)
    # then
    assert page.count('<tr class="invoice">') == 13
    assert page.count('<tr class="credit-note">') == 12
    assert "F2024-000012" in page and "A2024-000012" in page
    assert queries_with_twelve == queries_with_one


def test_billing_page_query_count_does_not_grow_with_invoices_of_other_subscriptions(
    client, owner, cancelled, now
):
    # given
    Subscription.objects.filter(pk=cancelled.pk).update(status=Status.ENDED)
    current = subscribed(customer=owner, plan=PlanFactory(code="essentiel-annuel", annual=True),
                         at=now)
    client.force_login(owner)
    _add_refunded_invoices(cancelled, 1, now=now)
    _add_refunded_invoices(current, 1, now=now, first=100)
    queries_before, _ = _billing_page(client)
    # when
    _add_refunded_invoices(cancelled, 11, now=now, first=2)
    _add_refunded_invoices(current, 11, now=now, first=101)
    queries_after, page = _billing_page(client)
    # then
    assert page.count('<tr class="credit-note">') == 24
    assert queries_after == queries_before


@pytest.fixture
def monthly_today(owner, now):
    return subscribed(customer=owner, plan=PlanFactory(code="essentiel-mensuel",
                                                       name="Essentiel"), at=now)


def test_billing_page_shows_the_subscription(client, owner, monthly_today):
    # given
    client.force_login(owner)
    # when
    response = client.get(reverse("subscriptions:billing"))
    # then
    page = response.content.decode()
    assert "Essentiel" in page and "(mensuel)" in page
    assert '<span class="badge status status-active">Actif</span>' in page
    assert f"<strong>9,90{NBSP}€ TTC</strong> / mois" in page
    assert f"8,25{NBSP}€ HT + 1,65{NBSP}€ TVA 20 %" in page
    assert f'<dd class="next-charge">10 avril 2026 — 9,90{NBSP}€</dd>' in page
    assert "Visa •••• 4242 — expire fin 12/2029" in page
    assert f'<code class="licence-key">{monthly_today.licence_key}</code>' in page
    assert ">F2026-000001</a>" in page
    assert "Annuler l'abonnement" in page
    assert _cancel_url(monthly_today) in page
    assert _reactivate_url(monthly_today) not in page


def test_billing_page_after_cancel_shows_the_end_date_and_the_reactivate_button(
    client, owner, now
):
    # given
    subscription = subscribed(customer=owner, plan=PlanFactory(code="essentiel-mensuel"),
                              at=now - days(20))
    client.force_login(owner)
    # when
    response = client.post(_cancel_url(subscription), {"reason": "too_expensive"}, follow=True)
    # then
    page = response.content.decode()
    assert "Actif jusqu'au 18 mars 2026, sans renouvellement" in page
    assert '<span class="badge warning status">Résilié</span>' in page
    assert escape("Votre demande de résiliation a bien été reçue. Un accusé de réception vous "
                  "a été envoyé par e-mail.") in page
    assert reverse("subscriptions:resiliation_receipt", args=[subscription.pk]) in page
    assert "Prochain prélèvement" not in page
    assert f'action="{_reactivate_url(subscription)}"' in page
    assert "Réactiver le renouvellement automatique" in page
    assert f'href="{_cancel_url(subscription)}"' not in page
    subscription.refresh_from_db()
    assert (subscription.auto_renew, subscription.status) == (False, Status.ACTIVE)
    assert subscription.cancel_reason == "too_expensive"


def test_reactivating_brings_back_the_next_charge(client, owner, cancelled):
    # given
    client.force_login(owner)
    # when
    response = client.post(_reactivate_url(cancelled), follow=True)
    # then
    page = response.content.decode()
    assert "Le renouvellement automatique est de nouveau activé." in page
    assert f'<dd class="next-charge">18 mars 2026 — 9,90{NBSP}€</dd>' in page
    assert _reactivate_url(cancelled) not in page
    assert Subscription.objects.get(pk=cancelled.pk).auto_renew


# The footer's "Résilier mon contrat"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_has_the_cancel_link_in_its_footer(client, owner, in_refund_window, page):
    # given
    client.force_login(owner)
    url = _page_url(page, in_refund_window)
    # when
    response = client.get(url, follow=True)
    # then
    footer = response.content.decode().split('<footer class="site-footer">')[1]
    assert f'<a href="{reverse("subscriptions:cancel_shortcut")}">Résilier mon contrat</a>' in (
        footer)


def test_the_footer_link_leads_to_the_resiliation_recap(client, owner, in_refund_window):
    # given
    client.force_login(owner)
    # when
    response = client.get(reverse("subscriptions:cancel_shortcut"), follow=True)
    # then
    assert response.redirect_chain == []
    page = response.content.decode()
    assert "<h1>Résilier votre contrat</h1>" in page
    assert '<form method="post" novalidate>' in page
    assert "Confirmer ma demande de résiliation" in page
    assert f"Remboursement : 99,00{NBSP}€" in page
    assert "Protection en temps réel" in page
    assert Subscription.objects.get().auto_renew


def test_the_footer_link_without_a_subscription_says_so(client, owner):
    # given
    client.force_login(owner)
    # when
    response = client.get(reverse("subscriptions:cancel_shortcut"), follow=True)
    # then
    assert response.redirect_chain == [(reverse("subscriptions:billing"), 302)]
    assert escape("Vous n'avez aucun abonnement à résilier.") in response.content.decode()
