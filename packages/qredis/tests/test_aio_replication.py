"""``wait_replicas`` on the asyncio producer: an enqueue returns once replicas hold its tasks
(the mark's SET and WAIT in the same write as the batch), on a real Sentinel group."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from tests.support.topologies import LocalSentinelGroup

from qcore import ConfigError
from qredis import RedisTransport, ReplicationTimeout
from qredis.aio import Producer


def _replica_of(group: LocalSentinelGroup) -> Any:
    master = group.master()
    return next(s for s in group.servers if s is not master).client()


def test_every_asyncio_enqueue_path_waits_for_the_replica(
    redis_sentinel: LocalSentinelGroup, redis_sentinel_url: str, queue_name: str, secret: str
) -> None:
    replica = _replica_of(redis_sentinel)
    k = RedisTransport(queue_name, url=redis_sentinel_url).keys

    async def main() -> None:
        async with Producer(redis_sentinel_url, queue_name, secret=secret, wait_replicas=1) as q:
            ids = await asyncio.gather(*(q.enqueue("math.floor", i) for i in range(50)))
            assert replica.llen(k.queue) == 50  # on the replica when the enqueues return
            assert all(replica.hexists(k.msg, i) for i in ids)
            one = await q.enqueue("math.floor", 1, q_options={"unique": True})
            assert replica.hexists(k.msg, one)
            await q.enqueue_many("math.floor", range(1500))
            assert replica.llen(k.queue) == 1551
            await q.enqueue_many("math.floor", range(20), idempotency_key="batch")
            assert replica.llen(k.queue) == 1571
            later = await q.enqueue("math.floor", 1, countdown=60)
            assert replica.zscore(k.delayed, later) is not None

    asyncio.run(main())


def test_fewer_replicas_than_asked_raise_after_the_timeout_with_the_tasks_queued(
    redis_sentinel_url: str, queue_name: str, secret: str
) -> None:
    async def main() -> tuple[float, int]:
        async with Producer(
            redis_sentinel_url, queue_name, secret=secret, wait_replicas=2, wait_timeout=0.3
        ) as q:
            began = time.monotonic()
            with pytest.raises(ReplicationTimeout, match=r"only 1 of wait_replicas=2 replica"):
                await asyncio.gather(*(q.enqueue("math.floor", i) for i in range(3)))
            took = time.monotonic() - began
            with pytest.raises(ReplicationTimeout, match="queued on the master"):
                await q.enqueue_many("math.floor", [1, 2])
            with pytest.raises(ReplicationTimeout, match="queued on the master"):
                await q.enqueue_many("math.floor", [1, 2], idempotency_key="k")
            return took, await q.queue_size()

    took, size = asyncio.run(main())
    assert 0.3 <= took < 3  # one WAIT for the three: one batch
    assert size == 7  # queued: only the replicas' acknowledgement is missing


def test_bad_wait_options_and_a_redis_cluster_are_refused(queue_name: str) -> None:
    for bad in ({"wait_replicas": -1}, {"wait_replicas": 1.5}, {"wait_timeout": 0}):
        with pytest.raises(ConfigError, match="wait_"):
            Producer("redis://127.0.0.1:1/0", queue_name, **bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not taken by the asyncio producer on a Redis Cluster"):
        Producer("redis+cluster://127.0.0.1:1", queue_name, wait_replicas=1)
