"""Settings for every environment. The environment is read here and in production.py only.

With no environment at all the portal runs on SQLite, prints emails to the console and runs
Celery tasks eagerly, so a fresh checkout serves the demo with nothing configured.
"""

import copy
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default="insecure-development-key-never-used-in-production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "formats",
    "django_countries",
    "allauth",
    "allauth.account",
    "accounts",
    "subscriptions",
    "billing",
    "notifications",
    "legal",
    "support",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "accounts.middleware.FrenchFirstLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.PreferredLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.portal",
                "subscriptions.context_processors.withdrawal",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# The simulated provider's ledger lives in the same database but on a connection of its own,
# committed independently of the portal's transactions, as a remote provider's would be.
# SQLite lets one connection write at a time, so there (the demo) it shares the portal's.
DATABASES["simulated_provider"] = copy.deepcopy(DATABASES["default"])
SIMULATED_PROVIDER_DATABASE = (
    "default" if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    else "simulated_provider"
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "subscriptions:billing"

# django-allauth: email is the login, verified before first sign-in; rate limits stay on.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.forms.SignupProfileForm"
ACCOUNT_EMAIL_SUBJECT_PREFIX = ""
ACCOUNT_USER_DISPLAY = "accounts.models.user_display"

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# What Django localizes itself (admin columns): no abbreviated month (formats.dates).
FORMAT_MODULE_PATH = ["formats.locale_formats"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "Europe/Paris"
BUSINESS_TIME_ZONE = env("BUSINESS_TIME_ZONE", default="Europe/Paris")

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

# A hung SMTP server raises TimeoutError (a transient error, retried) instead of holding a
# worker past EMAIL_SENDING_STALE_MINUTES; EMAIL_URL's ?timeout= overrides it.
EMAIL_TIMEOUT = 30
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Abonnements <abonnements@example.com>")
SUPPORT_EMAIL = env("SUPPORT_EMAIL", default="support@example.com")

# Celery: eager without a broker, Redis when REDIS_URL is set.
REDIS_URL = env("REDIS_URL", default="")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

# One beat for the whole deployment; each scan enqueues bounded batches for the workers.
CELERY_BEAT_SCHEDULE = {
    f"scan-{name}": {"task": "subscriptions.tasks.job_scan", "schedule": seconds, "args": [name]}
    for name, seconds in [
        ("reconcile_charges", 300),
        ("process_provider_events", 300),
        ("retry_payments", 600),
        ("renew", 600),
        ("end_unpaid", 3600),
        ("expire", 600),
        ("pre_charge_notices", 3600),
        ("annual_renewal_notices", 3600),
        ("pre_expiry_notices", 3600),
        ("card_expiry_notices", 3600),
        ("execute_refunds", 300),
        ("deliver_emails", 300),
    ]
}

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REDIS_URL}}

# The seller named on invoices and credit notes, with every mention French law asks of it
# (CGI annexe II art. 242 nonies A, C. com. R123-237; DESIGN §14): legal name and form, share
# capital, address (its parts for the Factur-X XML), SIREN, SIRET, RCS city, VAT number.
VENDOR = {
    "name": env("VENDOR_NAME", default="Logiciels Exemple"),
    "legal_form": env("VENDOR_LEGAL_FORM", default="SAS"),
    "share_capital": env("VENDOR_SHARE_CAPITAL", default="10 000 €"),
    "street": env("VENDOR_STREET", default="12 rue de l'Exemple"),
    "postal_code": env("VENDOR_POSTAL_CODE", default="75002"),
    "city": env("VENDOR_CITY", default="Paris"),
    "country": env("VENDOR_COUNTRY", default="FR"),
    "siren": env("VENDOR_SIREN", default="123 456 789"),
    "siret": env("VENDOR_SIRET", default="123 456 789 00012"),
    "rcs_city": env("VENDOR_RCS_CITY", default="Paris"),
    "vat_number": env("VENDOR_VAT_NUMBER", default="FR12123456789"),
}
VENDOR["address"] = f"{VENDOR['street']}, {VENDOR['postal_code']} {VENDOR['city']}"
VENDOR["rcs"] = f"RCS {VENDOR['rcs_city']} {VENDOR['siren']}"

