"""No replays (issue 11, item 4): a signed envelope copied from Redis and pushed back after its
task completed is refused, not run again, for the replay window (the result TTL's default)."""

from __future__ import annotations

import uuid

from qcore import EventBus, chain_messages, start_chain
from qcore.events import TaskReplayed
from qredis import Producer, ShardedQueue
from tests.cluster.support import Bench, eventually
from tests.cluster.test_cluster_metrics import scrape, value
from tests.faults import tasks
from tests.faults.support import Effects


# Guarantee (issue 11, item 4): a completed task's envelope, copied from Redis while it was
# queued and pushed back after it ran (through the producer's raw enqueue, then straight into
# the queue's list), is never run again: one run, one record, one hook; each copy is
# dead-lettered as "replayed", logged and counted (the TaskReplayed event, the metric).
def test_a_charge_pushed_back_after_it_completed_runs_once(bench: Bench, fx: Effects) -> None:
    recorder = tasks.EventRecorder(fx.url, f"events:{uuid.uuid4().hex[:8]}")
    bus = EventBus()
    bus.subscribe(TaskReplayed, recorder)
    keys = bench.transport.keys
    task_id = bench.producer.enqueue(
        tasks.charge_card, *fx.args("charge"), 4200, hook=tasks.counting_hook
    )
    envelope = bench.client.hget(keys.msg, task_id)  # the attacker's copy, taken while queued
    assert envelope is not None
    with bench.cluster(workers=1, events=bus, metrics_port=0, start_method="fork"):
        assert bench.wait_all([task_id])[task_id].result == 4200
        eventually(lambda: fx.count("hook:charge") == 1, what="the hook")
        eventually(lambda: bench.transport.inflight_size() == 0, what="the ack")

        # 1. through Producer.enqueue's raw path: the payload is stored and queued again
        bench.producer.transport.enqueue(task_id, envelope)
        eventually(lambda: len(recorder.seen()) == 1, what="the first replay refused")
        # 2. straight into the queue's keys: the bare id pushed on the list, the marker set
        bench.client.lpush(keys.queue, task_id)
        bench.client.zadd(keys.marker, {"0": 0})
        eventually(lambda: len(recorder.seen()) == 2, what="the second replay refused")

        port = eventually(bench.status, what="a status")["metrics_port"]
        counted = ("q_tasks_replayed_total", bench.queue, "unknown")
        replays = eventually(
            lambda: value(scrape(port), counted[0], queue=counted[1], func=counted[2]),
            what="the replays counted",
        )
    assert fx.count("charge") == 1, "the card was charged again"
    assert bench.store.counts() == {task_id: 1}
    assert fx.count("hook:charge") == 1
    assert recorder.seen() == [("TaskReplayed", task_id)] * 2
    assert replays == 2
    [letter] = bench.transport.dead_letters()
    assert (letter.task_id, letter.reason, letter.payload) == (task_id, "replayed", envelope)
    assert bench.transport.queue_size() == bench.transport.inflight_size() == 0


