"""Personal data (issue 5, item 7): the customer downloads their own data, and deletes their
account: running subscription cancelled first, invoices kept, the customer anonymised."""

import json

import pytest
from allauth.account.models import EmailAddress
from django.test import Client
from django.urls import reverse

from billing.models import Charge, Invoice, PaymentMethod
from notifications.models import OutboxEmail
from subscriptions.models import Actor, Channel, Status, Subscription, SubscriptionEvent
from tests.factories import PASSWORD, SUCCESS_CARD, UserFactory, days, subscribed

pytestmark = pytest.mark.django_db

DATA_URL = reverse("accounts:data")
DOWNLOAD_URL = reverse("accounts:data_download")
DELETE_URL = reverse("accounts:delete")


@pytest.fixture
def subscription(now):
    """A monthly subscription past its refund window."""
    return subscribed(customer=UserFactory(first_name="Camille", last_name="Martin",
                                           customer_type="business", company_name="Lumière SAS",
                                           siren="732829320", vat_number="FR44732829320"),
                      at=now - days(20))


@pytest.fixture
def customer(client, subscription):
    client.force_login(subscription.customer)
    return subscription.customer


# Export


def test_the_data_page_offers_the_download_and_the_deletion(client, customer):
    # when
    page = client.get(DATA_URL).content.decode()
    # then
    assert "Télécharger mes données" in page
    assert f'href="{DOWNLOAD_URL}"' in page
    assert f'href="{DELETE_URL}"' in page


def test_the_export_has_every_section_and_no_card_number_or_token(client, customer,
                                                                 subscription):
    # when
    response = client.get(DOWNLOAD_URL)
    # then
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="mes-donnees-{customer.customer_number}.json"')
    content = response.content.decode()
    data = json.loads(content)
    assert set(data) >= {"profile", "subscriptions", "invoices", "payment_methods", "emails",
                         "support_requests", "terms_acceptances"}
    assert data["profile"]["email"] == customer.email
    assert data["profile"]["customer_number"] == customer.customer_number
    assert {key: data["profile"][key] for key in ("company_name", "address_line1",
                                                   "postal_code", "city", "siren",
                                                   "vat_number")} == {
        "company_name": "Lumière SAS", "address_line1": "12 rue des Lilas",
        "postal_code": "75011", "city": "Paris", "siren": "732829320",
        "vat_number": "FR44732829320"}
    [exported] = data["subscriptions"]
    assert exported["licence_key"] == subscription.licence_key
    assert [e["kind"] for e in exported["events"]] == ["subscribed"]
    [invoice] = data["invoices"]
    assert invoice["number"] == Invoice.objects.get(customer=customer).number
    assert len(invoice["lines"]) == 1 and invoice["credit_notes"] == []
    assert data["payment_methods"] == [{
        "brand": "Visa", "last4": "4242", "exp_month": 12, "exp_year": 2029,
        "is_default": True, "added_at": data["payment_methods"][0]["added_at"],
    }]
    assert [(e["kind"], e["subject"]) for e in data["emails"]] == [
        (e.kind, e.subject) for e in OutboxEmail.objects.filter(customer=customer)]
    card = PaymentMethod.objects.get(customer=customer)
    assert SUCCESS_CARD not in content
    assert card.provider_token not in content
    assert "provider_token" not in content


def test_the_export_is_always_the_logged_in_customers_own(client, subscription, now):
    # given
    other = subscribed(at=now - days(3)).customer
    client.force_login(other)
    # when
    content = client.get(DOWNLOAD_URL, {"customer": subscription.customer.pk}).content.decode()
    # then
    assert other.email in content
    assert subscription.customer.email not in content
    assert subscription.licence_key not in content


def test_an_anonymous_visitor_is_sent_to_the_login(client):
    # when
    responses = [client.get(url) for url in (DATA_URL, DOWNLOAD_URL, DELETE_URL)]
    # then
    assert [r.status_code for r in responses] == [302, 302, 302]
    assert all(r["Location"].startswith(reverse("account_login")) for r in responses)


# Deletion


def _state():
    return (
        list(Subscription.objects.values_list("status", "auto_renew").order_by("pk")),
        list(EmailAddress.objects.values_list("email", flat=True).order_by("pk")),
        list(PaymentMethod.objects.values_list("provider_token", flat=True).order_by("pk")),
        SubscriptionEvent.objects.count(),
        OutboxEmail.objects.count(),
    )


