"""Browser tests: a real headless Chromium (Debian's, at /usr/bin/chromium) driving the portal
served by pytest-django's ``live_server`` (transactional database, Celery eager).

One browser per session; a fresh context (cookies, storage) and page per test."""

import os
import re

# Playwright's sync API keeps an asyncio event loop running in the main thread, which makes
# Django refuse ORM calls from the test body ("You cannot call this from an async context").
# The tests are synchronous; the loop only belongs to Playwright.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

import pytest  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.factories import PASSWORD  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root
    "--disable-gpu",
    # Without these Chromium stalls on network calls it cannot make here.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


def _context(browser, live_server, **options):
    context = browser.new_context(
        base_url=live_server.url, locale="fr-FR", timezone_id="Europe/Paris", **options
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context


@pytest.fixture
def context(browser, live_server):
    context = _context(browser, live_server)
    yield context
    context.close()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture
def nojs_page(browser, live_server):
    """A page in a context with JavaScript disabled (progressive enhancement)."""
    context = _context(browser, live_server, java_script_enabled=False)
    yield context.new_page()
    context.close()


def log_in(page, user, *, password=PASSWORD):
    """Sign in through the real allauth form; lands on "Abonnement et facturation"."""
    page.goto("/comptes/login/")
    page.locator("input[name=login]").fill(user.email)
    page.locator("input[name=password]").fill(password)
    page.locator("input[name=password]").press("Enter")
    expect(page).to_have_url(re.compile(r"/compte/abonnement/$"))
