import pytest
from django.contrib.auth.models import Group
from django.test import Client

from support.services import support_request_create
from tests.factories import PlanFactory, UserFactory, days, subscribed


@pytest.fixture
def customer():
    return UserFactory(email="camille@example.com")


@pytest.fixture
def subscription(customer, now):
    """A monthly subscription bought 20 days ago: outside the 14-day refund window."""
    return subscribed(customer=customer, plan=PlanFactory(code="essentiel"), at=now - days(20))


@pytest.fixture
def customer_client(customer):
    client = Client()
    client.force_login(customer)
    return client


@pytest.fixture
def staff_user():
    """A member of the "Support" group, not a superuser."""
    user = UserFactory(email="agent@example.com", is_staff=True)
    user.groups.add(Group.objects.get(name="Support"))
    return user


@pytest.fixture
def staff_client(staff_user):
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def refund_request(customer, subscription, now):
    return support_request_create(
        customer=customer,
        subject="Remboursement du mois",
        category="refund",
        body="Je n'ai pas utilisé le logiciel ce mois-ci.",
        subscription=subscription,
        now=now,
    )
