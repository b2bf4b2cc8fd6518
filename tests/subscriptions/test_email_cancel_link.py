"""Cancelling from the link of the renewal emails (DESIGN §9, last paragraph; issue 4 item 5):
opening it changes nothing, confirming cancels once like the dialog, and a used, tampered,
expired or out-of-date link changes nothing and says why.

The clock is frozen on March 10, 2026 at 09:30 (Paris); a monthly subscription bought then
renews on April 10 at 09:30 and its pre-charge notice goes out on April 7."""

import re
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import mail, signing
from django.db import connection
from django.test import Client

from notifications.models import OutboxEmail
from subscriptions.email_links import SALT
from subscriptions.jobs import run_due_jobs
from subscriptions.models import Actor, Channel, Status, Subscription, SubscriptionEvent
from subscriptions.services import subscription_auto_renew_reactivate, subscription_cancel
from tests.conftest import PARIS
from tests.factories import PlanFactory, UserFactory, days, subscribed

pytestmark = pytest.mark.django_db

RENEWS_AT = datetime(2026, 4, 10, 9, 30, tzinfo=PARIS)
NOTICE_DAY = datetime(2026, 4, 7, 9, 30, tzinfo=PARIS)
OPENED_AT = datetime(2026, 4, 8, 20, 15, tzinfo=PARIS)
LINK = re.compile(re.escape(settings.SITE_URL) + r"(/resilier/[^/\s\"<>]+/)")


@pytest.fixture
def tick(django_capture_on_commit_callbacks):
    """Scheduled runs of every job as of each instant, emails delivered after commit."""

    def run(*instants):
        for at in instants:
            with django_capture_on_commit_callbacks(execute=True):
                run_due_jobs(now=at)

    return run


@pytest.fixture
def clock(django_capture_on_commit_callbacks):
    """Requests made at ``at`` (the views read ``timezone.now()``), the emails they queue
    delivered after commit."""

    @contextmanager
    def at_(at):
        with time_machine.travel(at, tick=False), \
                django_capture_on_commit_callbacks(execute=True):
            yield

    return at_


def link_in(email) -> str:
    """The cancellation link's path, the same in the text and the HTML bodies."""
    paths = LINK.findall(email.body_text)
    assert len(paths) == 1, email.body_text
    assert f'href="{settings.SITE_URL}{paths[0]}"' in email.body_html
    return paths[0]


def emailed_link(subscription, kind="pre_charge_notice") -> str:
    return link_in(OutboxEmail.objects.get(subscription=subscription, kind=kind))


def state(subscription):
    """Everything a cancellation would touch: the row, its events, refunds and emails."""
    return (
        Subscription.objects.filter(pk=subscription.pk).values().get(),
        list(subscription.events.values_list("kind", flat=True)),
        list(OutboxEmail.objects.filter(subscription=subscription)
             .values_list("kind", flat=True)),
        sum(subscription.customer.email in message.to for message in mail.outbox),
    )


def cancellations(subscription):
    return (
        subscription.events.filter(kind=SubscriptionEvent.Kind.CANCELLED).count(),
        OutboxEmail.objects.filter(subscription=subscription,
                                   kind="cancellation_confirmation").count(),
    )


def refused_reason(response) -> str:
    return re.search(r'data-reason="([a-z_]+)"', response.content.decode()).group(1)


def text(response) -> str:
    return " ".join(response.content.decode().split())


@pytest.fixture
def notified(now, tick):
    """A monthly subscription whose pre-charge notice (with the link) went out on April 7."""
    subscription = subscribed(plan=PlanFactory(name="Essentiel"), at=now)
    tick(NOTICE_DAY)
    return subscription


# The link in the emails


def test_the_pre_charge_email_carries_a_signed_link_to_cancel(notified):
    # when
    email = OutboxEmail.objects.get(subscription=notified, kind="pre_charge_notice")
    # then
    path = link_in(email)
    token = path.removeprefix("/resilier/").removesuffix("/")
    payload = signing.Signer(salt=SALT).unsign_object(token)
    assert payload["s"] == notified.pk
    assert email.status == OutboxEmail.Status.SENT
    assert f"{settings.SITE_URL}{path}" in mail.outbox[-1].body
    assert "Résiliez votre contrat avant le 10 avril 2026, sans avoir à vous connecter" in (
        email.body_text)


