"""Chaos run (issue 8): N due renewals collected by a real Celery worker that is SIGKILLed every
few seconds, against a simulated provider that times out after charging and fails now and
then; then one undisturbed worker until everything has settled. It prints how many double
charges, lost charges, false declines, duplicate emails and stuck rows it finds (all should
be 0).

    .venv/bin/python bench/chaos.py [--n 1000] [--kill-every 3] [--keep]

DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_chaos_bench) names a database
this script DROPS and re-creates: its name must contain "chaos". The broker is Redis database
14 (CHAOS_REDIS_URL), flushed before and after. See bench/README.md.

tests/integration/test_chaos.py runs a small bounded version with the same functions."""

import argparse
import contextlib
import email.parser
import os
import random
import re
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_chaos_bench"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/14"
QUEUE = "celery"  # the worker's queue: a Redis list of that name
# What beat scans in this run (DESIGN §5, §6, §10): reconciliation first, as in JOBS.
SCANNED_JOBS = ("reconcile_charges", "retry_payments", "renew", "execute_refunds",
                "deliver_emails")
CHUNK = 5000
RENEWAL_EMAILS = ("renewal_receipt", "subscription_reactivated")
DECLINE_EMAILS = ("payment_failed", "subscription_suspended")
CHARGE_KEY = re.compile(r"^invoice-(\d+)-attempt-(\d+)$")


@dataclass
class ChaosConfig:
    """One run's parameters. The defaults are the bench's; the test passes a smaller run."""

    n: int = 1000
    kill_every: float = 3.0  # seconds of a worker's life once it is ready (jittered ±50 %)
    # With the prefork pool, this share of the kills SIGKILLs one pool process only: the
    # worker replaces it and, reject_on_worker_lost, puts its message back in the queue.
    kill_child_share: float = 0.0
    min_kills: int = 0  # keep killing until at least this many kills, even once settled
    kill_phase_timeout: float = 1800.0  # then stop killing, settled or not
    final_timeout: float = 600.0  # the undisturbed worker's time to settle what is left
    pool: str = "prefork"
    concurrency: int = 2
    batch_size: int = 20  # JOB_BATCH_SIZE: short batches, spread over the pool
    scan_every: float = 1.0  # beat: the scans, at most this often…
    max_queue: int = 2  # …and only while the queue holds at most this many messages
    timeout_after_charge: float = 0.20
    provider_error: float = 0.05
    lookup_failure: float = 0.0
    latency_ms: int = 20
    seed: int = 8
    smtp_delay_ms: int = 0  # the sink's delay before it accepts a message (a slow server)
    # The recovery waits, in seconds (bench/chaos_settings.py).
    stale_pending_charge_s: float = 6.0
    unknown_charge_min_age_s: float = 2.0
    provider_retry_s: tuple = (1.0, 2.0, 4.0, 8.0)
    email_sending_stale_s: float = 6.0
    broker_url: str = field(default_factory=lambda: os.environ.get("CHAOS_REDIS_URL",
                                                                   DEFAULT_BROKER_URL))


# -- the email sink -------------------------------------------------------------------------
class SmtpSink:
    """A minimal SMTP server on 127.0.0.1 that accepts every message and counts deliveries
    per Message-ID. A message counts as delivered once its data is complete, before the 250
    reply: a client killed right then has delivered it without knowing."""

    def __init__(self, *, delay_ms: int = 0):
        self.delay_ms = delay_ms
        self.deliveries = Counter()
        self.lock = threading.Lock()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                # A client killed mid-session resets the connection: nothing to report.
                with contextlib.suppress(ConnectionError):
                    sink._session(self.rfile, self.wfile)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="smtp-sink")

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> "SmtpSink":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def counts(self) -> Counter:
        with self.lock:
            return Counter(self.deliveries)

    def _session(self, rfile, wfile) -> None:
        def reply(text):
            wfile.write(text.encode() + b"\r\n")
            wfile.flush()

        reply("220 chaos-sink ESMTP")
        while line := rfile.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                reply("250-chaos-sink\r\n250 8BITMIME")
            elif verb == b"DATA":
                reply("354 end with <CRLF>.<CRLF>")
                data = []
                while (chunk := rfile.readline()) not in (b".\r\n", b".\n", b""):
                    data.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                if not chunk:
                    return  # the client died mid-message: nothing was delivered
                time.sleep(self.delay_ms / 1000)
                headers = email.parser.BytesHeaderParser().parsebytes(b"".join(data))
                with self.lock:
                    self.deliveries[(headers.get("Message-ID") or "").strip()] += 1
                reply("250 queued")
            elif verb == b"QUIT":
                reply("221 bye")
                return
            else:  # HELO, MAIL, RCPT, RSET, NOOP
                reply("250 ok")


