"""Tests run on PostgreSQL (as production does), with locmem email, eager Celery and a fast
password hasher."""

from .base import *  # noqa: F403
from .base import env

DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/portal"),
}
# The test database is created once, for default; the simulated provider's alias connects to it.
DATABASES["simulated_provider"] = {**DATABASES["default"], "TEST": {"MIRROR": "default"}}
SIMULATED_PROVIDER_DATABASE = "simulated_provider"
SIMULATED_PROVIDER_FAULTS = {"provider_error": 0.0, "timeout_after_charge": 0.0,
                             "lookup_failure": 0.0, "latency_ms": 0, "seed": None}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
