"""Hooks are never lost and never stall the queue (issue 11, item 2): a hook past
``hook_timeout`` is interrupted and its batch's other hooks still run; a slow hook holds only
its own worker, never the tasks that worker prefetched behind it."""

from __future__ import annotations

import time

from tests.cluster.support import Bench, eventually
from tests.faults import tasks
from tests.faults.support import Effects, assert_drained


# Guarantee (issue 11, item 2): a hook that hangs past hook_timeout is interrupted by its
# worker's alarm: the worker survives, and every other hook of its batch (and after) is still
# called, once.
def test_a_hanging_hook_is_interrupted_and_the_other_hooks_still_run(
    bench: Bench, fx: Effects
) -> None:
    tags = [f"t{i:02d}" for i in range(40)]
    ids = {}
    for i, tag in enumerate(tags):
        hook = tasks.hanging_hook if i == 12 else tasks.counting_hook
        ids[tag] = bench.producer.enqueue(tasks.counted, *fx.args(tag), i, hook=hook)
    with bench.cluster(workers=1, prefetch=16, hook_timeout=1.0, start_method="fork"):
        records = bench.wait_all(list(ids.values()), timeout=60)
        fx.wait_started()  # the hanging hook did start
        eventually(
            lambda: sum(fx.count(f"hook:{t}") for t in tags) == len(tags) - 1,
            timeout=30,
            what="every other hook",
        )
        status = eventually(lambda: (s := bench.status()) and s["processed"] >= 40 and s)
    assert [records[ids[t]].result for t in tags] == list(range(40))
    assert status["replaced"] == 0, "the hanging hook cost its worker"
    counts = fx.counts()
    assert all(counts[t] == 1 for t in tags)  # no task ran twice
    assert all(counts.get(f"hook:{t}", 0) == (0 if t == "t12" else 1) for t in tags)
    assert_drained(bench)


# Guarantee (issue 11, item 2): a slow hook delays no other task by more than the worker it
# holds: the tasks its worker had prefetched behind the hooked one run before the hook, and
# the other worker takes the rest of the queue, so every task is saved before the hook ends.
def test_a_slow_hook_holds_only_its_own_worker(bench: Bench, fx: Effects) -> None:
    # Tasks of 10 ms: short enough for batches to grow to the prefetch, long enough for each
    # to be saved and acked before the next starts (so a hook would run mid-batch).
    tags = [f"t{i:02d}" for i in range(80)]
    ids = {}
    for i, tag in enumerate(tags):
        hook = tasks.slow_hook if i == 30 else None
        ids[tag] = bench.producer.enqueue(tasks.counted_sleep, *fx.args(tag), 0.01, hook=hook)
    with bench.cluster(workers=2, prefetch=16, hook_timeout=30.0, start_method="fork"):
        records = bench.wait_all(list(ids.values()), timeout=60)
        eventually(lambda: fx.count("hook:t30"), timeout=30, what="the slow hook")
    hook_done = float(fx.client.get(f"{fx.key}:slow-hook-done") or 0)
    late = [t for t in tags if records[ids[t]].stopped > hook_done]
    assert not late, f"{len(late)} task(s) waited for another task's hook: {late[:5]}"
    assert hook_done < time.time()
    assert_drained(bench)