# -- the worker -----------------------------------------------------------------------------
class Worker:
    """A real ``celery worker`` subprocess in a session of its own, so that a SIGKILL of its
    process group takes its pool's children with it."""

    def __init__(self, *, env: dict, log_path: Path, config: ChaosConfig):
        self.env = env
        self.log_path = log_path
        self.config = config
        self.process = None
        self.lives = 0
        self.pids = []  # every worker we started, to end only those

    def start(self) -> None:
        self.lives += 1
        env = {**self.env,
               # Each life draws its own faults, reproducibly.
               "SIMULATED_PROVIDER_SEED": str(self.config.seed * 1000 + self.lives)}
        celery = Path(sys.executable).with_name("celery")
        command = [str(celery), "-A", "config", "worker", f"--pool={self.config.pool}",
                   f"--concurrency={self.config.concurrency}", "-Q", QUEUE,
                   "--without-heartbeat", "--without-mingle", "--without-gossip", "-l", "info"]
        with self.log_path.open("ab") as log:
            log.write(f"\n===== worker life {self.lives} =====\n".encode())
            self.log_offset = log.tell()
            self.process = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.pids.append(self.process.pid)
        self.started_at = time.monotonic()
        self.ready_at = None

    def ready(self) -> bool:
        if self.ready_at is None:
            with self.log_path.open("rb") as log:
                log.seek(self.log_offset)
                if b" ready." in log.read():
                    self.ready_at = time.monotonic()
        return self.ready_at is not None

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def kill(self) -> None:
        """SIGKILL the worker and its pool (its process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def kill_child(self, rng) -> bool:
        """SIGKILL one of the pool's processes, if it has any."""
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(stat.read_text().rpartition(")")[2].split()[1]) == self.process.pid:
                    children.append(int(stat.parent.name))
        if not children:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(rng.choice(sorted(children)), signal.SIGKILL)
        return True

    def stop(self) -> None:
        """Warm shutdown (SIGTERM: finish the tasks at hand), then SIGKILL whatever is left."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=60)
        self.kill()

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def worker_env(*, database_url: str, email_url: str, config: ChaosConfig) -> dict:
    """The worker's environment: the base settings with compressed recovery waits
    (bench/chaos_settings.py) on the chaos database, the Redis broker, SMTP to the sink and the
    provider's faults."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.chaos_settings",
        "PYTHONPATH": str(PROJECT_DIR),
        "DATABASE_URL": database_url,
        "REDIS_URL": config.broker_url,
        "EMAIL_URL": email_url,
        "DJANGO_DEBUG": "False",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        "JOB_BATCH_SIZE": str(config.batch_size),
        "SIMULATED_PROVIDER_TIMEOUT_AFTER_CHARGE": str(config.timeout_after_charge),
        "SIMULATED_PROVIDER_PROVIDER_ERROR": str(config.provider_error),
        "SIMULATED_PROVIDER_LOOKUP_FAILURE": str(config.lookup_failure),
        "SIMULATED_PROVIDER_LATENCY_MS": str(config.latency_ms),
        "CHAOS_STALE_PENDING_CHARGE_SECONDS": str(config.stale_pending_charge_s),
        "CHAOS_UNKNOWN_CHARGE_MIN_AGE_SECONDS": str(config.unknown_charge_min_age_s),
        "CHAOS_PROVIDER_RETRY_SECONDS": ",".join(str(s) for s in config.provider_retry_s),
        "CHAOS_EMAIL_SENDING_STALE_SECONDS": str(config.email_sending_stale_s),
    }