def test_the_loi_chatel_email_carries_the_link_and_it_cancels(now, tick, clock):
    # given: an annual plan renewing on March 10, 2027; the notice goes out 45 days before
    subscription = subscribed(plan=PlanFactory(name="Intégral", annual=True), at=now)
    tick(datetime(2027, 1, 24, 9, 30, tzinfo=PARIS))
    path = emailed_link(subscription, kind="annual_renewal_notice")
    before = state(subscription)
    # when
    with clock(datetime(2027, 1, 25, 9, 30, tzinfo=PARIS)):
        opened = Client().get(path)
    # then
    assert opened.status_code == 200
    assert "Intégral" in text(opened)
    assert state(subscription) == before
    # when
    with clock(datetime(2027, 1, 25, 9, 30, tzinfo=PARIS)):
        confirmed = Client().post(path, {"reason": ""})
    # then
    assert confirmed.status_code == 200
    subscription.refresh_from_db()
    assert subscription.auto_renew is False
    assert cancellations(subscription) == (1, 1)


def test_the_english_email_carries_the_link_and_the_page_speaks_english(now, tick, clock):
    # given
    subscription = subscribed(customer=UserFactory(preferred_language="en"),
                              plan=PlanFactory(name="Essentiel"), at=now)
    tick(NOTICE_DAY)
    email = OutboxEmail.objects.get(subscription=subscription, kind="pre_charge_notice")
    # when
    path = link_in(email)
    with clock(OPENED_AT):
        opened = Client().get(path)
    # then
    assert email.language == "en"
    assert "Cancel the renewal before April 10, 2026, no sign-in needed" in email.body_text
    assert opened.status_code == 200
    assert '<html lang="en">' in opened.content.decode()
    assert "Cancel subscription?" in text(opened)
    assert "Annuler" not in text(opened)


# Opening and confirming


def test_opening_the_link_without_logging_in_shows_the_recap_and_changes_nothing(notified, clock):
    # given
    path = emailed_link(notified)
    before = state(notified)
    # when: mail scanners probe and open it, then the customer opens it
    with clock(OPENED_AT):
        probed = Client().head(path)
        scanned = Client().get(path)
        opened = Client().get(path)
    # then
    assert (probed.status_code, scanned.status_code, opened.status_code) == (200, 200, 200)
    page = text(opened)
    assert "Annuler l'abonnement ?" in page
    assert "Essentiel" in page
    assert "Votre abonnement restera actif jusqu'au 10 avril 2026, puis ne sera pas renouvelé." in (
        page)
    assert "Aucun remboursement n'est prévu pour la période en cours." in page
    assert '<li>Protection en temps réel</li><li>1 appareil</li>' in page
    assert 'name="reason"' in page and 'name="reason_detail"' in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert '<form method="post">' in page
    assert opened["Cache-Control"].startswith("max-age=0")
    assert opened["Referrer-Policy"] == "same-origin"  # the token never leaves in a Referer
    assert state(notified) == before


def test_confirming_cancels_once_like_the_dialog(notified, clock):
    # given
    path = emailed_link(notified)
    sent_before = len(mail.outbox)
    # when
    with clock(OPENED_AT):
        response = Client().post(path, {"reason": "too_expensive", "reason_detail": "Trop cher."})
    # then: the dialog's service, as the customer
    assert response.status_code == 200
    assert "Accusé de réception de votre demande de résiliation" in text(response)
    assert ("Nous avons reçu votre demande de résiliation le 8 avril 2026 à 20 h 15."
            in text(response))
    assert '<dd class="effective-date">10 avril 2026</dd>' in text(response)
    assert "Votre abonnement reste actif jusqu'à la date d'effet" in text(response)
    notified.refresh_from_db()
    assert notified.auto_renew is False
    assert notified.status == Status.ACTIVE
    assert notified.ends_at == RENEWS_AT
    assert notified.cancel_requested_at == OPENED_AT
    assert (notified.cancel_reason, notified.cancel_reason_detail) == ("too_expensive",
                                                                      "Trop cher.")
    event = notified.events.get(kind=SubscriptionEvent.Kind.CANCELLED)
    assert (event.actor, event.actor_user, event.at) == (Actor.CUSTOMER, notified.customer,
                                                         OPENED_AT)
    assert cancellations(notified) == (1, 1)
    assert len(mail.outbox) == sent_before + 1
    assert mail.outbox[-1].to == [notified.customer.email]
    assert OutboxEmail.objects.get(kind="cancellation_confirmation").status == "sent"


