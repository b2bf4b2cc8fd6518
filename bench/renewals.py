"""Renewal throughput (DESIGN §5, §12): how many due subscriptions per second the renewal job
gets through, next to a set-based SQL floor doing the equivalent writes on the same data shape.

    .venv/bin/python bench/renewals.py [--n 100000] [--scale] [--profile] [--tracemalloc]

DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_bench) names a database this
script DROPS and re-creates: its name must contain "bench". See bench/README.md."""

import argparse
import cProfile
import gc
import io
import os
import pstats
import re
import resource
import sys
import threading
import time
import tracemalloc
from collections import Counter
from datetime import timedelta
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench"
CHUNK = 5000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="due subscriptions (default 100000)")
    parser.add_argument("--scale", action="store_true",
                        help="also run 10×N (fresh database) and print the time ratio")
    parser.add_argument("--profile", action="store_true",
                        help="count the queries of one batch and cProfile another")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also trace Python allocations during our run (slows it down)")
    parser.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    _configure(database_url)
    bench = Bench(database_url)
    bench.recreate_database()
    try:
        first = bench.measure(args.n, tracing=args.tracemalloc)
        if args.profile:
            bench.profile()
        if args.scale:
            bench.recreate_database()
            tenfold = bench.measure(10 * args.n, tracing=args.tracemalloc, label="10x")
            print(f"scale_ratio_10x: {tenfold['seconds'] / first['seconds']:.1f} (linear = 10)")
    finally:
        if not args.keep:
            bench.drop_database()


def _configure(database_url: str) -> None:
    """The production settings module on the bench database: eager Celery (no REDIS_URL),
    emails kept in memory (Django's locmem backend), DEBUG off (no query log)."""
    sys.path.insert(0, str(PROJECT_DIR))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    os.environ["DATABASE_URL"] = database_url
    os.environ["EMAIL_URL"] = "memorymail://"  # django-environ's name for the locmem backend
    os.environ["REDIS_URL"] = ""
    os.environ["DJANGO_DEBUG"] = "False"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


