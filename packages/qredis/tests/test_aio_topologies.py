"""qredis.aio.Producer on a Redis Cluster and through a Sentinel group: ``redis+cluster://`` and
``redis+sentinel://`` URLs, as the sync Producer takes them (redis.asyncio's own RedisCluster
and Sentinel clients)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from qcore import Codec, Signer, TaskResult
from qredis import RedisResultStore, RedisTransport, TransportError
from qredis.aio import Producer


def _round_trip(url: str, queue: str, secret: str) -> tuple[Any, list[Any], float]:
    """Enqueue 100 tasks at once, a delayed, an urgent and a unique one, from asyncio; run them
    through the sync transport; wait for their records from asyncio, woken by the store's
    notice."""
    codec = Codec(Signer.from_secret(secret))
    store = RedisResultStore(url, namespace=queue, codec=codec)
    transport = RedisTransport(queue, url=url)

    async def main() -> tuple[Any, list[Any], float]:
        async with Producer(url, queue, secret=secret, namespace=queue) as q:
            kind = type(q.client)
            ids = await asyncio.gather(*(q.enqueue("math.floor", i + 0.5) for i in range(100)))
            urgent = await q.enqueue("math.floor", 7.5, priority=10)
            later = await q.enqueue("math.floor", 9.5, countdown=3600)
            # unique tasks of one step: one script call, the lock beside the queue's keys
            unique = {"unique": "one-lock"}
            same = await asyncio.gather(
                *(q.enqueue("math.ceil", 0.5, q_options=unique) for _ in range(5))
            )
            assert len(set(same)) == 1
            assert await q.queue_size() == 102
            waiting = asyncio.gather(*(q.result(i, wait=30) for i in [urgent, *ids]))
            await asyncio.sleep(0.3)  # every waiter subscribed
            began = time.monotonic()
            got = await asyncio.to_thread(transport.fetch, "c", 200, 5)
            assert got[0].task_id == urgent and len(got) == 102
            assert later not in {d.task_id for d in got}
            records = []
            for d in got:
                message = codec.decode_message(d.payload)
                records.append(
                    TaskResult.from_message(message, result=message.args[0] // 1, success=True)
                )
            await asyncio.to_thread(store.save_many, records)
            results = await waiting
            return kind, results, time.monotonic() - began

    try:
        return asyncio.run(main())
    finally:
        store.close()
        transport.close()


def test_the_async_producer_on_a_redis_cluster(
    redis_cluster_url: str, queue_name: str, secret: str
) -> None:
    kind, results, took = _round_trip(redis_cluster_url, queue_name, secret)
    assert issubclass(kind, aioredis.RedisCluster)
    assert results == [7.0, *(float(i) for i in range(100))]
    assert took < 5, took  # woken by the notice, not by the 5 s re-check


def test_the_async_producer_through_a_sentinel_group(
    redis_sentinel: Any, redis_sentinel_url: str, queue_name: str, secret: str
) -> None:
    kind, results, took = _round_trip(redis_sentinel_url, queue_name, secret)
    assert issubclass(kind, aioredis.Redis)
    assert results == [7.0, *(float(i) for i in range(100))]
    assert took < 5, took
    master = redis_sentinel.master().client()
    assert master.exists(f"{{q:{queue_name}}}:msg")  # on the master the sentinels name


def test_a_cluster_url_naming_a_single_redis_says_so(
    redis_url: str, queue_name: str, secret: str
) -> None:
    port = redis_url.rsplit(":", 1)[1].split("/")[0]

    async def main() -> None:
        async with Producer(f"redis+cluster://127.0.0.1:{port}", queue_name, secret=secret) as q:
            await q.enqueue("math.floor", 1.5)

    with pytest.raises(TransportError, match="is not a Redis Cluster"):
        asyncio.run(main())


def _sharded_round_trip(url: str, queue: str, secret: str) -> list[str]:
    async def main() -> list[str]:
        async with Producer(url, queue, secret=secret, shards=3) as q:
            ids = await asyncio.gather(*(q.enqueue("math.floor", i + 0.5) for i in range(60)))
            assert await q.queue_size() == 60
            return list(ids)

    return asyncio.run(main())


@pytest.mark.parametrize("where", ["single", "cluster"])
def test_the_async_producer_spreads_a_sharded_queue_as_the_sync_one_places_it(
    where: str, request: pytest.FixtureRequest, queue_name: str, secret: str
) -> None:
    from qredis import ShardedQueue

    url = request.getfixturevalue("redis_url" if where == "single" else "redis_cluster_url")
    ids = _sharded_round_trip(url, queue_name, secret)
    sharded = RedisTransport(queue_name, url=url).sharded(3)
    assert isinstance(sharded, ShardedQueue)
    on_shards = {t.queue: t.queue_size() for t in sharded.transports}
    assert sum(on_shards.values()) == 60 and min(on_shards.values()) > 5, on_shards
    got = sharded.fetch("c", count=100)
    assert sorted(d.task_id for d in got) == sorted(ids)
    assert all(d.queue == sharded.shard(d.task_id).queue for d in got)
    sharded.close()


def test_the_async_producer_refuses_another_shard_count(
    redis_url: str, queue_name: str, secret: str
) -> None:
    from qcore import ConfigError

    RedisTransport(queue_name, url=redis_url).sharded(3).enqueue("a", b"x")

    async def main() -> None:
        async with Producer(redis_url, queue_name, secret=secret, shards=2) as q:
            await q.enqueue("math.floor", 1.5)

    with pytest.raises(ConfigError, match=r"has 3 shard\(s\) in Redis .* shards=2"):
        asyncio.run(main())
