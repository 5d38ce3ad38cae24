"""Unique tasks on a real cluster: a second enqueue of a live task returns its id and queues
nothing; the lock is free again once the task ended: success, failure, timeout, or a killed
cluster whose task was taken back and finished elsewhere."""

from __future__ import annotations

import os
import signal
import time

import pytest

from qcore import ConfigError
from tests.cluster.support import Bench
from tests.faults import tasks as fault_tasks
from tests.faults.support import Effects
from tests.workflows import tasks

UNIQUE = {"unique": True}


def test_two_enqueues_of_one_unique_task_give_one_run(bench: Bench, fx: Effects) -> None:
    first = bench.producer.enqueue(tasks.echo, *fx.args("once"), 1, q_options=UNIQUE)
    second = bench.producer.enqueue(tasks.echo, *fx.args("once"), 1, q_options=UNIQUE)
    other = bench.producer.enqueue(tasks.echo, *fx.args("once"), 2, q_options=UNIQUE)
    assert second == first and other != first  # other arguments: another key
    assert bench.transport.queue_size() == 2
    with bench.cluster(workers=2, start_method="fork"):
        bench.wait_all([first, other])
    assert fx.count("once") == 2
    # Freed after the success: the same call queues again.
    again = bench.producer.enqueue(tasks.echo, *fx.args("once"), 1, q_options=UNIQUE)
    assert again != first and bench.transport.queue_size() == 1


def test_a_key_of_the_callers_is_one_lock_across_functions(bench: Bench, fx: Effects) -> None:
    key = {"unique": "nightly-report"}
    first = bench.producer.enqueue(tasks.echo, *fx.args("a"), q_options=key)
    assert bench.producer.enqueue(tasks.link, *fx.args("b"), q_options=key) == first
    delayed = bench.producer.enqueue(
        tasks.echo, *fx.args("c"), q_options={"unique": "later", "countdown": 60}
    )
    assert (
        bench.producer.enqueue(tasks.echo, *fx.args("d"), q_options={"unique": "later"}) == delayed
    )


def test_the_lock_is_freed_after_a_failure_and_a_timeout(bench: Bench, fx: Effects) -> None:
    failing = bench.producer.enqueue(tasks.fail_times, *fx.args("f"), 9, q_options=UNIQUE)
    slow = bench.producer.enqueue(
        fault_tasks.overrun, *fx.args("t"), 30, q_options={**UNIQUE, "timeout": 1}
    )
    with bench.cluster(workers=2, start_method="fork", retry=10):
        records = bench.wait_all([failing, slow], timeout=30)
    assert not records[failing].success and not records[slow].success
    assert records[slow].result.startswith("TimeoutError")
    assert bench.producer.enqueue(tasks.fail_times, *fx.args("f"), 9, q_options=UNIQUE) != failing
    again = bench.producer.enqueue(
        fault_tasks.overrun, *fx.args("t"), 30, q_options={**UNIQUE, "timeout": 1}
    )
    assert again != slow


def test_the_lock_of_a_killed_clusters_task_lasts_until_it_ended_elsewhere(
    bench: Bench, fx: Effects
) -> None:
    task_id = bench.producer.enqueue(fault_tasks.hang_first_time, *fx.args("k"), q_options=UNIQUE)
    doomed = bench.cluster(workers=1, start_method="fork", heartbeat=1.0, retry=3.0)
    sentinel = doomed.start()
    fx.wait_started()
    os.kill(sentinel, signal.SIGKILL)  # the cluster and its worker die mid-task
    # Still held: the task is in the dead cluster's hands, and will run again.
    assert (
        bench.producer.enqueue(fault_tasks.hang_first_time, *fx.args("k"), q_options=UNIQUE)
        == task_id
    )
    # The new cluster takes the task back (at once: same host, its sentinel provably dead) and
    # runs it; the lock is held until then, whenever that is.
    with bench.cluster(workers=1, start_method="fork", heartbeat=1.0, retry=3.0):
        record = bench.wait_all([task_id], timeout=30)[task_id]
    assert record.success
    fresh = bench.producer.enqueue(fault_tasks.hang_first_time, *fx.args("k"), q_options=UNIQUE)
    assert fresh != task_id
    bench.transport.purge_dead()


def test_unique_for_bounds_the_lock(bench: Bench, fx: Effects) -> None:
    options = {"unique": "short", "unique_for": 0.3, "countdown": 60}
    first = bench.producer.enqueue(tasks.echo, *fx.args("s"), q_options=options)
    assert bench.producer.enqueue(tasks.echo, *fx.args("s"), q_options=options) == first
    time.sleep(0.4)
    assert bench.producer.enqueue(tasks.echo, *fx.args("s"), q_options=options) != first


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"unique": 5}, "unique must be True, False or a key"),
        ({"unique": ""}, "unique must be True or a key of 1 to 200 characters"),
        ({"unique": True, "unique_for": -1}, "unique_for must be a positive number"),
        ({"unique_for": 10}, "unique_for must be a positive number of seconds, with unique set"),
    ],
)
def test_bad_unique_options_are_refused_and_nothing_is_queued(
    bench: Bench, options: dict[str, object], error: str
) -> None:
    with pytest.raises(ConfigError, match=error):
        bench.producer.enqueue(tasks.echo, "u", "k", "t", q_options=options)
    assert bench.transport.queue_size() == 0