class Bench:
    def __init__(self, database_url: str):
        import environ

        self.db = environ.Env.db_url_config(database_url)
        if "bench" not in self.db["NAME"]:
            sys.exit(f"refusing to drop database {self.db['NAME']!r}: its name must contain "
                     "'bench'")
        self.sets = 0

    # -- database -------------------------------------------------------------------------
    def _admin(self, sql: str) -> None:
        import psycopg
        from psycopg import sql as pgsql

        with psycopg.connect(host=self.db["HOST"] or None, port=self.db["PORT"] or None,
                             user=self.db["USER"] or None,
                             password=self.db["PASSWORD"] or None, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(pgsql.SQL(sql).format(pgsql.Identifier(self.db["NAME"])))

    def recreate_database(self) -> None:
        from django.core.management import call_command
        from django.db import connections

        connections.close_all()
        self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        self._admin("CREATE DATABASE {}")
        started = time.perf_counter()
        call_command("migrate", verbosity=0, interactive=False)
        print(f"database: {self.db['NAME']} migrated in {time.perf_counter() - started:.1f} s")

    def drop_database(self) -> None:
        from django.db import connections

        connections.close_all()
        self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)")

    # -- measurements ---------------------------------------------------------------------
    def measure(self, n: int, *, tracing: bool, label: str = "") -> dict:
        from django.utils import timezone

        suffix = f"_{label}" if label else ""
        print(f"n{suffix}: {n}")
        self.seed(n, now=timezone.now())
        ours = run_ours(n, tracing=tracing)
        print(f"renewals{suffix}: {n / ours['seconds']:.1f}/s "
              f"({n} in {ours['seconds']:.2f} s, {ours['queries'] / n:.1f} queries/renewal)")
        print(f"time_split{suffix}: {ours['cpu_seconds'] / ours['seconds']:.0%} CPU of this "
              f"process, {ours['query_seconds'] / ours['seconds']:.0%} inside cursor.execute "
              "(the two overlap by the driver's own CPU; commits are in neither)")
        print(f"peak_memory_mb{suffix}: {ours['rss_growth_mb']:.1f} "
              f"(RSS growth during the run; RSS before {ours['rss_before_mb']:.0f} MB, "
              f"maxrss delta {ours['maxrss_delta_mb']:.1f} MB)")
        if tracing:
            print(f"tracemalloc_peak_mb{suffix}: {ours['tracemalloc_peak_mb']:.1f} "
                  "(throughput above is slowed by tracing)")
        print(f"load_average{suffix}: {ours['load_before']:.2f} before, "
              f"{ours['load_after']:.2f} after (1 min; other processes skew the figures)")
        self.seed(n, now=timezone.now())
        floor_seconds = run_floor(n)
        print(f"floor{suffix}: {n / floor_seconds:.1f}/s ({n} in {floor_seconds:.2f} s, "
              "set-based SQL)")
        print(f"ratio{suffix}: {floor_seconds / ours['seconds']:.3f} (ours / floor, aim 0.25)")
        return ours

    def profile(self) -> None:
        """One batch under CaptureQueriesContext (which statements, per renewal), then another
        one under cProfile (where the Python time goes)."""
        from django.conf import settings
        from django.db import connection
        from django.test.utils import CaptureQueriesContext
        from django.utils import timezone

        from subscriptions.jobs import JOBS, due_batches, run_batch

        job, size = JOBS["renew"], settings.JOB_BATCH_SIZE
        # Django keeps the last 9000 queries only: 100 renewals stay under that.
        self.seed(100, now=timezone.now())
        now = timezone.now()
        batch = next(due_batches(job, now=now))
        with CaptureQueriesContext(connection) as captured:
            run_batch(job, batch, now=now)
        _clear_mail()
        per_statement, seconds = Counter(), Counter()
        for query in captured.captured_queries:
            per_statement[_statement_kind(query["sql"])] += 1
            seconds[_statement_kind(query["sql"])] += float(query["time"])
        print(f"profile_queries_per_renewal: {len(captured) / len(batch):.1f} "
              f"(one batch of {len(batch)}: per renewal, statements and their ms)")
        for kind, count in per_statement.most_common():
            print(f"  {count / len(batch):5.2f}  {seconds[kind] * 1000 / len(batch):7.3f} ms  "
                  f"{kind}")

        self.seed(size, now=timezone.now())
        now = timezone.now()
        batch = next(due_batches(job, now=now))
        profiler = cProfile.Profile()
        profiler.enable()
        run_batch(job, batch, now=now)
        profiler.disable()
        _clear_mail()
        out = io.StringIO()
        project = re.escape(str(PROJECT_DIR)) + r"/(?!\.venv)"
        landmarks = r"|render_to_string|\(apply_async\)|\(apply\)|\(send_messages\)|\(commit\)"
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(
            project + landmarks, 40)
        print("profile_cprofile_project (cumulative, one batch of "
              f"{len(batch)}):\n{_short_paths(out.getvalue())}")
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print(f"profile_cprofile_by_tottime:\n{_short_paths(out.getvalue())}")

    # -- data -----------------------------------------------------------------------------
    def seed(self, n: int, *, now) -> None:
        """N customers with a saved card and a monthly subscription whose first period (paid:
        invoice, line, charge, provider ledger row, event) ended 4 to 25 days before ``now``:
        each is due for exactly one renewal. Bulk inserts, CHUNK rows at a time."""
        from django.db import transaction

        from accounts.models import User
        from bench.seeding import BENCH_COUNTRIES, paid_first_periods
        from billing.amounts import tax_from_net
        from billing.gateways import CardDetails
        from billing.gateways.simulated import SimulatedGateway
        from billing.models import (
            DocumentSequence,
            SimulatedProviderCard,
        )
        from billing.vat import vat_rate
        from subscriptions.models import Plan
        from subscriptions.periods import add_months
        from subscriptions.selectors import business_tz

        started = time.perf_counter()
        tag = "ABCDEFGHJK"[self.sets]
        self.sets += 1
        tz = business_tz()
        plan, _ = Plan.objects.get_or_create(
            code="bench-essentiel",
            defaults={"name": "Essentiel", "tier": 1, "interval": "month", "price_cents": 825,
                      "features": ["Protection en temps réel", "1 appareil"]},
        )
        # The provider's tokenizer once; its vault row is then copied for every customer.
        token = SimulatedGateway().tokenize_card(CardDetails("4242424242424242", 12, 2035, "123"))
        behaviour = SimulatedProviderCard.objects.get(token=token.token).behaviour
        countries = list(BENCH_COUNTRIES)
        amounts = {c: tax_from_net(net_cents=plan.price_cents, vat_rate=vat_rate(c))
                   for c in countries}
        # 1000 distinct anchors between 35 and 55 days ago (first period end = anchor + 1 month).
        anchors = []
        for j in range(1000):
            anchor = (now - timedelta(days=35) - timedelta(seconds=j * 1728)).replace(
                microsecond=0)
            anchors.append((anchor, add_months(anchor, 1, tz=tz)))
        counters = dict(DocumentSequence.objects.filter(prefix="F").values_list("year",
                                                                                "last_value"))

        for low in range(0, n, CHUNK):
            indexes = range(low, min(n, low + CHUNK))
            with transaction.atomic():
                users = User.objects.bulk_create([
                    User(email=f"bench-{tag.lower()}{i}@example.com",
                         customer_number=f"{tag}{i:08d}", password="!", first_name="Camille",
                         last_name="Martin", billing_country=countries[i % len(countries)],
                         preferred_language="en" if i % 4 == 0 else "fr", date_joined=now)
                    for i in indexes
                ])
                tokens = [f"tok_bench_{tag}{i}" for i in indexes]
                SimulatedProviderCard.objects.bulk_create([
                    SimulatedProviderCard(token=t, behaviour=behaviour, brand=token.brand,
                                          last4=token.last4) for t in tokens
                ])
                periods = [anchors[i % len(anchors)] for i in indexes]
                paid_first_periods(
                    plan=plan, users=users, tokens=tokens, periods=periods, indexes=indexes,
                    tag=tag, amounts=amounts, counters=counters,
                    card=(token.brand, token.last4, 2035), reference_prefix="ch_sim_bench",
                    tz=tz,
                )
        for year, last_value in counters.items():
            DocumentSequence.objects.update_or_create(prefix="F", year=year,
                                                      defaults={"last_value": last_value})
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"seed_{tag.lower()}: {n} due subscriptions in {time.perf_counter() - started:.1f} s")


