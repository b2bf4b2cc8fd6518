"""Issue 10, scope 4: dates as the customer reads them, on every page and in every email.

The demo data (``manage.py load_demo``) is loaded, then a renewal and cancellation run goes
over it; every customer page is rendered for every demo login, in French and in English, and
every email the run produces is rendered in both languages. In each of them, a word that looks
like a month next to a number ("24 Jui 2026", "11 Nov", "1 Déc", "Jun 1, 2027", "juil. 2027")
must be a full month name of the page's language, and in French the first of the month reads
"1er" ("1er juin 2027", never "1 juin 2027")."""

import re
from datetime import date, datetime, timedelta
from html import unescape
from io import BytesIO, StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.contrib import admin
from django.core.management import call_command
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import formats
from pypdf import PdfReader

import notifications.services
from accounts.models import User
from billing.models import CreditNote, Invoice
from billing.services import payment_method_add
from legal.models import TermsVersion
from legal.services import terms_notify_batch
from notifications.models import OutboxEmail
from subscriptions.demo import CUSTOMERS, STAFF, UNPAID
from subscriptions.jobs import run_due_jobs
from subscriptions.models import Plan, Subscription, SubscriptionEvent
from subscriptions.services import subscription_cancel
from subscriptions.services.change_plan import subscription_upgrade
from subscriptions.services.renew import subscription_pay_now
from subscriptions.services.withdraw import subscription_withdraw
from support.services import support_reply_add, support_request_create
from tests.factories import (
    SUCCESS_CARD,
    PlanFactory,
    UserFactory,
    card_token,
    saved_card,
    subscribed,
)

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
# The demo is loaded at this instant: Camille (demo@example.com, monthly) subscribed 20 days
# and 2 hours before, on 1 May 2027 at 08:00, so her next charge falls on 1 June 2027.
DEMO_AT = datetime(2027, 5, 21, 10, 0, tzinfo=PARIS)
AUTHENTICATE_ALWAYS = "4000002760003184"  # the simulated provider's 3-D Secure card

MONTHS = {
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
           "octobre", "novembre", "décembre"],
    "en": ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"],
}
ALL_MONTHS = [month.lower() for names in MONTHS.values() for month in names]
# The customer pages: every URL of these apps, and the home page.
CUSTOMER_NAMESPACES = ("accounts", "subscriptions", "billing", "legal", "support")
# Not pages: the language switch (a POST) and the personal data download (JSON for machines,
# its dates ISO 8601, as they should be).
NOT_PAGES = {"accounts:set_language", "accounts:data_download"}
NUMBER = re.compile(r"^\d+(?:er|st|nd|rd|th)?$")
WORD = re.compile(r"^[^\W\d_]+$")
URL = re.compile(r"https?://[^\s\"'<>)]+|(?<!\w)/[^\s\"'<>)]+")
LICENCE_KEY = re.compile(r"\b[A-Z2-9]{5}(?:-[A-Z2-9]{5}){4}\b")


# -- reading a page or an email ---------------------------------------------------------------


def html_text(html: str) -> str:
    """What a person reads in a page: its text, and the attributes read aloud or shown."""
    html = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    attributes = re.findall(r'(?i)\b(?:title|aria-label|alt|placeholder)="([^"]*)"', html)
    text = re.sub(r"(?s)<[^>]+>", " ", html)
    return " ".join(unescape(" ".join([text, *attributes])).split())


def pdf_text(data: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(BytesIO(data)).pages)


def is_month_like(word: str) -> bool:
    """A word of three letters or more that starts a month name (either language): "Jui",
    "juil", "Déc", "Nov", "Sept", "June", "mars"..."""
    word = word.lower()
    return len(word) >= 3 and any(month.startswith(word) for month in ALL_MONTHS)


def date_problems(text: str, language: str, *, staff: bool = False) -> list[str]:
    """The dates of ``text`` not written in ``language``'s way, each with its surroundings.

    For the staff's pages (``staff``), only abbreviated months: they show the customers'
    emails as written, in the customer's language, and Django's own columns ("1 juin 2027
    08:00"), which are not prose."""
    text = LICENCE_KEY.sub(" ", URL.sub(" ", text)).replace("\u00a0", " ").replace("\u202f",
                                                                                   " ")
    tokens = re.findall(r"[^\W_]+", text)
    # As written in a date: "24 juin 2026" (a French month takes no capital after its day),
    # "June 24, 2026"; on the staff's pages either language.
    full = set(MONTHS["fr"] + MONTHS["en"]) if staff else set(MONTHS[language])
    problems = []
    for i, token in enumerate(tokens):
        if not (WORD.match(token) and is_month_like(token)):
            continue
        after_a_day = i > 0 and NUMBER.match(tokens[i - 1])
        before_a_number = i + 1 < len(tokens) and NUMBER.match(tokens[i + 1])
        if not (after_a_day or before_a_number):
            continue
        written = token if after_a_day else token[0].lower() + token[1:]
        if written not in full and token not in full:
            problems.append(" ".join(tokens[max(i - 3, 0):i + 3]))
    if not staff:
        months = "|".join(MONTHS[language])
        if language == "fr":
            problems += re.findall(rf"(?i)\b0?1 (?:{months})\b[^\n]{{0,10}}", text)
        else:
            problems += re.findall(rf"(?i)\b1er (?:{months})\b[^\n]{{0,10}}", text)
    return problems