# -- beat -----------------------------------------------------------------------------------
class Beat:
    """What celery beat does, compressed: ``job_scan`` of each job every ``scan_every`` seconds,
    skipped while the queue still holds work (a scan would only enqueue the same due rows
    again). Messages a killed worker had taken are not given back by Redis before its
    visibility timeout (an hour): the next scans find their rows still due, as in production."""

    def __init__(self, config: ChaosConfig):
        import redis
        from celery import Celery

        self.config = config
        self.app = Celery("chaos-beat", broker=config.broker_url, set_as_current=False)
        self.redis = redis.Redis.from_url(config.broker_url, socket_timeout=10)
        self.last = None
        self.rounds = 0

    def flush(self) -> None:
        self.redis.flushdb()

    def tick(self) -> None:
        now = time.monotonic()
        if self.last is not None and now - self.last < self.config.scan_every:
            return
        if self.redis.llen(QUEUE) > self.config.max_queue:
            return
        for name in SCANNED_JOBS:
            self.app.send_task("subscriptions.tasks.job_scan", args=[name], queue=QUEUE)
        self.last = now
        self.rounds += 1

    def close(self) -> None:
        self.app.close()
        self.redis.close()


# -- the data -------------------------------------------------------------------------------
def seed(n: int, *, now, tag: str = "X") -> list[int]:
    """N customers, each with a saved working card (a success card in the provider's vault) and
    a monthly subscription whose first period (paid: invoice, line, charge, provider ledger row,
    event) ended 4 to 11 days before ``now``: each is due for exactly one renewal. Bulk
    inserts; returns the subscriptions' ids."""
    from django.db import transaction

    from accounts.models import User
    from bench.seeding import BENCH_COUNTRIES, paid_first_periods
    from billing.amounts import tax_from_net
    from billing.models import (
        DocumentSequence,
        SimulatedProviderCard,
    )
    from billing.vat import vat_rate
    from subscriptions.models import Plan
    from subscriptions.periods import add_months
    from subscriptions.selectors import business_tz

    tz = business_tz()
    plan, _ = Plan.objects.get_or_create(
        code="chaos-essentiel",
        defaults={"name": "Essentiel", "tier": 1, "interval": "month", "price_cents": 825,
                  "features": ["Protection en temps réel", "1 appareil"]},
    )
    countries = list(BENCH_COUNTRIES)
    amounts = {c: tax_from_net(net_cents=plan.price_cents, vat_rate=vat_rate(c))
               for c in countries}
    ids = []
    for low in range(0, n, CHUNK):
        indexes = range(low, min(n, low + CHUNK))
        with transaction.atomic():
            counters = dict(DocumentSequence.objects.select_for_update().filter(prefix="F")
                            .values_list("year", "last_value"))
            periods = []
            for i in indexes:
                start = (now - timedelta(days=35, seconds=(i % 1000) * 600)).replace(
                    microsecond=0)
                periods.append((start, add_months(start, 1, tz=tz)))
            users = User.objects.bulk_create([
                User(email=f"chaos-{tag.lower()}{i}@example.com",
                     customer_number=f"{tag}{i:08d}", password="!", first_name="Camille",
                     last_name="Martin", billing_country=countries[i % len(countries)],
                     preferred_language="en" if i % 4 == 0 else "fr", date_joined=now)
                for i in indexes
            ])
            tokens = [f"tok_chaos_{tag}{i}" for i in indexes]
            SimulatedProviderCard.objects.bulk_create([
                SimulatedProviderCard(token=t, behaviour="success", brand="Visa", last4="4242")
                for t in tokens
            ])
            subscriptions = paid_first_periods(
                plan=plan, users=users, tokens=tokens, periods=periods, indexes=indexes,
                tag=tag, amounts=amounts, counters=counters,
                card=("Visa", "4242", now.year + 5), reference_prefix="ch_sim_chaos", tz=tz,
            )
            for year, last_value in counters.items():
                DocumentSequence.objects.update_or_create(prefix="F", year=year,
                                                          defaults={"last_value": last_value})
        ids.extend(s.pk for s in subscriptions)
    return ids


