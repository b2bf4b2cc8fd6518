"""Settings of the chaos run's Celery worker (bench/chaos.py, tests/integration/test_chaos.py):
the production-shaped base settings (PostgreSQL, Redis broker, real SMTP) with the waits of
the recovery paths compressed from minutes to seconds, so that charges left pending by a
killed worker, unknown outcomes, provider-error backoff and emails left ``sending`` are all
picked up again within a short run. Each wait is given in seconds by an environment variable
(bench/chaos.py sets them); nothing else differs from config.settings.base."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

STALE_PENDING_CHARGE_MINUTES = env.float("CHAOS_STALE_PENDING_CHARGE_SECONDS", default=6) / 60
UNKNOWN_CHARGE_MIN_AGE_MINUTES = env.float("CHAOS_UNKNOWN_CHARGE_MIN_AGE_SECONDS",
                                           default=2) / 60
PROVIDER_RETRY_MINUTES = [
    seconds / 60
    for seconds in env.list("CHAOS_PROVIDER_RETRY_SECONDS", cast=float, default=[1, 2, 4, 8])
]
EMAIL_SENDING_STALE_MINUTES = env.float("CHAOS_EMAIL_SENDING_STALE_SECONDS", default=6) / 60
