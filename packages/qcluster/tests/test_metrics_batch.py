"""A worker's metrics are counted once per batch (``TasksSettled``), and count what the per-task
events say: every run, its outcome, its run time and its wait, for sync and coroutine tasks,
retries, timeouts in the loop and cancelled tasks alike."""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import time
from typing import Any

import pytest

from qcluster import ClusterConfig, join
from qcluster.metrics import RUN_BUCKETS, WAIT_BUCKETS, MetricsRecorder, counter, histogram
from qcore import Codec, Delivery, EventBus, Signer, TaskMessage, TaskOptions, TaskResult, cancel
from qcore.events import (
    Event,
    TaskFailed,
    TaskOutcome,
    TaskRetried,
    TasksSettled,
    TaskStarted,
    TaskSucceeded,
    TaskTimedOut,
    WorkerLost,
)
from qcore.testing import MemoryResultStore, MemoryTransport

CODEC = Codec(Signer(b"metrics-batch-tests-key-0123456789ab"))
Q = "default"


async def double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


async def nap(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


async def fails_async() -> None:
    await asyncio.sleep(0)
    raise ValueError("async boom")


def add(a: int, b: int) -> int:
    return a + b


def fails() -> None:
    raise ValueError("boom")


FUNCS = {name: f"{__name__}.{name}" for name in ("double", "nap", "fails_async", "add", "fails")}


def send(transport: MemoryTransport, func: Any, *args: Any, **options: Any) -> TaskMessage:
    message = TaskMessage.new(func, args, options=TaskOptions(**options))
    transport.enqueue(message.id, CODEC.encode_message(message))
    return message


def run(transport: MemoryTransport, **config: Any) -> tuple[MetricsRecorder, list[Event]]:
    """join() with the recorder and a subscriber of every per-task event on one bus."""
    recorder = MetricsRecorder(Q)
    bus = recorder.subscribe(EventBus())
    seen: list[Event] = []
    bus.subscribe(Event, seen.append)
    join(transport, MemoryResultStore(), codec=CODEC, events=bus, config=ClusterConfig(**config))
    return recorder, seen


def total(recorder: MetricsRecorder, name: str) -> float:
    return sum(counter(row, name) for row in recorder.snapshot()["rows"].values())


def runs(recorder: MetricsRecorder, which: str) -> float:
    return sum(sum(histogram(row, which)[1]) for row in recorder.snapshot()["rows"].values())


def test_a_mixed_batch_counts_what_the_per_task_events_say() -> None:
    transport = MemoryTransport()
    for i in range(5):
        send(transport, add, i, 1)
    for _ in range(2):
        send(transport, fails)
    for i in range(3):
        send(transport, double, i)
    send(transport, fails_async)
    send(transport, nap, 30.0, timeout=0.3)  # cancelled in the loop past its timeout
    send(transport, fails, retries=1, retry_backoff=0.0)  # two runs, one retry
    doomed = send(transport, add, 0, 0)
    assert cancel(transport, CODEC, doomed.id) == "queued"  # its twin runs nothing

    recorder, seen = run(transport, async_concurrency=4)

    kinds = [type(event) for event in seen]
    assert kinds.count(TasksSettled) >= 1
    assert total(recorder, "started") == kinds.count(TaskStarted) == 5 + 2 + 3 + 1 + 1 + 2
    assert total(recorder, "succeeded") == kinds.count(TaskSucceeded) == 5 + 3
    assert total(recorder, "failed") == kinds.count(TaskFailed) == 2 + 1 + 1 + 1
    assert total(recorder, "retried") == kinds.count(TaskRetried) == 1
    assert total(recorder, "timed_out") == kinds.count(TaskTimedOut) == 1
    assert runs(recorder, "run") == 8 + 5  # every success and failure, not a timeout or retry
    assert runs(recorder, "wait") == 14  # every run, not the cancelled task's twin
    rows = recorder.snapshot()["rows"]
    assert counter(rows[(Q, FUNCS["fails"])], "started") == 2 + 2
    assert counter(rows[(Q, FUNCS["add"])], "failed") == 1  # the twin, never started
    assert counter(rows[(Q, FUNCS["add"])], "started") == 5
    assert counter(rows[(Q, FUNCS["nap"])], "started") == 1
    assert histogram(rows[(Q, FUNCS["nap"])], "run")[1][-1] == 0


def test_the_wait_counts_from_the_enqueue_or_the_later_eta() -> None:
    transport = MemoryTransport()
    now = time.time()
    for started, eta in ((now - 100.0, None), (now - 100.0, now - 20.0), (now + 50.0, None)):
        message = TaskMessage.new(add, (1, 2), options=TaskOptions(eta=eta))
        message = dataclasses.replace(message, started=started)
        transport.enqueue(message.id, CODEC.encode_message(message))

    recorder, _ = run(transport)

    waited, buckets = histogram(recorder.snapshot()["rows"][(Q, FUNCS["add"])], "wait")
    # 100 s, 20 s, and a clock 50 s ahead of ours counted as 0.
    assert 120.0 <= waited < 125.0
    assert sum(buckets) == 3
    assert buckets[0] == 1  # <= 5 ms
    assert buckets[8] == 1 and buckets[10] == 1  # (10, 30] and (60, 300]


def test_only_metrics_on_builds_no_per_task_event() -> None:
    recorder = MetricsRecorder(Q)
    bus = recorder.subscribe(EventBus())
    for kind in (TaskStarted, TaskSucceeded, TaskFailed):
        assert not bus.wants(kind)
    assert bus.wants(TasksSettled)


def test_a_run_its_lost_worker_never_settled_is_counted_by_the_sentinel() -> None:
    recorder = MetricsRecorder(Q)
    lost = WorkerLost("c.1", 7, "killed by SIGKILL", None, "t" * 32, 3, FUNCS["add"], 2.0)
    recorder.worker_lost(lost)
    recorder.worker_lost(WorkerLost("c.2", 8, "exited with code 1", None, None, 0))
    row = recorder.snapshot()["rows"][(Q, FUNCS["add"])]
    assert counter(row, "started") == 1
    assert histogram(row, "wait")[0] == 2.0
    assert recorder.exits == {"lost": 2}


def outcome(func: str, wait: float, duration: float, success: bool = True, **more: Any) -> Any:
    """A run of ``func`` that waited ``wait`` s in the queue and ran ``duration`` s."""
    message = dataclasses.replace(TaskMessage.new(func, ()), started=1000.0)
    record = TaskResult.from_message(
        message, result=None, success=success, stopped=1000.0 + wait + duration
    )
    delivery = Delivery(message.id, b"", 1, 1, 1, "c")
    return TaskOutcome(message, delivery, record, True, duration, **more)


def test_a_batch_of_plain_runs_counts_as_each_run_would_be() -> None:
    # Times over several buckets, a negative wait (clocks apart), failures; one function (the
    # plain batch, read by the short path), then the same runs with one retry among them (the
    # long path), then two functions; a batch whose longest run is on a bucket's bound.
    times = [(0.001, 0.002), (0.004, 0.03), (-0.5, 0.2), (7.0, 0.004), (0.02, 400.0)] * 3
    plain = [outcome("math.floor", w, d, i % 4 != 0) for i, (w, d) in enumerate(times)]
    retry = outcome("math.floor", 1.0, 1.0, False, retry=5.0)
    mixed = [*plain[:4], outcome("math.ceil", 0.3, 0.3), *plain[4:]]
    edge = [outcome("math.floor", 0.002, d) for d in (0.01, RUN_BUCKETS[3], 0.006)]
    for outcomes, retried in ((plain, 0), ([*plain, retry], 1), (mixed, 0), (edge, 0)):
        recorder = MetricsRecorder(Q)
        recorder.settled(TasksSettled(tuple(outcomes), "c"))
        rows = recorder.snapshot()["rows"]
        row = rows[(Q, "math.floor")]
        ran = [o for o in outcomes if o.record.func == "math.floor" and o.retry is None]
        started = ran + ([retry] if retried else [])
        assert counter(row, "started") == len(started)
        assert counter(row, "succeeded") == sum(o.record.success for o in ran)
        assert counter(row, "failed") == sum(not o.record.success for o in ran)
        for name, bounds, values in (
            ("run", RUN_BUCKETS, [o.duration for o in ran]),
            ("wait", WAIT_BUCKETS, [o.record.stopped - o.duration - 1000.0 for o in started]),
        ):
            total, counts = histogram(row, name)
            assert total == pytest.approx(sum(v for v in values if v > 0))
            expected = [0] * (len(bounds) + 1)
            for value in values:
                expected[bisect.bisect_left(bounds, value)] += 1
            assert counts == expected, name
        if outcomes is mixed:
            assert counter(rows[(Q, "math.ceil")], "succeeded") == 1