def database_url_of(settings_dict: dict) -> str:
    """A DATABASE_URL for the worker from a Django connection's settings."""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    return (f"postgres://{settings_dict['USER']}{password}@"
            f"{settings_dict['HOST'] or '127.0.0.1'}:{settings_dict['PORT'] or 5432}/"
            f"{settings_dict['NAME']}")


# -- what is left, what went wrong ----------------------------------------------------------
def remaining_work(*, now=None) -> dict[str, int]:
    """What a worker still has to do: nothing pending or unknown is left when all are 0."""
    from django.utils import timezone

    from billing.models import Charge, Refund
    from notifications.models import OutboxEmail
    from subscriptions.selectors import renewals_due

    now = now or timezone.now()
    return {
        "charges_unsettled": Charge.objects.filter(
            status__in=[Charge.Status.PENDING, Charge.Status.UNKNOWN]).count(),
        "renewals_due": renewals_due(now=now).count(),
        "emails_unsent": OutboxEmail.objects.filter(
            status__in=[OutboxEmail.Status.PENDING, OutboxEmail.Status.SENDING]).count(),
        "refunds_pending": Refund.objects.filter(status=Refund.Status.PENDING).count(),
    }


def figures(*, subscription_ids, deliveries: Counter, now=None) -> dict:
    """The run's figures (issue 8), from the portal's tables, the provider's ledger and the
    sink's deliveries. ``details`` says which rows make up each non-zero figure."""
    from django.utils import timezone

    from billing.dunning import FailureKind
    from billing.models import Charge, Invoice, Refund, SimulatedProviderOperation
    from notifications.models import OutboxEmail
    from subscriptions.models import Status, Subscription, SubscriptionEvent
    from subscriptions.selectors import renewals_due

    now = now or timezone.now()
    seeded = set(subscription_ids)
    details = defaultdict(list)
    invoices = {i["pk"]: i for i in Invoice.objects.values(
        "pk", "subscription_id", "kind", "status", "declined_attempts", "total_cents")}
    charges = list(Charge.objects.values(
        "pk", "invoice_id", "idempotency_key", "status", "provider_reference", "amount_cents",
        "failure_kind", "failure_code"))
    charge_by_key = {c["idempotency_key"]: c for c in charges}
    operations = list(SimulatedProviderOperation.objects.filter(kind="charge").values(
        "idempotency_key", "reference", "status", "amount_cents"))
    moved = [op for op in operations if op["status"] == "success"]
    moved_by_key = {op["idempotency_key"]: op for op in moved}

    # Double charges: money moved more than once for one subscription's renewal (two attempts
    # of its invoice that both succeeded, or two renewal invoices paid): each is due once.
    moved_per_invoice, moved_per_subscription = Counter(), Counter()
    for op in moved:
        match = CHARGE_KEY.match(op["idempotency_key"])
        invoice = match and invoices.get(int(match.group(1)))
        if invoice and invoice["kind"] == Invoice.Kind.RENEWAL:
            moved_per_invoice[invoice["pk"]] += 1
            moved_per_subscription[invoice["subscription_id"]] += 1
    double_charges = sum(count - 1 for count in moved_per_subscription.values() if count > 1)
    for pk, count in moved_per_subscription.items():
        if count > 1:
            per_invoice = {i: moved_per_invoice[i] for i, inv in invoices.items()
                           if inv["subscription_id"] == pk and moved_per_invoice[i]}
            details["double_charges"].append(
                f"subscription {pk}: {count} renewal charges at the provider (per invoice: "
                f"{per_invoice})")

    # Lost charges: money moved with no succeeded charge for it, or a succeeded charge the
    # provider has no money for.
    lost = set()
    for op in moved:
        charge = charge_by_key.get(op["idempotency_key"])
        if (charge is None or charge["status"] != Charge.Status.SUCCEEDED
                or charge["provider_reference"] != op["reference"]
                or charge["amount_cents"] != op["amount_cents"]):
            lost.add(op["idempotency_key"])
            details["lost_charges"].append(
                f"{op['idempotency_key']}: moved at the provider, portal says "
                f"{charge and charge['status']}")
    for charge in charges:
        if (charge["status"] == Charge.Status.SUCCEEDED
                and charge["idempotency_key"] not in moved_by_key
                and charge["idempotency_key"] not in lost):
            lost.add(charge["idempotency_key"])
            details["lost_charges"].append(
                f"{charge['idempotency_key']}: succeeded, no money at the provider")

    # False declines: every seeded card works, so any decline, dunning state or failure email.
    declined = defaultdict(set)
    for charge in charges:
        invoice = invoices[charge["invoice_id"]]
        if charge["status"] == Charge.Status.FAILED and (
                charge["failure_kind"] == FailureKind.DECLINE):
            declined[invoice["subscription_id"]].add(
                f"charge {charge['idempotency_key']} declined ({charge['failure_code']})")
    for invoice in invoices.values():
        if invoice["declined_attempts"]:
            declined[invoice["subscription_id"]].add(
                f"invoice {invoice['pk']}: {invoice['declined_attempts']} declined attempts")
    for pk, status in Subscription.objects.filter(
            status__in=[Status.PAST_DUE, Status.SUSPENDED, Status.ENDED]).values_list("pk",
                                                                                     "status"):
        declined[pk].add(f"status {status}")
    for pk, kind in OutboxEmail.objects.filter(kind__in=DECLINE_EMAILS).values_list(
            "subscription_id", "kind"):
        declined[pk].add(f"{kind} email")
    for pk, kind in SubscriptionEvent.objects.filter(kind__in=[
            SubscriptionEvent.Kind.PAYMENT_FAILED, SubscriptionEvent.Kind.SUSPENDED]
    ).values_list("subscription_id", "kind"):
        declined[pk].add(f"{kind} event")
    for pk, signs in sorted(declined.items()):
        details["false_declines"].append(f"subscription {pk}: {', '.join(sorted(signs))}")

    # Emails: two rows for one occasion (whatever their kind), more renewal emails than paid
    # renewals, a delivery no row owns; and, apart, one row delivered more than once.
    emails = list(OutboxEmail.objects.values(
        "pk", "occasion_key", "kind", "subscription_id", "message_id", "status"))
    per_occasion = Counter((e["subscription_id"], e["occasion_key"].split(":", 1)[-1])
                           for e in emails)
    paid_renewals = Counter(i["subscription_id"] for i in invoices.values()
                            if i["kind"] == Invoice.Kind.RENEWAL
                            and i["status"] == Invoice.Status.PAID)
    renewal_emails = Counter(e["subscription_id"] for e in emails
                             if e["kind"] in RENEWAL_EMAILS)
    extra_rows = Counter()
    for (subscription, occasion), count in per_occasion.items():
        if count > 1:
            extra_rows[subscription] += count - 1
            details["duplicate_emails"].append(
                f"subscription {subscription}: {count} rows for {occasion}")
    for subscription, count in renewal_emails.items():
        extra = count - paid_renewals[subscription]
        if extra > extra_rows[subscription]:
            extra_rows[subscription] = extra
            details["duplicate_emails"].append(
                f"subscription {subscription}: {count} renewal emails, "
                f"{paid_renewals[subscription]} paid renewals")
    duplicate_rows = sum(extra_rows.values())
    by_message_id = {e["message_id"]: e for e in emails}
    unknown_deliveries = 0
    repeated = 0
    lost_emails = 0
    for message_id, count in deliveries.items():
        if message_id not in by_message_id:
            unknown_deliveries += count
            details["duplicate_emails"].append(
                f"{count} deliveries of {message_id or 'a message without Message-ID'}, "
                "which no outbox row owns")
        elif count > 1:
            repeated += count - 1
            email = by_message_id[message_id]
            details["repeated_deliveries_same_message_id"].append(
                f"email {email['pk']} ({email['occasion_key']}): delivered {count} times")
    for e in emails:
        if e["status"] == OutboxEmail.Status.SENT and not deliveries.get(e["message_id"]):
            lost_emails += 1
            details["lost_emails"].append(f"email {e['pk']} marked sent, never delivered")
    for pk in paid_renewals:
        if not renewal_emails[pk]:
            lost_emails += 1
            details["lost_emails"].append(f"subscription {pk}: renewal paid, no email row")

    # Stuck rows: anything not settled at the end.
    stuck = {
        "charges_unsettled": [c["idempotency_key"] for c in charges if c["status"] in (
            Charge.Status.PENDING, Charge.Status.UNKNOWN)],
        "renewals_due": list(renewals_due(now=now).values_list("pk", flat=True)),
        "not_renewed": sorted(seeded - set(paid_renewals)),
        "emails_unsent": [e["pk"] for e in emails if e["status"] != OutboxEmail.Status.SENT],
        "refunds_pending": list(Refund.objects.filter(status=Refund.Status.PENDING)
                                .values_list("pk", flat=True)),
    }
    stuck_subscriptions = set(stuck["renewals_due"]) | set(stuck["not_renewed"])
    stuck_rows = (len(stuck["charges_unsettled"]) + len(stuck_subscriptions)
                  + len(stuck["emails_unsent"]) + len(stuck["refunds_pending"]))
    for what, rows in stuck.items():
        if rows:
            details["stuck_rows"].append(f"{what}: {len(rows)} ({rows[:10]})")

    return {
        "double_charges": double_charges,
        "lost_charges": len(lost),
        "false_declines": len(declined),
        "duplicate_emails": duplicate_rows + unknown_deliveries,
        "repeated_deliveries_same_message_id": repeated,
        "stuck_rows": stuck_rows,
        "lost_emails": lost_emails,
        "details": dict(details),
        "coverage": _coverage(emails),
    }


