"""Customer accounts: allauth signup with email verification, email login, password reset,
logout, rate limits, the profile page and the French/English switch (DESIGN §1, §9)."""

import re

import pytest
from allauth.account import app_settings as allauth_settings
from allauth.account.models import EmailAddress
from django.conf import settings
from django.core import mail
from django.urls import reverse

from accounts.models import User
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Mandarine-Ocelot-42"
LANGUAGE_COOKIE = settings.LANGUAGE_COOKIE_NAME


def signup(client, email="camille@example.com", **fields):
    data = {
        "email": email,
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
        "first_name": "Camille",
        "last_name": "Dupont",
        "billing_country": "BE",
        **fields,
    }
    return client.post(reverse("account_signup"), data)


def login(client, email, password):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def logged_in_user_id(client):
    return client.session.get("_auth_user_id")


def link_in(message, path_prefix):
    """The absolute link of an allauth email whose path starts with path_prefix, as a path."""
    match = re.search(rf"https?://testserver({re.escape(path_prefix)}\S+)", message.body)
    assert match, message.body
    return match.group(1)


def html_lang(response):
    return re.search(r'<html lang="([^"]+)"', response.content.decode()).group(1)


# --- signup and email verification --------------------------------------------------------


def test_signup_form_asks_for_email_names_and_billing_country_in_french(client):
    # when
    response = client.get(reverse("account_signup"))
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert html_lang(response) == "fr"
    for label in ("Prénom", "Nom", "Pays de facturation", "Mot de passe"):
        assert re.search(rf"<label for=\"id_\w+\">{label}\s*:?</label>", html), label
    assert 'name="email"' in html
    assert 'name="username"' not in html
    assert '<option value="BE">Belgique</option>' in html


def test_signup_creates_a_customer_with_a_customer_number_and_a_french_verification_email(
    client,
):
    # when
    response = signup(client)
    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    user = User.objects.get(email="camille@example.com")
    assert re.fullmatch(r"C\d{8}", user.customer_number)
    assert (user.first_name, user.last_name, user.billing_country) == ("Camille", "Dupont", "BE")
    assert user.preferred_language == "fr"
    assert user.has_usable_password()
    address = EmailAddress.objects.get(user=user)
    assert (address.email, address.primary, address.verified) == ("camille@example.com", True,
                                                                   False)
    assert logged_in_user_id(client) is None
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["camille@example.com"]
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    assert message.subject == "Confirmez votre adresse e-mail"
    assert "Pour confirmer que cela est correct, allez sur" in message.body
    assert "/comptes/confirm-email/" in message.body


def test_each_signup_gets_its_own_customer_number(client):
    # when
    signup(client, email="one@example.com")
    signup(client.__class__(), email="two@example.com")
    # then
    numbers = set(User.objects.values_list("customer_number", flat=True))
    assert len(numbers) == 2
    assert all(re.fullmatch(r"C\d{8}", number) for number in numbers)


def test_signup_with_an_email_already_registered_creates_nothing_and_tells_the_owner(client):
    # given
    UserFactory(email="camille@example.com")
    # when
    response = signup(client, email="Camille@Example.com")
    # then: the page does not reveal that the address is taken (enumeration prevention)...
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert User.objects.count() == 1
    assert logged_in_user_id(client) is None
    # ...and the owner gets a note pointing at the password reset, not a verification link
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["camille@example.com"], "Ce compte existe déjà")]
    assert "/comptes/password/reset/" in mail.outbox[0].body
    assert "/comptes/confirm-email/" not in mail.outbox[0].body


def test_signup_requires_names_and_a_known_billing_country(client):
    # when
    response = signup(client, first_name="", last_name="", billing_country="XX")
    # then
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) >= {"first_name", "last_name", "billing_country"}
    assert not User.objects.exists()
    assert mail.outbox == []


def test_login_is_refused_until_the_email_address_is_confirmed(client):
    # given
    signup(client)
    confirm_path = link_in(mail.outbox[0], "/comptes/confirm-email/")
    browser = client.__class__()
    # when: the customer tries to log in before clicking the link
    refused = login(browser, "camille@example.com", NEW_PASSWORD)
    # then
    assert refused.status_code == 302
    assert refused["Location"] == reverse("account_email_verification_sent")
    assert logged_in_user_id(browser) is None

    # when: a mail scanner opens the link (GET), nothing is confirmed yet
    page = browser.get(confirm_path)
    # then
    assert page.status_code == 200
    assert "l'adresse e-mail de Camille Dupont" in page.content.decode()
    assert not EmailAddress.objects.get(email="camille@example.com").verified

    # when: the customer confirms (POST)
    confirmed = browser.post(confirm_path)
    # then
    assert confirmed.status_code == 302
    assert EmailAddress.objects.get(email="camille@example.com").verified

    # when
    accepted = login(browser, "camille@example.com", NEW_PASSWORD)
    # then
    assert accepted.status_code == 302
    assert accepted["Location"] == reverse(settings.LOGIN_REDIRECT_URL)
    assert logged_in_user_id(browser) == str(User.objects.get().pk)


