"""Settings per environment (DESIGN §12), each read in a fresh interpreter whose environment
holds only what the test gives it: the embedded default (SQLite, console email, eager Celery),
Redis and PostgreSQL when configured, and a production mode that passes `check --deploy` and
refuses to start without its secrets."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable  # the project's virtualenv (tests run with .venv/bin/pytest)

pytestmark = pytest.mark.skipif(
    (BASE_DIR / ".env").exists(),
    reason="config/settings/base.py loads ./.env, so these tests cannot see a clean environment",
)

PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "ALLOWED_HOSTS": "portal.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/portal",
}

SHOW_SETTINGS = """
import json
from django.conf import settings
from config.celery import app
print(json.dumps({
    "settings_module": settings.SETTINGS_MODULE,
    "debug": settings.DEBUG,
    "engine": settings.DATABASES["default"]["ENGINE"],
    "database_name": str(settings.DATABASES["default"]["NAME"]),
    "email_backend": settings.EMAIL_BACKEND,
    "celery_eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "celery_broker": settings.CELERY_BROKER_URL,
    "app_eager": app.conf.task_always_eager,
    "app_broker": app.conf.broker_url,
    "cache_backend": settings.CACHES["default"]["BACKEND"],
    "language_code": settings.LANGUAGE_CODE,
    "time_zone": settings.TIME_ZONE,
    "rate_limits": getattr(settings, "ACCOUNT_RATE_LIMITS", None),
}))
"""


def secret_key():
    key = secrets.token_urlsafe(45)
    assert len(key) == 60
    return key


def run(*args, **env):
    """manage.py in a fresh interpreter whose environment is PATH plus env, nothing else."""
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=BASE_DIR,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def settings_for(**env):
    result = run("shell", "--no-startup", "-c", SHOW_SETTINGS, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- production ---------------------------------------------------------------------------


def test_production_passes_the_deployment_checks_without_a_single_warning():
    # when
    result = run("check", "--deploy", "--fail-level", "WARNING",
                 SECRET_KEY=secret_key(), **PRODUCTION)
    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS"])
def test_production_refuses_to_start_without_its_secret_key_or_allowed_hosts(missing):
    # given
    env = {**PRODUCTION, "SECRET_KEY": secret_key()}
    del env[missing]
    # when
    result = run("check", **env)
    # then
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"Set the {missing} environment variable" in result.stderr


def test_production_settings_use_postgresql_and_turn_debug_off():
    # when
    production = settings_for(SECRET_KEY=secret_key(), **PRODUCTION)
    # then
    assert production["settings_module"] == "config.settings.production"
    assert production["debug"] is False
    assert production["engine"] == "django.db.backends.postgresql"
    assert production["database_name"] == "portal"


# --- the embedded default -----------------------------------------------------------------


def test_with_no_environment_at_all_it_runs_on_sqlite_console_email_and_eager_celery():
    # when
    default = settings_for()
    # then
    assert default["settings_module"] == "config.settings.base"
    assert default["engine"] == "django.db.backends.sqlite3"
    assert default["database_name"] == str(BASE_DIR / "db.sqlite3")
    assert default["email_backend"] == "django.core.mail.backends.console.EmailBackend"
    assert default["celery_eager"] is True
    assert default["app_eager"] is True
    assert default["celery_broker"] == "memory://"
    assert default["cache_backend"] == "django.core.cache.backends.locmem.LocMemCache"
    assert default["language_code"] == "fr"
    assert default["time_zone"] == "Europe/Paris"
    assert default["rate_limits"] is not False


def test_with_no_environment_at_all_the_checks_pass():
    # when
    result = run("check")
    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_redis_url_turns_eager_off_and_becomes_the_broker_and_cache():
    # when
    configured = settings_for(REDIS_URL="redis://127.0.0.1:6379/3")
    # then
    assert configured["celery_eager"] is False
    assert configured["app_eager"] is False
    assert configured["celery_broker"] == "redis://127.0.0.1:6379/3"
    assert configured["app_broker"] == "redis://127.0.0.1:6379/3"
    assert configured["cache_backend"] == "django.core.cache.backends.redis.RedisCache"


def test_a_postgres_database_url_selects_postgresql():
    # when
    configured = settings_for(DATABASE_URL="postgres://portal:secret@db.internal:5432/portal")
    # then
    assert configured["engine"] == "django.db.backends.postgresql"
    assert configured["database_name"] == "portal"


# --- the simulated provider -----------------------------------------------------------------

SHOW_PROVIDER = """
import json
from django.conf import settings
alias = settings.SIMULATED_PROVIDER_DATABASE
print(json.dumps({
    "alias": alias,
    "same_database": settings.DATABASES[alias] == settings.DATABASES["default"],
    "faults": settings.SIMULATED_PROVIDER_FAULTS,
}))
"""


def provider_settings_for(**env):
    result = run("shell", "--no-startup", "-c", SHOW_PROVIDER, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_on_postgresql_the_simulated_provider_has_its_own_connection_to_the_same_database():
    # when
    configured = provider_settings_for(DATABASE_URL="postgres://portal:secret@db.internal/portal")
    # then
    assert configured["alias"] == "simulated_provider"
    assert configured["same_database"] is True


def test_on_sqlite_the_simulated_provider_shares_the_portals_connection():
    # when
    default = provider_settings_for()
    # then
    assert default["alias"] == "default"


def test_the_simulated_providers_faults_are_off_unless_the_environment_sets_them():
    # when
    default = provider_settings_for()
    configured = provider_settings_for(
        SIMULATED_PROVIDER_PROVIDER_ERROR="0.1", SIMULATED_PROVIDER_TIMEOUT_AFTER_CHARGE="0.05",
        SIMULATED_PROVIDER_LOOKUP_FAILURE="0.2", SIMULATED_PROVIDER_LATENCY_MS="150",
        SIMULATED_PROVIDER_SEED="42",
    )
    # then
    assert default["faults"] == {"provider_error": 0.0, "timeout_after_charge": 0.0,
                                 "lookup_failure": 0.0, "latency_ms": 0, "seed": None}
    assert configured["faults"] == {"provider_error": 0.1, "timeout_after_charge": 0.05,
                                    "lookup_failure": 0.2, "latency_ms": 150, "seed": 42}
