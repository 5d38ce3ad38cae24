"""Idempotent bulk (issue 11, item 11): a batch whose ids are fixed before sending (an
idempotency key) can be sent again after its producer died mid-send, and again after its
tasks completed, without any task running twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from tests.cluster.support import Bench, eventually
from tests.faults import tasks
from tests.faults.support import ROOT, Effects, assert_exactly_once

N = 600


def _sender(bench: Bench, fx: Effects, key: str) -> subprocess.Popen[bytes]:
    """A producer process sending the batch one task per chunk (a round trip each), so it is
    killed mid-send."""
    code = textwrap.dedent(
        f"""
        from qredis import Producer
        from tests.faults import tasks
        producer = Producer({bench.url!r}, {bench.queue!r}, namespace={bench.queue!r})
        producer.transport.chunk_size = 1
        calls = [({fx.url!r}, {fx.key!r}, f"t{{i}}") for i in range({N})]
        producer.enqueue_many(tasks.counted, calls, idempotency_key={key!r})
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)


# Guarantee (issue 11, item 11): a producer SIGKILLed while it sends a batch under an
# idempotency key, then the same batch sent again (some tasks queued, some running, some
# completed by then), then sent once more after every task completed: each task ran once and
# has one record; nothing was dead-lettered (the known ids were skipped, not queued).
def test_a_batch_sent_again_after_its_producer_was_killed_runs_each_task_once(
    bench: Bench, fx: Effects
) -> None:
    key = "nightly-invoices-2026-11-30"
    calls = [fx.args(f"t{i}") for i in range(N)]
    with bench.cluster(workers=2, start_method="fork"):
        sender = _sender(bench, fx, key)
        eventually(lambda: sum(fx.counts().values()) >= 20, timeout=60, what="tasks running")
        sender.send_signal(signal.SIGKILL)
        assert sender.wait(30) == -signal.SIGKILL
        keys = bench.transport.keys
        sent = bench.client.hlen(keys.msg) + bench.client.zcard(keys.done)  # live + completed
        assert 0 < sent < N, "the producer was not killed mid-send"
        ids = bench.producer.enqueue_many(tasks.counted, calls, idempotency_key=key)
        bench.wait_all(ids, timeout=120)
        eventually(lambda: bench.transport.inflight_size() == 0, what="the last acks")
        again = bench.producer.enqueue_many(tasks.counted, calls, idempotency_key=key)
        assert again == ids
        assert bench.transport.queue_size() == 0, "a completed task was queued again"
    assert_exactly_once(bench, fx, {f"t{i}": ids[i] for i in range(N)})