# Guarantee (a worker loss's dead letter is done): a task whose worker was lost on each of its
# max_attempts runs ends as one dead letter and one WorkerLost Failure, and is done as an acked
# task is: a copy of its envelope pushed back (straight into the queue's list while the dead
# letter is there, then through the producer's raw enqueue once it was purged) is refused as a
# replay, never run again; the dead letter keeps the reason its record was made of.
def test_a_task_dead_lettered_for_lost_workers_is_done_and_never_replayed(
    bench: Bench, fx: Effects
) -> None:
    recorder = tasks.EventRecorder(fx.url, f"events:{uuid.uuid4().hex[:8]}")
    bus = EventBus()
    bus.subscribe(TaskReplayed, recorder)
    keys = bench.transport.keys
    task_id = bench.producer.enqueue(
        tasks.exit_hard, *fx.args("doomed"), hook=tasks.counting_hook, max_attempts=2
    )
    envelope = bench.client.hget(keys.msg, task_id)
    assert envelope is not None
    with bench.cluster(workers=1, events=bus, start_method="fork"):
        record = bench.wait_all([task_id], timeout=60)[task_id]
        eventually(lambda: fx.count("hook:doomed") == 1, what="the hook")
        [letter] = bench.transport.dead_letters()
        assert bench.transport.unrecorded() == []

        # 1. the bare id pushed on the list while its dead letter (and payload) is there
        bench.client.lpush(keys.queue, task_id)
        bench.client.zadd(keys.marker, {"0": 0})
        eventually(lambda: len(recorder.seen()) == 1, what="the first replay refused")
        assert bench.transport.dead_letters() == [letter]  # as it was: reason and time

        # 2. the dead letter purged (payload and all), the envelope sent again
        assert bench.transport.purge_dead([task_id]) == 1
        bench.producer.transport.enqueue(task_id, envelope)
        eventually(lambda: len(recorder.seen()) == 2, what="the second replay refused")
        eventually(lambda: bench.transport.inflight_size() == 0, what="nothing held")
    assert not record.success and record.result.startswith("WorkerLost:")
    assert "attempt 2 of 2" in record.result
    assert fx.count("doomed") == 2, "the task ran again after it ended"
    assert bench.store.counts() == {task_id: 1}
    assert fx.count("hook:doomed") == 1
    [replay] = bench.transport.dead_letters()
    assert (replay.task_id, replay.reason) == (task_id, "replayed")
    assert bench.transport.queue_size() == 0


# Guarantee (issue 15, replays on a sharded queue): a chain's links live on the chain id's
# shard and a unique task on its lock's, not on the shard their own id hashes to, where a copy
# sent through the producer's raw enqueue lands. The copies of a completed link and of a
# completed unique task, each of whose ids hashes to another shard than the one that ran it,
# are refused there as replays: each ran once.
def test_on_a_sharded_queue_copies_of_chain_links_and_unique_tasks_are_refused(
    bench: Bench, fx: Effects
) -> None:
    recorder = tasks.EventRecorder(fx.url, f"events:{uuid.uuid4().hex[:8]}")
    bus = EventBus()
    bus.subscribe(TaskReplayed, recorder)
    with Producer(bench.url, bench.queue, namespace=bench.queue, shards=3) as producer:
        sharded = producer.transport
        assert isinstance(sharded, ShardedQueue)

        def away(task_id: str, key: str) -> bool:
            return sharded.shard(task_id) is not sharded.shard(key)

        while True:  # a chain with a link whose id hashes to another shard than the chain's
            chain = [(tasks.counted, (*fx.args(f"link{i}"), i), {}) for i in range(3)]
            chain_id, links = chain_messages(chain)
            if any(away(m.id, chain_id) for m in links):
                break
        while True:  # a unique task whose id hashes to another shard than its lock
            unique = producer.message(
                tasks.counted, *fx.args("unique"), "u", q_options={"unique": "the-one"}
            )
            assert unique.options.unique is not None
            if away(unique.id, unique.options.unique):
                break
        start_chain(sharded, producer.codec, chain_id, links)
        assert producer.send(unique) == unique.id
        ids = [m.id for m in links] + [unique.id]
        with bench.cluster(workers=1, shards=3, events=bus, start_method="fork"):
            records = bench.wait_all(ids, timeout=60)
            eventually(lambda: sharded.inflight_size() == 0, what="the acks")
            for message in [*links, unique]:  # the copies, each on its id's own shard
                sharded.enqueue(message.id, producer.codec.encode_message(message))
            eventually(lambda: len(recorder.seen()) == 4, what="four replays refused")
            eventually(lambda: sharded.queue_size() == 0, what="the copies fetched")
        assert [records[m.id].result for m in links] == [0, 1, 2]
        assert records[unique.id].result == "u"
        assert fx.counts() == {"link0": 1, "link1": 1, "link2": 1, "unique": 1}
        assert sorted(task_id for _, task_id in recorder.seen()) == sorted(ids)
        assert bench.store.counts() == dict.fromkeys(ids, 1)