def test_the_checker_finds_the_dates_of_the_issue():
    assert date_problems("Émise le 24 Jui 2026", "fr") == ["Émise le 24 Jui 2026"]
    assert date_problems("prochaine relance le 11 Nov", "fr")
    assert date_problems("Période du 1 Déc 2026", "fr")
    assert date_problems("jusqu'au 1 décembre 2026", "fr") == ["1 décembre 2026"]
    assert date_problems("fin juil. 2027", "fr")
    assert date_problems("until Jun 1, 2027", "en")
    assert date_problems("le June 1, 2027", "fr")
    assert date_problems("on 10 mars 2027", "en")
    assert date_problems("Dec. 1, 2026, midnight", "en")
    assert date_problems("le 1er juin 2027", "en")
    assert date_problems("le 21 Mai 2027", "fr")
    assert date_problems("on june 1, 2027", "en")


def test_the_checker_lets_correct_dates_and_ordinary_words_through():
    assert date_problems("le 1er juin 2027 à 15 h 00, du 2 juillet au 31 décembre 2027", "fr") \
        == []
    assert date_problems("01/06/2027 ; fin mars 2026 ; dans sept jours ; Jules Démo", "fr") == []
    assert date_problems("Juin 2027 : 3 factures", "fr") == []
    assert date_problems("June 1, 2027 at 3:00 PM; you may cancel; March 2026", "en") == []
    assert date_problems("clé ABCDE-DEC23-MAR45-JUN67-NOV89, /resilier/dec-1/", "fr") == []
    assert date_problems("Envoyé le 1 juin 2027 08:00 : « payé le 1er juin 2027 »", "en",
                         staff=True) == []
    assert date_problems("Sent Jun 1, 2027", "fr", staff=True)


# -- the demo, a run over it, and everything it shows ------------------------------------------


def customer_patterns():
    """(URL name, pattern) of every customer page."""
    found = []
    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLPattern) and entry.name == "home":
            found.append(("home", entry))
        elif isinstance(entry, URLResolver) and entry.namespace in CUSTOMER_NAMESPACES:
            for pattern in entry.url_patterns:
                name = f"{entry.namespace}:{pattern.name}"
                if name not in NOT_PAGES:
                    found.append((name, pattern))
    return found


def emailed_tokens(customer, pattern) -> list[dict]:
    """The tokens of the customer's emailed links that lead to ``pattern`` (the signed links
    of the cancellation and payment-confirmation emails; a page further on, such as the
    3-D Secure challenge, takes the token of the page that leads to it)."""
    before = str(pattern.pattern).partition("<")[0]
    link = re.compile("/" + re.escape(before) + r"(?P<token>[^/\s\"'<>]+)/")
    tokens = []
    for email in OutboxEmail.objects.filter(customer=customer):
        for match in link.finditer(email.body_text):
            if {"token": match["token"]} not in tokens:
                tokens.append({"token": match["token"]})
    return tokens


def url_parameters(customer, name, pattern) -> list[dict]:
    names = set(pattern.pattern.converters)
    if not names:
        return [{}]
    if names == {"token"}:
        return emailed_tokens(customer, pattern)
    if name.startswith("legal:"):
        pks = TermsVersion.objects.filter(published_at__isnull=False).values_list("pk", flat=True)
    elif name == "subscriptions:withdrawal_acknowledgement":
        pks = SubscriptionEvent.objects.filter(
            subscription__customer=customer, kind=SubscriptionEvent.Kind.WITHDRAWN,
        ).values_list("pk", flat=True)
    else:
        pks = Subscription.objects.filter(customer=customer).values_list("pk", flat=True)
    known = {
        "pk": list(pks),
        "code": list(Plan.objects.values_list("code", flat=True)),
        # invoices' and credit notes' (each page of the other's numbers is a 404)
        "number": list(Invoice.objects.filter(customer=customer).exclude(number="")
                       .values_list("number", flat=True))
        + list(CreditNote.objects.filter(invoice__customer=customer)
               .values_list("number", flat=True)),
        "reference": list(customer.support_requests.values_list("reference", flat=True)),
    }
    unknown = names - known.keys()
    assert not unknown, f"{name}: how should this test fill {unknown}? (add it to url_parameters)"
    combinations = [{}]
    for param in sorted(names):
        combinations = [{**c, param: value} for c in combinations for value in known[param]]
    return combinations


