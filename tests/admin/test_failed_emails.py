"""Failed emails (delivery given up after EMAIL_RETRY_HORIZON_HOURS, DESIGN §10) are easy for
staff to find: counted on the admin index, linked to the outbox list filtered on them, and
counted in the list's status filter."""

import pytest
from django.urls import reverse

from notifications.models import OutboxEmail
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:notifications_outboxemail_changelist"


def _email(status, n, now):
    return OutboxEmail.objects.create(
        occasion_key=f"support_reply:{n}", kind="support_reply", recipient="camille@example.com",
        language="fr", subject="Réponse", body_text="Bonjour", body_html="<p>Bonjour</p>",
        created_at=now, status=status,
    )


@pytest.fixture
def outbox(now):
    return [_email(status, n, now) for n, status in enumerate(
        ["failed", "failed", "sent", "pending", "sending"])]


def test_the_admin_index_counts_failed_emails_and_links_to_them(support_client, outbox):
    # when
    response = support_client.get(reverse("admin:index"))

    # then
    link = f"{reverse(CHANGELIST)}?status__exact=failed"
    assert f'<a href="{link}">2 e-mails en échec, à renvoyer</a>' in response.content.decode()
    listed = support_client.get(link).context["cl"].queryset
    assert set(listed) == set(outbox[:2])


def test_the_admin_index_says_nothing_when_no_email_failed(admin_client, now):
    # given
    _email("sent", 1, now)

    # when
    response = admin_client.get(reverse("admin:index"))

    # then
    assert "en échec" not in response.content.decode()


def test_staff_who_may_not_see_emails_are_not_told_about_them(client, outbox):
    # given
    client.force_login(UserFactory(is_staff=True))

    # when
    response = client.get(reverse("admin:index"))

    # then
    assert "en échec" not in response.content.decode()


def test_the_status_filter_counts_each_status(admin_client, outbox):
    # when
    response = admin_client.get(reverse(CHANGELIST))

    # then
    page = response.content.decode()
    for label in ["Échec (2)", "Envoyé (1)", "En attente (1)", "Envoi en cours (1)"]:
        assert label in page
