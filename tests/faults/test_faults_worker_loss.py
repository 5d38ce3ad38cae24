"""Workers that die under a task: SIGKILLed from outside, ``os._exit``, a segfault."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from qcluster import Cluster, ClusterConfig
from qredis import RedisStatusBoard, RedisTransport
from tests.cluster.support import Bench, CountingStore, eventually
from tests.faults import tasks
from tests.faults.support import Effects, assert_drained
from tests.support.servers import RedisServer


def test_a_worker_sigkilled_mid_task_is_redelivered_saved_once_and_hooked_once(
    bench: Bench, fx: Effects
) -> None:
    victim = bench.producer.enqueue(
        tasks.hang_first_time, *fx.args("victim"), hook=tasks.counting_hook, max_attempts=3
    )
    with bench.cluster(workers=1, start_method="fork"):
        pid = fx.wait_started()
        os.kill(pid, signal.SIGKILL)
        record = bench.wait_all([victim], timeout=30)[victim]
        eventually(lambda: fx.count("hook:victim"), what="the hook")
        after = bench.producer.enqueue(tasks.counted, *fx.args("after"), "ok")
        assert bench.wait_all([after])[after].result == "ok"
    assert record.success and record.result == 2 and record.attempt_count == 2
    assert fx.count("victim") == 2  # at least once: it ran again after the kill
    assert bench.store.counts()[victim] == 1  # but it has one record, saved once
    assert fx.count("hook:victim") == 1  # and its hook ran once, after the run that was saved
    assert_drained(bench)


def test_a_worker_sigkilled_on_the_last_attempt_gives_one_worker_lost_failure(
    bench: Bench, fx: Effects
) -> None:
    victim = bench.producer.enqueue(tasks.hang, *fx.args("victim"), max_attempts=1)
    with bench.cluster(workers=1, start_method="fork"):
        os.kill(fx.wait_started(), signal.SIGKILL)
        record = bench.wait_all([victim], timeout=30)[victim]
        after = bench.producer.enqueue(tasks.counted, *fx.args("after"), "ok")
        assert bench.wait_all([after])[after].result == "ok"
    assert not record.success
    assert record.result.startswith("WorkerLost: the worker running the task was lost")
    assert "killed by SIGKILL" in record.result and "attempt 1 of 1" in record.result
    assert record.func == "tests.faults.tasks.hang" and record.args == fx.args("victim")
    assert fx.count("victim") == 1 and bench.store.counts()[victim] == 1
    [letter] = bench.transport.dead_letters()
    assert letter.task_id == victim and "out of attempts" in letter.reason


@pytest.mark.parametrize(
    ("func", "how"),
    [(tasks.exit_hard, "exited with code 1"), (tasks.segfault, "killed by SIGSEGV")],
    ids=["os._exit", "segfault"],
)
def test_a_task_that_kills_its_worker_every_time_is_dead_lettered_as_poison(
    bench: Bench, fx: Effects, func: object, how: str
) -> None:
    poison = bench.producer.enqueue(func, *fx.args("poison"), max_attempts=3)
    others = bench.producer.enqueue_many(tasks.counted, [(*fx.args(f"o{i}"), i) for i in range(20)])
    with bench.cluster(workers=2, start_method="fork"):
        records = bench.wait_all([poison, *others], timeout=60)
        # A loss is published before its replacement is: wait for both.
        status = eventually(
            lambda: (s := bench.status()) and s["lost"] == 3 and s["replaced"] >= 3 and s
        )
    failure = records[poison]
    assert not failure.success and failure.result.startswith("WorkerLost:")
    assert how in failure.result and "attempt 3 of 3" in failure.result
    assert fx.count("poison") == 3  # one run per attempt, then no more
    [letter] = bench.transport.dead_letters()
    assert letter.task_id == poison and letter.attempts == 3
    assert "out of attempts" in letter.reason
    # The cluster kept serving the others, each exactly once, and replaced each lost worker.
    assert [records[i].result for i in others] == list(range(20))
    assert all(fx.count(f"o{i}") == 1 for i in range(20))
    assert status["replaced"] >= 3
    assert bench.transport.queue_size() == bench.transport.inflight_size() == 0


def test_a_worker_killed_while_saving_loses_nothing(
    bench: Bench, fx: Effects, redis_factory: Callable[..., RedisServer]
) -> None:
    # The result store on a server of its own, paused for writes: the worker hangs in its save,
    # after running the task and before acking it. Killed there, the task must come back.
    store_server = redis_factory()
    store = CountingStore(store_server.url, namespace=bench.queue)
    cluster = Cluster(
        ClusterConfig(name="t", workers=1, start_method="fork", status_interval=0.2),
        transport=RedisTransport(bench.queue, url=bench.url),
        store=store,
        status_board=RedisStatusBoard(bench.url, namespace=bench.queue),
    )
    bench.clusters.append(cluster)
    admin = store_server.client()
    admin.execute_command("CLIENT", "PAUSE", "30000", "WRITE")
    task_id = bench.producer.enqueue(
        tasks.counted, *fx.args("saved"), "ok", hook=tasks.counting_hook
    )
    with cluster:
        worker = eventually(
            lambda: (
                (s := bench.status()) and s["workers"][0]["state"] == "saving" and s["workers"][0]
            ),
            what="the worker to hang in its save",
        )
        assert fx.count("saved") == 1 and bench.transport.inflight_size() == 1  # ran, not acked
        os.kill(worker["pid"], signal.SIGKILL)
        eventually(lambda: (s := bench.status()) and s["replaced"] == 1, what="the replacement")
        admin.execute_command("CLIENT", "UNPAUSE")
        record = store.wait(task_id, 30)
        assert record is not None, "the task was lost"
        eventually(lambda: fx.count("hook:saved"), what="the hook")
    assert record.success and record.result == "ok"
    assert fx.counts() == {"saved": 2, "hook:saved": 1}  # ran again; one hook, after the save
    assert store.counts() == {task_id: 1}
    assert_drained(bench)
    admin.close()
    store.close()


def test_a_run_whose_ack_is_refused_calls_no_hook(bench: Bench, fx: Effects) -> None:
    task_id = bench.producer.enqueue(
        tasks.fenced_out_first_time,
        *fx.args("fenced"),
        bench.transport.keys.tokens,
        hook=tasks.counting_hook,
    )
    with bench.cluster(workers=1, start_method="fork"):
        first = bench.wait_all([task_id])[task_id]
        assert bench.transport.inflight_size() == 1  # its ack was refused: still held
    # The stop put it back (its owner stopped); the next cluster runs it again.
    assert first.result == 1 and fx.counts() == {"fenced": 1}
    with bench.cluster(workers=1, start_method="fork"):
        eventually(lambda: fx.count("hook:fenced"), what="the hook of the second run")
    assert fx.counts() == {"fenced": 2, "hook:fenced": 1}
    record = bench.store.get(task_id)
    assert record is not None and record.result == 2  # the record of the run that was acked
    assert_drained(bench)