# Billing rules (DESIGN §3, §6, §10).
DEFAULT_CURRENCY = "EUR"
# VAT (billing.vat): each EU consumer pays their member state's rate (the dated table in
# billing's VatRate, one-stop shop); False below the 10 000 € threshold of EU distance sales:
# French VAT for every EU consumer. Outside the EU no VAT, unless the vendor is registered
# there: {"CH": "8.1"}.
VAT_OSS = env.bool("VAT_OSS", default=True)
VAT_NON_EU_RATES = env.dict("VAT_NON_EU_RATES", default={})
# Failed renewal charges are retried this many days after the first failure (attempts 2, 3, 4).
DUNNING_RETRY_DAYS = [1, 3, 7]
# A charge left pending this long (a crashed worker) is reconciled with the provider.
STALE_PENDING_CHARGE_MINUTES = 10
# An unknown outcome (timeout) is asked about this long after it, not before: a provider's
# look-up may lag behind the charge.
UNKNOWN_CHARGE_MIN_AGE_MINUTES = 15
# A provider error (nothing charged) is sent again after these delays, the last repeating.
PROVIDER_RETRY_MINUTES = [1, 5, 15, 60, 180, 360]
# A payment the customer started and whose 3-D Secure they left unfinished this long (first
# payment, plan change, "Payer maintenant") is cancelled at the provider, so that it can
# never move money after the portal gave it up.
AUTHENTICATION_CHALLENGE_MINUTES = env.int("AUTHENTICATION_CHALLENGE_MINUTES", default=60)
# Charges still unsettled this long after they were prepared are shown to staff.
CHARGE_OUTAGE_HORIZON_HOURS = env.int("CHARGE_OUTAGE_HORIZON_HOURS", default=6)
# Transient SMTP errors are retried with backoff for this long after an email is queued;
# then it is failed, for staff to resend (DESIGN §10).
EMAIL_RETRY_HORIZON_HOURS = env.int("EMAIL_RETRY_HORIZON_HOURS", default=72)
# An email left sending this long (a crashed worker) is sent again, with the same Message-ID.
EMAIL_SENDING_STALE_MINUTES = 10
# Reminder emails (DESIGN §10), in days before the date concerned.
PRE_CHARGE_NOTICE_DAYS = {"month": 3, "year": 7}
ANNUAL_RENEWAL_NOTICE_DAYS = 45
PRE_EXPIRY_NOTICE_DAYS = [7, 1]
# The default card expires before the next charge: reminded when that charge is this close.
CARD_EXPIRY_NOTICE_DAYS = 30
# Scheduled jobs handle due rows in batches of this size (one task per batch).
JOB_BATCH_SIZE = env.int("JOB_BATCH_SIZE", default=200)
PAYMENT_GATEWAY = env("PAYMENT_GATEWAY", default="billing.gateways.simulated.SimulatedGateway")
# Stripe (billing.gateways.stripe.StripeGateway): test or live keys from the dashboard.
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
# Only tests change it (a Stripe-compatible server on 127.0.0.1).
STRIPE_API_BASE = env("STRIPE_API_BASE", default="https://api.stripe.com")
# Faults the simulated provider injects (billing/gateways/simulated.py): shares from 0 to 1 of
# the charges and refunds that would succeed, and of lookups; a delay before every answer; a
# seed for reproducible draws.
SIMULATED_PROVIDER_FAULTS = {
    "provider_error": env.float("SIMULATED_PROVIDER_PROVIDER_ERROR", default=0.0),
    "timeout_after_charge": env.float("SIMULATED_PROVIDER_TIMEOUT_AFTER_CHARGE", default=0.0),
    "lookup_failure": env.float("SIMULATED_PROVIDER_LOOKUP_FAILURE", default=0.0),
    "latency_ms": env.int("SIMULATED_PROVIDER_LATENCY_MS", default=0),
    "seed": env.int("SIMULATED_PROVIDER_SEED", default=None),
}
REFUND_DELAY_TEXT_DAYS = "3 à 5"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