def test_a_used_link_is_refused_and_changes_nothing_more(notified, clock):
    # given
    path = emailed_link(notified)
    with clock(OPENED_AT):
        Client().post(path, {"reason": ""})
    after_first = state(notified)
    # when
    with clock(OPENED_AT + days(1)):
        posted_again = Client().post(path, {"reason": "other"})
        opened_again = Client().get(path)
    # then
    assert (posted_again.status_code, opened_again.status_code) == (410, 410)
    assert refused_reason(posted_again) == "used"
    assert "Il a déjà servi" in text(posted_again)
    assert "Votre abonnement ne sera pas renouvelé : il prendra fin le 10 avril 2026." in (
        text(posted_again))
    assert "Rien n'a été modifié." in text(posted_again)
    assert state(notified) == after_first
    assert cancellations(notified) == (1, 1)


def test_the_link_stays_used_after_the_customer_turns_auto_renewal_back_on(notified, clock):
    # given: cancelled from the link, then reactivated from the account
    path = emailed_link(notified)
    with clock(OPENED_AT):
        Client().post(path, {"reason": ""})
    subscription_auto_renew_reactivate(subscription=notified, now=OPENED_AT + days(1))
    before = state(notified)
    # when
    with clock(OPENED_AT + days(1)):
        response = Client().post(path, {"reason": ""})
    # then
    assert response.status_code == 410
    assert refused_reason(response) == "used"
    assert state(notified) == before
    assert Subscription.objects.get(pk=notified.pk).auto_renew is True


def test_a_cancellation_from_the_account_uses_the_link_up(notified, clock):
    # given
    path = emailed_link(notified)
    subscription_cancel(subscription=notified, now=OPENED_AT)
    before = state(notified)
    # when
    with clock(OPENED_AT):
        response = Client().post(path, {"reason": ""})
    # then
    assert response.status_code == 410
    assert refused_reason(response) == "used"
    assert state(notified) == before


# Links that cannot act


def _token(path):
    return path.removeprefix("/resilier/").removesuffix("/")


def _flip_last(token):
    return token[:-1] + ("A" if token[-1] != "A" else "B")


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_flip_last, id="signature-changed"),
        pytest.param(lambda token: token[:-5], id="truncated"),
        pytest.param(lambda token: "n'importe-quoi", id="garbage"),
        pytest.param(lambda token: signing.Signer(salt="another.purpose").sign_object(
            signing.Signer(salt=SALT).unsign_object(token), compress=True),
            id="signed-for-another-purpose"),
        pytest.param(lambda token: signing.Signer(key="not-our-secret-key", salt=SALT)
                     .sign_object(signing.Signer(salt=SALT).unsign_object(token), compress=True),
                     id="signed-with-another-key"),
    ],
)
def test_a_tampered_link_is_refused_with_400_and_changes_nothing(notified, tamper, clock):
    # given
    path = f"/resilier/{tamper(_token(emailed_link(notified)))}/"
    before = state(notified)
    # when
    with clock(OPENED_AT):
        opened = Client().get(path)
        posted = Client().post(path, {"reason": ""})
    # then
    assert (opened.status_code, posted.status_code) == (400, 400)
    assert refused_reason(posted) == "invalid"
    assert "Ce lien de résiliation n'est pas valide" in text(posted)
    assert state(notified) == before


def test_a_link_for_one_subscription_cannot_act_on_another(now, tick, clock):
    # given: two customers' notices; B's subscription id under A's signature
    a = subscribed(plan=PlanFactory(), at=now)
    b = subscribed(plan=PlanFactory(), at=now)
    tick(NOTICE_DAY)
    a_token, b_token = _token(emailed_link(a)), _token(emailed_link(b))
    b_payload = b_token.rsplit(":", 1)[0]
    a_signature = a_token.rsplit(":", 1)[1]
    swapped = f"/resilier/{b_payload}:{a_signature}/"
    before = state(b)
    # when
    with clock(OPENED_AT):
        forged = Client().post(swapped, {"reason": ""})
        with_a_link = Client().post(f"/resilier/{a_token}/", {"reason": ""})
    # then: the forged one is refused, A's own link cancels A only
    assert forged.status_code == 400
    assert with_a_link.status_code == 200
    assert state(b) == before
    assert Subscription.objects.get(pk=a.pk).auto_renew is False
    assert cancellations(a) == (1, 1)