def test_deleting_cancels_anonymises_keeps_invoices_and_logs_out(
    client, customer, subscription, now, django_capture_on_commit_callbacks
):
    # given
    email = customer.email
    invoice = Invoice.objects.get(customer=customer)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(DELETE_URL, {"password": PASSWORD}, follow=True)
    # then: the subscription was cancelled, then ended now, by the customer
    subscription.refresh_from_db()
    assert (subscription.status, subscription.auto_renew, subscription.ended_at,
            subscription.licence_active) == (Status.ENDED, False, now, False)
    assert [(e.kind, e.actor, e.actor_user_id) for e in subscription.events.all()] == [
        ("subscribed", Actor.CUSTOMER, customer.pk),
        ("cancelled", Actor.CUSTOMER, customer.pk),
        ("ended", Actor.CUSTOMER, customer.pk),
    ]
    # the money history is kept, on the same (anonymised) customer
    invoice.refresh_from_db()
    assert invoice.customer_id == customer.pk and invoice.status == Invoice.Status.PAID
    assert Charge.objects.filter(customer=customer).count() == 1
    customer.refresh_from_db()
    assert (customer.email, customer.first_name, customer.last_name, customer.is_active,
            customer.has_usable_password()) == (
        f"supprime-{customer.pk}@invalid.example", "", "", False, False)
    assert (customer.company_name, customer.address_line1, customer.address_line2,
            customer.postal_code, customer.city, customer.siren, customer.vat_number) == (
        "", "", "", "", "", "", "")
    assert not EmailAddress.objects.filter(user=customer).exists()
    assert not EmailAddress.objects.filter(email=email).exists()
    card = PaymentMethod.objects.get(customer=customer)
    assert (card.provider_token, card.last4) == (f"deleted-{card.pk}", "4242")
    # logged out, told so; the confirmation of the cancellation went to the old address
    assert "Votre compte a été supprimé." in response.content.decode()
    assert not response.wsgi_request.user.is_authenticated
    assert client.get(reverse("subscriptions:billing")).status_code == 302
    assert OutboxEmail.objects.get(kind="cancellation_confirmation").recipient == email


def test_the_old_email_and_password_no_longer_log_in(client, customer):
    # given
    email = customer.email
    client.post(DELETE_URL, {"password": PASSWORD})
    # when
    response = Client().post(reverse("account_login"), {"login": email, "password": PASSWORD})
    # then
    assert response.status_code == 200
    assert not response.wsgi_request.user.is_authenticated
    assert not Client().login(email=email, password=PASSWORD)
    assert not Client().login(email=f"supprime-{customer.pk}@invalid.example",
                              password=PASSWORD)


def test_deleting_inside_the_refund_window_refunds_as_a_cancellation_does(
    client, now, django_capture_on_commit_callbacks
):
    # given
    subscription = subscribed(at=now - days(2))
    client.force_login(subscription.customer)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        client.post(DELETE_URL, {"password": PASSWORD})
    # then
    subscription.refresh_from_db()
    assert (subscription.status, subscription.end_reason) == (Status.ENDED, "refunded")
    assert [e.kind for e in subscription.events.all()] == ["subscribed", "cancelled", "ended"]
    assert subscription.events.get(kind="cancelled").amount_cents == 990


def test_a_wrong_password_deletes_nothing(client, customer):
    # given
    before = _state()
    # when
    response = client.post(DELETE_URL, {"password": "not-my-password"})
    # then
    assert response.status_code == 200
    assert "Mot de passe incorrect." in response.content.decode()
    assert _state() == before
    customer.refresh_from_db()
    assert customer.is_active


def test_the_delete_page_changes_nothing(client, customer):
    # given
    before = _state()
    # when
    response = client.get(DELETE_URL)
    # then
    assert response.status_code == 200
    assert "Supprimer définitivement mon compte" in response.content.decode()
    assert _state() == before
    customer.refresh_from_db()
    assert customer.is_active


def test_deleting_without_a_csrf_token_is_refused(subscription):
    # given
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(subscription.customer)
    before = _state()
    # when
    response = csrf_client.post(DELETE_URL, {"password": PASSWORD})
    # then
    assert response.status_code == 403
    assert _state() == before


def test_a_subscription_bought_elsewhere_must_be_cancelled_there_first(client, customer,
                                                                      subscription):
    # given
    Subscription.objects.filter(pk=subscription.pk).update(channel=Channel.APP_STORE)
    before = _state()
    # when
    response = client.post(DELETE_URL, {"password": PASSWORD})
    # then
    assert response.status_code == 200
    assert "App Store" in response.content.decode()
    assert _state() == before


def test_the_export_includes_the_support_requests(client, customer, subscription, now):
    # given
    support = pytest.importorskip("support.models")
    request = support.SupportRequest.objects.create(
        reference="S2026-000001", customer=customer, subscription=subscription,
        subject="Question de facturation", category="billing", created_at=now,
        last_message_at=now,
    )
    support.SupportMessage.objects.create(request=request, author="customer",
                                          author_user=customer, body="Bonjour", created_at=now)
    # when
    data = json.loads(client.get(DOWNLOAD_URL).content)
    # then
    [exported] = data["support_requests"]
    assert (exported["reference"], exported["subject"], exported["subscription"]) == (
        "S2026-000001", "Question de facturation", subscription.licence_key)
    assert [m["body"] for m in exported["messages"]] == ["Bonjour"]
