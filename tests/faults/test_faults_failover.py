"""Failovers, injected for real: a Sentinel group's master and a Redis Cluster master SIGKILLed
while producers enqueue and a cluster runs tasks; the replica is promoted by Redis itself.

What Redis's asynchronous replication can lose (docs/deployment/redis-sentinel.md): writes the
master acknowledged and the promoted replica never received. For an enqueue, the task; with
``wait_replicas``, nothing an enqueue that returned said was queued. For a claim or an ack, a
delivery: the task runs again (at least once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from qcore import TaskMessage
from qredis import Producer, QueueKeys, RedisTransport, ReplicationTimeout, TransportError
from qredis.placement import shard_queues
from tests.cluster.support import Bench
from tests.faults.support import Effects
from tests.support.servers import stall
from tests.support.topologies import LocalRedisCluster, LocalSentinelGroup

COUNTED = "tests.faults.tasks.counted"


def _cut_off_replica(group: LocalSentinelGroup) -> threading.Thread:
    """Stall the replica (DEBUG SLEEP) and drop its link from the master, so writes from now
    on reach no replica until the link is back: a replica lagging behind, for certain."""
    master = group.master()
    replica = next(s for s in group.servers if s is not master)
    # Asleep before the link drops (not a fixed pause after starting the thread, which on a
    # loaded machine may not have sent the command yet: the replica would reconnect at once).
    sleeper = stall(replica, 4)
    master.client().execute_command("CLIENT", "KILL", "TYPE", "replica")
    return sleeper


@pytest.mark.slow
def test_a_failover_loses_unreplicated_enqueues_and_wait_replicas_reports_them(
    topology_factory: Callable[[str], Any], queue_name: str
) -> None:
    group: LocalSentinelGroup = topology_factory("sentinel")
    plain = RedisTransport(f"{queue_name}-plain", url=group.url)
    waited = RedisTransport(
        f"{queue_name}-waited", url=group.url, wait_replicas=1, wait_timeout=0.5
    )
    early = [(f"early{i}", b"p") for i in range(50)]
    late = [(f"late{i}", b"p") for i in range(20)]
    for transport in (plain, waited):
        transport.enqueue_many(early)

    sleeper = _cut_off_replica(group)
    plain.enqueue_many(late)  # the master acknowledges: no replica has them
    plain.enqueue("late-single", b"p")
    with pytest.raises(ReplicationTimeout, match="only 0 of wait_replicas=1"):
        waited.enqueue_many(late)
    with pytest.raises(ReplicationTimeout, match="only 0 of wait_replicas=1"):
        waited.enqueue("late-single", b"p")

    new = group.failover()  # SIGKILL the master; the sentinels promote the stalled replica
    sleeper.join(10)
    old = next(s for s in group.servers if s is not new)
    old.start()  # back as a replica of the new master
    group.wait_ready()
    # Not necessarily `new` still: it slept through DEBUG SLEEP past down-after, and on a loaded
    # machine the sentinels have failed over once more, to the old master once it was back as
    # `new`'s replica (a replica takes its master's data, dropping its own). Whichever they
    # name now must hold what `new` held, and not the old master's late writes: the counts
    # below tell.
    assert group.master() in (new, old)

    # The plain enqueues of the late tasks are lost, as the docs say a failover can lose them.
    assert plain.queue_size() == len(early)
    # Every enqueue that returned is there; the ones that raised are sent again, as told.
    assert waited.queue_size() == len(early)
    waited.enqueue_many(late)
    waited.enqueue("late-single", b"p")
    got = waited.fetch("c", count=100)
    assert sorted(d.task_id for d in got) == sorted([i for i, _ in early + late] + ["late-single"])
    plain.close()
    waited.close()


def _produce(
    producer: Producer, fx: Effects, tags: list[str], ids: dict[str, str], resent: dict[str, int]
) -> None:
    """Enqueue one counted task per tag, each until an enqueue returns: after an error the
    same message again (one id: never two copies queued at once; but a copy that already ran
    and was acked is queued again, and runs again: counted in ``resent``)."""
    for tag in tags:
        message: TaskMessage = producer.message(COUNTED, *fx.args(tag))
        deadline = time.monotonic() + 60
        while True:
            try:
                producer.send(message)
                break
            except TransportError:
                assert time.monotonic() < deadline, "the producer never got through"
                resent[tag] = resent.get(tag, 0) + 1
                time.sleep(0.2)
        ids[tag] = message.id
        time.sleep(0.01)


def _run_through_a_failover(
    url: str,
    queue: str,
    fx: Effects,
    fail_over: Callable[[], None],
    n: int = 300,
    shards: int = 1,
) -> None:
    bench = Bench(url, queue)
    producer = Producer(url, queue, namespace=queue, wait_replicas=1, wait_timeout=2, shards=shards)
    bench.transport = producer.transport  # type: ignore[assignment]  # sizes: every shard
    try:
        bench.cluster(workers=2, retry=6.0, heartbeat=1.0, shards=shards).start()
        tags = [f"t{i}" for i in range(n)]
        ids: dict[str, str] = {}
        resent: dict[str, int] = {}
        sender = threading.Thread(target=_produce, args=(producer, fx, tags, ids, resent))
        sender.start()
        deadline = time.monotonic() + 60
        while len(fx.counts()) < n // 3:
            assert time.monotonic() < deadline, "no progress before the failover"
            time.sleep(0.05)
        fail_over()
        sender.join(120)
        assert len(ids) == n

        # Every task enqueued (confirmed on a replica) runs and is saved, failover or not.
        deadline = time.monotonic() + 120
        while True:
            runs = fx.counts()
            records = {tag: _get(bench, i) for tag, i in ids.items()}
            missing = [t for t, r in records.items() if r is None]
            if not missing and len(runs) == n and _idle(bench):
                break
            assert time.monotonic() < deadline, (
                f"{len(missing)} task(s) without a record, e.g. {missing[:3]}; "
                f"{n - len(runs)} never ran"
            )
            time.sleep(0.2)
        assert all(r is not None and r.success for r in records.values())
        # At least once: a task runs again when the failover lost its claim or its ack (only
        # tasks in flight around it: 2 workers, prefetch 10), or when the producer sent it
        # again after an error while it had already run.
        extra = {t: c - 1 - resent.get(t, 0) for t, c in runs.items()}
        again = {t: c for t, c in extra.items() if c > 0}
        assert len(again) <= 40 and max(extra.values()) <= 1, (again, resent)
    finally:
        producer.close()
        bench.close()


def _get(bench: Bench, task_id: str) -> Any:
    try:
        return bench.store.get(task_id)
    except TransportError:
        return None


def _idle(bench: Bench) -> bool:
    try:
        t = bench.transport
        return t.queue_size() == t.inflight_size() == t.delayed_size() == 0
    except TransportError:
        return False


@pytest.mark.slow
def test_a_sentinel_failover_mid_run_loses_no_confirmed_task(
    topology_factory: Callable[[str], Any], queue_name: str, fx: Effects
) -> None:
    group: LocalSentinelGroup = topology_factory("sentinel")

    def fail_over() -> None:
        group.failover()
        old = next(s for s in group.servers if s is not group.master())
        old.start()  # it comes back as a replica: wait_replicas=1 can be met again
        group.wait_ready()

    _run_through_a_failover(group.url, queue_name, fx, fail_over)


@pytest.mark.slow
def test_a_redis_cluster_master_killed_mid_run_loses_no_confirmed_task(
    topology_factory: Callable[[str], Any], queue_name: str, fx: Effects
) -> None:
    cluster: LocalRedisCluster = topology_factory("cluster")
    queue_key = QueueKeys.for_queue(queue_name).queue

    def fail_over() -> None:
        master = cluster.master_of(queue_key)
        master.stop(kill=True)
        deadline = time.monotonic() + 30
        while cluster.master_of(queue_key) is master:
            assert time.monotonic() < deadline, "no replica was promoted"
            time.sleep(0.1)
        cluster.wait_ready()
        master.start()  # back as a replica of the promoted one
        cluster.wait_replicas_online()

    _run_through_a_failover(cluster.url, queue_name, fx, fail_over)


@pytest.mark.slow
def test_a_redis_cluster_master_killed_mid_run_with_a_sharded_queue_loses_no_confirmed_task(
    topology_factory: Callable[[str], Any], queue_name: str, fx: Effects
) -> None:
    """Three shards, one per master; the master of the second shard is killed: the tasks of
    every shard run, the lost shard's once its replica is promoted."""
    cluster: LocalRedisCluster = topology_factory("cluster")
    shard_key = QueueKeys.for_queue(shard_queues(queue_name, 3)[1]).queue
    masters = {
        cluster.master_of(QueueKeys.for_queue(q).queue).port for q in shard_queues(queue_name, 3)
    }
    assert len(masters) == 3

    def fail_over() -> None:
        master = cluster.master_of(shard_key)
        master.stop(kill=True)
        deadline = time.monotonic() + 30
        while cluster.master_of(shard_key) is master:
            assert time.monotonic() < deadline, "no replica was promoted"
            time.sleep(0.1)
        cluster.wait_ready()
        master.start()
        cluster.wait_replicas_online()

    _run_through_a_failover(cluster.url, queue_name, fx, fail_over, shards=3)


def test_a_claim_its_worker_never_received_is_put_back_once_the_worker_is_idle(
    bench: Bench, fx: Effects
) -> None:
    """What a lost fetch reply or a failover that lost an ack leaves: a task in a live
    worker's in-flight list that the worker does not hold. It runs (once) within seconds,
    not when the worker stops."""
    bench.cluster(workers=1, heartbeat=0.5).start()
    [consumer] = _wait_for(lambda: list(bench.transport.consumers()))
    task_id = bench.producer.enqueue(COUNTED, *fx.args("stranded"), countdown=3600)
    # Claimed for the worker's consumer behind its back: due now, fetched by a stand-in, and
    # its in-flight list renamed to the worker's (a claim whose reply never reached it).
    keys = bench.transport.keys
    bench.client.zadd(keys.delayed, {task_id: 0})
    [delivery] = bench.transport.fetch("stand-in")
    bench.client.rename(keys.inflight("stand-in"), keys.inflight(consumer))
    record = bench.store.wait(task_id, 15)
    assert record is not None and record.success
    assert fx.count("stranded") == 1
    assert delivery.task_id == task_id


def _wait_for(check: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return value
