"""Redis Cluster and Sentinel connections: URLs, redis-py's own clients, pickling, bad input."""

from __future__ import annotations

import pickle
import threading
import uuid

import pytest
import redis
from redis.sentinel import Sentinel
from tests.support.servers import RedisServer
from tests.support.topologies import LocalRedisCluster, LocalSentinelGroup

from qcore import Codec, ConfigError, Signer, TaskResult
from qredis import (
    Producer,
    RedisResultStore,
    RedisStatusBoard,
    RedisTransport,
    ResultNotifier,
    TransportError,
)
from qredis.keys import QueueKeys

CODEC = Codec(Signer("topology-tests-key-0123456789-abcdefghij"))


def _round_trip(transport: RedisTransport) -> None:
    transport.enqueue("one", b"payload-1")
    transport.enqueue_many([(f"bulk{i}", b"p%d" % i) for i in range(2500)])
    transport.enqueue("later", b"x", delay=2.0)  # not due before the first fetch, even loaded
    got = transport.fetch("c1", count=5000, timeout=1.0)
    assert [d.task_id for d in got][:2] == ["one", "bulk0"]
    assert len(got) == 2501
    assert transport.ack(got) == [True] * 2501
    [late] = transport.fetch("c1", count=1, timeout=5.0)
    assert late.task_id == "later"
    transport.ack([late])
    assert transport.queue_size() == 0 and transport.inflight_size() == 0


def test_a_cluster_url_gives_a_cluster_client_and_the_queue_works(
    redis_cluster_url: str, queue_name: str
) -> None:
    transport = RedisTransport(queue_name, url=redis_cluster_url)
    assert isinstance(transport.client, redis.RedisCluster)
    _round_trip(transport)
    assert transport.check_permissions() == []
    assert transport.check_server() == []
    transport.close()


def test_a_callers_cluster_client_is_used_and_pickles_as_parameters(
    redis_cluster: LocalRedisCluster, redis_cluster_url: str, queue_name: str
) -> None:
    client = redis_cluster.client()
    transport = RedisTransport(queue_name, connection=client)
    assert transport.client is client
    transport.enqueue("a", b"x")
    clone = pickle.loads(pickle.dumps(transport))
    assert isinstance(clone.client, redis.RedisCluster) and clone.client is not client
    assert clone.url.startswith("redis+cluster://127.0.0.1:")
    [d] = clone.fetch("c", timeout=1)
    assert d.task_id == "a" and clone.ack([d]) == [True]
    clone.close()
    transport.close()
    assert client.ping()  # the caller's client stays open
    client.close()


def test_results_status_and_notices_on_a_cluster(redis_cluster_url: str, queue_name: str) -> None:
    store = RedisResultStore(redis_cluster_url, codec=CODEC, namespace=queue_name)
    board = RedisStatusBoard(redis_cluster_url, namespace=queue_name)
    notifier = ResultNotifier(redis_cluster_url, namespace=queue_name)
    task_id = uuid.uuid4().hex
    record = TaskResult(
        id=task_id,
        name="n",
        func="f",
        args=(),
        kwargs={},
        result=1,
        success=True,
        started=1.0,
        stopped=2.0,
    )
    waited: list[object] = []
    waiter = threading.Thread(target=lambda: waited.append(store.wait(task_id, timeout=10)))
    waiter.start()
    threading.Event().wait(0.3)
    store.save_many([record])
    waiter.join(10)
    assert waited and waited[0] is not None and waited[0].result == 1  # type: ignore[attr-defined]
    assert notifier.publish([task_id]) >= 0
    board.publish("c1", {"workers": 2}, ttl=10)
    assert [s["cluster_id"] for s in board.clusters()] == ["c1"]
    for part in (store, board):
        assert part.check_permissions() == []
    for part in (store, board, notifier):
        part.close()


def test_a_producer_on_a_cluster_url(redis_cluster_url: str, queue_name: str) -> None:
    producer = Producer(redis_cluster_url, queue=queue_name, codec=CODEC)
    task_id = producer.enqueue("math.floor", 2.5)
    ids = producer.enqueue_many("math.floor", [1.5, 2.5, 3.5])
    assert producer.transport.queue_size() == 4 and task_id not in ids
    producer.close()


def test_a_cluster_url_naming_a_single_redis_says_so(redis_server: RedisServer) -> None:
    transport = RedisTransport("q", url=f"redis+cluster://127.0.0.1:{redis_server.port}")
    with pytest.raises(TransportError, match="is not a Redis Cluster"):
        transport.enqueue("a", b"x")
    with pytest.raises(TransportError, match="is not a Redis Cluster"):
        transport.check_server()


def test_a_plain_url_naming_a_cluster_node_says_to_use_the_cluster_url(
    redis_cluster: LocalRedisCluster, redis_cluster_url: str
) -> None:
    # A queue whose slot another node serves: the node answers MOVED.
    node = redis_cluster.live_nodes()[0]
    name = next(
        n
        for n in (uuid.uuid4().hex for _ in range(100))
        if redis_cluster.master_of(QueueKeys.for_queue(n).queue).port != node.port
    )
    transport = RedisTransport(name, url=f"redis://127.0.0.1:{node.port}/0")
    with pytest.raises(TransportError, match=r"a node of a Redis Cluster .*redis\+cluster://"):
        transport.enqueue("a", b"x")
    transport.close()


def test_a_sentinel_url_reaches_the_master(
    redis_sentinel: LocalSentinelGroup, redis_sentinel_url: str, queue_name: str
) -> None:
    transport = RedisTransport(queue_name, url=redis_sentinel_url)
    _round_trip(transport)
    assert transport.check_permissions() == []
    transport.enqueue("x", b"y")
    assert redis_sentinel.master().client().llen(transport.keys.queue) == 1
    transport.close()


def test_a_sentinel_master_client_is_used_and_pickles_as_parameters(
    redis_sentinel: LocalSentinelGroup, redis_sentinel_url: str, queue_name: str
) -> None:
    sentinel = Sentinel([("127.0.0.1", s.port) for s in redis_sentinel.sentinels])
    client = sentinel.master_for(redis_sentinel.service)
    transport = RedisTransport(queue_name, connection=client)
    assert transport.client is client
    transport.enqueue("a", b"x")
    clone = pickle.loads(pickle.dumps(transport))
    assert clone.url == redis_sentinel.url
    [d] = clone.fetch("c", timeout=1)
    assert d.task_id == "a" and clone.ack([d]) == [True]
    clone.close()
    transport.close()
    client.close()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://127.0.0.1:26379", "names no service"),
        ("redis+sentinel://127.0.0.1:26379/svc/x", "database must be a number"),
        ("redis+sentinel://127.0.0.1:26379/svc/0/more", "names no service"),
        ("redis+cluster://127.0.0.1:7000/3", "database 0 only"),
        ("redis+cluster://", "names no host"),
        ("redis+cluster://127.0.0.1", "is not host:port"),
        ("redis+cluster://127.0.0.1:7000?timeout=3", "unknown parameter 'timeout'"),
    ],
)
def test_a_malformed_cluster_or_sentinel_url_is_refused_at_once(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        RedisTransport("q", url=url)


def test_passwords_in_cluster_and_sentinel_urls_are_masked() -> None:
    transport = RedisTransport("q", url="redis+sentinel://u:s3cret@h1:1,h2:2/svc/0")
    assert "s3cret" not in transport.url and "h1:1,h2:2/svc/0" in transport.url
    assert "s3cret" not in repr(transport) + repr(transport._conn.spec)
