"""ShardedQueues: a cluster's several queues, each sharded alike. The transport contract on one
Redis and on the local Redis Cluster (two queues of 3 shards), strict order and weights across
the queues, the wake-up for any queue's shard, each queue's count checked."""

from __future__ import annotations

import dataclasses
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from qcore import ConfigError, Transport
from qcore.testing.contract import TransportContract
from qredis import Producer, RedisTransport, ShardedQueue
from qredis.sharded_queues import ShardedQueues


def _maker(url: str, queue_name: str) -> Iterator[Callable[..., ShardedQueues]]:
    made: list[ShardedQueues] = []

    def make(shards: int = 3, weights: Any = None, **kwargs: Any) -> ShardedQueues:
        plain = RedisTransport(queue_name, url=url, **kwargs)
        both = plain.serving([queue_name, f"{queue_name}-other"], weights).sharded(shards)
        assert isinstance(both, ShardedQueues)
        made.append(both)
        return both

    yield make
    for both in made:
        both.close()


class ShardedQueuesContract(TransportContract):
    """What is enqueued goes to the first queue, on its id's shard: order holds per shard."""

    def order_group(self, transport: Transport, task_id: str) -> object:
        assert isinstance(transport, ShardedQueues)
        return transport.transports[0].shard(task_id).queue  # type: ignore[attr-defined]

    @pytest.fixture
    def transport(self, make_transport: Callable[..., ShardedQueues]) -> ShardedQueues:
        return make_transport()


class TestShardedQueuesContract(ShardedQueuesContract):
    @pytest.fixture
    def make_transport(
        self, redis_url: str, queue_name: str
    ) -> Iterator[Callable[..., ShardedQueues]]:
        yield from _maker(redis_url, queue_name)


class TestShardedQueuesOnRedisClusterContract(ShardedQueuesContract):
    @pytest.fixture
    def make_transport(
        self, redis_cluster_url: str, queue_name: str
    ) -> Iterator[Callable[..., ShardedQueues]]:
        yield from _maker(redis_cluster_url, queue_name)


@pytest.fixture
def make_both(redis_url: str, queue_name: str) -> Iterator[Callable[..., ShardedQueues]]:
    yield from _maker(redis_url, queue_name)


def _members(both: ShardedQueues) -> list[Any]:
    """Each queue's ShardedQueue, in order (to enqueue on the queue of one's choice)."""
    return list(both.transports)


def test_strict_order_takes_the_second_queue_only_when_the_first_has_none(
    make_both: Callable[..., ShardedQueues],
) -> None:
    both = make_both()
    first, second = _members(both)
    second.enqueue_many([(f"b{i}", b"x") for i in range(30)])
    first.enqueue_many([(f"a{i}", b"x") for i in range(30)])
    got = [d.task_id for d in both.fetch("c1", count=40)]
    assert sorted(got[:30]) == sorted(f"a{i}" for i in range(30))
    assert all(i.startswith("b") for i in got[30:]) and len(got) == 40
    assert both.ack(both.fetch("c1", count=40)) == [True] * 20
    assert both.queue_size() == 0


def test_weights_serve_every_sharded_queue_in_proportion(
    make_both: Callable[..., ShardedQueues],
) -> None:
    both = make_both(weights=(3, 1))
    first, second = _members(both)
    first.enqueue_many([(f"a{i}", b"x") for i in range(400)])
    second.enqueue_many([(f"b{i}", b"x") for i in range(400)])
    starts = [both.fetch("c1", count=1)[0].task_id[0] for _ in range(400)]
    assert starts.count("a") == 300 and starts.count("b") == 100


def test_an_idle_consumer_wakes_for_any_shard_of_any_queue(
    make_both: Callable[..., ShardedQueues],
) -> None:
    both = make_both()
    _, second = _members(both)
    waited: list[float] = []

    def wait() -> None:
        started = time.monotonic()
        assert both.fetch("idle", count=1, timeout=5.0)
        waited.append(time.monotonic() - started)

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.3)
    for i in range(3):  # whatever shard of the second queue the id lands on
        second.enqueue(f"late{i}", b"x")
    thread.join(10)
    assert waited and waited[0] < 0.8, waited  # not the 5 s wait, nor block_slice (1 s)


def test_acks_go_to_each_deliverys_queue_and_pickling_keeps_the_plan(
    make_both: Callable[..., ShardedQueues],
) -> None:
    both = make_both(weights=(2, 1))
    first, second = _members(both)
    first.enqueue_many([(f"a{i}", b"x") for i in range(10)])
    second.enqueue_many([(f"b{i}", b"x") for i in range(10)])
    got = both.fetch("c1", count=20)
    # as the sentinel rebuilds a delivery from a worker's slot: without its queue
    rebuilt = [dataclasses.replace(d, queue="") for d in got[:5]]
    assert both.ack(rebuilt) == [True] * 5
    assert both.ack(got[5:]) == [True] * 15
    assert both.inflight_size() == 0
    again = pickle.loads(pickle.dumps(both))
    assert isinstance(again, ShardedQueues) and again.weights == (2, 1) and again.shards == 3


def test_each_queues_count_is_checked_and_they_are_sharded_alike(
    redis_url: str, queue_name: str, make_both: Callable[..., ShardedQueues]
) -> None:
    with Producer(redis_url, f"{queue_name}-other", shards=2) as producer:
        producer.enqueue("math.floor", 1.5)
    both = make_both()
    with pytest.raises(ConfigError, match=rf"'{queue_name}-other' has 2 shard\(s\)"):
        both.check_server()
    with pytest.raises(ConfigError, match="sharded alike"):
        ShardedQueues(
            [
                ShardedQueue.of(RedisTransport(f"{queue_name}-x", url=redis_url), 3),
                ShardedQueue.of(RedisTransport(f"{queue_name}-y", url=redis_url), 2),
            ]
        )
    with pytest.raises(ConfigError, match="has 3 shards, not 2"):
        both.sharded(2)
