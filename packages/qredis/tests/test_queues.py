"""RedisQueues: several queues served as one transport, in strict order or by weight."""

from __future__ import annotations

import pickle
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from qcore import ConfigError, QueueSource, Reaped
from qcore.testing.contract import TransportContract
from qredis import RedisQueues, RedisTransport


class TestRedisQueuesContract(TransportContract):
    """Two queues served as one pass the whole contract (what is enqueued goes to the first)."""

    @pytest.fixture
    def transport(self, make_transport: Callable[..., RedisQueues]) -> RedisQueues:
        return make_transport()

    @pytest.fixture
    def make_transport(
        self, make_transport: Callable[..., RedisTransport], queue_name: str
    ) -> Callable[..., RedisQueues]:
        def make(**kwargs: object) -> RedisQueues:
            first = make_transport(**kwargs)
            return first.serving([queue_name, f"{queue_name}-other"])

        return make


@pytest.fixture
def pair(make_transport: Callable[..., RedisTransport], queue_name: str) -> list[RedisTransport]:
    return [make_transport(f"{queue_name}-a"), make_transport(f"{queue_name}-b")]


def _fill(transport: RedisTransport, n: int, prefix: str) -> None:
    transport.enqueue_many([(f"{prefix}{i:04d}", b"x") for i in range(n)])


def _ids(queues: RedisQueues, count: int = 1, timeout: float = 0.0) -> list[str]:
    return [d.task_id for d in queues.fetch("c1", count=count, timeout=timeout)]


def test_a_redis_transport_is_a_queue_source(pair: list[RedisTransport]) -> None:
    assert isinstance(pair[0], QueueSource)
    queues = pair[0].serving([pair[0].queue, pair[1].queue])
    assert queues.queues == (pair[0].queue, pair[1].queue)
    assert queues.queue == f"{pair[0].queue},{pair[1].queue}"


def test_strict_order_serves_the_next_queue_only_when_the_first_has_nothing(
    pair: list[RedisTransport],
) -> None:
    a, b = pair
    queues = a.serving([a.queue, b.queue])
    _fill(b, 3, "b")
    _fill(a, 2, "a")
    assert _ids(queues) == ["a0000"]
    assert _ids(queues, 3) == ["a0001", "b0000", "b0001"]  # a batch topped up from b
    a.enqueue("a-late", b"x")
    assert _ids(queues) == ["a-late"]
    assert _ids(queues, 5) == ["b0002"]
    assert _ids(queues) == []


def test_weights_serve_in_proportion_and_starve_none(pair: list[RedisTransport]) -> None:
    a, b = pair
    queues = a.serving([a.queue, b.queue], [3, 1])
    assert queues.queue == f"{a.queue}=3,{b.queue}=1"
    _fill(a, 600, "a")
    _fill(b, 600, "b")
    served = Counter(d.queue for _ in range(400) for d in queues.fetch("c1"))
    assert served == {a.queue: 300, b.queue: 100}
    # a queue with little weight is still served at once when the other is empty
    queues.fetch("c1", count=1000)
    b.enqueue("b-only", b"x")
    assert any(i == "b-only" for i in _ids(queues, 1000))


def test_an_idle_consumer_wakes_for_any_of_its_queues(pair: list[RedisTransport]) -> None:
    a, b = pair
    queues = a.serving([a.queue, b.queue])
    for target in (b, a):
        got: list[str] = []
        fetcher = threading.Thread(target=lambda out=got: out.extend(_ids(queues, 1, 10.0)))
        fetcher.start()
        time.sleep(0.2)  # blocked in Redis by now (or about to be: the marker then waits)
        start = time.monotonic()
        target.enqueue(f"for-{target.queue}", b"x")
        fetcher.join(10)
        assert got == [f"for-{target.queue}"]
        assert time.monotonic() - start < 0.5  # woken, not found by a later look


def test_acks_retries_and_dead_letters_go_to_the_queue_of_each_delivery(
    pair: list[RedisTransport],
) -> None:
    a, b = pair
    queues = a.serving([a.queue, b.queue])
    a.enqueue("x", b"1")
    b.enqueue("y", b"2")
    b.enqueue("z", b"3")
    b.enqueue("w", b"4")
    x, y, z, w = queues.fetch("c1", count=4)
    assert (x.queue, y.queue) == (a.queue, b.queue)
    assert queues.ack([y, x]) == [True, True]
    assert queues.retry_later(z, 0) is True
    assert b.queue_size() == 1 and a.queue_size() == 0
    # The sentinel rebuilds a delivery from a worker's slot, without its queue.
    assert queues.dead_letter(replace(w, queue=""), "boom") is True
    assert b.dead_size() == 1 and queues.dead_size() == 1
    assert queues.requeue_dead() == 1
    assert sorted(_ids(queues, 5)) == ["w", "z"]