def read_customer_pages(shown, *, moment, label):
    """Every customer page for every demo login, in French and English: (where, language,
    text) appended to ``shown``; returns the URL names rendered (or refusing GET)."""
    rendered, post_only = set(), set()
    logins = [email for email, *_ in CUSTOMERS + UNPAID]
    with time_machine.travel(moment, tick=False):
        for language in ("fr", "en"):
            for email in logins:
                customer = User.objects.get(email=email)
                client = Client()
                client.force_login(customer)
                client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
                for name, pattern in customer_patterns():
                    if name in post_only:
                        continue
                    for kwargs in url_parameters(customer, name, pattern):
                        url = reverse(name, kwargs=kwargs)
                        response = client.get(url, follow=True)
                        # 410: a used or expired link, that says so; 405: a form's POST
                        assert response.status_code in (200, 403, 404, 405, 410), (
                            url, response.status_code)
                        if response.status_code in (200, 405, 410):
                            rendered.add(name)
                        if response.status_code == 405:
                            post_only.add(name)
                            break
                        where = f"{label} {email} {url}"
                        content_type = response.get("Content-Type", "")
                        if content_type.startswith("application/pdf"):
                            # in the customer's language, whatever the page's (a document)
                            shown.append((where, customer.preferred_language,
                                          pdf_text(response.content)))
                        elif name.startswith("legal:") and language == "en":
                            # The terms are written in French only (an English version of
                            # each is issue 13's); their dates are checked on the French pages.
                            continue
                        elif content_type.startswith("text/html"):
                            shown.append((where, language,
                                          html_text(response.content.decode())))
    return rendered


def read_admin_pages(shown, *, moment):
    """The support staff's pages over the same data: list columns, change pages and timelines,
    the staff actions' confirmations, the reporting page."""
    staff = User.objects.get(email=STAFF[0])
    urls = [reverse("admin:index"), reverse("admin:billing_reporting")]
    for model in admin.site._registry:
        info = model._meta.app_label, model._meta.model_name
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        for pk in model._default_manager.order_by("-pk").values_list("pk", flat=True)[:3]:
            urls.append(reverse("admin:{}_{}_change".format(*info), args=[pk]))
    from subscriptions.admin import STAFF_ACTIONS

    for subscription in Subscription.objects.all():
        urls.append(reverse("admin:subscriptions_subscription_change", args=[subscription.pk]))
        for action in STAFF_ACTIONS:
            urls.append(reverse("admin:subscriptions_subscription_staff_action",
                                args=[subscription.pk, action.name]))
    with time_machine.travel(moment, tick=False):
        for language in ("fr", "en"):
            client = Client()
            client.force_login(staff)
            client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
            for url in urls:
                response = client.get(url, follow=True)
                assert response.status_code == 200, (url, response.status_code)
                shown.append((f"admin {url}", language, html_text(response.content.decode())))


@pytest.fixture
def emails_in_both_languages(monkeypatch):
    """Every email queued from now on, rendered in French and in English (staff emails exist in
    French only) with the context it was queued with: (kind, language, subject, text, html)."""
    rendered = []
    render = notifications.services.render_email

    def rendering(*, kind, language, context):
        for each in ("fr", "en"):
            try:
                get_template(f"emails/{each}/{kind}_message.txt")
            except TemplateDoesNotExist:
                continue
            rendered.append((kind, each, *render(kind=kind, language=each, context=context)))
        return render(kind=kind, language=language, context=context)

    monkeypatch.setattr(notifications.services, "render_email", rendering)
    return rendered


def run_jobs(*instants, capture):
    for moment in instants:
        with time_machine.travel(moment, tick=False), capture(execute=True):
            run_due_jobs(now=moment)


def every_day(start, days, hour):
    first = start.replace(hour=hour, minute=0)
    return [first + timedelta(days=n) for n in range(days)]


