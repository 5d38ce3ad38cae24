"""qredis.aio: the asyncio producer on redis.asyncio, against a private Redis."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from tests.support.servers import free_port

from qcore import Codec, Signer, TaskResult
from qredis import RedisResultStore, RedisTransport, TransportConnectionError
from qredis.aio import Producer


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_enqueue_sends_what_the_sync_transport_delivers(
    redis_url: str, queue_name: str, secret: str
) -> None:
    async def main() -> str:
        async with Producer(redis_url, queue_name, secret=secret) as q:
            return await q.enqueue("math.copysign", 2, -1, group="g", q_options={"timeout": 5})

    task_id = run(main())
    transport = RedisTransport(queue_name, url=redis_url)
    [delivery] = transport.fetch("c", count=1, timeout=5)
    message = Codec(Signer.from_secret(secret)).decode_message(delivery.payload)
    assert (message.id, message.func, message.args, message.group) == (
        task_id,
        "math.copysign",
        (2, -1),
        "g",
    )
    assert message.options.timeout == 5
    transport.close()


def test_concurrent_enqueues_share_one_connection(
    redis_url: str, queue_name: str, secret: str
) -> None:
    async def main() -> tuple[list[str], int, int]:
        async with Producer(redis_url, queue_name, secret=secret) as q:
            ids = await asyncio.gather(*(q.enqueue("math.floor", i) for i in range(100)))
            again = await q.enqueue("math.floor", 0.5)  # alone: one EVALSHA, no pipeline
            pool = q.client.connection_pool
            made = len(pool._available_connections) + len(pool._in_use_connections)
            return [*ids, again], made, await q.queue_size()

    ids, connections, size = run(main())
    assert len(set(ids)) == 101 and size == 101
    assert connections == 1


def test_a_redis_that_lost_its_scripts_is_given_them_again(
    redis_url: str, queue_name: str, secret: str, redis_client: Any
) -> None:
    async def main() -> list[str]:
        async with Producer(redis_url, queue_name, secret=secret) as q:
            first = await q.enqueue("math.floor", 1)
            redis_client.script_flush()  # as after a restart without the scripts
            rest = await asyncio.gather(
                *(q.enqueue("math.floor", i) for i in range(3)),
                q.enqueue("math.ceil", 1, q_options={"unique": True}),
            )
            return [first, *rest]

    ids = run(main())
    assert len(set(ids)) == 5
    transport = RedisTransport(queue_name, url=redis_url)
    assert transport.queue_size() == 5
    transport.close()


def test_a_delayed_task_goes_to_the_delayed_set(
    redis_url: str, queue_name: str, secret: str
) -> None:
    async def main() -> None:
        async with Producer(redis_url, queue_name, secret=secret) as q:
            await q.enqueue("math.floor", 1, countdown=60)

    run(main())
    transport = RedisTransport(queue_name, url=redis_url)
    assert transport.delayed_size() == 1 and transport.queue_size() == 0
    transport.close()


def test_a_unique_task_takes_the_sync_transports_lock(
    redis_url: str, queue_name: str, secret: str
) -> None:
    from qcore import ConfigError
    from qredis import Producer as SyncProducer

    unique = {"unique": "nightly"}

    async def main() -> tuple[str, str, str]:
        async with Producer(redis_url, queue_name, secret=secret) as q:
            first = await q.enqueue("math.floor", 1, q_options=unique)
            again = await q.enqueue("math.ceil", 2, q_options=unique)  # one key: one lock
            with pytest.raises(ConfigError, match="unique must be"):
                await q.enqueue("math.floor", 1, q_options={"unique": ""})
            delayed = await q.enqueue("math.floor", 3, q_options={"unique": True, "countdown": 60})
            return first, again, delayed

    first, again, delayed = run(main())
    assert again == first
    with SyncProducer(redis_url, queue_name, secret=secret) as sync:
        assert sync.enqueue("math.floor", 9, q_options=unique) == first
        assert sync.enqueue("math.floor", 3, q_options={"unique": True}) == delayed
    transport = RedisTransport(queue_name, url=redis_url)
    assert (transport.queue_size(), transport.delayed_size()) == (1, 1)
    lock = transport.keys.unique("k:nightly")
    assert transport.client.get(lock) == first.encode() and transport.client.pttl(lock) > 0
    [delivery] = transport.fetch("c", count=1, timeout=5)
    message = Codec(Signer.from_secret(secret)).decode_message(delivery.payload)
    assert (message.id, message.options.unique) == (first, "k:nightly")
    transport.ack([delivery])  # ended: its lock is free, in effect

    async def later() -> str:
        async with Producer(redis_url, queue_name, secret=secret) as q:
            return await q.enqueue("math.floor", 1, q_options=unique)

    assert run(later()) not in (first, delayed)
    transport.close()


def test_concurrent_unique_tasks_share_one_connection_and_one_lock_each(
    redis_url: str, queue_name: str, secret: str
) -> None:
    async def main() -> tuple[list[str], list[str], int, int]:
        async with Producer(redis_url, queue_name, secret=secret) as q:
            unique = {"unique": True}
            distinct = await asyncio.gather(
                *(q.enqueue("math.floor", i, q_options=unique) for i in range(100))
            )
            # one step, one lock: the first of the batch takes it, the others find it held
            same = await asyncio.gather(
                *(q.enqueue("math.ceil", 1, q_options=unique, priority=p) for p in (0, 5, -5))
            )
            pool = q.client.connection_pool
            made = len(pool._available_connections) + len(pool._in_use_connections)
            return list(distinct), list(same), made, await q.queue_size()

    distinct, same, connections, size = run(main())
    assert len(set(distinct)) == 100 and len(set(same)) == 1
    assert size == 101 and connections == 1


def test_sharded_unique_tasks_and_chains_are_placed_and_cancelled_as_the_sync_producer_does(
    redis_url: str, queue_name: str, secret: str
) -> None:
    from qredis import Producer as SyncProducer

    async def main() -> tuple[list[str], list[str]]:
        async with Producer(redis_url, queue_name, secret=secret, shards=3) as q:
            unique = [
                await q.enqueue("math.floor", i, q_options={"unique": True}) for i in range(8)
            ]
            links = await q.chain(["math.floor"] * 8, group="sharded-chain")
            return unique, links

    unique, links = run(main())
    with SyncProducer(redis_url, queue_name, secret=secret, shards=3) as sync:
        again = [sync.enqueue("math.floor", i, q_options={"unique": True}) for i in range(8)]
        assert again == unique  # the sync producer finds each lock on the shard it looks on
        assert sync.chain_state("sharded-chain").length == 8
        sharded = sync.transport
        assert sharded.queue_size() == 9  # the unique tasks and the chain's first link
        # Each task living off its id's shard is marked done on that shard, as the sync
        # ShardedQueue marks it: a copy sent there is refused as a replay.
        chain_home = sharded.shard("sharded-chain")
        away = [i for i in unique if (h := sharded.shard(i)).client.hget(h.keys.msg, i) is None]
        away += [i for i in links if sharded.shard(i) is not chain_home]
        marks = [sharded.shard(i).client.zscore(sharded.shard(i).keys.done, i) for i in away]
        assert away and None not in marks

    async def cancel() -> list[str]:
        async with Producer(redis_url, queue_name, secret=secret, shards=3) as q:
            # a unique task lives on its lock's shard: found there when not on its id's
            return [await q.cancel(task_id) for task_id in unique]

    assert run(cancel()) == ["queued"] * 8


def test_waiters_are_woken_by_the_save_without_threads(
    redis_url: str, queue_name: str, secret: str
) -> None:
    codec = Codec(Signer.from_secret(secret))
    store = RedisResultStore(url=redis_url, namespace=queue_name, codec=codec)
    transport = RedisTransport(queue_name, url=redis_url)

    async def main() -> tuple[list[Any], float, int, Any, Any]:
        async with Producer(redis_url, queue_name, secret=secret, namespace=queue_name) as q:
            ids = [await q.enqueue("math.floor", i + 0.5) for i in range(50)]
            threads = threading.active_count()
            waiting = asyncio.gather(*(q.result(task_id, wait=20) for task_id in ids))
            await asyncio.sleep(0.3)  # every waiter is subscribed by now
            began = time.monotonic()
            deliveries = transport.fetch("c", count=50, timeout=5)
            records = []
            for d in deliveries:
                message = codec.decode_message(d.payload)
                records.append(
                    TaskResult.from_message(message, result=message.args[0] // 1, success=True)
                )
            store.save_many(records)  # one batch: one notice names all 50
            results = await waiting
            took = time.monotonic() - began
            during = threading.active_count() - threads
            by_name = await q.fetch(records[0].name)
            missing = await q.result("0" * 32, wait=0.2)
            return results, took, during, by_name, missing

    results, took, extra_threads, by_name, missing = run(main())
    assert results == [float(i) for i in range(50)]
    assert took < 5, took  # woken by the notice, not by the 5 s re-check
    assert extra_threads == 0
    assert by_name is not None and by_name.result == 0.0
    assert missing is None
    store.close()
    transport.close()


def test_an_unreachable_redis_is_a_clear_error(queue_name: str, secret: str) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"

    async def main() -> None:
        async with Producer(url, queue_name, secret=secret, socket_timeout=1) as q:
            await q.enqueue("math.floor", 1)

    with pytest.raises(TransportConnectionError, match="cannot reach Redis"):
        run(main())


def test_priorities_travel_as_from_the_sync_producer(
    redis_url: str, queue_name: str, secret: str
) -> None:
    from qcore import ConfigError

    async def main() -> tuple[list[str], int]:
        async with Producer(redis_url, queue_name, secret=secret) as q:
            ids = await asyncio.gather(
                q.enqueue("math.floor", 1),
                q.enqueue("math.floor", 2, priority=9),
                q.enqueue("math.floor", 3, q_options={"priority": -9}),
            )
            with pytest.raises(ConfigError, match="priority"):
                await q.enqueue("math.floor", 4, priority=101)
            return list(ids), await q.queue_size()

    (plain, high, low), size = run(main())
    assert size == 3
    transport = RedisTransport(queue_name, url=redis_url)
    assert [d.task_id for d in transport.fetch("c", count=5)] == [high, plain, low]
    transport.close()
