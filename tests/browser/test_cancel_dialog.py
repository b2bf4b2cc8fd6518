"""The confirm-cancel dialog in a real browser (DESIGN §9, "résiliation en trois clics").

The clock is not frozen here (the live server runs in a thread of its own), so subscriptions
are made relative to the real ``timezone.now()``."""

import re

import pytest
from django.utils import timezone, translation
from playwright.sync_api import expect

from billing.models import Refund
from billing.templatetags.money import money
from formats.dates import long_date
from notifications.models import OutboxEmail
from subscriptions.models import Status, SubscriptionEvent
from tests.browser.conftest import log_in
from tests.factories import PlanFactory, UserFactory, days, subscribed

pytestmark = pytest.mark.browser

BILLING_URL = re.compile(r"/compte/abonnement/$")
GREEN = "rgb(30, 122, 60)"  # --green in portal.css


# --- data and helpers -------------------------------------------------------------------------


def no_refund_subscription():
    """Monthly, bought 20 days ago: past the 14-day window, so cancelling keeps access until
    the end of the paid month and refunds nothing."""
    return subscribed(customer=UserFactory(), plan=PlanFactory(),
                      at=timezone.now() - days(20))


def refund_window_subscription():
    """Annual, bought 3 days ago: within the 14-day window, so cancelling ends it now and
    refunds everything paid."""
    return subscribed(customer=UserFactory(), plan=PlanFactory(annual=True),
                      at=timezone.now() - days(3))


def french_date(value):
    """As the pages write it (formats.dates): on the business time zone's calendar."""
    with translation.override("fr"):
        return long_date(value)


def french_money(cents):
    with translation.override("fr"):
        return money(cents)


def record_posts(page):
    """Every POST the page sends from now on (form submissions included)."""
    posts = []
    page.on("request", lambda request: request.method == "POST" and posts.append(request.url))
    return posts


def cancellation_emails(subscription):
    return OutboxEmail.objects.filter(subscription=subscription,
                                      kind="cancellation_confirmation")


def cancelled_events(subscription):
    return subscription.events.filter(kind=SubscriptionEvent.Kind.CANCELLED)


def assert_unchanged(subscription):
    subscription.refresh_from_db()
    assert subscription.auto_renew is True
    assert subscription.status == Status.ACTIVE
    assert subscription.cancel_requested_at is None
    assert subscription.ends_at is None
    assert not cancellation_emails(subscription).exists()
    assert not cancelled_events(subscription).exists()
    assert not Refund.objects.filter(charge__invoice__subscription=subscription).exists()


class Billing:
    """The "Abonnement et facturation" page, seen from one subscription's section."""

    def __init__(self, page, subscription):
        self.page = page
        self.section = page.locator(f"#abonnement-{subscription.pk}")
        self.trigger = self.section.get_by_role("link", name="Annuler l'abonnement")
        self.reactivate = self.section.get_by_role(
            "button", name="Réactiver le renouvellement automatique")
        self.badge = self.section.locator(".badge.status")
        self.dialog = page.get_by_role("dialog", name="Annuler l'abonnement ?")
        self.not_now = self.dialog.get_by_role("button", name="Pas maintenant")
        self.confirm = self.dialog.get_by_role("button", name="Annuler l'abonnement")
        self.reason = self.dialog.get_by_label("Pourquoi partez-vous ? (facultatif)")
        self.comment = self.dialog.get_by_label("Un commentaire ? (facultatif)")

    def open_dialog(self):
        self.trigger.click()
        expect(self.dialog).to_be_visible()
        return self.dialog

    def focused_in_dialog(self):
        return self.dialog.evaluate("dialog => dialog.contains(document.activeElement)")


def billing_page(page, subscription):
    log_in(page, subscription.customer)
    return Billing(page, subscription)


def focused(page):
    """A short description of document.activeElement: 'select#id', 'button:Pas maintenant'."""
    return page.evaluate("""() => {
        const el = document.activeElement;
        if (!el || el === document.body) return "body";
        const tag = el.tagName.toLowerCase();
        return tag === "button" || tag === "a" ? `${tag}:${el.textContent.trim()}`
                                               : `${tag}#${el.id}`;
    }""")


