"""Two staff members (or a double click) deciding the same refund request at once: one refund,
one decision (real transactions on PostgreSQL)."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.action_keys import new_action_key
from billing.models import Charge, Refund
from notifications.models import OutboxEmail
from support.models import SupportRequest
from support.services import SupportError, support_refund_approve, support_request_create
from tests.confirmations import confirm
from tests.factories import PlanFactory, UserFactory, days, subscribed
from tests.threads import at_once

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "simulated_provider"])


def test_two_simultaneous_approvals_refund_once(now):
    # given (superusers: the "Support" group made by a migration does not survive the flush
    # of earlier transactional tests)
    subscription = subscribed(plan=PlanFactory(), at=now - days(20))
    support_request = support_request_create(
        customer=subscription.customer, subject="Remboursement", category="refund",
        body="Merci", subscription=subscription, now=now,
    )
    charge = Charge.objects.get(invoice__subscription=subscription)
    url = reverse("admin:support_supportrequest_refund", args=[support_request.pk])
    clients = []
    for name in ("a", "b"):
        client = Client()
        client.force_login(UserFactory(email=f"{name}@example.com", is_staff=True,
                                       is_superuser=True))
        clients.append(client)

    def approve(client):
        return lambda: confirm(client, url, {"decision": "approve", "charge": charge.pk,
                                             "amount": "5,00"}).status_code

    # when
    statuses = at_once(*(approve(client) for client in clients))

    # then: the second is sent back (to the request, or to the form with the reason)
    assert 302 in statuses
    assert set(statuses) <= {200, 302}
    [refund] = Refund.objects.all()
    assert refund.amount_cents == 500
    support_request.refresh_from_db()
    assert support_request.refund_decision == SupportRequest.RefundDecision.APPROVED
    assert support_request.refund == refund
    assert OutboxEmail.objects.filter(kind="support_reply").count() == 1


def test_one_approval_form_posted_ten_times_at_once_refunds_once(now):
    # given
    subscription = subscribed(plan=PlanFactory(), at=now - days(20))
    support_request = support_request_create(
        customer=subscription.customer, subject="Remboursement", category="refund",
        body="Merci", subscription=subscription, now=now,
    )
    charge = Charge.objects.get(invoice__subscription=subscription)
    url = reverse("admin:support_supportrequest_refund", args=[support_request.pk])
    staff = UserFactory(email="a@example.com", is_staff=True, is_superuser=True)
    data = {"decision": "approve", "charge": charge.pk, "amount": "5,00",
            "action_key": new_action_key()}
    clients = []
    for _ in range(10):
        client = Client()
        client.force_login(staff)
        clients.append(client)

    # when
    statuses = at_once(*(lambda c=client: c.post(url, data).status_code for client in clients))

    # then
    assert set(statuses) == {302}
    assert list(Refund.objects.values_list("amount_cents", flat=True)) == [500]
    assert OutboxEmail.objects.filter(kind="support_reply").count() == 1


def test_two_simultaneous_decisions_through_the_service_make_one(now):
    # given
    subscription = subscribed(plan=PlanFactory(), at=now - days(20))
    support_request = support_request_create(
        customer=subscription.customer, subject="Remboursement", category="refund",
        body="Merci", subscription=subscription, now=now,
    )
    charge = Charge.objects.get(invoice__subscription=subscription)
    staff = UserFactory(email="agent@example.com", is_staff=True)

    def approve():
        try:
            support_refund_approve(request=support_request, staff_user=staff, charge=charge,
                                   amount_cents=300, now=now)
        except SupportError:
            return "refused"
        return "approved"

    # when
    outcomes = at_once(approve, approve)

    # then
    assert sorted(outcomes) == ["approved", "refused"]
    assert list(Refund.objects.values_list("amount_cents", flat=True)) == [300]
    assert support_request.messages.filter(author="staff").count() == 1
