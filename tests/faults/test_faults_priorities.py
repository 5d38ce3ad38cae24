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
