import pytest
from django.contrib.auth.models import Group

from tests.factories import UserFactory


@pytest.fixture
def superuser():
    return UserFactory(email="admin@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def support_user():
    user = UserFactory(email="support@example.com", is_staff=True)
    user.groups.add(Group.objects.get(name="Support"))
    return user


@pytest.fixture
def support_client(client, support_user):
    client.force_login(support_user)
    return client
