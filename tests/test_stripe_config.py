"""Production with the Stripe gateway (PAYMENT_GATEWAY=billing.gateways.stripe.StripeGateway)
refuses to start without its three keys; each run is a fresh interpreter whose environment
holds only what the test gives it (tests/test_config.py)."""

import pytest

from tests.test_config import BASE_DIR, PRODUCTION, run, secret_key

pytestmark = pytest.mark.skipif(
    (BASE_DIR / ".env").exists(),
    reason="config/settings/base.py loads ./.env, so these tests cannot see a clean environment",
)

STRIPE = {
    "PAYMENT_GATEWAY": "billing.gateways.stripe.StripeGateway",
    "STRIPE_SECRET_KEY": "sk_test_51Portal",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_51Portal",
    "STRIPE_WEBHOOK_SECRET": "whsec_portal",
}
KEYS = ["STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"]

SHOW_GATEWAY = """
from billing.gateways import get_gateway
print(type(get_gateway()).__name__)
"""


def test_production_with_stripe_and_its_keys_passes_the_deployment_checks():
    # when
    checked = run("check", "--deploy", "--fail-level", "WARNING",
                  SECRET_KEY=secret_key(), **PRODUCTION, **STRIPE)
    shown = run("shell", "--no-startup", "-c", SHOW_GATEWAY,
                SECRET_KEY=secret_key(), **PRODUCTION, **STRIPE)
    # then
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "System check identified no issues" in checked.stdout
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip().splitlines()[-1] == "StripeGateway"


@pytest.mark.parametrize("missing", KEYS)
@pytest.mark.parametrize("how", ["unset", "empty"])
def test_production_with_stripe_refuses_to_start_without_each_key(missing, how):
    # given
    env = {**PRODUCTION, **STRIPE, "SECRET_KEY": secret_key()}
    if how == "unset":
        del env[missing]
    else:
        env[missing] = ""
    # when
    result = run("check", **env)
    # then
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"set the {missing} environment variable (" in result.stderr


def test_production_with_stripe_and_no_keys_names_all_three():
    # given
    env = {**PRODUCTION, "PAYMENT_GATEWAY": STRIPE["PAYMENT_GATEWAY"], "SECRET_KEY": secret_key()}
    # when
    result = run("check", **env)
    # then
    assert result.returncode != 0
    assert f"set the {', '.join(KEYS)} environment variables" in result.stderr
