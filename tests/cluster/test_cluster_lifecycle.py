"""How clusters end: sentinel killed, stop now, hooks that hang."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.cluster import tasks
from tests.cluster.support import Bench, eventually


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose (its parent is gone and nobody reaped it yet).
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_workers_exit_within_seconds_when_the_sentinel_is_killed(
    bench: Bench, start_method: str
) -> None:
    cluster = bench.cluster(start_method=start_method)
    sentinel = cluster.start()
    status = eventually(lambda: (s := bench.status()) and len(s["workers"]) == 2 and s)
    workers = [w["pid"] for w in status["workers"]]
    os.kill(sentinel, signal.SIGKILL)
    eventually(lambda: not any(_alive(pid) for pid in workers), timeout=5, what="workers to exit")


def test_stop_now_does_not_wait_for_a_long_task_and_requeues_it(bench: Bench, tmp_path) -> None:  # type: ignore[no-untyped-def]
    mark = tmp_path / "started"
    long_id = bench.producer.enqueue(tasks.touch_and_sleep, str(mark), 60, "late")
    cluster = bench.cluster(workers=1, start_method="fork", grace=60)
    cluster.start()
    eventually(mark.exists, what="the long task to start")
    begun = time.monotonic()
    assert cluster.stop(now=True) == 0
    assert time.monotonic() - begun < 5
    assert bench.store.get(long_id) is None
    assert bench.transport.queue_size() == 1 and bench.transport.inflight_size() == 0


def test_a_hook_stuck_past_its_alarm_costs_its_worker_not_the_task(bench: Bench) -> None:
    hung = bench.producer.enqueue(tasks.add, 1, 1, hook=tasks.stuck_hook)
    with bench.cluster(workers=1, hook_timeout=0.5, start_method="fork"):
        assert bench.wait_all([hung])[hung].result == 2
        status = eventually(lambda: (s := bench.status()) and s["replaced"] == 1 and s)
        after = bench.producer.enqueue(tasks.add, 2, 3)
        assert bench.wait_all([after], timeout=10)[after].result == 5
    assert status["replaced"] == 1
    assert bench.store.counts()[hung] == 1
    assert bench.transport.inflight_size() == 0 and bench.transport.queue_size() == 0