def _coverage(emails) -> dict:
    """What the faults and kills exercised (not figures to be 0): renewal charges sent again
    after provider errors, settled only later (reconciled after a kill or a lost answer),
    emails claimed more than once (their worker killed, or SMTP refused)."""
    from django.db.models import F

    from billing.models import Charge, SimulatedProviderOperation
    from notifications.models import OutboxEmail

    renewal = Charge.objects.filter(invoice__kind="renewal")
    late = renewal.filter(settled_at__gt=F("created_at") + timedelta(seconds=2))
    moved_at = dict(SimulatedProviderOperation.objects.filter(
        idempotency_key__in=renewal.values("idempotency_key"), status="success",
    ).values_list("idempotency_key", "created_at"))
    # Money the provider moved for a charge the portal learnt of only seconds later: its
    # worker was killed between the provider's answer and the commit (or the answer was lost).
    learnt_late = sum(
        1 for key, settled_at in renewal.filter(status=Charge.Status.SUCCEEDED).values_list(
            "idempotency_key", "settled_at")
        if key in moved_at and settled_at and settled_at - moved_at[key] > timedelta(seconds=2))
    return {
        "renewal_charges": renewal.count(),
        "renewal_charges_succeeded": renewal.filter(status=Charge.Status.SUCCEEDED).count(),
        "with_provider_errors": renewal.filter(provider_errors__gt=0).count(),
        "settled_2s_or_more_after_prepared": late.count(),
        "money_moved_2s_or_more_before_settled": learnt_late,
        "provider_ledger_rows": SimulatedProviderOperation.objects.count(),
        "emails": len(emails),
        "emails_claimed_more_than_once": OutboxEmail.objects.filter(attempts__gt=1).count(),
    }