def test_every_page_and_email_of_the_demo_writes_its_dates_the_languages_way(
    emails_in_both_languages, django_capture_on_commit_callbacks
):
    shown = []
    # given: the demo, as a new user finds it
    with time_machine.travel(DEMO_AT, tick=False):
        call_command("load_demo", stdout=StringIO())
    rendered = read_customer_pages(shown, moment=DEMO_AT, label="demo")
    # when: the customers use it (support requests answered, an upgrade, cancellations, a
    # card needing 3-D Secure, new terms) and the billing jobs run for seven months
    staff = User.objects.get(email=STAFF[0])
    with time_machine.travel(DEMO_AT + timedelta(minutes=5), tick=False):
        for subscription in Subscription.objects.select_related("customer"):
            request = support_request_create(
                customer=subscription.customer, subscription=subscription, category="billing",
                subject="Ma prochaine facture", body="Quand serai-je prélevé ?")
            support_reply_add(request=request, staff_user=staff,
                              body="Le prélèvement a lieu à la date indiquée sur votre compte.")
        camille = Subscription.objects.get(customer__email="demo@example.com")
        subscription_upgrade(subscription=camille, plan=Plan.objects.get(code="premium-mensuel"),
                             actor_user=camille.customer)
        subscription_cancel(subscription=camille, reason="too_expensive",
                            actor_user=camille.customer)
        ines = Subscription.objects.get(customer__email="nouveau@example.com")
        subscription_withdraw(subscription=ines, name=ines.customer.get_full_name(),
                              email=ines.customer.email, actor_user=ines.customer)
        lea = User.objects.get(email="engagement@example.com")
        saved_card(lea, AUTHENTICATE_ALWAYS, DEMO_AT)
        louis = User.objects.get(email="annuel@example.com")
        payment_method_add(customer=louis, now=DEMO_AT, token=card_token(exp_month=8,
                                                                         exp_year=2027))
        paul = Subscription.objects.get(customer__email="suspendu@example.com")
        saved_card(paul.customer, SUCCESS_CARD, DEMO_AT)
        subscription_pay_now(subscription=paul, now=DEMO_AT)
        version = TermsVersion.objects.create(
            version="2027-07", title="Conditions de juillet", summary="Résumé.", body="Texte.",
            effective_date=date(2027, 7, 1), published_at=DEMO_AT)
        terms_notify_batch(version_id=version.pk,
                           customer_ids=User.objects.values_list("pk", flat=True))
    run_jobs(*sorted(every_day(DEMO_AT, 16, hour=12) + every_day(DEMO_AT, 16, hour=23)),
             capture=django_capture_on_commit_callbacks)
    after_a_fortnight = DEMO_AT.replace(hour=23, minute=30) + timedelta(days=15)
    rendered |= read_customer_pages(shown, moment=after_a_fortnight, label="+15 days")
    read_admin_pages(shown, moment=after_a_fortnight)
    run_jobs(*every_day(DEMO_AT + timedelta(days=16), 40, hour=12),
             *[DEMO_AT.replace(hour=12) + timedelta(days=n) for n in range(56, 230, 7)],
             capture=django_capture_on_commit_callbacks)
    # then: every page was rendered (or refuses GET: a form's POST) ...
    assert {name for name, _ in customer_patterns()} - rendered == set()
    # ... and every kind of email went out, and was read in both languages
    kinds = set(OutboxEmail.objects.values_list("kind", flat=True))
    assert {"welcome", "pre_charge_notice", "annual_renewal_notice", "pre_expiry_notice",
            "cancellation_confirmation", "renewal_receipt", "payment_failed",
            "subscription_suspended", "authentication_required", "plan_changed",
            "terms_updated", "support_request_received", "support_reply",
            "card_expiry_notice", "subscription_reactivated"} <= kinds
    for kind, language, subject, text, html in emails_in_both_languages:
        shown.append((f"email {kind} (subject)", language, subject))
        shown.append((f"email {kind} (text)", language, text))
        shown.append((f"email {kind} (html)", language, html_text(html)))
    for email in OutboxEmail.objects.all():
        shown.append((f"outbox {email.kind} → {email.recipient}", email.language,
                      f"{email.subject}\n{email.body_text}\n{html_text(email.body_html)}"))
    problems = [
        f"{where} [{language}]: {problem}"
        for where, language, text in shown
        for problem in date_problems(text, language, staff=where.startswith("admin"))
    ]
    assert problems == [], "\n".join(problems)
    # the first of the month was there to be read, as "1er" in French
    french = "\n".join(text for _, language, text in shown if language == "fr")
    english = "\n".join(text for _, language, text in shown if language == "en")
    assert "1er juin 2027" in french and "1er juillet 2027" in french
    assert "June 1, 2027" in english and "July 1, 2027" in english


# -- targeted ------------------------------------------------------------------------------------


