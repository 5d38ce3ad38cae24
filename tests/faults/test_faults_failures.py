"""Every Failure is saved and hooked, whoever writes it: a worker's sentinel (a timeout, a worker
lost on the task's last attempt), another cluster's reaper (the whole cluster died on the last
attempt), and a store that was down when it happened (issue 11, items 1 and 6)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from qcluster import Cluster, ClusterConfig
from qredis import RedisStatusBoard, RedisTransport
from tests.cluster.support import Bench, CountingStore, eventually
from tests.faults import tasks
from tests.faults.support import Effects
from tests.support.servers import RedisServer


# Guarantee (issue 11, item 1): a task past its timeout ends as one Failure record and one hook
# call (the sentinel's record is hooked too, in a process of its own).
def test_a_timed_out_task_is_saved_and_hooked_once(bench: Bench, fx: Effects) -> None:
    slow = bench.producer.enqueue(
        tasks.overrun, *fx.args("slow"), 30, hook=tasks.counting_hook, max_attempts=3
    )
    with bench.cluster(workers=1, timeout=0.5, retry=2, heartbeat=0.5, start_method="fork"):
        record = bench.wait_all([slow], timeout=15)[slow]
        eventually(lambda: fx.count("hook:slow"), what="the timed-out task's hook")
        after = bench.producer.enqueue(tasks.counted, *fx.args("after"), "ok")
        assert bench.wait_all([after])[after].result == "ok"
    assert record.result.startswith("TimeoutError: the task timed out after 0.5 s")
    assert fx.counts() == {"slow": 1, "hook:slow": 1, "after": 1}
    assert bench.store.counts()[slow] == 1


# Guarantee (issue 11, item 1): a worker SIGKILLed on the task's last attempt gives one
# WorkerLost Failure record and one hook call.
def test_a_worker_lost_on_the_last_attempt_is_saved_and_hooked_once(
    bench: Bench, fx: Effects
) -> None:
    victim = bench.producer.enqueue(
        tasks.hang, *fx.args("victim"), hook=tasks.counting_hook, max_attempts=1
    )
    with bench.cluster(workers=1, start_method="fork"):
        os.kill(fx.wait_started(), signal.SIGKILL)
        record = bench.wait_all([victim], timeout=30)[victim]
        eventually(lambda: fx.count("hook:victim"), what="the lost task's hook")
        after = bench.producer.enqueue(tasks.counted, *fx.args("after"), "ok")
        assert bench.wait_all([after])[after].result == "ok"
    assert record.result.startswith("WorkerLost: the worker running the task was lost")
    assert fx.counts() == {"victim": 1, "hook:victim": 1, "after": 1}
    assert bench.store.counts()[victim] == 1
    assert bench.transport.unrecorded() == []  # its sentinel saved it: nothing owed


# Guarantee (issue 11, item 1): when a whole cluster dies (sentinel SIGKILLed, its workers with
# it) on a task's last attempt, another cluster's reaper dead-letters the task and that cluster
# saves its one WorkerLost Failure and calls its hook once; a caller waiting on the result
# (result(id, wait=...)) gets it.
@pytest.mark.slow
def test_the_reapers_dead_letter_is_saved_and_hooked_once(bench: Bench, fx: Effects) -> None:
    victim = bench.producer.enqueue(
        tasks.hang, *fx.args("victim"), hook=tasks.counting_hook, max_attempts=1
    )
    doomed = bench.cluster(workers=1, start_method="fork", retry=2, heartbeat=0.5)
    doomed.start()
    fx.wait_started()
    assert doomed.pid is not None
    os.kill(doomed.pid, signal.SIGKILL)
    with bench.cluster(workers=1, start_method="fork", retry=2, heartbeat=0.5):
        record = bench.wait_all([victim], timeout=30)[victim]
        eventually(lambda: fx.count("hook:victim"), what="the reaped task's hook")
        time.sleep(1.0)  # another pass of the job: nothing saved or hooked twice
    assert not record.success and record.result.startswith("WorkerLost: consumer ")
    assert "stopped heartbeating" in record.result and "attempt 1 of 1" in record.result
    assert record.func == "tests.faults.tasks.hang" and record.args == fx.args("victim")
    assert fx.counts() == {"victim": 1, "hook:victim": 1}
    assert bench.store.counts()[victim] == 1
    [letter] = bench.transport.dead_letters()
    assert letter.task_id == victim and bench.transport.unrecorded() == []


# Guarantee (issue 11, item 6): a worker lost on the task's last attempt while the result store
# is down leaves the task owed its Failure record (dead-lettered and marked in Redis), never
# dead-lettered without one for good: once the store answers again, the record is saved and
# the hook called, once.
@pytest.mark.slow
def test_store_down_on_the_last_attempt_saves_the_record_once_it_returns(
    bench: Bench, fx: Effects, redis_factory: Callable[..., RedisServer]
) -> None:
    store_server = redis_factory()
    store = CountingStore(store_server.url, namespace=bench.queue)
    cluster = Cluster(
        ClusterConfig(
            name="t", workers=1, start_method="fork", status_interval=0.2, heartbeat=0.5, retry=2
        ),
        transport=RedisTransport(bench.queue, url=bench.url),
        store=store,
        status_board=RedisStatusBoard(bench.url, namespace=bench.queue),
    )
    bench.clusters.append(cluster)
    victim = bench.producer.enqueue(
        tasks.hang, *fx.args("victim"), hook=tasks.counting_hook, max_attempts=1
    )
    with cluster:
        worker = fx.wait_started()
        store_server.stop()  # down first: the loss happens while the store cannot save
        os.kill(worker, signal.SIGKILL)
        owed = eventually(bench.transport.unrecorded, timeout=60, what="the owed record")
        assert [o.task_id for o in owed] == [victim]
        assert bench.transport.dead_size() == 1 and fx.count("hook:victim") == 0
        store_server.start()
        record = store.wait(victim, 60)
        assert record is not None, "the owed record was never saved"
        eventually(lambda: fx.count("hook:victim"), what="the hook, once the record is saved")
        eventually(lambda: bench.transport.unrecorded() == [], what="the mark cleared")
    assert not record.success and record.result.startswith("WorkerLost: ")
    assert record.func == "tests.faults.tasks.hang"
    assert fx.counts() == {"victim": 1, "hook:victim": 1}
    assert store.counts() == {victim: 1}
    store.close()
