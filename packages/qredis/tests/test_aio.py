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
            rest = await asyncio.gather(*(q.enqueue("math.floor", i) for i in range(3)))
            return [first, *rest]

    ids = run(main())
    assert len(set(ids)) == 4
    transport = RedisTransport(queue_name, url=redis_url)
    assert transport.queue_size() == 4
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


def test_a_unique_task_is_refused_rather_than_sent_without_its_lock(
    redis_url: str, queue_name: str, secret: str
) -> None:
    from qcore import ConfigError

    async def main() -> None:
        async with Producer(redis_url, queue_name, secret=secret) as q:
            with pytest.raises(ConfigError, match="unique tasks are not sent by the asyncio"):
                await q.enqueue("math.floor", 1, q_options={"unique": True})

    run(main())
    transport = RedisTransport(queue_name, url=redis_url)
    assert transport.queue_size() == 0
    transport.close()


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
