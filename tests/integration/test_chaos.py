"""Chaos, bounded (issue 8): due renewals collected by a real Celery worker that is SIGKILLed
every two seconds or so and restarted (or loses one pool process), against a simulated
provider that loses the answer to a fifth of the charges it makes and fails one in twenty;
then the last worker is left alone until nothing is pending or unknown. No double charge, no
lost charge, no false decline, no duplicate email, nothing stuck.

The same run as bench/chaos.py (which does N = 1000), on this test's database: the worker is
a subprocess on the real clock (``real_clock``) sharing it, so the seeded rows are committed
(``transaction=True``). Its broker is Redis database 14 (CHAOS_REDIS_URL), flushed around the
run; its emails go to an SMTP sink in this process that counts deliveries per Message-ID."""

import pytest
import redis
from django.db import connection
from django.utils import timezone

from bench.chaos import ChaosConfig, database_url_of, run_chaos, seed

pytestmark = [pytest.mark.chaos, pytest.mark.real_clock, pytest.mark.django_db(transaction=True)]

N = 50
FIGURES = ("double_charges", "lost_charges", "false_declines", "duplicate_emails", "stuck_rows",
           "lost_emails")


def _require_redis(url):
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.exceptions.RedisError as error:
        pytest.fail(f"Redis is not answering at {url} ({error}). Start it with `make services` "
                    "(`make test` does).")
    finally:
        client.close()


def test_renewals_survive_a_worker_killed_every_two_seconds(tmp_path):
    # given: N customers with a working card, each subscription due for its renewal
    config = ChaosConfig(
        n=N, kill_every=2.0, min_kills=5, batch_size=5, latency_ms=100,
        # A quarter of the kills hit one pool process: its message is redelivered.
        kill_child_share=0.25,
        # Well under two minutes when all goes well; a slow machine waits for settlement
        # rather than failing early.
        kill_phase_timeout=30, final_timeout=60,
    )
    _require_redis(config.broker_url)
    subscription_ids = seed(N, now=timezone.now())

    # when: beat's scans run while the worker is killed and restarted, then left alone
    result = run_chaos(config, database_url=database_url_of(connection.settings_dict),
                       subscription_ids=subscription_ids, log_dir=tmp_path)

    # then: every renewal paid once, its receipt sent, and nothing else
    report = "\n".join(result.lines())
    print(report)
    assert result.kills >= config.min_kills, report
    assert result.settled, f"{report}\n----- worker log (tail) -----\n{_tail(result)}"
    assert {name: result.figures[name] for name in FIGURES} == dict.fromkeys(FIGURES, 0), (
        f"{report}\n----- worker log (tail) -----\n{_tail(result)}")


def _tail(result, lines=60):
    return "\n".join(result.log_path.read_text(errors="replace").splitlines()[-lines:])
