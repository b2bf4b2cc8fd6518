"""The admin login is allauth's, so its rate limits apply to staff too (issue 5, scope 4)."""

import pytest
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_the_admin_login_redirects_to_allauth_keeping_next(client):
    # when
    response = client.get("/admin/login/?next=/admin/billing/invoice/")

    # then
    assert response.status_code == 302
    assert response.url == f"{reverse('account_login')}?next=%2Fadmin%2Fbilling%2Finvoice%2F"


def test_an_anonymous_visit_to_the_admin_ends_on_allauths_login(client):
    # when
    response = client.get("/admin/", follow=True)

    # then
    assert response.redirect_chain[-1][0] == f"{reverse('account_login')}?next=%2Fadmin%2F"
    assert response.status_code == 200


def test_the_bare_admin_form_accepts_no_password(client):
    # given
    staff = UserFactory(email="staff@example.com", is_staff=True, is_superuser=True)

    # when
    response = client.post("/admin/login/?next=/admin/",
                           {"username": staff.email, "password": PASSWORD})

    # then
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))
    assert "_auth_user_id" not in client.session


def test_staff_logging_in_through_allauth_reach_the_admin(client):
    # given
    UserFactory(email="staff@example.com", is_staff=True, is_superuser=True)
    login_url = client.get("/admin/", follow=True).redirect_chain[-1][0]

    # when
    response = client.post(login_url, {"login": "staff@example.com", "password": PASSWORD},
                           follow=True)

    # then
    assert response.redirect_chain[-1][0] == "/admin/"
    assert response.status_code == 200
    assert response.context["user"].email == "staff@example.com"


def test_allauths_failed_login_lock_applies_to_staff(client):
    # given: five wrong passwords for a staff address (allauth's login_failed limit)
    UserFactory(email="staff@example.com", is_staff=True, is_superuser=True)
    login_url = client.get("/admin/login/?next=/admin/").url
    for _ in range(5):
        client.post(login_url, {"login": "staff@example.com", "password": "guess"})

    # when: the right password now
    client.post(login_url, {"login": "staff@example.com", "password": PASSWORD})

    # then
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


def test_a_logged_in_customer_is_refused_not_looped(client):
    # given
    client.force_login(UserFactory())

    # when
    response = client.get("/admin/", follow=True)

    # then
    assert response.status_code == 403


def test_a_logged_in_staff_member_goes_on_to_next(client):
    # given
    client.force_login(UserFactory(is_staff=True))

    # when
    response = client.get("/admin/login/?next=/admin/billing/")

    # then
    assert response.url == "/admin/billing/"
