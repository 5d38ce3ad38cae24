"""Tasks past their timeout, and a cluster stopped with SIGTERM in the middle of a backlog."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.cluster.support import Bench, eventually
from tests.faults import tasks
from tests.faults.support import Effects, assert_exactly_once, enqueue_counted, wait_for_count


@pytest.mark.parametrize(
    "func",
    [tasks.overrun, tasks.overrun_ignoring_sigterm, tasks.blocked_in_read],
    ids=["sleeping", "ignoring-sigterm", "blocked-in-read"],
)
def test_a_task_past_its_timeout_is_killed_and_fails_once_as_timed_out(
    bench: Bench, fx: Effects, func: object
) -> None:
    extra = () if func is tasks.blocked_in_read else (30,)
    slow = bench.producer.enqueue(func, *fx.args("slow"), *extra, max_attempts=3)
    begun = time.monotonic()
    with bench.cluster(workers=1, timeout=0.5, retry=2, heartbeat=0.5, start_method="fork"):
        record = bench.wait_all([slow], timeout=15)[slow]
        elapsed = time.monotonic() - begun
        after = bench.producer.enqueue(tasks.counted, *fx.args("after"), "ok")
        assert bench.wait_all([after])[after].result == "ok"
        status = eventually(lambda: (s := bench.status()) and s["timed_out"] == 1 and s)
    assert not record.success
    assert record.result.startswith("TimeoutError: the task timed out after 0.5 s")
    assert record.func == f"tests.faults.tasks.{func.__name__}"  # type: ignore[attr-defined]
    assert record.args == (*fx.args("slow"), *extra) and record.attempt_count == 1
    assert elapsed < 8
    assert status["replaced"] == 1
    # Timed out means failed for good: never redelivered, one record, one run.
    assert_exactly_once(bench, fx, {"slow": slow, "after": after})


@pytest.mark.slow
def test_sigterm_with_a_thousand_queued_and_tasks_running_loses_and_repeats_nothing(
    bench: Bench, fx: Effects
) -> None:
    ids = enqueue_counted(bench, fx, tasks.counted_sleep, [f"t{i:04d}" for i in range(1000)], 0.002)
    first = bench.cluster(workers=2, start_method="fork", prefetch=8, grace=10)
    first.start()
    wait_for_count(lambda: len(bench.store.counts()), 100)
    assert bench.status()["workers"], "the cluster is running"  # type: ignore[index]
    assert first.pid is not None
    os.kill(first.pid, signal.SIGTERM)
    assert first.stop(timeout=30) == 0
    saved = bench.store.counts()
    # Stopped mid-run: some saved, the rest back in the queue, nothing held or half-done.
    assert 100 <= len(saved) < 1000
    assert bench.transport.inflight_size() == 0
    assert bench.transport.queue_size() == 1000 - len(saved)
    assert fx.counts().keys() == {t for t, i in ids.items() if i in saved}
    with bench.cluster(workers=2, start_method="fork"):
        bench.wait_all(list(ids.values()), timeout=60)
    assert_exactly_once(bench, fx, ids)
