""""Contacter le support" in "Mon compte" (issue 5, scope 5): the customer's side."""

import pytest
from django.test import Client
from django.urls import reverse

from notifications.models import OutboxEmail
from subscriptions.models import SubscriptionEvent
from support.models import SupportMessage, SupportRequest
from support.services import SupportError, support_message_add, support_request_create
from tests.factories import PlanFactory, UserFactory, days, subscribed

pytestmark = pytest.mark.django_db


def _create(client, **data):
    payload = {"subject": "Facture introuvable", "category": "billing",
               "body": "Je ne trouve pas ma facture de février.", "subscription": ""}
    payload.update(data)
    return client.post(reverse("support:create"), payload)


def test_a_request_gets_a_reference_an_open_status_and_its_first_message(
    customer_client, customer, subscription
):
    # when
    response = _create(customer_client, subscription=subscription.pk)

    # then
    support_request = SupportRequest.objects.get()
    assert support_request.reference == f"S2026-{support_request.pk:06d}"
    assert response.status_code == 302
    assert response.url == reverse("support:detail", args=[support_request.reference])
    assert support_request.customer == customer
    assert support_request.subscription == subscription
    assert support_request.status == SupportRequest.Status.OPEN
    assert support_request.category == SupportRequest.Category.BILLING
    [message] = support_request.messages.all()
    assert message.author == SupportMessage.Author.CUSTOMER
    assert message.body == "Je ne trouve pas ma facture de février."
    assert OutboxEmail.objects.filter(kind="support_request_received",
                                      recipient=customer.email).count() == 1


def test_references_are_unique(customer, now):
    # when
    first = support_request_create(customer=customer, subject="a", category="other", body="x",
                                   now=now)
    second = support_request_create(customer=customer, subject="b", category="other", body="y",
                                    now=now)

    # then
    assert first.reference != second.reference
    assert first.reference.startswith("S2026-") and second.reference.startswith("S2026-")


def test_the_form_offers_the_categories_and_only_the_customers_own_subscriptions(
    customer_client, subscription, now
):
    # given
    someone_else = subscribed(plan=PlanFactory(code="premium"), at=now - days(3))

    # when
    page = customer_client.get(reverse("support:create")).content.decode()

    # then
    for label in ("Demande de remboursement", "Facturation", "Résiliation",
                  "Problème technique", "Autre"):
        assert label in page
    assert f'value="{subscription.pk}"' in page
    assert f'value="{someone_else.pk}"' not in page


def test_another_customers_subscription_is_refused(customer_client, subscription, now):
    # given
    someone_else = subscribed(plan=PlanFactory(code="premium"), at=now - days(3))

    # when
    response = _create(customer_client, subscription=someone_else.pk)

    # then
    assert response.status_code == 200
    assert response.context["form"].errors["subscription"]
    assert not SupportRequest.objects.exists()


def test_the_service_refuses_another_customers_subscription(customer, now):
    # given
    someone_else = subscribed(plan=PlanFactory(code="premium"), at=now - days(3))

    # when / then
    with pytest.raises(SupportError):
        support_request_create(customer=customer, subject="x", category="refund", body="y",
                               subscription=someone_else, now=now)
    assert not SupportRequest.objects.exists()


def test_a_refund_request_must_name_the_subscription(customer_client, subscription):
    # when
    response = _create(customer_client, category="refund")

    # then
    assert response.status_code == 200
    assert "Choisissez l&#x27;abonnement concerné" in response.content.decode()
    assert not SupportRequest.objects.exists()


def test_a_refund_request_is_written_on_the_subscription_timeline(
    customer_client, customer, subscription
):
    # when
    _create(customer_client, category="refund", subscription=subscription.pk)

    # then
    event = subscription.events.get(kind=SubscriptionEvent.Kind.REFUND_REQUESTED)
    assert event.actor == "customer"
    assert event.actor_user == customer
    assert event.data == {"support_request": SupportRequest.objects.get().reference}


def test_missing_fields_are_form_errors_and_create_nothing(customer_client, subscription):
    # when
    response = _create(customer_client, subject="", body="", category="nonsense")

    # then
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"subject", "body", "category"}
    assert not SupportRequest.objects.exists()


def test_the_list_and_the_thread_show_the_requests_with_their_status(
    customer_client, refund_request
):
    # when
    listing = customer_client.get(reverse("support:list")).content.decode()
    thread = customer_client.get(
        reverse("support:detail", args=[refund_request.reference])
    ).content.decode()

    # then
    assert refund_request.reference in listing
    assert "Remboursement du mois" in listing
    assert "Ouverte" in listing
    assert "Je n&#x27;ai pas utilisé le logiciel ce mois-ci." in thread
    assert "Ouverte" in thread
    assert "support@" in listing  # the support address is still shown


def test_the_customer_adds_a_reply_and_the_request_goes_back_to_support(
    customer_client, refund_request
):
    # given
    SupportRequest.objects.filter(pk=refund_request.pk).update(status="awaiting_customer")
    url = reverse("support:detail", args=[refund_request.reference])

    # when
    response = customer_client.post(url, {"body": "Voici le numéro de facture."})

    # then
    assert response.status_code == 302
    refund_request.refresh_from_db()
    assert refund_request.status == SupportRequest.Status.OPEN
    assert list(refund_request.messages.values_list("body", flat=True)) == [
        "Je n'ai pas utilisé le logiciel ce mois-ci.", "Voici le numéro de facture.",
    ]


def test_an_empty_reply_adds_nothing(customer_client, refund_request):
    # when
    url = reverse("support:detail", args=[refund_request.reference])
    response = customer_client.post(url, {"body": "  "})

    # then
    assert response.status_code == 200
    assert refund_request.messages.count() == 1


def test_a_closed_request_takes_no_more_replies(customer, refund_request, now):
    # given
    SupportRequest.objects.filter(pk=refund_request.pk).update(status="closed")

    # when / then
    with pytest.raises(SupportError):
        support_message_add(request=refund_request, customer=customer, body="Encore moi",
                            now=now)
    assert refund_request.messages.count() == 1


def test_another_customer_gets_404_and_cannot_post(refund_request):
    # given
    intruder = Client()
    intruder.force_login(UserFactory(email="intrus@example.com"))
    url = reverse("support:detail", args=[refund_request.reference])

    # when
    seen = intruder.get(url)
    posted = intruder.post(url, {"body": "Je m'invite."})
    listing = intruder.get(reverse("support:list")).content.decode()

    # then
    assert seen.status_code == 404
    assert posted.status_code == 404
    assert refund_request.messages.count() == 1
    assert refund_request.reference not in listing


def test_pages_need_a_login(client, refund_request):
    # when
    response = client.get(reverse("support:detail", args=[refund_request.reference]))

    # then
    assert response.status_code == 302
    assert "/comptes/login/" in response.url


def test_posts_without_csrf_are_refused(customer, subscription, refund_request):
    # given
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(customer)

    # when
    created = strict.post(reverse("support:create"), {
        "subject": "x", "category": "other", "body": "y", "subscription": "",
    })
    replied = strict.post(reverse("support:detail", args=[refund_request.reference]),
                          {"body": "Sans jeton"})

    # then
    assert created.status_code == 403
    assert replied.status_code == 403
    assert SupportRequest.objects.count() == 1
    assert refund_request.messages.count() == 1


def test_the_account_navigation_and_footer_lead_to_the_support_page(customer_client):
    # when
    page = customer_client.get(reverse("accounts:profile")).content.decode()

    # then
    assert page.count(f'href="{reverse("support:list")}"') == 2
