from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.cache import cache
from pytest_django.fixtures import validate_django_db

PARIS = ZoneInfo("Europe/Paris")
FROZEN_AT = datetime(2026, 3, 10, 9, 30, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def now(request):
    """The clock is frozen for every test (but browser and real_clock ones); services also
    receive it explicitly."""
    if any(request.node.get_closest_marker(name) for name in ("browser", "real_clock")):
        yield None
        return
    with time_machine.travel(FROZEN_AT, tick=False):
        yield FROZEN_AT


@pytest.fixture(autouse=True)
def _eager_celery(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture(autouse=True)
def _fresh_cache():
    """allauth keeps its rate-limit counters in the cache and the clock is frozen, so counters
    would otherwise carry over from one test to the next."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _simulated_provider_connection(request, settings):
    """The simulated provider commits on a connection of its own (DESIGN §13), which a test
    rolled back at its end could neither see through nor undo. So it gets that connection only
    in a test with real transactions that lists its alias, e.g.
    ``django_db(transaction=True, databases=["default", "simulated_provider"])``; elsewhere it
    shares the test's connection."""
    alias = settings.SIMULATED_PROVIDER_DATABASE
    marker = request.node.get_closest_marker("django_db")
    if marker:
        transactional, _, databases, *_ = validate_django_db(marker)
        if transactional and databases is not None and (databases == "__all__"
                                                        or alias in databases):
            return
    settings.SIMULATED_PROVIDER_DATABASE = "default"