# --- "Pas maintenant" ------------------------------------------------------------------------


def test_not_now_closes_the_dialog_and_changes_nothing(page):
    # given
    subscription = no_refund_subscription()
    billing = billing_page(page, subscription)
    posts = record_posts(page)
    billing.open_dialog()
    billing.reason.select_option(label="Trop cher")
    # when
    billing.not_now.click()
    # then
    expect(billing.dialog).to_be_hidden()
    expect(billing.section.locator(".next-charge")).to_contain_text(
        french_date(subscription.current_period_end))
    expect(billing.trigger).to_be_visible()
    assert posts == []
    assert_unchanged(subscription)
    # and the reason chosen is forgotten: the dialog opens afresh
    billing.open_dialog()
    expect(billing.reason).to_have_value("")


# --- confirming ------------------------------------------------------------------------------


def test_confirming_without_refund_updates_the_section_and_sends_one_email(page):
    # given
    subscription = no_refund_subscription()
    period_end = subscription.current_period_end
    billing = billing_page(page, subscription)
    dialog = billing.open_dialog()
    customer = subscription.customer
    expect(dialog.locator(".customer-name")).to_have_text(customer.get_full_name())
    expect(dialog.locator(".acknowledgement-email")).to_have_text(customer.email)
    expect(dialog.locator(".contract-reference")).to_have_text(
        f"client {customer.customer_number}, abonnement {subscription.reference}")
    expect(dialog.locator(".effective-date")).to_have_text(french_date(period_end))
    expect(dialog.locator(".access-end")).to_contain_text(
        f"Votre abonnement restera actif jusqu'au {french_date(period_end)}")
    expect(dialog.locator(".refund")).to_have_text(
        "Aucun remboursement n'est prévu pour la période en cours.")
    expect(dialog.locator(".features-lost li")).to_have_text(
        ["Protection en temps réel", "1 appareil"])
    expect(billing.confirm).to_have_css("background-color", GREEN)
    # when
    billing.reason.select_option(label="Je ne l'utilise pas assez")
    billing.comment.fill("Plus besoin pour le moment.")
    billing.confirm.click()
    # then
    expect(page).to_have_url(BILLING_URL)
    expect(page.locator(".message.success")).to_have_text(
        "Votre demande de résiliation a bien été reçue. Un accusé de réception vous a été "
        "envoyé par e-mail.")
    expect(billing.badge).to_have_text("Résilié")
    expect(billing.section.locator(".ends-at")).to_have_text(
        f"Actif jusqu'au {french_date(period_end)}, sans renouvellement")
    expect(billing.section.locator(".next-charge")).to_have_count(0)
    expect(billing.reactivate).to_be_visible()
    expect(billing.trigger).to_have_count(0)
    subscription.refresh_from_db()
    assert subscription.auto_renew is False
    assert subscription.status == Status.ACTIVE
    assert subscription.ends_at == period_end
    assert subscription.cancel_reason == "not_used"
    assert subscription.cancel_reason_detail == "Plus besoin pour le moment."
    assert cancellation_emails(subscription).count() == 1
    assert cancelled_events(subscription).count() == 1
    assert not Refund.objects.filter(charge__invoice__subscription=subscription).exists()