# -- the run --------------------------------------------------------------------------------
@dataclass
class ChaosResult:
    n: int
    kills: int
    child_kills: int
    elapsed_s: float
    kill_phase_s: float
    settled: bool
    figures: dict
    remaining: dict
    scans: int
    log_path: Path

    FIGURES = ("double_charges", "lost_charges", "false_declines", "duplicate_emails",
               "repeated_deliveries_same_message_id", "stuck_rows", "lost_emails")

    def lines(self) -> list[str]:
        lines = [f"n: {self.n}", f"kills: {self.kills}", f"elapsed_s: {self.elapsed_s:.1f}"]
        lines += [f"{name}: {self.figures[name]}" for name in self.FIGURES]
        lines.append(f"kill_phase_s: {self.kill_phase_s:.1f}")
        lines.append(f"kills_of_one_pool_process: {self.child_kills} (the others: the whole "
                     "worker, restarted)")
        lines.append(f"settled: {self.settled} (left: {self.remaining})")
        lines.append(f"scan_rounds: {self.scans}")
        lines.append(f"coverage: {self.figures['coverage']}")
        for name, rows in self.figures["details"].items():
            lines.append(f"details {name} ({len(rows)}):")
            lines += [f"  {row}" for row in rows[:20]]
        lines.append(f"worker_log: {self.log_path}")
        return lines


