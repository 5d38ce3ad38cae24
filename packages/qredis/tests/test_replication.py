"""``wait_replicas``: an enqueue returns once replicas hold the tasks (Redis WAIT)."""

from __future__ import annotations

import time

import pytest
from tests.support.topologies import LocalRedisCluster, LocalSentinelGroup

from qcore import ConfigError
from qredis import Producer, RedisTransport, ReplicationTimeout


def _replica_of(group: LocalSentinelGroup):  # type: ignore[no-untyped-def]
    master = group.master()
    return next(s for s in group.servers if s is not master)


def test_every_enqueue_path_waits_for_the_replica_on_sentinel(
    redis_sentinel: LocalSentinelGroup, redis_sentinel_url: str, queue_name: str
) -> None:
    transport = RedisTransport(queue_name, url=redis_sentinel_url, wait_replicas=1)
    replica = _replica_of(redis_sentinel).client()
    k = transport.keys
    transport.enqueue("one", b"p")
    assert replica.hexists(k.msg, "one")  # on the replica when enqueue returns
    transport.enqueue("one", b"p")  # already stored: still confirmed (the mark is a write)
    assert transport.enqueue_many([(f"b{i}", b"x") for i in range(2500)]) == 2500
    assert replica.llen(k.queue) == 2501
    assert transport.enqueue_many([(f"d{i}", b"x") for i in range(10)], delay=60) == 10
    assert replica.zcard(k.delayed) == 10
    transport.enqueue("later", b"p", delay=60)
    assert replica.zscore(k.delayed, "later") is not None
    transport.close()


def test_fewer_replicas_than_asked_raise_after_the_timeout_with_the_task_queued(
    redis_sentinel_url: str, queue_name: str
) -> None:
    transport = RedisTransport(
        queue_name, url=redis_sentinel_url, wait_replicas=2, wait_timeout=0.3
    )
    began = time.monotonic()
    with pytest.raises(ReplicationTimeout, match=r"only 1 of wait_replicas=2 replica\(s\)"):
        transport.enqueue("one", b"p")
    assert 0.3 <= time.monotonic() - began < 3
    with pytest.raises(ReplicationTimeout, match="queued on the master"):
        transport.enqueue_many([("a", b"x"), ("b", b"y")])
    assert transport.queue_size() == 3  # queued: only the replicas' acknowledgement is missing
    transport.close()


def test_wait_replicas_on_a_redis_cluster(
    redis_cluster: LocalRedisCluster, redis_cluster_url: str, queue_name: str
) -> None:
    producer = Producer(redis_cluster_url, queue=queue_name, wait_replicas=1)
    k = producer.transport.keys
    master = redis_cluster.master_of(k.queue)
    replica = next(
        n
        for n in redis_cluster.live_nodes()
        if n.client().info("replication").get("master_port") == master.port
    ).client(single_connection_client=True)
    replica.execute_command("READONLY")  # a cluster replica answers reads on this connection
    task_id = producer.enqueue("math.floor", 1.5)
    producer.enqueue_many("math.floor", [2.5] * 1500)
    assert replica.hexists(k.msg, task_id) and replica.llen(k.queue) == 1501
    producer.close()


@pytest.mark.parametrize("value", [-1, 1.5, True, "1"])
def test_a_bad_wait_replicas_is_refused(value: object) -> None:
    with pytest.raises(ConfigError, match="wait_replicas must be a whole number"):
        RedisTransport("q", wait_replicas=value)  # type: ignore[arg-type]
