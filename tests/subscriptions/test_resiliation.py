"""The résiliation en trois clics, to the letter (L215-1-1, D215-1 to D215-3; DESIGN §8): the
footer's "Résilier mon contrat" leads to the recap "Résilier votre contrat", where the
customer checks and corrects each element of the request, may choose a later effective date,
and confirms with "Confirmer ma demande de résiliation"; an acknowledgement (page and e-mail)
restates the request.

The clock is frozen on 10 March 2026, 9 h 30 (tests/conftest.py)."""

import re
from collections import Counter
from datetime import datetime
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from django.forms.models import model_to_dict
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from billing.models import Charge, Invoice, Refund
from notifications.models import OutboxEmail
from subscriptions.jobs import run_due_jobs
from subscriptions.models import EndReason, Status, Subscription, SubscriptionEvent
from subscriptions.selectors import cancellation_quote
from tests.factories import PASSWORD, PlanFactory, UserFactory, subscribed

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
NBSP = "\u00a0"
RECAP_URL = "/compte/resilier/"
ANNUAL_BOUGHT = datetime(2026, 2, 10, 9, 30, tzinfo=PARIS)  # first slice ends on 10 March


def paris(year, month, day, hour=9, minute=30):
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


class _Inputs(HTMLParser):
    """The form controls of a page, by name: their attributes (and a textarea's text)."""

    def __init__(self):
        super().__init__()
        self.controls = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("input", "select", "textarea") and "name" in attrs:
            self.controls[attrs["name"]] = {"tag": tag, **attrs}


def controls(response):
    parser = _Inputs()
    parser.feed(response.content.decode())
    return parser.controls


def squeeze(html: str) -> str:
    """The words of some HTML, one space apart (no-break spaces kept)."""
    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def text(response) -> str:
    return squeeze(response.content.decode())


def state():
    """Everything a résiliation could change."""
    return {
        "subscriptions": [model_to_dict(s) for s in Subscription.objects.order_by("pk")],
        "events": SubscriptionEvent.objects.count(),
        "refunds": Refund.objects.count(),
        "emails": OutboxEmail.objects.count(),
        "invoices": Invoice.objects.count(),
    }


@pytest.fixture
def owner():
    return UserFactory(first_name="Camille", last_name="Martin")


@pytest.fixture
def annual(owner):
    """Annual, 99,00 € TTC, bought on 10 February 2026: one full month elapsed, so the
    earliest effective date is 10 April 2026 with 10 months refunded (82,50 €)."""
    return subscribed(customer=owner, plan=PlanFactory(name="Intégral", annual=True),
                      at=ANNUAL_BOUGHT)