def _clear_mail() -> None:
    from django.core import mail

    if hasattr(mail, "outbox"):
        mail.outbox.clear()


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler(threading.Thread):
    """The highest resident set size seen while the run goes (sampled every 50 ms)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = _rss_mb()
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.05):
            self.peak = max(self.peak, _rss_mb())

    def stop(self) -> float:
        self.done.set()
        self.join()
        return max(self.peak, _rss_mb())


def run_ours(n: int, *, tracing: bool) -> dict:
    """The renewal job exactly as beat runs it (job_scan's batches, each one job_batch), but
    in-process and synchronously: eager Celery, so the receipt's delivery task runs too."""
    from django.db import connection
    from django.utils import timezone

    from billing.models import Invoice
    from notifications.models import OutboxEmail
    from subscriptions.jobs import JOBS, due_batches, run_batch

    job = JOBS["renew"]
    queries = 0

    in_queries = 0.0

    def count(execute, sql, params, many, context):
        nonlocal queries, in_queries
        queries += 1
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            in_queries += time.perf_counter() - started

    receipts_before = OutboxEmail.objects.filter(kind="renewal_receipt",
                                                 status=OutboxEmail.Status.SENT).count()
    renewals_before = Invoice.objects.filter(kind=Invoice.Kind.RENEWAL,
                                             status=Invoice.Status.PAID).count()
    gc.collect()
    rss_before, maxrss_before, load_before = _rss_mb(), _maxrss_mb(), os.getloadavg()[0]
    sampler = RssSampler()
    sampler.start()
    if tracing:
        tracemalloc.start()
    now = timezone.now()
    started, cpu_started = time.perf_counter(), time.process_time()
    with connection.execute_wrapper(count):
        for batch in due_batches(job, now=now):
            run_batch(job, batch, now=now)
            _clear_mail()  # the locmem backend keeps every message sent
    seconds = time.perf_counter() - started
    result = {"seconds": seconds, "queries": queries, "query_seconds": in_queries,
              "cpu_seconds": time.process_time() - cpu_started, "rss_before_mb": rss_before,
              "load_before": load_before, "load_after": os.getloadavg()[0],
              "rss_growth_mb": sampler.stop() - rss_before,
              "maxrss_delta_mb": _maxrss_mb() - maxrss_before}
    if tracing:
        result["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    renewed = Invoice.objects.filter(kind=Invoice.Kind.RENEWAL,
                                     status=Invoice.Status.PAID).count() - renewals_before
    sent = OutboxEmail.objects.filter(kind="renewal_receipt",
                                      status=OutboxEmail.Status.SENT).count() - receipts_before
    if (renewed, sent) != (n, n):
        print(f"WARNING: {renewed} renewals paid and {sent} receipts sent, expected {n}")
    return result


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_floor(n: int) -> float:
    """The same outcome in a handful of set-based statements: lock the due subscriptions,
    number and insert the paid renewal invoices, their lines, succeeded charges, provider
    ledger rows, "renewed" events and sent receipt rows (a fixed text, no template rendering,
    no SMTP), advance the periods and the invoice counter. One transaction."""
    from django.conf import settings
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import User
    from bench.seeding import BENCH_COUNTRIES
    from billing.models import (
        Charge,
        DocumentSequence,
        Invoice,
        InvoiceLine,
        PaymentMethod,
        SimulatedProviderOperation,
    )
    from billing.vat import vat_rate
    from notifications.models import OutboxEmail
    from subscriptions.models import Plan, Subscription, SubscriptionEvent

    t = {model.__name__: connection.ops.quote_name(model._meta.db_table) for model in (
        User, Charge, DocumentSequence, Invoice, InvoiceLine, PaymentMethod,
        SimulatedProviderOperation, OutboxEmail, Plan, Subscription, SubscriptionEvent)}
    vat = ", ".join(f"('{country}', {vat_rate(country)})" for country in BENCH_COUNTRIES)
    now = timezone.now()
    params = {"now": now, "tz": settings.BUSINESS_TIME_ZONE,
              "year": timezone.localtime(now).year,
              "default_rate": vat_rate("FR")}
    statements = [
        f"""CREATE TEMP TABLE floor_due ON COMMIT DROP AS
        SELECT s.id AS subscription_id, s.customer_id, p.id AS plan_id, p.name AS plan_name,
               p.currency, p.price_cents AS net_cents, u.email, u.preferred_language,
               u.billing_country, pm.id AS payment_method_id,
               COALESCE(v.rate, %(default_rate)s)::numeric AS vat_rate,
               round(p.price_cents * COALESCE(v.rate, %(default_rate)s) / 100)::int AS vat_cents,
               s.current_period_end AS period_start,
               ((s.billing_anchor AT TIME ZONE %(tz)s) + make_interval(months => (
                   (extract(year FROM s.current_period_end AT TIME ZONE %(tz)s)
                    - extract(year FROM s.billing_anchor AT TIME ZONE %(tz)s)) * 12
                   + extract(month FROM s.current_period_end AT TIME ZONE %(tz)s)
                   - extract(month FROM s.billing_anchor AT TIME ZONE %(tz)s)
                   + CASE p.interval WHEN 'year' THEN 12 ELSE 1 END)::int)
               ) AT TIME ZONE %(tz)s AS period_end,
               'ch_sim_' || substr(md5(random()::text), 1, 20) AS reference,
               row_number() OVER (ORDER BY s.id) AS rn,
               NULL::bigint AS invoice_id, ''::varchar AS number
        FROM {t['Subscription']} s
        JOIN {t['Plan']} p ON p.id = COALESCE(s.pending_plan_id, s.plan_id)
        JOIN {t['User']} u ON u.id = s.customer_id
        JOIN {t['PaymentMethod']} pm ON pm.customer_id = s.customer_id AND pm.is_default
        LEFT JOIN (VALUES {vat}) v(country, rate) ON v.country = u.billing_country
        WHERE s.status = 'active' AND s.current_period_end <= %(now)s
          AND (s.auto_renew OR s.ends_at > s.current_period_end)""",
        f"""SELECT 1 FROM {t['Subscription']} WHERE id IN (SELECT subscription_id FROM floor_due)
        FOR UPDATE""",
        f"""INSERT INTO {t['DocumentSequence']} (prefix, year, last_value)
        VALUES ('F', %(year)s, 0) ON CONFLICT DO NOTHING""",
        f"""UPDATE floor_due SET number = 'F' || %(year)s || '-'
            || lpad((seq.base + rn)::text, greatest(6, length((seq.base + rn)::text)), '0')
        FROM (SELECT last_value AS base FROM {t['DocumentSequence']}
              WHERE prefix = 'F' AND year = %(year)s FOR UPDATE) seq""",
        f"""UPDATE {t['DocumentSequence']} SET last_value = last_value
            + (SELECT count(*) FROM floor_due) WHERE prefix = 'F' AND year = %(year)s""",
        f"""WITH inserted AS (
            INSERT INTO {t['Invoice']} (number, customer_id, subscription_id, plan_id, kind,
                status, period_start, period_end, currency, vat_rate, billing_country,
                net_cents, vat_cents, total_cents, created_at, issued_at, paid_at,
                declined_attempts, last_failure_kind, authentication_requests)
            SELECT number, customer_id, subscription_id, plan_id, 'renewal', 'paid',
                period_start, period_end, currency, vat_rate, billing_country, net_cents,
                vat_cents, net_cents + vat_cents, %(now)s, %(now)s, %(now)s, 0, '', 0
            FROM floor_due
            RETURNING id, subscription_id)
        UPDATE floor_due SET invoice_id = inserted.id FROM inserted
        WHERE floor_due.subscription_id = inserted.subscription_id""",
        f"""INSERT INTO {t['InvoiceLine']} (invoice_id, description, net_cents, vat_cents,
            total_cents)
        SELECT invoice_id, 'Renouvellement ' || plan_name || ' (mensuel)', net_cents,
            vat_cents, net_cents + vat_cents FROM floor_due""",
        f"""INSERT INTO {t['Charge']} (invoice_id, customer_id, payment_method_id, attempt,
            initiated_by, amount_cents, currency, status, idempotency_key, provider_reference,
            failure_code, failure_kind, failure_message, created_at, settled_at,
            provider_errors, last_error, client_secret)
        SELECT invoice_id, customer_id, payment_method_id, 1, 'system', net_cents + vat_cents,
            currency, 'succeeded', 'invoice-' || invoice_id || '-attempt-1', reference, '', '',
            '', %(now)s, %(now)s, 0, '', '' FROM floor_due""",
        f"""INSERT INTO {t['SimulatedProviderOperation']} (idempotency_key, kind, reference,
            amount_cents, currency, status, failure_code, charge_reference, created_at,
            client_secret)
        SELECT 'invoice-' || invoice_id || '-attempt-1', 'charge', reference,
            net_cents + vat_cents, currency, 'success', '', '', %(now)s, '' FROM floor_due""",
        f"""INSERT INTO {t['SubscriptionEvent']} (subscription_id, kind, actor, actor_user_id,
            at, amount_cents, data)
        SELECT subscription_id, 'renewed', 'system', NULL, %(now)s, net_cents + vat_cents,
            jsonb_build_object('invoice', number, 'attempt', 1) FROM floor_due""",
        f"""INSERT INTO {t['OutboxEmail']} (occasion_key, kind, customer_id, subscription_id,
            recipient, language, subject, body_text, body_html, status, message_id, attempts,
            last_error, created_at, sent_at)
        SELECT 'renewal_receipt:invoice-' || invoice_id || '-paid', 'renewal_receipt',
            customer_id, subscription_id, email, preferred_language,
            'Reçu : votre abonnement ' || plan_name || ' est renouvelé',
            'Bonjour,' || chr(10) || 'Facture ' || number || ' : ' || (net_cents + vat_cents)
                || ' centimes TTC, période du ' || period_start || ' au ' || period_end,
            '<p>Bonjour,</p><p>Facture ' || number || ' : ' || (net_cents + vat_cents)
                || ' centimes TTC, période du ' || period_start || ' au ' || period_end
                || '</p>',
            'sent', '<outbox-floor-' || invoice_id || '@example.com>', 1, '', %(now)s, %(now)s
        FROM floor_due""",
        f"""UPDATE {t['Subscription']} s SET plan_id = d.plan_id,
            pending_plan_id = CASE WHEN s.pending_plan_id = d.plan_id THEN NULL
                                   ELSE s.pending_plan_id END,
            current_period_start = d.period_start, current_period_end = d.period_end,
            status = 'active', licence_active = true
        FROM floor_due d WHERE s.id = d.subscription_id""",
    ]
    gc.collect()
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, params)
        cursor.execute("SELECT count(*) FROM floor_due")
        renewed = cursor.fetchone()[0]
    seconds = time.perf_counter() - started
    if renewed != n:
        print(f"WARNING: the floor renewed {renewed}, expected {n}")
    return seconds


def _short_paths(text: str) -> str:
    text = text.replace(str(PROJECT_DIR) + "/", "")
    return re.sub(r"\S*/site-packages/", "", text)


def _statement_kind(sql: str) -> str:
    """'SELECT billing_invoice FOR UPDATE', 'SAVEPOINT', 'INSERT billing_charge'…"""
    verb = sql.split(None, 1)[0].upper()
    if verb in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
        return verb
    pattern = {"SELECT": r'\bFROM\s+"([^"]+)"', "INSERT": r'\bINTO\s+"([^"]+)"',
               "UPDATE": r'^UPDATE\s+"([^"]+)"', "DELETE": r'\bFROM\s+"([^"]+)"'}.get(verb)
    match = re.search(pattern, sql) if pattern else None
    kind = f"{verb} {match.group(1)}" if match else verb
    if verb == "SELECT" and "FOR UPDATE" in sql:
        kind += " FOR UPDATE"
    if verb == "SELECT" and re.search(r"SELECT 1 AS \"a\"", sql):
        kind += " (exists)"
    return kind


if __name__ == "__main__":
    main()
