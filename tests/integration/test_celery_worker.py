"""End to end through a real Celery worker (DESIGN §12: the suite runs on PostgreSQL and Redis,
as production does): beat's ``job_scan`` → ``job_batch`` → renewal → the receipt email task
enqueued after commit → delivery, all on a worker process consuming a Redis queue.

The worker is a subprocess on the real clock (hence ``real_clock``), with the production
settings module (not eager: ``REDIS_URL`` is set), sharing this test's PostgreSQL database, so
the test rows must be committed (``transaction=True``)."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import kombu.pools
import pytest
import redis
from django.db import connection
from django.utils import timezone

from billing.models import Charge, Invoice
from config.celery import app as celery_app
from notifications.models import OutboxEmail
from subscriptions.models import Status, Subscription
from tests.factories import PlanFactory, subscribed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.real_clock]

PROJECT_DIR = Path(__file__).resolve().parents[2]
BROKER_URL = "redis://127.0.0.1:6379/15"  # a Redis database of its own, flushed around the test
TIMEOUT_SECONDS = 60


def _redis():
    client = redis.Redis.from_url(BROKER_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.exceptions.RedisError as error:
        pytest.fail(
            f"Redis is not answering at {BROKER_URL} ({error}). Start it with `make services` "
            "(`make test` does), or `redis-server --daemonize yes --port 6379`."
        )
    return client


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}")


@pytest.fixture
def broker(settings):
    """Send tasks from this process to Redis instead of running them eagerly."""
    client = _redis()
    client.flushdb()
    saved = {key: celery_app.conf[key] for key in ("task_always_eager", "broker_url")}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = BROKER_URL
    celery_app.conf.task_always_eager = False
    celery_app.conf.broker_url = BROKER_URL
    _forget_broker_connections()
    try:
        yield BROKER_URL
    finally:
        _forget_broker_connections()
        celery_app.conf.update(saved)
        client.flushdb()
        client.close()


def _forget_broker_connections():
    """The app caches its connection and producer pools for the broker it first used."""
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    # kombu keeps a process-wide registry of pools too; eager mode still takes a connection
    # from it on every .delay(), so a closed pool left there breaks later tests.
    kombu.pools.reset()


@pytest.fixture
def worker(broker):
    """A real worker: solo pool, the ``celery`` queue, production settings on this test's
    database, emails marked sent by the console backend."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": broker,
        "EMAIL_URL": "consolemail://",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    celery = Path(sys.executable).with_name("celery")
    command = [str(celery), "-A", "config", "worker", "--pool=solo", "--concurrency=1",
               "-Q", "celery", "--without-heartbeat", "--without-mingle", "--without-gossip",
               "-l", "info"]
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        handle = WorkerHandle(process, log)
        try:
            yield handle
        finally:
            handle.stop()
            if handle.failed:
                print(f"----- celery worker log (exit {process.returncode}) -----\n"
                      f"{handle.read_log()}")


class WorkerHandle:
    def __init__(self, process, log):
        self.process = process
        self.log = log
        self.failed = True  # until the test says otherwise

    def read_log(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # warm shutdown: finish the task, close the DB
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def _wait_for(condition, *, worker, timeout=TIMEOUT_SECONDS):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            pytest.fail(f"the celery worker exited early (code {worker.process.returncode})")
        state = condition()
        if state is True:
            return
        time.sleep(0.25)
    pytest.fail(f"not done after {timeout} s; last state: {state}")


def test_a_real_worker_renews_a_due_subscription_and_delivers_the_receipt(worker):
    from subscriptions.tasks import job_scan

    # given: a monthly subscription taken 40 days ago (real clock: the worker's), so due
    subscription = subscribed(plan=PlanFactory(), at=timezone.now() - timedelta(days=40))
    first_period_end = subscription.current_period_end
    assert first_period_end <= timezone.now()

    # when: beat's scan of the renewal job is enqueued
    job_scan.delay("renew")

    # then: the worker scanned, renewed, charged and delivered the receipt
    def renewed():
        invoice = Invoice.objects.filter(subscription=subscription, kind="renewal").first()
        charge = invoice and invoice.charges.first()
        email = OutboxEmail.objects.filter(subscription=subscription,
                                           kind="renewal_receipt").first()
        state = (invoice and invoice.status, charge and charge.status, email and email.status)
        if state == (Invoice.Status.PAID, Charge.Status.SUCCEEDED, OutboxEmail.Status.SENT):
            return True
        return state

    _wait_for(renewed, worker=worker)
    subscription = Subscription.objects.get(pk=subscription.pk)
    assert subscription.status == Status.ACTIVE
    assert subscription.current_period_start == first_period_end
    assert subscription.current_period_end > timezone.now()
    invoice = Invoice.objects.get(subscription=subscription, kind="renewal")
    assert (invoice.period_start, invoice.period_end) == (
        subscription.current_period_start, subscription.current_period_end)
    assert OutboxEmail.objects.get(kind="renewal_receipt").sent_at is not None
    assert "Task subscriptions.tasks.job_batch" in worker.read_log()
    worker.failed = False