def test_confirming_within_the_refund_window_shows_the_refund_and_ends_it(page):
    # given
    subscription = refund_window_subscription()
    billing = billing_page(page, subscription)
    dialog = billing.open_dialog()
    refund = french_money(9900)  # 82,50 € HT + 20 % VAT, everything paid
    expect(dialog.locator(".access-end")).to_have_text(
        "Votre accès prendra fin immédiatement et votre clé de licence sera désactivée.")
    expect(dialog.locator(".refund")).to_have_text(
        f"Remboursement : {refund}, sur votre carte sous 3 à 5 jours ouvrables.")
    billing.reason.select_option(label="Trop cher")
    page.screenshot(path="/tmp/dialog.png")
    # when
    billing.confirm.click()
    # then
    expect(page).to_have_url(BILLING_URL)
    expect(billing.badge).to_have_text("Terminé")
    subscription.refresh_from_db()
    expect(billing.section.locator("dt:text-is('Terminé le') + dd")).to_have_text(
        french_date(subscription.ended_at))
    expect(billing.section.get_by_role("link", name="Renouveler")).to_be_visible()
    expect(billing.trigger).to_have_count(0)
    expect(billing.reactivate).to_have_count(0)
    expect(page.locator("tr.credit-note")).to_contain_text(f"−{refund}")
    assert subscription.status == Status.ENDED
    assert subscription.licence_active is False
    assert sum(r.amount_cents for r in Refund.objects.filter(
        charge__invoice__subscription=subscription)) == 9900
    assert cancellation_emails(subscription).count() == 1


# --- keyboard only ---------------------------------------------------------------------------


def test_keyboard_only_open_escape_trap_and_confirm(page):
    # given
    subscription = no_refund_subscription()
    billing = billing_page(page, subscription)
    posts = record_posts(page)
    for _ in range(40):  # Tab through the page up to the trigger
        page.keyboard.press("Tab")
        if billing.trigger.evaluate("el => el === document.activeElement"):
            break
    expect(billing.trigger).to_be_focused()

    # Enter opens the dialog, on "Pas maintenant" (the harmless choice)
    page.keyboard.press("Enter")
    expect(billing.dialog).to_be_visible()
    expect(billing.not_now).to_be_focused()

    # Escape closes it, changes nothing and gives focus back to the trigger
    page.keyboard.press("Escape")
    expect(billing.dialog).to_be_hidden()
    expect(billing.trigger).to_be_focused()
    assert posts == []
    assert_unchanged(subscription)

    # Tab and Shift+Tab cycle through the dialog's controls and never leave it
    page.keyboard.press("Enter")
    expect(billing.not_now).to_be_focused()
    order = []
    for _ in range(8):
        page.keyboard.press("Tab")
        assert billing.focused_in_dialog(), f"focus left the dialog: {focused(page)}"
        order.append(focused(page))
    reason, comment = (f"select#id_cancel_{subscription.pk}_reason",
                       f"textarea#id_cancel_{subscription.pk}_reason_detail")
    cycle = ["button:Annuler l'abonnement", reason, comment, "button:Pas maintenant"]
    assert order == cycle * 2
    backwards = []
    for _ in range(4):
        page.keyboard.press("Shift+Tab")
        assert billing.focused_in_dialog(), f"focus left the dialog: {focused(page)}"
        backwards.append(focused(page))
    assert backwards == [comment, reason, "button:Annuler l'abonnement", "button:Pas maintenant"]
    assert posts == []

    # Tab to the confirm button, Enter: cancelled
    page.keyboard.press("Tab")
    expect(billing.confirm).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(BILLING_URL)
    expect(billing.badge).to_have_text("Résilié")
    expect(billing.reactivate).to_be_visible()
    subscription.refresh_from_db()
    assert subscription.auto_renew is False
    assert cancellation_emails(subscription).count() == 1


# --- without JavaScript ----------------------------------------------------------------------


