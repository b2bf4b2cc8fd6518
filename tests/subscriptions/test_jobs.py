from datetime import timedelta

import time_machine

from subscriptions.jobs import Job, run_batch
from tests.conftest import FROZEN_AT


def test_a_batch_without_a_fixed_instant_runs_each_row_at_the_time_it_is_reached():
    # given: a job whose rows each take ten minutes
    seen = []
    with time_machine.travel(FROZEN_AT, tick=False) as clock:
        def slow(pk, now):
            seen.append(now)
            clock.shift(timedelta(minutes=10))

        job = Job("slow", due=lambda now: None, run=slow)
        # when
        run_batch(job, [1, 2, 3])
    # then
    assert seen == [FROZEN_AT + timedelta(minutes=10 * i) for i in range(3)]


def test_a_batch_at_a_fixed_instant_runs_every_row_then():
    seen = []
    job = Job("fixed", due=lambda now: None, run=lambda pk, now: seen.append(now))
    run_batch(job, [1, 2], now=FROZEN_AT)
    assert seen == [FROZEN_AT, FROZEN_AT]
