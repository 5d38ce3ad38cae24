"""qredis.aio's enqueue_many, plain and idempotent, and the asyncio producer's key check,
against a private Redis; read back through the sync transports."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog

from qcore import Codec, ConfigError, Signer
from qredis import RedisStatusBoard, RedisTransport
from qredis.aio import Producer


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_enqueue_many_sends_what_the_sync_transport_delivers(
    redis_url: str, queue_name: str, secret: str
) -> None:
    async def main() -> list[str]:
        async with Producer(redis_url, queue_name, secret=secret) as q:
            return await q.enqueue_many(
                "math.floor", [1.5, (2.5,), 3.5], group="g", max_attempts=5, priority=7
            )

    ids = run(main())
    transport = RedisTransport(queue_name, url=redis_url)
    got = transport.fetch("c", count=10)
    codec = Codec(Signer.from_secret(secret))
    messages = [codec.decode_message(d.payload) for d in got]
    assert [(m.id, m.args, m.group) for m in messages] == [
        (ids[0], (1.5,), "g"),
        (ids[1], (2.5,), "g"),
        (ids[2], (3.5,), "g"),
    ]
    assert {d.max_attempts for d in got} == {5}
    assert {m.options.priority for m in messages} == {7}
    transport.close()


@pytest.mark.parametrize("shards", [1, 3])
def test_a_batch_with_fixed_ids_sent_again_queues_nothing_twice(
    redis_url: str, queue_name: str, secret: str, shards: int
) -> None:
    key = "invoices-2026-11-30"
    calls = list(range(30))

    async def send() -> list[str]:
        async with Producer(redis_url, queue_name, secret=secret, shards=shards) as q:
            return await q.enqueue_many("math.floor", calls, idempotency_key=key)

    ids = run(send())
    transport = RedisTransport(queue_name, url=redis_url).sharded(shards)
    assert run(send()) == ids  # sent again while queued
    assert transport.queue_size() == 30
    done = transport.fetch("c", count=10)
    assert transport.ack(done) == [True] * 10
    assert run(send()) == ids  # and again, a third of it completed
    rest = transport.fetch("c", count=100)
    assert sorted(d.task_id for d in [*done, *rest]) == sorted(ids)  # each once
    assert transport.queue_size() == 0 and transport.dead_size() == 0
    if shards > 1:  # each task on its id's shard, where the sync producer puts it
        held = {d.task_id: d.queue for d in rest}
        assert all(held[i] == transport.shard(i).queue for i in held)
    transport.close()


def test_bad_input_queues_nothing(redis_url: str, queue_name: str, secret: str) -> None:
    async def main() -> int:
        async with Producer(redis_url, queue_name, secret=secret) as q:
            with pytest.raises(ConfigError):
                await q.enqueue_many("math.floor", [1, 2], task_ids=["a" * 32, "a" * 32])
            with pytest.raises(ConfigError):
                await q.enqueue_many("math.floor", [1, 2], priority=101)
            with pytest.raises(TypeError):
                await q.queue.enqueue_absent([("ok", b"p"), ("bad", "not bytes")])  # type: ignore[list-item]
            return await q.queue_size()

    assert run(main()) == 0


def test_a_producer_whose_key_no_cluster_accepts_warns_once(
    redis_url: str, queue_name: str, secret: str
) -> None:
    board = RedisStatusBoard(redis_url, namespace=queue_name)
    ours = Signer.from_secret(secret).key_ids[0].hex()
    board.publish("c1", {"queue": queue_name, "key_ids": [ours]}, ttl=60)
    other = "another-secret-of-at-least-32-bytes-0123"

    async def main(key: str) -> None:
        async with Producer(redis_url, queue_name, secret=key, status_namespace=queue_name) as q:
            await asyncio.gather(*(q.enqueue("math.floor", i) for i in range(5)))
            await q.enqueue_many("math.floor", [1, 2])
            q.key_watch.every = 0.001  # the next call checks again: still one warning
            await asyncio.sleep(0.01)
            await q.enqueue_many("math.floor", [3])

    with structlog.testing.capture_logs() as logs:
        run(main(secret))
    assert [e for e in logs if e["event"] == "producer.key_not_accepted"] == []
    with structlog.testing.capture_logs() as logs:
        run(main(other))
    [warning] = [e for e in logs if e["event"] == "producer.key_not_accepted"]
    assert warning["queue"] == queue_name and warning["accepted"] == [ours]
    assert warning["key_id"] != ours and other not in repr(logs)
    board.close()
