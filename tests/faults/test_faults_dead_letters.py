"""Bounded dead letters (issue 11, item 10): they expire, and a cap keeps a flood of bad
tasks from filling a Redis that may not evict."""

from __future__ import annotations

from tests.cluster.support import Bench, eventually
from tests.faults import tasks
from tests.faults.support import Effects


# Guarantee (issue 11, item 10): a running cluster keeps its queue's dead letters within
# dead_letter_cap (the oldest go first, payloads too) and drops those older than
# dead_letter_ttl, within a heartbeat; under noeviction they can never fill Redis.
def test_dead_letters_are_capped_and_expire(bench: Bench, fx: Effects) -> None:
    garbage = [f"bad{i:02d}" for i in range(30)]
    for task_id in garbage:
        bench.transport.enqueue(task_id, b"not a payload Q signed")  # dead-lettered unopened
    with bench.cluster(workers=1, start_method="fork", heartbeat=0.5, retry=5, dead_letter_cap=10):
        ok = bench.producer.enqueue(tasks.counted, *fx.args("after"), "ok")
        assert bench.wait_all([ok])[ok].result == "ok"
        eventually(lambda: bench.transport.dead_size() == 10, what="the cap")
        kept = sorted(letter.task_id for letter in bench.transport.dead_letters())
        assert kept == garbage[-10:]  # the newest
        # Nothing of the dropped ones is left behind: only the kept payloads.
        assert bench.client.hlen(bench.transport.keys.msg) == 10
    with bench.cluster(workers=1, start_method="fork", heartbeat=0.5, retry=5, dead_letter_ttl=0.5):
        eventually(lambda: bench.transport.dead_size() == 0, what="the time-to-live")
    assert bench.client.hlen(bench.transport.keys.msg) == 0
