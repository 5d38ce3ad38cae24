"""Listing what waits (queued head first, delayed by due time) and deleting it before a worker
takes it, on a real Redis: bare ids, bulk (inline) entries and delayed tasks alike."""

from __future__ import annotations

import time

import redis

from qredis import RedisTransport


def test_waiting_lists_the_head_first_with_payloads_bulk_entries_included(
    transport: RedisTransport,
) -> None:
    transport.enqueue("one", b"p1")
    transport.enqueue_many([("two", b"p2"), ("three", b"p3")])
    transport.enqueue("later", b"p4", delay=60)
    waiting = transport.waiting(10)
    assert [(w.task_id, w.payload, w.due) for w in waiting] == [
        ("one", b"p1", None),
        ("two", b"p2", None),
        ("three", b"p3", None),
    ]
    (delayed,) = transport.delayed(10)
    assert delayed.task_id == "later" and delayed.payload == b"p4"
    assert delayed.due is not None and 55 < delayed.due - time.time() < 65
    assert [w.task_id for w in transport.waiting(2)] == ["one", "two"]


def test_remove_waiting_deletes_queued_bulk_and_delayed_tasks_and_nothing_in_flight(
    transport: RedisTransport, redis_client: redis.Redis
) -> None:
    transport.enqueue("a", b"1")
    transport.enqueue_many([("b", b"2"), ("c", b"3")])
    transport.enqueue("d", b"4", delay=60)
    transport.enqueue("e", b"5")
    transport.heartbeat(["w"], 60)
    (taken,) = transport.fetch("w", count=1)  # "a", in flight now
    assert taken.task_id == "a"
    removed = transport.remove_waiting(["a", "b", "d", "nope"])
    assert sorted(removed) == ["b", "d"]
    assert [w.task_id for w in transport.waiting(10)] == ["c", "e"]
    assert transport.delayed(10) == [] and transport.delayed_size() == 0
    assert transport.queue_size() == 2 and transport.inflight_size() == 1
    k = transport.keys
    assert not redis_client.hexists(k.msg, "d") and not redis_client.hexists(k.maxatt, "d")
    assert transport.ack([taken]) == [True]  # the task in flight was left alone
    got = transport.fetch("w", count=5)
    assert [d.task_id for d in got] == ["c", "e"]
