"""Volume and time: a 100,000-task backlog, and a delayed task across cluster restarts."""

from __future__ import annotations

import time

import pytest

from tests.cluster.support import Bench
from tests.faults import tasks
from tests.faults.support import Effects, assert_exactly_once, wait_drained

BACKLOG = 100_000


@pytest.mark.slow
def test_a_hundred_thousand_task_backlog_drains_with_each_task_saved_once(bench: Bench) -> None:
    ids = bench.producer.enqueue_many(tasks.noop, range(BACKLOG))
    assert bench.transport.queue_size() == BACKLOG
    with bench.cluster(workers=2, start_method="fork", prefetch=256):
        wait_drained(bench, BACKLOG, timeout=240)
    counts = bench.store.counts()
    assert len(counts) == BACKLOG and set(counts) == set(ids)
    assert set(counts.values()) == {1}
    # Each record is there to read (a sample: reading 100,000 back proves no more).
    for task_id in ids[:: BACKLOG // 100]:
        record = bench.store.get(task_id)
        assert record is not None and record.success
    assert bench.transport.dead_size() == 0


@pytest.mark.slow
def test_a_delayed_task_survives_two_cluster_restarts_and_runs_once_at_its_time(
    bench: Bench, fx: Effects
) -> None:
    eta = time.time() + 5.0  # room for two start-and-stops on a loaded machine
    task_id = bench.producer.enqueue(tasks.counted, *fx.args("later"), "on time", eta=eta)
    for _ in range(2):  # two clusters come and go before it is due
        with bench.cluster(workers=1, start_method="fork", name="early"):
            pass
        assert fx.count("later") == 0 and bench.transport.delayed_size() == 1
    assert time.time() < eta, "the restarts took longer than the delay: make it longer"
    with bench.cluster(workers=1, start_method="fork", name="on-time"):
        record = bench.store.wait(task_id, 20)
    assert record is not None and record.result == "on time"
    ran_at = record.stopped
    assert eta <= ran_at < eta + 2.0  # not early, and not much late
    assert_exactly_once(bench, fx, {"later": task_id})