@pytest.fixture
def signed_in(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def post(signed_in, django_capture_on_commit_callbacks):
    """Post the recap, running what waits for the commit (refunds, emails)."""

    def run(data, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return signed_in.post(RECAP_URL, data, **kwargs)

    return run


def recap_data(subscription, **changes):
    """What the recap posts as it comes prefilled (the earliest effective date), changed."""
    customer = subscription.customer
    earliest = cancellation_quote(subscription=subscription, now=timezone.now()).access_ends_at
    return {
        "name": customer.get_full_name(),
        "email": customer.email,
        "customer_number": customer.customer_number,
        "subscription_reference": subscription.reference,
        "effective_date": earliest.astimezone(PARIS).date().isoformat(),
        "reason": "too_expensive",
        "reason_detail": "",
        "action": "confirm",
        **changes,
    }


def tick(*instants):
    for at in instants:
        run_due_jobs(now=at)


# The recap shows each element of D215-2, prefilled and correctable


def test_the_recap_shows_each_element_of_the_request_prefilled_and_editable(
    signed_in, owner, annual
):
    # when
    response = signed_in.get(RECAP_URL)
    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1>Résilier votre contrat</h1>" in page
    fields = controls(response)
    expected = {
        "name": ("text", "Camille Martin"),
        "email": ("email", owner.email),
        "customer_number": ("text", owner.customer_number),
        "subscription_reference": ("text", annual.reference),
        "effective_date": ("date", "2026-04-10"),
    }
    for name, (kind, value) in expected.items():
        assert fields[name]["tag"] == "input", name
        assert (fields[name]["type"], fields[name]["value"]) == (kind, value), name
        assert "readonly" not in fields[name] and "disabled" not in fields[name], name
        assert f'<label for="id_{name}">' in page, name
    assert (fields["effective_date"]["min"], fields["effective_date"]["max"]) == (
        "2026-04-10", "2027-02-10")
    assert re.fullmatch(r"S\d{8}", annual.reference)
    assert ("Au plus tôt le 10 avril 2026 ; vous pouvez choisir une date plus tardive, "
            "jusqu'au 10 février 2027 (fin de la période en cours).") in text(response)
    # the effects
    assert "Votre abonnement restera actif jusqu'au 10 avril 2026" in text(response)
    assert f"Remboursement : 82,50{NBSP}€, sur votre carte sous 3 à 5 jours ouvrables." in (
        text(response))
    assert "Protection en temps réel" in page
    assert '<button type="submit" name="action" value="confirm" class="button confirm">' \
           'Confirmer ma demande de résiliation</button>' in page


def test_corrected_name_and_email_are_those_of_the_request_and_its_acknowledgement(
    post, owner, annual, mailoutbox
):
    # when
    response = post(recap_data(annual, name="Camille Dupont-Martin",
                               email="camille.perso@example.org"), follow=True)
    # then
    receipt = reverse("subscriptions:resiliation_receipt", args=[annual.pk])
    assert response.redirect_chain == [(receipt, 302)]
    event = annual.events.get(kind=SubscriptionEvent.Kind.CANCELLED)
    assert event.data["request"] == {
        "name": "Camille Dupont-Martin", "email": "camille.perso@example.org",
        "customer_number": owner.customer_number, "reference": annual.reference,
    }
    email = OutboxEmail.objects.get(kind="cancellation_confirmation")
    assert email.recipient == "camille.perso@example.org"
    assert [m.to for m in mailoutbox] == [["camille.perso@example.org"]]
    assert email.body_text.startswith("Bonjour Camille Dupont-Martin,")
    owner.refresh_from_db()
    assert (owner.get_full_name(), owner.email) == ("Camille Martin", owner.email)


def test_a_reference_typed_another_way_names_the_same_contract(post, annual):
    # when: lower case, spaces and a dash
    number = annual.customer.customer_number
    response = post(recap_data(annual, customer_number=f" {number.lower()} ",
                               subscription_reference=f"s-{annual.reference[1:5]} "
                                                      f"{annual.reference[5:]}"))
    # then
    assert response.status_code == 302
    annual.refresh_from_db()
    assert annual.auto_renew is False


@pytest.mark.parametrize(("field", "value", "error"), [
    ("subscription_reference", "S99999999",
     "Cette référence ne correspond à aucun de vos abonnements."),
    ("customer_number", "C00000000",
     "Ce numéro client n'est pas le vôtre : il figure sur la page Profil de Mon compte."),
    ("email", "camille@", "Saisissez une adresse de courriel valide."),
    ("name", "", "Ce champ est obligatoire."),
])
def test_a_wrong_element_gets_a_french_error_and_changes_nothing(post, annual, field, value,
                                                                  error):
    # given
    before = state()
    # when
    response = post(recap_data(annual, **{field: value}))
    # then
    assert response.status_code == 200
    assert escape(error) in response.content.decode()
    assert state() == before


def test_another_customers_reference_is_refused(post, annual):
    # given
    someone_else = subscribed(plan=PlanFactory(), at=ANNUAL_BOUGHT)
    before = state()
    # when
    response = post(recap_data(annual, subscription_reference=someone_else.reference))
    # then
    assert "Cette référence ne correspond à aucun de vos abonnements." in text(response)
    assert state() == before


# The effective date


@pytest.mark.parametrize(("typed", "error"), [
    ("2027-02-11", "Choisissez une date d'effet entre le 10 avril 2026 et le 10 février 2027 "
                   "(fin de la période en cours)."),
    ("2026-04-09", "Choisissez une date d'effet entre le 10 avril 2026 et le 10 février 2027 "
                   "(fin de la période en cours)."),
    ("2026-02-30", "Saisissez une date valide."),
    ("demain", "Saisissez une date valide."),
    ("", "Ce champ est obligatoire."),
])
def test_a_date_outside_the_current_period_gets_a_french_error_and_changes_nothing(
    post, annual, typed, error
):
    # given
    before = state()
    # when
    response = post(recap_data(annual, effective_date=typed))
    # then
    assert response.status_code == 200
    assert escape(error) in response.content.decode()
    assert "<h1>Résilier votre contrat</h1>" in response.content.decode()
    assert state() == before


def test_a_monthly_contract_has_one_possible_date_and_says_so(post, owner):
    # given: bought 20 days ago, the period ends on 18 March
    subscription = subscribed(customer=owner, plan=PlanFactory(), at=paris(2026, 2, 18))
    before = state()
    # when
    response = post(recap_data(subscription, effective_date="2026-03-25"))
    # then
    assert escape("La résiliation de ce contrat ne peut prendre effet que le 18 mars 2026.") in (
        response.content.decode())
    assert state() == before


def test_verifying_a_later_date_shows_its_effects_and_changes_nothing(post, annual):
    # given
    before = state()
    # when
    response = post(recap_data(annual, effective_date="2026-07-20", action="verify"))
    # then: six full slices after July's are refunded
    assert response.status_code == 200
    page = text(response)
    assert "Votre abonnement restera actif jusqu'au 20 juillet 2026" in page
    assert f"Remboursement : 49,50{NBSP}€" in page
    assert controls(response)["effective_date"]["value"] == "2026-07-20"
    assert state() == before


def test_a_later_date_is_honoured_by_the_renewal_and_expiry_scans(post, annual):
    # when: the customer chooses 20 July 2026, inside the seventh monthly slice
    response = post(recap_data(annual, effective_date="2026-07-20"))
    # then: access until then (at the period's time of day), the months after July refunded
    assert response.status_code == 302
    annual.refresh_from_db()
    assert (annual.auto_renew, annual.status, annual.ends_at) == (
        False, Status.ACTIVE, paris(2026, 7, 20))
    event = annual.events.get(kind=SubscriptionEvent.Kind.CANCELLED)
    assert (event.data["rule"], event.amount_cents) == ("annual", 4950)
    assert [r.amount_cents for r in Refund.objects.all()] == [4950]
    # when: the jobs run up to just before the date
    tick(paris(2026, 4, 10), paris(2026, 7, 20, 9, 29))
    # then: still running, licence on
    annual.refresh_from_db()
    assert (annual.status, annual.licence_active) == (Status.ACTIVE, True)
    # when: at the date, then at and after the renewal it would have had
    tick(paris(2026, 7, 20, 9, 30), paris(2027, 2, 10, 9, 30), paris(2027, 3, 10))
    # then: ended at the chosen date, nothing charged after it
    annual.refresh_from_db()
    assert (annual.status, annual.end_reason, annual.ended_at, annual.licence_active) == (
        Status.ENDED, EndReason.EXPIRED, paris(2026, 7, 20), False)
    assert not annual.invoices.filter(kind=Invoice.Kind.RENEWAL).exists()
    assert list(Charge.objects.values_list("amount_cents", "status")) == [(9900, "succeeded")]


def test_a_later_date_inside_the_refund_window_gives_the_ordinary_rule_for_that_date(
    post, owner
):
    # given: monthly, bought 3 days ago: leaving now would refund everything
    subscription = subscribed(customer=owner, plan=PlanFactory(), at=paris(2026, 3, 7))
    # when: the customer prefers to keep it until 20 March
    post(recap_data(subscription, effective_date="2026-03-20"))
    # then: access until then, no refund (a monthly plan refunds nothing for a later date)
    subscription.refresh_from_db()
    assert (subscription.status, subscription.ends_at) == (Status.ACTIVE, paris(2026, 3, 20))
    assert not Refund.objects.exists()
    # when
    tick(paris(2026, 3, 20, 9, 29), paris(2026, 3, 20, 9, 30), paris(2026, 4, 7, 9, 30))
    # then
    subscription.refresh_from_db()
    assert (subscription.status, subscription.ended_at) == (Status.ENDED, paris(2026, 3, 20))
    assert not subscription.invoices.filter(kind=Invoice.Kind.RENEWAL).exists()


# Confirming, and the acknowledgement


def test_the_acknowledgement_page_and_email_restate_the_request(post, owner, annual,
                                                                 mailoutbox):
    # when
    response = post(recap_data(annual), follow=True)
    # then: the page after confirming
    page = text(response)
    assert "Accusé de réception de votre demande de résiliation" in page
    assert "Nous avons reçu votre demande de résiliation le 10 mars 2026 à 9 h 30." in page
    for fact in ["Nom Camille Martin", f"E-mail pour l'accusé de réception {owner.email}",
                 "Contrat Intégral",
                 f"Référence du contrat client {owner.customer_number}, abonnement "
                 f"{annual.reference}",
                 "Date d'effet 10 avril 2026",
                 "Votre abonnement reste actif jusqu'à la date d'effet, puis ne sera pas "
                 "renouvelé : vous ne serez plus prélevé.",
                 f"Remboursement : 82,50{NBSP}€, sur votre carte sous 3 à 5 jours ouvrables.",
                 "Fonctionnalités perdues à la date d'effet : Protection en temps réel "
                 "1 appareil"]:
        assert fact in page, fact
    # and the email
    email = OutboxEmail.objects.get(kind="cancellation_confirmation")
    assert email.subject == "Accusé de réception : résiliation de votre abonnement Intégral"
    assert mailoutbox[0].subject == email.subject
    for body in (email.body_text, squeeze(email.body_html).replace(" ,", ",").replace(" .", ".")):
        for fact in ["Nous avons bien reçu votre demande de résiliation le 10 mars 2026 à "
                     "9 h 30.",
                     f"client {owner.customer_number}, abonnement {annual.reference}",
                     "Date d'effet : 10 avril 2026",
                     "Votre abonnement reste actif jusqu'à la date d'effet",
                     f"Remboursement : 82,50{NBSP}€",
                     "Fonctionnalités perdues à la date d'effet : Protection en temps réel, "
                     "1 appareil."]:
            assert fact in body, fact
    # "résiliation" throughout, never "annulation"
    for written in (email.subject, email.body_text, email.body_html, response.content.decode()):
        assert "annulation" not in written.lower()


def test_the_acknowledgement_of_an_immediate_end_gives_the_time(post, owner):
    # given: in the refund window
    subscription = subscribed(customer=owner, plan=PlanFactory(annual=True),
                              at=paris(2026, 3, 7))
    # when
    response = post(recap_data(subscription, effective_date="2026-03-10"), follow=True)
    # then
    page = text(response)
    assert "Date d'effet 10 mars 2026 à 9 h 30" in page
    assert "Votre accès a pris fin et votre clé de licence est désactivée." in page
    assert f"Remboursement : 99,00{NBSP}€" in page
    subscription.refresh_from_db()
    assert subscription.status == Status.ENDED


def test_submitting_the_recap_twice_does_its_work_once(post, annual, mailoutbox):
    # when
    first = post(recap_data(annual))
    second = post(recap_data(annual))
    # then
    receipt = reverse("subscriptions:resiliation_receipt", args=[annual.pk])
    assert (first.status_code, first["Location"]) == (302, receipt)
    assert (second.status_code, second["Location"]) == (302, receipt)
    assert annual.events.filter(kind=SubscriptionEvent.Kind.CANCELLED).count() == 1
    assert Refund.objects.count() == 1
    assert OutboxEmail.objects.filter(kind="cancellation_confirmation").count() == 1
    assert len(mailoutbox) == 1


def test_a_get_changes_nothing(signed_in, annual):
    # given
    before = state()
    # when
    signed_in.get(RECAP_URL, recap_data(annual))
    # then
    assert state() == before


def test_the_recap_is_refused_without_the_csrf_token(owner, annual):
    # given
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    before = state()
    # when
    response = client.post(RECAP_URL, recap_data(annual))
    # then
    assert response.status_code == 403
    assert state() == before


# The way in: the footer, logged in or not


def test_signed_out_the_footer_link_leads_through_sign_in_to_the_recap(client, owner, annual):
    # given: a page seen signed out has the link
    home = client.get(reverse("subscriptions:plans"))
    assert f'<a href="{RECAP_URL}">Résilier mon contrat</a>' in home.content.decode()
    # when: following it
    response = client.get(RECAP_URL)
    # then: sign in first
    login = reverse("account_login")
    assert response.status_code == 302
    assert response["Location"] == f"{login}?next={RECAP_URL}"
    # when
    response = client.post(response["Location"], {"login": owner.email, "password": PASSWORD},
                           follow=True)
    # then: the recap
    assert response.redirect_chain[-1] == (RECAP_URL, 302)
    assert "<h1>Résilier votre contrat</h1>" in response.content.decode()


# The dialog of "Annuler l'abonnement" shows the same facts


def test_the_dialog_shows_name_email_reference_effective_date_and_effects(signed_in, owner,
                                                                          annual):
    # when
    response = signed_in.get(reverse("subscriptions:billing"))
    # then
    page = response.content.decode()
    dialog = page.split(f'<dialog id="cancel-dialog-{annual.pk}"')[1].split("</dialog>")[0]
    assert '<dd class="customer-name">Camille Martin</dd>' in dialog
    assert f'<dd class="acknowledgement-email">{owner.email}</dd>' in dialog
    assert (f'<dd class="contract-reference">client {owner.customer_number}, abonnement '
            f'{annual.reference}</dd>') in dialog
    assert '<dd class="effective-date">10 avril 2026</dd>' in dialog
    assert f"Remboursement : 82,50{NBSP}€" in dialog
    assert "Protection en temps réel" in dialog
    assert "Pas maintenant" in dialog and "Annuler l'abonnement</button>" in dialog


# A commitment: what remains due, and when it ends, said once


@pytest.fixture
def committed(owner):
    """Monthly at 8,40 € TTC with 12 months committed, bought on 18 February 2026: the
    commitment ends on 18 February 2027; eleven renewals (18 March 2026 to 18 January 2027)
    remain due."""
    plan = PlanFactory(name="Essentiel engagement", price_cents=700, commitment_months=12)
    return subscribed(customer=owner, plan=plan, at=paris(2026, 2, 18))


def test_a_commitment_states_what_remains_due_and_its_end_once(signed_in, owner, committed,
                                                                post, mailoutbox):
    # when
    billing = signed_in.get(reverse("subscriptions:billing")).content.decode()
    recap = signed_in.get(RECAP_URL)
    # then: the dialog
    dialog = billing.split(f'<dialog id="cancel-dialog-{committed.pk}"')[1].split(
        "</dialog>")[0]
    dialog_text = squeeze(dialog)
    assert f"Reste dû d'ici là : 92,40{NBSP}€ (11 échéances)." in dialog_text
    assert "Votre période d'engagement se termine à la date d'effet" in dialog_text
    assert Counter(re.findall(r"\d+ \w+ 20\d\d", dialog_text)) == {"18 février 2027": 1}
    # the recap page
    recap_text = text(recap)
    assert f"Reste dû d'ici là : 92,40{NBSP}€ (11 échéances)." in recap_text
    assert Counter(re.findall(r"\d+ \w+ 20\d\d", recap_text)) == {"18 février 2027": 1}
    assert controls(recap)["effective_date"]["value"] == "2027-02-18"
    # when: confirmed
    post(recap_data(committed, effective_date="2027-02-18"))
    # then: the acknowledgement says the same
    body = OutboxEmail.objects.get(kind="cancellation_confirmation").body_text
    assert f"Reste dû d'ici là : 92,40{NBSP}€ (11 échéances)." in body
    assert Counter(re.findall(r"\d+ \w+ 2027", body)) == {"18 février 2027": 1}
    committed.refresh_from_db()
    assert (committed.ends_at, committed.status) == (paris(2027, 2, 18), Status.ACTIVE)
