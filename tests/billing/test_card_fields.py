"""The card fields are the configured provider's (DESIGN §13)."""

import pytest
from django.urls import reverse

from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db


def _checkout(client):
    client.force_login(UserFactory())
    plan = PlanFactory(code="essentiel-mensuel")
    return client.get(reverse("subscriptions:subscribe", args=[plan.code])).content.decode()


def test_the_simulated_providers_fields_post_to_its_tokenizer(client):
    page = _checkout(client)
    assert 'data-tokenize-url="/simulated-provider/tokens/"' in page
    assert "js/simulated-provider.js" in page
    assert "js.stripe.com" not in page


def test_with_stripe_the_card_is_typed_into_stripe_elements(client, settings):
    # given
    settings.PAYMENT_GATEWAY = "billing.gateways.stripe.StripeGateway"
    settings.STRIPE_SECRET_KEY = "sk_test_portal"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_portal"
    # when
    page = _checkout(client)
    # then: Stripe.js and its key, no field of ours that could carry a number
    assert '<script src="https://js.stripe.com/v3/"></script>' in page
    assert 'data-publishable-key="pk_test_portal"' in page
    assert "simulated-provider" not in page
    assert 'name="card_token"' in page
    assert "data-card=" not in page