def _client(customer, language):
    client = Client()
    client.force_login(customer)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def test_the_billing_page_shows_the_next_charge_on_1er_juin_2027():
    # given: a monthly subscription taken on 1 May 2027
    subscribed_at = datetime(2027, 5, 1, 10, 0, tzinfo=PARIS)
    with time_machine.travel(subscribed_at, tick=False):
        customer = subscribed(plan=PlanFactory(name="Essentiel"), at=subscribed_at).customer
    with time_machine.travel(datetime(2027, 5, 20, 9, 0, tzinfo=PARIS), tick=False):
        # when
        french = _client(customer, "fr").get(reverse("subscriptions:billing")).content.decode()
        english = _client(customer, "en").get(reverse("subscriptions:billing")).content.decode()
    # then
    assert '<dd class="next-charge">1er juin 2027 — ' in french
    assert "1 juin" not in french
    assert '<dd class="next-charge">June 1, 2027 — ' in english
    # the billing history writes whole months, never "1 Mai"
    assert "1er mai 2027 – 1er juin 2027" in french
    assert "May 1, 2027 – June 1, 2027" in english


def test_the_cancellation_email_gives_the_effective_date_as_1er_juin_2027():
    # given: a monthly subscription taken on 1 May 2027, cancelled after its 14 days
    subscribed_at = datetime(2027, 5, 1, 10, 0, tzinfo=PARIS)
    with time_machine.travel(subscribed_at, tick=False):
        french = subscribed(plan=PlanFactory(name="Essentiel"), at=subscribed_at)
        english = subscribed(customer=UserFactory(preferred_language="en"),
                             plan=PlanFactory(name="Essential"), at=subscribed_at)
    received_at = datetime(2027, 5, 20, 15, 0, tzinfo=PARIS)
    with time_machine.travel(received_at, tick=False):
        # when
        subscription_cancel(subscription=french, actor_user=french.customer)
        subscription_cancel(subscription=english, actor_user=english.customer)
    # then
    email = OutboxEmail.objects.get(kind="cancellation_confirmation", subscription=french)
    for body in (email.body_text, html_text(email.body_html)):
        assert "le 20 mai 2027 à 15 h 00" in body
        assert "Date d'effet : 1er juin 2027" in body
        assert "1 juin" not in body
    email = OutboxEmail.objects.get(kind="cancellation_confirmation", subscription=english)
    for body in (email.body_text, html_text(email.body_html)):
        assert "on May 20, 2027 at 3:00 PM" in body
        assert "Effective date: June 1, 2027" in body


def test_the_invoice_table_writes_june_and_july_in_full():
    # given: invoices of 24 June and 24 July 2026 ("24 Jui 2026" both, before)
    june = datetime(2026, 6, 24, 10, 0, tzinfo=PARIS)
    with time_machine.travel(june, tick=False):
        subscription = subscribed(plan=PlanFactory(name="Essentiel"), at=june)
    july = june + timedelta(days=30)
    with time_machine.travel(july, tick=False):
        run_due_jobs(now=july)
        # when
        page = _client(subscription.customer, "fr").get(
            reverse("subscriptions:billing")).content.decode()
    # then
    assert "<td>24 juin 2026</td>" in page
    assert "<td>24 juillet 2026</td>" in page
    assert date_problems(html_text(page), "fr") == []


def test_the_support_form_offers_the_subscription_with_its_date_in_words():
    # given: subscribed on 11 November 2026 ("11/11/2026" in the dropdown, before)
    at = datetime(2026, 11, 11, 10, 0, tzinfo=PARIS)
    with time_machine.travel(at, tick=False):
        subscription = subscribed(plan=PlanFactory(name="Essentiel"), at=at)
        # when
        french = _client(subscription.customer, "fr").get(reverse("support:create"))
        english = _client(subscription.customer, "en").get(reverse("support:create"))
    # then
    assert "souscrit le 11 novembre 2026" in french.content.decode()
    assert "11/11/2026" not in french.content.decode()
    assert "November 11, 2026" in english.content.decode()


def test_what_django_localizes_itself_has_no_abbreviated_month():
    # the admin's columns and read-only fields
    moment = datetime(2026, 12, 1, 0, 0, tzinfo=PARIS)
    from django.utils import translation

    with translation.override("en"):
        assert formats.date_format(moment.date()) == "December 1, 2026"
        assert formats.date_format(moment, "DATETIME_FORMAT") == "December 1, 2026, 12:00 AM"
    with translation.override("fr"):
        assert formats.date_format(moment.date()) == "1 décembre 2026"
        assert formats.date_format(moment, "SHORT_DATE_FORMAT") == "01/12/2026"