def test_release_heartbeat_and_sizes_cover_every_queue(pair: list[RedisTransport]) -> None:
    a, b = pair
    queues = a.serving([a.queue, b.queue])
    a.enqueue("x", b"1")
    b.enqueue("y", b"2", delay=60)
    b.enqueue("z", b"3")
    assert (queues.queue_size(), queues.delayed_size()) == (2, 1)
    assert len(queues.fetch("c1", count=5)) == 2
    queues.heartbeat(["c1"], 30)
    assert set(a.consumers()) == set(b.consumers()) == {"c1"}
    assert queues.inflight_size() == 2
    assert queues.release("c1").requeued == 2
    assert queues.queue_size() == 2 and 0 < (queues.next_due() or 0) <= 60
    clone = pickle.loads(pickle.dumps(queues))
    assert clone.queues == queues.queues and clone.queue_size() == 2


def test_bad_queue_sets_are_refused(pair: list[RedisTransport]) -> None:
    a, b = pair
    with pytest.raises(ConfigError, match="once"):
        a.serving([a.queue, a.queue])
    with pytest.raises(ConfigError, match="weights"):
        a.serving([a.queue, b.queue], [1])
    with pytest.raises(ConfigError, match="weights"):
        a.serving([a.queue, b.queue], [1, 0])
    with pytest.raises(ConfigError, match="braces"):
        a.serving([a.queue, "bad{name}"])


def _round_trips(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many times a redis-py connection has written to Redis since (a pipeline writes
    once: its commands are packed together)."""
    from redis.connection import AbstractConnection

    sent = 0
    send = AbstractConnection.send_packed_command

    def counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        nonlocal sent
        sent += 1
        send(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    return lambda: sent


def test_a_lost_consumer_s_tasks_come_back_from_every_queue_in_one_round_trip_each(
    pair: list[RedisTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Heartbeats of several queues are one round trip, and so is the reaper's pass with
    nothing to do; a consumer that stops beating is reaped on every queue at once."""
    a, b = pair
    c = a.sibling(f"{a.queue}-c")
    queues = a.serving([a.queue, b.queue, c.queue])
    b.enqueue("on-b", b"1")
    c.enqueue("on-c", b"2")
    assert sorted((d.task_id, d.queue) for d in queues.fetch("lost", count=5)) == [
        ("on-b", b.queue),
        ("on-c", c.queue),
    ]
    queues.heartbeat(["lost", "live"], 60)
    assert queues.reap() == Reaped()  # the scripts are loaded, the connection open
    sent = _round_trips(monkeypatch)
    queues.heartbeat(["lost", "live"], 0.3)
    assert sent() == 1
    assert queues.reap() == Reaped()  # not expired yet
    assert sent() == 2
    client = a.client
    deadlines = {client.zscore(t.keys.consumers, "lost") for t in (a, b, c)}
    assert max(deadlines) - min(deadlines) <= 1  # ms: beaten back to back on one server

    def redis_ms() -> float:
        seconds, micros = client.time()
        return seconds * 1000 + micros / 1000

    while redis_ms() <= max(deadlines):  # "live" beats on, "lost" has stopped
        queues.heartbeat(["live"], 0.3)
        time.sleep(0.05)
    reaped = queues.reap()
    assert (reaped.consumers, reaped.requeued) == (1, 2)
    again = queues.fetch("live", count=5)
    assert sorted((d.task_id, d.queue, d.attempt) for d in again) == [
        ("on-b", b.queue, 2),
        ("on-c", c.queue, 2),
    ]
    assert all(queues.ack(again))
    c.close()


def test_owner_records_go_beside_every_queue_in_one_round_trip(
    pair: list[RedisTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cluster of several queues records its owner beside each (a sharded queue: on shard
    0), so a cluster serving any one of them finds it; it reads every record of them all."""
    a, b = pair
    queues = a.serving([a.queue, b.queue])
    b.record_owner("serves-b", {"pid": 1})  # a cluster of queue b alone
    queues.record_owner("both", {"pid": 2})  # the script is loaded
    sent = _round_trips(monkeypatch)
    assert queues.record_owner("both", {"pid": 2}) == {"both": {"pid": 2}, "serves-b": {"pid": 1}}
    assert sent() == 1
    client = a.client
    assert set(client.hkeys(a.keys.owners)) == {b"both"}
    assert set(client.hkeys(b.keys.owners)) == {b"both", b"serves-b"}
    sharded = queues.sharded(2)
    sharded.record_owner("sharded", {"pid": 3})
    for t in (a, b):
        assert b"sharded" in client.hkeys(t.keys.owners)
    others = [s for m in sharded.transports for s in m.transports[1:]]  # type: ignore[attr-defined]
    assert others and not any(client.exists(s.keys.owners) for s in others)
    sharded.remove_owner("sharded")
    queues.remove_owner("both")
    assert not client.exists(a.keys.owners)
    assert set(client.hkeys(b.keys.owners)) == {b"serves-b"}
