"""Support staff answer requests and decide refund requests from the admin (issue 5, scope 5),
as a member of the "Support" group."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from billing.models import Charge, Refund
from notifications.models import OutboxEmail
from subscriptions.models import SubscriptionEvent
from support.models import SupportMessage, SupportRequest
from support.services import SupportError, support_refund_approve
from tests.confirmations import confirm, form_key
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _change_url(support_request):
    return reverse("admin:support_supportrequest_change", args=[support_request.pk])


def _reply_url(support_request):
    return reverse("admin:support_supportrequest_reply", args=[support_request.pk])


def _refund_url(support_request):
    return reverse("admin:support_supportrequest_refund", args=[support_request.pk])


def _money_state(support_request):
    support_request.refresh_from_db()
    return (
        list(Refund.objects.values_list("amount_cents", flat=True)),
        support_request.status,
        support_request.refund_decision,
        support_request.messages.count(),
        OutboxEmail.objects.filter(kind="support_reply").count(),
        SubscriptionEvent.objects.filter(kind=SubscriptionEvent.Kind.STAFF_REFUND).count(),
    )


def test_staff_find_requests_by_reference_email_and_customer_number(
    staff_client, refund_request, customer
):
    changelist = reverse("admin:support_supportrequest_changelist")
    for term in (refund_request.reference, customer.email, customer.customer_number):
        # when
        page = staff_client.get(changelist, {"q": term}).content.decode()
        # then
        assert refund_request.reference in page, term
    assert staff_client.get(changelist, {"status__exact": "open",
                                         "category__exact": "refund"}).status_code == 200


def test_the_request_page_shows_the_thread_and_the_reply_form(staff_client, refund_request):
    # when
    page = staff_client.get(_change_url(refund_request)).content.decode()

    # then
    assert "Je n&#x27;ai pas utilisé le logiciel ce mois-ci." in page
    assert _reply_url(refund_request) in page
    assert _refund_url(refund_request) in page


def test_a_staff_reply_adds_a_message_and_emails_the_customer_once(
    staff_client, staff_user, refund_request, customer, customer_client
):
    # when
    response = confirm(staff_client, _reply_url(refund_request), {
        "body": "Pouvez-vous nous donner le numéro de facture ?",
        "status": "awaiting_customer",
    })

    # then
    assert response.status_code == 302
    assert response.url == _change_url(refund_request)
    reply = refund_request.messages.get(author=SupportMessage.Author.STAFF)
    assert reply.author_user == staff_user
    assert reply.body == "Pouvez-vous nous donner le numéro de facture ?"
    [email] = OutboxEmail.objects.filter(kind="support_reply")
    assert email.recipient == customer.email
    assert refund_request.reference in email.subject
    assert "Pouvez-vous nous donner le numéro de facture ?" in email.body_text
    refund_request.refresh_from_db()
    assert refund_request.status == SupportRequest.Status.AWAITING_CUSTOMER

    # and the customer sees it in "Mon compte"
    thread = customer_client.get(
        reverse("support:detail", args=[refund_request.reference])
    ).content.decode()
    assert "Pouvez-vous nous donner le numéro de facture ?" in thread
    assert "En attente de votre réponse" in thread


def test_a_reply_posted_twice_is_sent_once(staff_client, refund_request):
    # given: the key of the reply form on the request's page
    key = form_key(staff_client.get(_change_url(refund_request)))
    data = {"body": "Nous regardons.", "status": "awaiting_customer", "action_key": key}

    # when
    staff_client.post(_reply_url(refund_request), data)
    second = staff_client.post(_reply_url(refund_request), data, follow=True)

    # then
    assert refund_request.messages.filter(author=SupportMessage.Author.STAFF).count() == 1
    assert OutboxEmail.objects.filter(kind="support_reply").count() == 1
    assert "Cette action a déjà été effectuée" in second.content.decode()


def test_an_empty_staff_reply_is_an_admin_error_and_changes_nothing(
    staff_client, refund_request
):
    # given
    before = _money_state(refund_request)

    # when
    response = confirm(staff_client, _reply_url(refund_request), {"body": " ",
                                                               "status": "resolved"},
                                 follow=True)

    # then
    assert "Réponse non envoyée" in response.content.decode()
    assert _money_state(refund_request) == before


def test_staff_without_the_permission_cannot_answer(refund_request):
    # given
    outsider = Client()
    outsider.force_login(UserFactory(email="stagiaire@example.com", is_staff=True))

    # when
    replied = confirm(outsider, _reply_url(refund_request), {"body": "x",
                                                         "status": "resolved"})
    refunded = confirm(outsider, _refund_url(refund_request), {"decision": "refuse", "body": "x"})

    # then
    assert replied.status_code == 403
    assert refunded.status_code == 403
    assert refund_request.messages.count() == 1


def _approve(client, support_request, amount="5,00"):
    charge = Charge.objects.get(invoice__subscription=support_request.subscription)
    return confirm(client, _refund_url(support_request), {
        "decision": "approve", "charge": charge.pk, "amount": amount, "body": "",
    })


def test_approving_refunds_once_and_tells_the_customer(
    staff_client, staff_user, refund_request, customer
):
    # when
    first = _approve(staff_client, refund_request)
    second = _approve(staff_client, refund_request)

    # then
    assert first.status_code == 302
    assert second.status_code == 302  # back to the request, with an error message
    [refund] = Refund.objects.all()
    assert refund.amount_cents == 500
    assert refund.reason == Refund.Reason.STAFF
    refund_request.refresh_from_db()
    assert refund_request.refund == refund
    assert refund_request.refund_decision == SupportRequest.RefundDecision.APPROVED
    assert refund_request.decided_by == staff_user
    assert refund_request.status == SupportRequest.Status.RESOLVED
    [event] = SubscriptionEvent.objects.filter(kind=SubscriptionEvent.Kind.STAFF_REFUND)
    assert (event.actor, event.actor_user, event.amount_cents) == ("staff", staff_user, 500)
    assert event.data["support_request"] == refund_request.reference
    [email] = OutboxEmail.objects.filter(kind="support_reply")
    assert email.recipient == customer.email
    assert "5,00" in email.body_text
    assert refund_request.messages.filter(author="staff").count() == 1


def _opened_decision_form(client, support_request):
    response = client.get(_refund_url(support_request))
    assert response.status_code == 200
    return form_key(response)


def test_an_approval_posted_twice_refunds_once_and_says_so(staff_client, refund_request):
    # given
    charge = Charge.objects.get(invoice__subscription=refund_request.subscription)
    data = {"decision": "approve", "charge": charge.pk, "amount": "5,00", "body": "",
            "action_key": _opened_decision_form(staff_client, refund_request)}

    # when
    first = staff_client.post(_refund_url(refund_request), data)
    second = staff_client.post(_refund_url(refund_request), data)

    # then
    assert (first.status_code, second.status_code) == (302, 302)
    assert list(Refund.objects.values_list("amount_cents", flat=True)) == [500]
    assert refund_request.messages.filter(author="staff").count() == 1
    assert OutboxEmail.objects.filter(kind="support_reply").count() == 1
    message = [str(m) for m in get_messages(second.wsgi_request)][-1]
    assert "Cette action a déjà été effectuée" in message
    assert "Remboursement de 5,00\u00a0€ accordé" in message


def test_a_refusal_posted_twice_is_sent_once(staff_client, refund_request):
    # given
    data = {"decision": "refuse", "body": "Hors délai.",
            "action_key": _opened_decision_form(staff_client, refund_request)}

    # when
    staff_client.post(_refund_url(refund_request), data)
    second = staff_client.post(_refund_url(refund_request), data)

    # then
    assert refund_request.messages.filter(author="staff").count() == 1
    assert OutboxEmail.objects.filter(kind="support_reply").count() == 1
    message = [str(m) for m in get_messages(second.wsgi_request)][-1]
    assert "Cette action a déjà été effectuée" in message and "Remboursement refusé" in message


def test_a_decision_without_its_key_is_refused_and_changes_nothing(staff_client,
                                                                   refund_request):
    # given
    before = _money_state(refund_request)
    charge = Charge.objects.get(invoice__subscription=refund_request.subscription)

    # when
    response = staff_client.post(_refund_url(refund_request), {
        "decision": "approve", "charge": charge.pk, "amount": "5,00", "body": ""})

    # then
    assert response.status_code == 200
    assert "clé d&#x27;action absente ou incorrecte" in response.content.decode()
    assert _money_state(refund_request) == before


def test_refusing_moves_no_money_and_tells_the_customer(staff_client, refund_request):
    # when
    response = confirm(staff_client, _refund_url(refund_request), {
        "decision": "refuse", "body": "Votre demande dépasse le délai de rétractation.",
    })

    # then
    assert response.status_code == 302
    assert not Refund.objects.exists()
    assert not SubscriptionEvent.objects.filter(kind=SubscriptionEvent.Kind.STAFF_REFUND)
    refund_request.refresh_from_db()
    assert refund_request.refund_decision == SupportRequest.RefundDecision.REFUSED
    assert refund_request.status == SupportRequest.Status.RESOLVED
    assert refund_request.messages.last().body == \
        "Votre demande dépasse le délai de rétractation."
    assert OutboxEmail.objects.filter(kind="support_reply").count() == 1


def test_a_refusal_needs_a_message(staff_client, refund_request):
    # given
    before = _money_state(refund_request)

    # when
    response = confirm(staff_client, _refund_url(refund_request), {"decision": "refuse",
                                                                "body": ""})

    # then
    assert response.status_code == 200
    assert "Expliquez au client" in response.content.decode()
    assert _money_state(refund_request) == before


@pytest.mark.parametrize("amount", ["9,91", "100", "abc", "0", "-1", "1,234", "5,001",
                                    "1e0", "0_5", "٥", "1,2,3", ""])
def test_a_bad_amount_is_an_admin_error_and_changes_nothing(
    staff_client, refund_request, amount
):
    # given: the charge was 9,90 € TTC
    before = _money_state(refund_request)

    # when
    response = _approve(staff_client, refund_request, amount=amount)

    # then
    assert response.status_code == 200
    assert "Rien n&#x27;a été fait" in response.content.decode()
    assert _money_state(refund_request) == before


def test_the_service_refuses_more_than_the_remainder_and_changes_nothing(
    staff_user, refund_request, now
):
    # given
    before = _money_state(refund_request)
    charge = Charge.objects.get(invoice__subscription=refund_request.subscription)

    # when / then
    with pytest.raises(SupportError):
        support_refund_approve(request=refund_request, staff_user=staff_user, charge=charge,
                               amount_cents=charge.amount_cents + 1, now=now)
    assert _money_state(refund_request) == before


def test_get_never_changes_anything(staff_client, refund_request):
    # given
    before = _money_state(refund_request)

    # when
    refund_page = staff_client.get(_refund_url(refund_request))
    reply_get = staff_client.get(_reply_url(refund_request))

    # then
    assert refund_page.status_code == 200
    assert "9,90" in refund_page.content.decode()
    assert reply_get.status_code == 405
    assert _money_state(refund_request) == before


def test_admin_posts_without_csrf_are_refused(staff_user, refund_request):
    # given
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff_user)
    before = _money_state(refund_request)

    # when
    replied = confirm(strict, _reply_url(refund_request), {"body": "x", "status": "resolved"})
    refunded = confirm(strict, _refund_url(refund_request), {"decision": "refuse", "body": "x"})

    # then
    assert (replied.status_code, refunded.status_code) == (403, 403)
    assert _money_state(refund_request) == before


def test_a_request_that_is_not_about_a_refund_has_no_refund_page(
    staff_client, customer, now
):
    # given
    from support.services import support_request_create

    question = support_request_create(customer=customer, subject="Question", category="other",
                                      body="Bonjour", now=now)

    # when
    response = confirm(staff_client, _refund_url(question), {"decision": "refuse", "body": "x"},
                                 follow=True)

    # then
    assert "pas une demande de remboursement" in response.content.decode()
    assert question.messages.count() == 1