def test_without_javascript_the_button_leads_to_a_confirmation_page(nojs_page):
    # given
    page = nojs_page
    subscription = no_refund_subscription()
    billing = billing_page(page, subscription)
    dialog_recap = " ".join(
        page.locator(f"#cancel-dialog-{subscription.pk} .recap").text_content().split())
    cancel_url = re.compile(rf"/compte/abonnement/{subscription.pk}/annuler/$")

    # the button is a link to the confirmation page, with the same recap
    billing.trigger.click()
    expect(page).to_have_url(cancel_url)
    expect(page.get_by_role("heading", name="Annuler l'abonnement ?")).to_be_visible()
    recap = page.locator(".cancel-page .recap")
    assert " ".join(recap.text_content().split()) == dialog_recap
    expect(recap.locator(".access-end")).to_contain_text(
        french_date(subscription.current_period_end))
    expect(recap.locator(".features-lost li")).to_have_text(
        ["Protection en temps réel", "1 appareil"])

    # "Pas maintenant" is a link back that changes nothing
    page.get_by_role("link", name="Pas maintenant").click()
    expect(page).to_have_url(BILLING_URL)
    expect(billing.section.locator(".next-charge")).to_be_visible()
    assert_unchanged(subscription)

    # submitting the page cancels
    billing.trigger.click()
    expect(page).to_have_url(cancel_url)
    page.get_by_label("Pourquoi partez-vous ? (facultatif)").select_option(label="Autre raison")
    page.get_by_role("button", name="Annuler l'abonnement").click()
    expect(page).to_have_url(BILLING_URL)
    expect(billing.badge).to_have_text("Résilié")
    expect(billing.section.locator(".ends-at")).to_contain_text(
        french_date(subscription.current_period_end))
    expect(billing.reactivate).to_be_visible()
    subscription.refresh_from_db()
    assert subscription.auto_renew is False
    assert subscription.cancel_reason == "other"
    assert cancellation_emails(subscription).count() == 1


# --- reactivating ----------------------------------------------------------------------------


def test_reactivating_after_a_cancel_without_refund_restores_the_next_charge(page):
    # given
    subscription = no_refund_subscription()
    billing = billing_page(page, subscription)
    billing.open_dialog()
    billing.confirm.click()
    expect(billing.reactivate).to_be_visible()
    # when
    billing.reactivate.click()
    # then
    expect(page.locator(".message.success")).to_have_text(
        "Le renouvellement automatique est de nouveau activé.")
    expect(billing.badge).to_have_text("Actif")
    expect(billing.section.locator(".next-charge")).to_contain_text(
        french_date(subscription.current_period_end))
    expect(billing.section.locator(".ends-at")).to_have_count(0)
    expect(billing.reactivate).to_have_count(0)
    expect(billing.trigger).to_be_visible()
    subscription.refresh_from_db()
    assert subscription.auto_renew is True
    assert subscription.ends_at is None
    assert subscription.events.filter(
        kind=SubscriptionEvent.Kind.AUTO_RENEW_REACTIVATED).count() == 1


# --- double click ----------------------------------------------------------------------------


def test_double_click_on_confirm_cancels_once(page):
    # given
    subscription = no_refund_subscription()
    billing = billing_page(page, subscription)
    billing.open_dialog()
    posts = record_posts(page)
    # when
    billing.confirm.dblclick()
    # then
    expect(page).to_have_url(BILLING_URL)
    expect(billing.badge).to_have_text("Résilié")
    assert len(posts) == 1
    assert cancellation_emails(subscription).count() == 1
    assert cancelled_events(subscription).count() == 1


class HeldRequests:
    """A route handler that holds requests until released, then lets everything through."""

    def __init__(self):
        self.routes = []
        self.released = False

    def __call__(self, route):
        if self.released:
            route.continue_()
        else:
            self.routes.append(route)

    def release(self):
        self.released = True
        for route in self.routes:
            route.continue_()


def test_a_second_click_while_the_first_request_is_on_its_way_sends_nothing(page):
    """The dialog's own guard (one click, one request): the server is idempotent anyway, but
    the browser must not send the cancellation twice either. A double click alone does not show
    it (Chromium folds two submissions in the same instant into one), so the first request is
    held until the second click is done."""
    # given
    subscription = no_refund_subscription()
    billing = billing_page(page, subscription)
    billing.open_dialog()
    posts = record_posts(page)
    held = HeldRequests()
    page.route(f"**/compte/abonnement/{subscription.pk}/annuler/", held)
    box = billing.confirm.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    # when: the mouse, not locator.click(), which would wait for the held navigation (and
    # refuses the button once it is aria-disabled)
    with page.expect_request(lambda request: request.method == "POST"):
        page.mouse.click(x, y)
    page.mouse.click(x, y)
    held.release()
    # then
    expect(billing.badge).to_have_text("Résilié")
    assert len(posts) == 1
    assert cancellation_emails(subscription).count() == 1
    assert cancelled_events(subscription).count() == 1