@pytest.mark.parametrize(
    ("at", "status"),
    [
        (RENEWS_AT - timedelta(minutes=1), 200),
        (RENEWS_AT, 410),
        (RENEWS_AT + days(1), 410),
    ],
)
def test_the_link_expires_at_the_renewal_it_was_sent_for(notified, at, status, clock):
    # given: the renewal has not been processed yet (the jobs did not run)
    path = emailed_link(notified)
    before = state(notified)
    # when
    with clock(at):
        opened = Client().get(path)
    # then
    assert opened.status_code == status
    if status == 410:
        assert refused_reason(opened) == "expired"
        assert "Il permettait d'annuler le renouvellement du 10 avril 2026, et cette date est " \
               "passée." in text(opened)
        # when
        with clock(at):
            posted = Client().post(path, {"reason": ""})
        # then
        assert posted.status_code == 410
    assert state(notified) == before


def test_the_link_is_refused_once_the_renewal_happened(notified, tick, clock):
    # given: renewed and paid on April 10
    path = emailed_link(notified)
    tick(RENEWS_AT)
    notified.refresh_from_db()
    assert notified.current_period_end == datetime(2026, 5, 10, 9, 30, tzinfo=PARIS)
    before = state(notified)
    # when
    with clock(RENEWS_AT + days(1)):
        response = Client().post(path, {"reason": ""})
    # then
    assert response.status_code == 410
    assert refused_reason(response) == "renewed"
    assert "Il concernait l'échéance du 10 avril 2026, et votre abonnement a été renouvelé" in (
        text(response))
    assert "prochaine échéance le 10 mai 2026" in text(response)
    assert state(notified) == before


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"channel": Channel.APP_STORE}, "other_channel"),
        ({"status": Status.ENDED, "licence_active": False}, "ended"),
        ({"auto_renew": False, "ends_at": RENEWS_AT}, "already_cancelled"),
    ],
)
def test_a_link_is_refused_for_a_subscription_that_cannot_be_cancelled(notified, change,
                                                                      reason, clock):
    # given
    path = emailed_link(notified)
    Subscription.objects.filter(pk=notified.pk).update(**change)
    before = state(notified)
    # when
    with clock(OPENED_AT):
        opened = Client().get(path)
        posted = Client().post(path, {"reason": ""})
    # then
    assert (opened.status_code, posted.status_code) == (410, 410)
    assert refused_reason(posted) == reason
    assert state(notified) == before


def test_confirming_needs_the_csrf_token(notified, clock):
    # given
    path = emailed_link(notified)
    browser = Client(enforce_csrf_checks=True)
    before = state(notified)
    # when
    with clock(OPENED_AT):
        forged = browser.post(path, {"reason": ""})
    # then
    assert forged.status_code == 403
    assert state(notified) == before
    # when: the same browser, with the token of the page it opened
    with clock(OPENED_AT):
        browser.get(path)
        confirmed = browser.post(path, {"reason": "",
                                        "csrfmiddlewaretoken": browser.cookies["csrftoken"].value})
    # then
    assert confirmed.status_code == 200
    assert cancellations(notified) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_two_confirmations_at_once_cancel_once(notified):
    """Two tabs, or a double submit, under real transactions: the checks run under the row
    lock, so the second one sees the first one's cancellation."""
    # given
    path = emailed_link(notified)
    barrier = threading.Barrier(2)
    statuses = []

    def confirm():
        try:
            barrier.wait(timeout=10)
            statuses.append(Client().post(path, {"reason": ""}).status_code)
        finally:
            connection.close()

    # when
    with time_machine.travel(OPENED_AT, tick=False):
        threads = [threading.Thread(target=confirm) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    # then
    assert sorted(statuses) == [200, 410]
    assert cancellations(notified) == (1, 1)
    email = OutboxEmail.objects.get(kind="cancellation_confirmation")
    assert email.status == OutboxEmail.Status.SENT
    assert [m.subject for m in mail.outbox].count(email.subject) == 1