def test_a_tampered_confirmation_key_confirms_nothing(client):
    # given
    signup(client)
    confirm_path = link_in(mail.outbox[0], "/comptes/confirm-email/")
    tampered = confirm_path[:-3] + ("A" if confirm_path[-3] != "A" else "B") + confirm_path[-2:]
    # when
    response = client.post(tampered)
    # then
    assert response.status_code == 404
    assert not EmailAddress.objects.get(email="camille@example.com").verified


def test_a_customer_who_switched_to_english_gets_the_verification_email_in_english(client):
    # given
    client.post(reverse("accounts:set_language"), {"language": "en", "next": "/"})
    # when
    signup(client)
    # then
    assert User.objects.get().preferred_language == "en"
    assert mail.outbox[0].subject == "Please Confirm Your Email Address"


# --- login and logout ---------------------------------------------------------------------


def test_login_form_asks_for_an_email_address_not_a_username(client):
    # when
    response = client.get(reverse("account_login"))
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'<input type="email" name="login"', html)
    assert 'name="username"' not in html
    assert "Nom d'utilisateur" not in html


def test_a_verified_customer_logs_in_with_their_email_address_in_any_case(client):
    # given
    user = UserFactory(email="lea@example.com")
    # when
    response = login(client, "Lea@Example.COM", PASSWORD)
    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("subscriptions:billing")
    assert logged_in_user_id(client) == str(user.pk)


def test_a_wrong_password_is_refused_with_a_french_error(client):
    # given
    UserFactory(email="lea@example.com")
    # when
    response = login(client, "lea@example.com", "not-the-password")
    # then
    assert response.status_code == 200
    assert logged_in_user_id(client) is None
    assert "L’adresse e-mail ou le mot de passe sont incorrects." in response.content.decode()


def test_logout_is_post_only(client):
    # given
    user = UserFactory()
    client.force_login(user)
    # when: a GET (a link, a prefetch) only shows the confirmation form
    page = client.get(reverse("account_logout"))
    # then
    assert page.status_code == 200
    assert 'method="post"' in page.content.decode()
    assert logged_in_user_id(client) == str(user.pk)
    # when
    response = client.post(reverse("account_logout"))
    # then
    assert response.status_code == 302
    assert logged_in_user_id(client) is None


def test_the_header_signs_out_with_a_post_form(client):
    # given
    client.force_login(UserFactory())
    # when
    html = client.get(reverse("accounts:profile")).content.decode()
    # then
    logout = re.escape(reverse("account_logout"))
    assert re.search(
        rf'<form method="post" action="{logout}"[^>]*>\s*'
        r'<input type="hidden" name="csrfmiddlewaretoken"',
        html,
    )


# --- password reset -----------------------------------------------------------------------


