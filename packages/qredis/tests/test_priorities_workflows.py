"""Where a cancelled task's twin, a chain's links and a unique task wait among the priority
levels of a Redis queue (the scripts that queue them run enqueue.lua's body)."""

from __future__ import annotations

from qredis import RedisTransport


def test_a_queued_task_of_any_priority_can_be_cancelled(transport: RedisTransport) -> None:
    transport.enqueue("zero", b"z")
    transport.enqueue("high", b"h", priority=5)
    transport.enqueue_many([("bulk-low", b"l")], priority=-5)
    assert transport.cancel("high", lambda p: b"twin-" + p) == "queued"
    assert transport.cancel("bulk-low", lambda p: b"twin-" + p) == "queued"
    got = [(d.task_id, d.payload) for d in transport.fetch("c1", count=5)]
    # the twins run no code: they go first, whatever their tasks' priorities
    assert sorted(got[:2]) == [("bulk-low", b"twin-l"), ("high", b"twin-h")]
    assert got[2:] == [("zero", b"z")]


def test_a_chains_links_and_a_unique_task_are_queued_at_their_priority(
    transport: RedisTransport,
) -> None:
    _links_and_unique_at_their_priority(transport)


def test_on_a_redis_cluster_too(redis_cluster_url: str, queue_name: str) -> None:
    # chain_ack.lua names the next link's ready list itself (the queue's slot): a Redis Cluster
    # runs it as it runs fetch.lua
    transport = RedisTransport(queue_name, url=redis_cluster_url)
    try:
        _links_and_unique_at_their_priority(transport)
    finally:
        transport.close()


def _links_and_unique_at_their_priority(transport: RedisTransport) -> None:
    transport.enqueue("zero", b"z")
    transport.enqueue("low", b"l", priority=-3)
    links = [("first", b"1", None), ("second", b"2", 4), ("third", b"3", None)]
    assert transport.start_chain("chain-p", links, priorities=[8, 7, 0])
    assert transport.enqueue_unique("uniq", b"u", lock="k", ttl=60, priority=6) == "uniq"
    assert transport.enqueue_unique("uniq2", b"u", lock="k", ttl=60, priority=9) == "uniq"
    [first] = transport.fetch("c1")
    assert first.task_id == "first"
    assert transport.ack_links([first], [("chain-p", 1, True)]) == [True]
    got = transport.fetch("c1", count=10)
    assert [d.task_id for d in got] == ["second", "uniq", "zero", "low"]
    assert got[0].max_attempts == 4
    k = transport.keys
    assert transport.client.hgetall(k.chain("chain-p")).keys() >= {b"3"}
    assert not [f for f in transport.client.hkeys(k.chain("chain-p")) if f.startswith(b"prio:")]


def test_a_chain_stored_before_priorities_queues_its_links_at_0(transport: RedisTransport) -> None:
    # A chain stored by an older Q has no "prio:<index>" fields: its links go to level 0.
    assert transport.start_chain("old", [("a", b"1", None), ("b", b"2", None)])
    transport.enqueue("high", b"h", priority=1)
    [a] = transport.fetch("c1", count=1)
    assert a.task_id == "high"
    [first] = transport.fetch("c1")
    assert transport.ack_links([first], [("old", 1, True)]) == [True]
    assert [d.task_id for d in transport.fetch("c1", count=5)] == ["b"]