def run_chaos(config: ChaosConfig, *, database_url: str, subscription_ids, log_dir: Path,
              progress=None) -> ChaosResult:
    """Kill phase (a worker SIGKILLed every ``kill_every`` seconds of its ready life, restarted
    at once), then the last worker left alone until nothing is pending or unknown; beat's scans
    all along. The rows must be committed (the worker is another process)."""
    say = progress or (lambda text: None)
    rng = random.Random(config.seed)
    sink = SmtpSink(delay_ms=config.smtp_delay_ms).start()
    beat = Beat(config)
    beat.flush()
    log_path = log_dir / "chaos-worker.log"
    worker = Worker(env=worker_env(database_url=database_url, email_url=sink.url,
                                   config=config), log_path=log_path, config=config)
    kills = child_kills = 0
    started = time.monotonic()
    remaining = remaining_work()
    try:
        worker.start()
        next_kill = None
        last_check = 0.0
        # Kill phase.
        while True:
            now = time.monotonic()
            if worker.exited():
                raise RuntimeError(f"the worker exited by itself (code "
                                   f"{worker.process.returncode}):\n{worker.log_tail()}")
            if next_kill is None and (worker.ready() or now - worker.started_at > 30):
                next_kill = now + config.kill_every * rng.uniform(0.5, 1.5)
            beat.tick()
            if now - last_check >= 1:
                last_check = now
                remaining = remaining_work()
                if not any(remaining.values()) and kills >= config.min_kills:
                    break
            if now - started > config.kill_phase_timeout:
                break
            if next_kill is not None and now >= next_kill:
                kills += 1
                if kills % 10 == 0:
                    say(f"{kills} kills, {now - started:.0f} s, left: {remaining_work()}")
                if rng.random() < config.kill_child_share and worker.kill_child(rng):
                    child_kills += 1
                    next_kill = now + config.kill_every * rng.uniform(0.5, 1.5)
                else:
                    worker.kill()
                    worker.start()
                    next_kill = None
            time.sleep(0.05)
        kill_phase = time.monotonic() - started
        say(f"kill phase over: {kills} kills in {kill_phase:.0f} s, left: {remaining}")
        # The last worker, undisturbed.
        final_deadline = time.monotonic() + config.final_timeout
        while any(remaining.values()) and time.monotonic() < final_deadline:
            if worker.exited():
                raise RuntimeError(f"the worker exited by itself (code "
                                   f"{worker.process.returncode}):\n{worker.log_tail()}")
            beat.tick()
            time.sleep(0.5)
            remaining = remaining_work()
        elapsed = time.monotonic() - started
        settled = not any(remaining.values())
    finally:
        worker.stop()
        beat.flush()
        beat.close()
        sink.stop()
    return ChaosResult(
        n=len(subscription_ids), kills=kills, child_kills=child_kills, elapsed_s=elapsed,
        kill_phase_s=kill_phase,
        settled=settled, remaining=remaining, scans=beat.rounds, log_path=log_path,
        figures=figures(subscription_ids=subscription_ids, deliveries=sink.counts()),
    )


