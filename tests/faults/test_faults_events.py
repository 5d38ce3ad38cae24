"""The event bus on a real cluster: every event of a task, in order, across the worker
processes and the sentinel; a subscriber that raises breaks nothing."""

from __future__ import annotations

import os
import signal
import uuid

import pytest

from qcore import EventBus
from qcore.events import Event, TaskEvent
from qredis import Producer
from tests.cluster.support import Bench
from tests.faults import tasks
from tests.faults.support import Effects


def test_subscribers_see_every_event_of_a_task_in_order(
    bench: Bench, fx: Effects, capfd: pytest.CaptureFixture[str]
) -> None:
    recorder = tasks.EventRecorder(fx.url, f"events:{uuid.uuid4().hex[:8]}")
    bus = EventBus()
    bus.subscribe(Event, recorder)
    bus.subscribe(TaskEvent, tasks.broken_subscriber)  # logged, and the tasks go on
    producer = Producer(bench.url, bench.queue, namespace=bench.queue, events=bus)
    send = producer.enqueue
    ok = send(tasks.counted, *fx.args("ok"), "fine")
    failed = send(tasks.fail_with_secret, "x")
    late = send(tasks.overrun, *fx.args("late"), 30, timeout=1)
    killed = send(tasks.hang_first_time, *fx.args("killed"), max_attempts=3)
    # prefetch=1: a batch holds one task, so the kills below lose no finished task waiting
    # in a batch to be saved (that one would run again, and say TaskStarted twice).
    with bench.cluster(workers=2, prefetch=1, start_method="fork", events=bus):
        os.kill(fx.wait_started(), signal.SIGKILL)  # the worker running `killed`, mid-run
        records = bench.wait_all([ok, failed, late, killed], timeout=60)
    producer.close()
    assert records[ok].success and not records[failed].success
    assert records[late].result.startswith("TimeoutError") and records[killed].result == 2

    seen = recorder.seen()
    by_task = {i: [kind for kind, task_id in seen if task_id == i] for i in records}
    assert by_task == {
        ok: ["TaskEnqueued", "TaskStarted", "TaskSucceeded"],
        failed: ["TaskEnqueued", "TaskStarted", "TaskFailed"],
        late: ["TaskEnqueued", "TaskStarted", "WorkerLost", "TaskTimedOut"],
        killed: [
            "TaskEnqueued",
            "TaskStarted",
            "WorkerLost",
            "TaskRetried",
            "TaskStarted",
            "TaskSucceeded",
        ],
    }
    workers = [kind for kind, _ in seen if kind.startswith("Worker")]
    # Two workers and two replacements (of the timed-out one and the killed one): each of the
    # four ends with one WorkerLost or WorkerStopped (a replacement stopped before it was up
    # may never have said WorkerStarted).
    assert workers.count("WorkerStarted") >= 2
    assert workers.count("WorkerLost") + workers.count("WorkerStopped") == 4

    out = capfd.readouterr()
    failures = (out.out + out.err).count("events.subscriber_failed")
    task_events = [kind for kinds in by_task.values() for kind in kinds if kind.startswith("Task")]
    assert failures == len(task_events) == 14  # the broken subscriber of every task event
