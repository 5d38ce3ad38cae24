"""Order under load, on a real cluster: urgent tasks pass a backlog, and a delayed task whose
time came is not starved by what was queued after it."""

from __future__ import annotations

import time
import uuid

from qcore import build_message
from tests.cluster.support import Bench, eventually
from tests.faults import tasks

BACKLOG = 20_000
WORKERS, PREFETCH = 2, 16


def _records_saved(bench: Bench) -> int:
    return len(bench.store.counts())


# Guarantee (issue 15, item 1): strict priorities under load. With a backlog of low-priority
# tasks being worked through, 100 high-priority tasks queued now all start before the next
# 2 x (workers x prefetch) low ones: only what the workers already hold runs first.
def test_urgent_tasks_pass_a_backlog_within_what_the_workers_hold(bench: Bench) -> None:
    key = f"seq:{uuid.uuid4().hex[:10]}"
    low = bench.producer.enqueue_many(tasks.sequenced, [(bench.url, key)] * BACKLOG, priority=-10)
    with bench.cluster(workers=WORKERS, start_method="fork", prefetch=PREFETCH):
        eventually(lambda: _records_saved(bench) >= 1000, timeout=60, what="the backlog started")
        # Signed first: the count read just before sending is the count when they became
        # visible, not when building them started.
        messages = [
            build_message(tasks.sequenced, (bench.url, key), priority=10) for _ in range(100)
        ]
        items = [(m.id, bench.producer.codec.encode_message(m)) for m in messages]
        high = [m.id for m in messages]
        before = int(bench.client.get(key) or 0)
        bench.transport.enqueue_many(items, priority=10)
        records = bench.wait_all(high, timeout=60)
        last_high = max(int(r.result) for r in records.values())
        assert bench.transport.queue_size() > 0, "the backlog drained first: make it larger"
    # Every run between the moment the urgent ones were queued and the last of them to start
    # is a low task that passed them: at most what the workers had already fetched.
    passed = last_high - before - len(high)
    assert passed <= 2 * WORKERS * PREFETCH, (passed, before, last_high)
    assert len(low) == BACKLOG


# Guarantee (issue 11, item 12): a delayed task whose time came runs before the tasks queued
# after that time (before: it joined the tail and waited behind 19,984 queued tasks).
def test_a_due_delayed_task_is_not_starved_by_a_backlog(bench: Bench) -> None:
    bench.producer.enqueue_many(tasks.noop, range(BACKLOG))
    with bench.cluster(workers=WORKERS, start_method="fork", prefetch=PREFETCH):
        eventually(lambda: _records_saved(bench) >= 500, timeout=60, what="the backlog started")
        eta = time.time() + 0.5
        task_id = bench.producer.enqueue(tasks.noop, "due", eta=eta)
        time.sleep(max(0.0, eta - time.time()) + 0.05)
        bench.producer.enqueue_many(tasks.noop, range(BACKLOG // 2))  # queued after its time
        record = bench.store.wait(task_id, 30)
        left = bench.transport.queue_size()
    assert record is not None and record.success
    assert record.stopped >= eta
    assert left > BACKLOG // 2, f"it ran only when {left} tasks were left"
    assert record.stopped - eta < 5.0, record.stopped - eta


# Guarantee (issue 15, item 1): a chain's links and a unique task are queued at the priority
# their options say (before, at 0 whatever they said), so they pass a backlog of lower ones.
def test_a_chains_links_and_a_unique_task_pass_a_backlog_at_their_priority(bench: Bench) -> None:
    key = f"seq:{uuid.uuid4().hex[:10]}"
    bench.producer.enqueue_many(tasks.sequenced, [(bench.url, key)] * 500)  # priority 0
    urgent = {"priority": 10}
    unique = bench.producer.enqueue(
        tasks.sequenced, bench.url, key, q_options={**urgent, "unique": f"u-{key}"}
    )
    link = (tasks.sequenced, (bench.url, key))
    chain = bench.producer.chain([link, link, link], q_options=urgent)
    # One worker taking one task at a time: the order it starts them in is the order it
    # fetched them in (with two, a worker slower to start its first task, importing the
    # module, let the other start a backlog task first: seen in whole-suite runs).
    with bench.cluster(workers=1, start_method="fork", prefetch=1):
        records = bench.wait_all([unique, *chain], timeout=60)
        assert bench.transport.queue_size() > 0, "the backlog drained first: make it larger"
    started = {task_id: int(r.result) for task_id, r in records.items()}
    # All queued before the cluster started: the unique task and the first link run first
    # (first in, first out at their level), and each next link, queued by its predecessor's
    # ack, is the very next task the worker fetches.
    assert [started[unique], *(started[link] for link in chain)] == [1, 2, 3, 4], started


# Guarantee (issue 15, item 1): a unique task and a chain's first link wake an idle cluster as
# any enqueue does (the marker), not at its workers' next look, up to block_slice later.
def test_an_idle_cluster_takes_a_unique_task_and_a_chain_at_once(bench: Bench) -> None:
    key = f"seq:{uuid.uuid4().hex[:10]}"
    with bench.cluster(workers=1, start_method="fork", transport_options={"block_slice": 5.0}):
        bench.wait_all([bench.producer.enqueue(tasks.noop, 0)])  # the worker is up
        latencies = []
        for n in range(3):
            time.sleep(0.1)  # the worker is idle, blocked in its wait (up to 1 s)
            sent = time.time()
            task_id = bench.producer.enqueue(
                tasks.sequenced, bench.url, key, q_options={"unique": f"u-{key}-{n}"}
            )
            # stopped: the run ended (a task of a few microseconds; started is its enqueue)
            latencies.append(bench.wait_all([task_id], timeout=30)[task_id].stopped - sent)
            time.sleep(0.1)
            sent = time.time()
            [first] = bench.producer.chain([(tasks.sequenced, (bench.url, key))])
            latencies.append(bench.wait_all([first], timeout=30)[first].stopped - sent)
    assert max(latencies) < 0.5, latencies
