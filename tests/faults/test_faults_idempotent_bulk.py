"""Idempotent bulk (issue 11, item 11): a batch whose ids are fixed before sending (an
idempotency key) can be sent again after its producer died mid-send, and again after its
tasks completed, without any task running twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from qredis import TransportConnectionError, aio
from qredis.scripts import source
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


# Guarantee (issue 11, item 11, for the asyncio producer): qredis.aio's enqueue_many under an
# idempotency key whose reply was lost (Redis stalled past the client's socket timeout: the
# script ran, the caller got TransportConnectionError), sent again after the error, and once
# more after every task completed: each task ran once and has one record.
def test_an_asyncio_batch_whose_reply_was_lost_is_sent_again_and_runs_each_task_once(
    own_bench: Bench, own_fx: Effects
) -> None:
    bench, fx = own_bench, own_fx
    key = "aio-invoices-2026-11-30"
    calls = [fx.args(f"a{i}") for i in range(200)]

    def producer(socket_timeout: float) -> aio.Producer:
        return aio.Producer(
            bench.url,
            bench.queue,
            namespace=bench.queue,
            socket_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),  # the error reaches the caller at once
        )

    async def send() -> list[str]:
        async with producer(5.0) as q:
            return await q.enqueue_many(tasks.counted, calls, idempotency_key=key)

    async def send_into_a_stall() -> None:
        async with producer(0.5) as q:
            await q.queue_size()  # connected: the batch is sent, not the handshake
            bench.client.script_load(source("enqueue_absent"))  # as after any earlier batch
            stall = threading.Thread(
                target=bench.client.execute_command, args=("DEBUG", "SLEEP", "2")
            )
            stall.start()
            await asyncio.sleep(0.3)  # the server is asleep: the batch's reply comes too late
            with pytest.raises(TransportConnectionError):
                await q.enqueue_many(tasks.counted, calls, idempotency_key=key)
            stall.join()

    asyncio.run(send_into_a_stall())
    assert bench.transport.queue_size() == len(calls), "the stalled batch did not run"
    with bench.cluster(workers=2, start_method="fork"):
        ids = asyncio.run(send())  # the caller sends the same batch again
        bench.wait_all(ids, timeout=120)
        eventually(lambda: bench.transport.inflight_size() == 0, what="the last acks")
        assert asyncio.run(send()) == ids  # and once more, all completed
        assert bench.transport.queue_size() == 0, "a completed task was queued again"
    assert_exactly_once(bench, fx, {f"a{i}": ids[i] for i in range(len(calls))})