# -- the bench ------------------------------------------------------------------------------
def main() -> None:
    defaults = ChaosConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=defaults.n, help="due renewals (default 1000)")
    parser.add_argument("--kill-every", type=float, default=defaults.kill_every,
                        help="seconds of a ready worker's life before its SIGKILL (±50 %%)")
    parser.add_argument("--kill-phase-timeout", type=float, default=defaults.kill_phase_timeout)
    parser.add_argument("--final-timeout", type=float, default=defaults.final_timeout)
    parser.add_argument("--kill-child-share", type=float, default=defaults.kill_child_share,
                        help="share of the kills that hit one prefork pool process only")
    parser.add_argument("--pool", choices=["prefork", "solo"], default=defaults.pool)
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--timeout-after-charge", type=float,
                        default=defaults.timeout_after_charge)
    parser.add_argument("--provider-error", type=float, default=defaults.provider_error)
    parser.add_argument("--lookup-failure", type=float, default=defaults.lookup_failure)
    parser.add_argument("--latency-ms", type=int, default=defaults.latency_ms)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--smtp-delay-ms", type=int, default=defaults.smtp_delay_ms,
                        help="how long the SMTP sink takes to accept a message")
    parser.add_argument("--keep", action="store_true",
                        help="do not drop the database (nor the worker log) at the end")
    args = parser.parse_args()
    config = ChaosConfig(
        n=args.n, kill_every=args.kill_every, kill_child_share=args.kill_child_share,
        kill_phase_timeout=args.kill_phase_timeout,
        final_timeout=args.final_timeout, pool=args.pool, concurrency=args.concurrency,
        batch_size=args.batch_size, timeout_after_charge=args.timeout_after_charge,
        provider_error=args.provider_error, lookup_failure=args.lookup_failure,
        latency_ms=args.latency_ms, seed=args.seed, smtp_delay_ms=args.smtp_delay_ms,
    )
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    _configure(database_url)
    database = ChaosDatabase(database_url)
    database.recreate()
    log_dir = Path(tempfile.mkdtemp(prefix="chaos-"))
    try:
        from django.utils import timezone

        started = time.perf_counter()
        ids = seed(config.n, now=timezone.now())
        print(f"seeded: {config.n} due renewals in {time.perf_counter() - started:.1f} s",
              flush=True)
        result = run_chaos(config, database_url=database_url, subscription_ids=ids,
                           log_dir=log_dir, progress=lambda text: print(text, flush=True))
        print("\n".join(result.lines()), flush=True)
    finally:
        if not args.keep:
            database.drop()


def _configure(database_url: str) -> None:
    """This process (seeding, figures) on the base settings: no broker of the project's own
    (it sends beat's scans through a Celery app of its own), no email sent."""
    sys.path.insert(0, str(PROJECT_DIR))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    os.environ["DATABASE_URL"] = database_url
    os.environ["EMAIL_URL"] = "memorymail://"
    os.environ["REDIS_URL"] = ""
    os.environ["DJANGO_DEBUG"] = "False"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


class ChaosDatabase:
    def __init__(self, database_url: str):
        import environ

        self.db = environ.Env.db_url_config(database_url)
        if "chaos" not in self.db["NAME"]:
            sys.exit(f"refusing to drop database {self.db['NAME']!r}: its name must contain "
                     "'chaos'")

    def _admin(self, sql: str) -> None:
        import psycopg
        from psycopg import sql as pgsql

        with psycopg.connect(host=self.db["HOST"] or None, port=self.db["PORT"] or None,
                             user=self.db["USER"] or None,
                             password=self.db["PASSWORD"] or None, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(pgsql.SQL(sql).format(pgsql.Identifier(self.db["NAME"])))

    def recreate(self) -> None:
        from django.core.management import call_command
        from django.db import connections

        connections.close_all()
        self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        self._admin("CREATE DATABASE {}")
        call_command("migrate", verbosity=0, interactive=False)
        print(f"database: {self.db['NAME']} migrated", flush=True)

    def drop(self) -> None:
        from django.db import connections

        connections.close_all()
        self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)")


if __name__ == "__main__":
    main()
