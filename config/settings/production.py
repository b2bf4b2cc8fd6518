"""Production: secrets and hosts come from the environment with no default, so a bad deploy
fails at start instead of running with development values."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
# Links in allauth's emails (verification, password reset) when built without a request.
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Stripe (README "Passer en production avec Stripe"): it does not start without its keys.
if PAYMENT_GATEWAY == "billing.gateways.stripe.StripeGateway":  # noqa: F405
    _missing = [name for name, value in [
        ("STRIPE_SECRET_KEY", STRIPE_SECRET_KEY),  # noqa: F405
        ("STRIPE_PUBLISHABLE_KEY", STRIPE_PUBLISHABLE_KEY),  # noqa: F405
        ("STRIPE_WEBHOOK_SECRET", STRIPE_WEBHOOK_SECRET),  # noqa: F405
    ] if not value]
    if _missing:
        raise ImproperlyConfigured(
            f"PAYMENT_GATEWAY is Stripe's: set the {', '.join(_missing)} environment "
            f"variable{'s' if len(_missing) > 1 else ''} (the Stripe dashboard's API keys and "
            "the signing secret of the /webhooks/stripe/ endpoint)."
        )