def test_password_reset_by_email(client):
    # given
    user = UserFactory(email="lea@example.com")
    # when
    response = client.post(reverse("account_reset_password"), {"email": "lea@example.com"})
    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("account_reset_password_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["lea@example.com"]
    assert message.subject == "E-mail de réinitialisation de mot de passe"
    reset_path = link_in(message, "/comptes/password/reset/key/")

    # when: the link swaps the key for a session-held one, then the form sets the password
    form_page = client.get(reset_path, follow=True)
    set_password_path = form_page.redirect_chain[-1][0] if form_page.redirect_chain else reset_path
    # then
    assert form_page.status_code == 200
    assert 'name="password1"' in form_page.content.decode()
    # when
    done = client.post(set_password_path, {"password1": NEW_PASSWORD,
                                           "password2": NEW_PASSWORD})
    # then
    assert done.status_code == 302
    assert done["Location"] == reverse("account_reset_password_from_key_done")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    stale = client.__class__()
    assert login(stale, "lea@example.com", PASSWORD).status_code == 200
    assert logged_in_user_id(stale) is None
    fresh = client.__class__()
    assert login(fresh, "lea@example.com", NEW_PASSWORD).status_code == 302
    assert logged_in_user_id(fresh) == str(user.pk)


def test_a_password_reset_link_works_only_once(client):
    # given
    UserFactory(email="lea@example.com")
    client.post(reverse("account_reset_password"), {"email": "lea@example.com"})
    reset_path = link_in(mail.outbox[0], "/comptes/password/reset/key/")
    form_page = client.get(reset_path, follow=True)
    client.post(form_page.redirect_chain[-1][0],
                {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    # when
    again = client.__class__().get(reset_path, follow=True)
    # then
    assert 'name="password1"' not in again.content.decode()


# --- rate limits --------------------------------------------------------------------------


def test_allauth_rate_limits_are_on():
    assert getattr(settings, "ACCOUNT_RATE_LIMITS", None) is not False
    limits = allauth_settings.RATE_LIMITS
    for action in ("login", "login_failed", "signup", "reset_password", "confirm_email"):
        assert limits.get(action), action


def test_repeated_failed_logins_lock_the_address_even_for_the_right_password(client):
    # given
    user = UserFactory(email="lea@example.com")
    for _ in range(5):
        assert login(client, "lea@example.com", "guess").status_code == 200
    # when
    response = login(client, "lea@example.com", PASSWORD)
    # then
    assert response.status_code == 200
    assert logged_in_user_id(client) is None
    assert "Trop de tentatives de connexion échouées" in response.content.decode()
    # another address from the same place is not locked
    other = UserFactory(email="sam@example.com")
    assert login(client, "sam@example.com", PASSWORD).status_code == 302
    assert logged_in_user_id(client) == str(other.pk)
    assert logged_in_user_id(client) != str(user.pk)


def test_a_flood_of_login_posts_gets_429_in_the_site_layout(client):
    # given: allauth allows a number of login POSTs a minute from one IP address (30/m/ip)
    allowed = int(re.fullmatch(r"(\d+)/m/ip", allauth_settings.RATE_LIMITS["login"]).group(1))
    for _ in range(allowed):
        assert client.post(reverse("account_login"), {}).status_code == 200
    # when
    response = client.post(reverse("account_login"), {})
    # then
    assert response.status_code == 429
    html = response.content.decode()
    assert "Trop de tentatives" in html
    assert 'class="site-header"' in html


# --- allauth's pages in the site's layout, French by default, English on demand ----------


def _unverified_confirm_path(client):
    signup(client)
    path = link_in(mail.outbox[0], "/comptes/confirm-email/")
    mail.outbox.clear()
    return path


ALLAUTH_PAGES = [
    # (name, how to get the path, French title, English title)
    ("login", lambda c: reverse("account_login"), "Connexion", "Sign In"),
    ("signup", lambda c: reverse("account_signup"), "Inscription", "Signup"),
    ("password reset", lambda c: reverse("account_reset_password"),
     "Réinitialisation du mot de passe", "Password Reset"),
    ("password reset sent", lambda c: reverse("account_reset_password_done"),
     "Réinitialisation du mot de passe", "Password Reset"),
    ("verification sent", lambda c: reverse("account_email_verification_sent"),
     "Vérifiez votre adresse e-mail", "Verify Your Email Address"),
    ("confirm email", _unverified_confirm_path,
     "Confirmer l'adresse e-mail", "Confirm Email Address"),
]


def _title(response):
    title = re.search(r"<title>(.*?)</title>", response.content.decode(), re.S).group(1)
    return " ".join(title.split())


@pytest.mark.parametrize(("page", "path_of", "french", "english"), ALLAUTH_PAGES,
                         ids=[p[0] for p in ALLAUTH_PAGES])
def test_allauth_pages_render_in_the_site_layout_in_french_then_english(
    client, page, path_of, french, english
):
    # given
    path = path_of(client)
    # when
    response = client.get(path)
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert html_lang(response) == "fr"
    assert _title(response) == f"{french} · Espace client"
    assert 'class="site-header"' in html and 'class="language-switch"' in html
    assert "Résilier mon contrat" in html

    # when
    switched = client.post(reverse("accounts:set_language"), {"language": "en", "next": path})
    response = client.get(switched["Location"])
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert html_lang(response) == "en"
    assert _title(response) == f"{english} · Customer area"
    assert "Cancel my contract" in html
    assert "Résilier" not in html


@pytest.mark.parametrize("name", ["account_email", "account_change_password"])
def test_allauth_account_management_pages_render_in_the_site_layout(client, name):
    # given
    client.force_login(UserFactory())
    # when
    response = client.get(reverse(name))
    # then
    assert response.status_code == 200
    assert 'class="site-header"' in response.content.decode()


# --- profile ------------------------------------------------------------------------------


def test_profile_page_shows_the_customer_number_and_email(client):
    # given
    user = UserFactory(email="lea@example.com")
    client.force_login(user)
    # when
    response = client.get(reverse("accounts:profile"))
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert f'<strong class="customer-number">{user.customer_number}</strong>' in html
    assert "lea@example.com" in html
    assert "Numéro client :" in html


def test_profile_page_requires_login(client):
    response = client.get(reverse("accounts:profile"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_profile_saves_names_billing_country_and_preferred_language(client):
    # given
    user = UserFactory()
    number = user.customer_number
    client.force_login(user)
    # when
    response = client.post(reverse("accounts:profile"), {
        "first_name": "Léa",
        "last_name": "Nguyen",
        "billing_country": "DE",
        "preferred_language": "en",
        "customer_number": "C00000000",
    })
    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:profile")
    assert response.cookies[LANGUAGE_COOKIE].value == "en"
    user.refresh_from_db()
    assert (user.first_name, user.last_name, user.billing_country, user.preferred_language) == (
        "Léa", "Nguyen", "DE", "en")
    assert user.customer_number == number
    page = client.get(response["Location"])
    html = page.content.decode()
    assert html_lang(page) == "en"
    assert "Your profile has been saved." in html
    assert f'Customer number: <strong class="customer-number">{number}</strong>' in html


def test_profile_refuses_an_unknown_billing_country(client):
    # given
    user = UserFactory()
    client.force_login(user)
    # when
    response = client.post(reverse("accounts:profile"), {
        "first_name": "Léa", "last_name": "Nguyen", "billing_country": "XX",
        "preferred_language": "fr",
    })
    # then
    assert response.status_code == 200
    assert "billing_country" in response.context["form"].errors
    user.refresh_from_db()
    assert user.billing_country == "FR"


# --- language -----------------------------------------------------------------------------


def test_anonymous_visitors_get_french_even_with_an_english_browser(client):
    # when
    response = client.get(reverse("subscriptions:plans"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    # then
    assert response.status_code == 200
    assert html_lang(response) == "fr"
    assert response["Content-Language"] == "fr"
    assert "Choisissez votre formule" in response.content.decode()


def test_language_switch_renders_the_billing_page_in_english_and_keeps_the_choice(client):
    # given
    user = UserFactory()
    client.force_login(user)
    billing = reverse("subscriptions:billing")
    assert "Abonnement et facturation" in client.get(billing).content.decode()
    # when
    response = client.post(reverse("accounts:set_language"), {"language": "en", "next": billing})
    # then
    assert response.status_code == 302
    assert response["Location"] == billing
    assert response.cookies[LANGUAGE_COOKIE].value == "en"
    user.refresh_from_db()
    assert user.preferred_language == "en"
    page = client.get(billing)
    html = page.content.decode()
    assert html_lang(page) == "en"
    assert "Subscription and billing" in html
    assert "Abonnement et facturation" not in html
    assert "Cancel my contract" in html


def test_the_language_switch_is_post_only_and_ignores_unknown_languages_and_foreign_urls(
    client,
):
    # given
    user = UserFactory(preferred_language="en")
    client.force_login(user)
    # when
    get = client.get(reverse("accounts:set_language"))
    response = client.post(reverse("accounts:set_language"),
                           {"language": "de", "next": "https://evil.example.com/"})
    # then
    assert get.status_code == 405
    assert response["Location"] == "/"
    assert response.cookies[LANGUAGE_COOKIE].value == "fr"
    user.refresh_from_db()
    assert user.preferred_language == "fr"


def test_a_customers_preferred_language_applies_on_a_new_browser(client):
    # given: a customer who chose English, on a browser without a language cookie
    client.force_login(UserFactory(preferred_language="en"))
    # when
    page = client.get(reverse("subscriptions:billing"))
    # then
    assert html_lang(page) == "en"
    assert "Subscription and billing" in page.content.decode()


def test_logging_in_switches_to_the_customers_preferred_language(client):
    # given
    UserFactory(email="sam@example.com", preferred_language="en")
    # when
    response = login(client, "sam@example.com", PASSWORD)
    page = client.get(response["Location"])
    # then
    html = page.content.decode()
    assert html_lang(page) == "en"
    assert "Successfully signed in as Camille Martin." in html
    assert "Subscription and billing" in html


def test_the_language_picked_in_the_browser_wins_over_the_profile(client):
    # given
    client.force_login(UserFactory(preferred_language="en"))
    client.cookies[LANGUAGE_COOKIE] = "fr"
    # when
    page = client.get(reverse("subscriptions:billing"))
    # then
    assert html_lang(page) == "fr"
    assert "Abonnement et facturation" in page.content.decode()


def test_the_english_catalog_translates_the_billing_vocabulary():
    from django.utils import translation

    expected = {
        "Abonnement et facturation": "Subscription and billing",
        "Annuler l'abonnement": "Cancel subscription",
        "Pas maintenant": "Not now",
        "Résilier mon contrat": "Cancel my contract",
        "Mon compte": "My account",
        "Réactiver le renouvellement automatique": "Turn auto-renewal back on",
        "TTC": "incl. VAT",
        "HT": "excl. VAT",
        "TVA": "VAT",
        "numéro client": "customer number",
    }
    with translation.override("en"):
        assert {msgid: translation.gettext(msgid) for msgid in expected} == expected
    with translation.override("fr"):
        assert {msgid: translation.gettext(msgid) for msgid in expected} == {
            msgid: msgid for msgid in expected}
