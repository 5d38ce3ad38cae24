"""Cancel, on a real cluster: a queued, a delayed (one by one and in bulk) and a running task;
each ends as one Failure "Cancelled" with one hook call, and a cancelled task never runs."""

from __future__ import annotations

import time

import pytest

from qcore import TaskResult, TaskRunning, UnknownTask
from qcore.cancelling import cancelled_error
from tests.cluster.support import Bench, eventually
from tests.faults import tasks as fault_tasks
from tests.faults.support import Effects, assert_drained
from tests.workflows import tasks


def test_a_queued_and_a_delayed_task_never_run_and_end_as_cancelled_failures(
    bench: Bench, fx: Effects
) -> None:
    hook = fault_tasks.counting_hook
    queued = bench.producer.enqueue(tasks.echo, *fx.args("queued"), hook=hook)
    delayed = bench.producer.enqueue(tasks.echo, *fx.args("delayed"), hook=hook, countdown=3600)
    [bulk] = bench.producer.enqueue_many(tasks.echo, [fx.args("bulk")], hook=hook)
    kept = bench.producer.enqueue(tasks.echo, *fx.args("kept"), "ok")
    assert bench.producer.cancel(queued) == "queued"
    assert bench.producer.cancel(delayed) == "delayed"
    assert bench.producer.cancel(bulk) == "queued"
    with bench.cluster(workers=1, start_method="fork"):
        records = bench.wait_all([queued, delayed, bulk, kept], timeout=30)
    for task_id in (queued, delayed, bulk):
        record = records[task_id]
        assert not record.success
        assert record.result.startswith("Cancelled: the task was cancelled before it ran")
        assert record.func == "tests.workflows.tasks.echo"
    assert records[kept].result == "ok"
    assert fx.counts() == {"kept": 1, "hook:queued": 1, "hook:delayed": 1, "hook:bulk": 1}
    assert all(bench.store.counts()[i] == 1 for i in (queued, delayed, bulk))
    assert_drained(bench)


def test_cancel_of_an_unknown_or_finished_task_is_a_clear_error(bench: Bench, fx: Effects) -> None:
    with pytest.raises(UnknownTask, match="no task 'nope' is queued, delayed or running"):
        bench.producer.cancel("nope")
    done = bench.producer.enqueue(tasks.echo, *fx.args("done"))
    with bench.cluster(workers=1, start_method="fork"):
        bench.wait_all([done])
    with pytest.raises(UnknownTask, match="has finished already"):
        bench.producer.cancel(done)
    with pytest.raises(UnknownTask, match="was cancelled already"):
        cancelled = bench.producer.enqueue(tasks.echo, *fx.args("twice"), countdown=60)
        bench.producer.cancel(cancelled)
        bench.producer.cancel(cancelled)


def test_a_held_task_whose_record_is_saved_has_finished_for_cancel(
    bench: Bench, fx: Effects
) -> None:
    """A worker saves a record before it acks its delivery: in between, the task is still held,
    and a cancel says it finished (or was cancelled) already, not that it runs (seen under
    load: a cancel right after the Cancelled record was read was told to terminate it)."""
    cancelled = bench.producer.enqueue(tasks.echo, *fx.args("cancelled"), countdown=3600)
    done = bench.producer.enqueue(tasks.echo, *fx.args("done"))
    assert bench.producer.cancel(cancelled) == "delayed"
    # The worker's part up to its ack, played here: fetch both, run nothing yet.
    held = {d.task_id: d for d in bench.transport.fetch("w", count=2)}
    assert held.keys() == {cancelled, done}
    with pytest.raises(TaskRunning, match="is running"):
        bench.producer.cancel(done)  # held and no record: it runs
    codec = bench.producer.codec
    twin = codec.decode_message(held[cancelled].payload)
    message = codec.decode_message(held[done].payload)
    bench.store.save_many(
        [
            TaskResult.from_message(twin, result=cancelled_error(twin), success=False),
            TaskResult.from_message(message, result="ok", success=True),
        ]
    )
    with pytest.raises(UnknownTask, match="was cancelled already"):
        bench.producer.cancel(cancelled)
    with pytest.raises(UnknownTask, match=r"has finished already \(a Success\)"):
        bench.producer.cancel(done)
    assert bench.transport.ack(list(held.values())) == [True, True]
    assert fx.counts() == {}  # nothing ran
    assert_drained(bench)


def test_a_running_task_is_terminated_and_ends_as_one_cancelled_failure(
    bench: Bench, fx: Effects
) -> None:
    with bench.cluster(workers=1, start_method="fork"):
        task_id = bench.producer.enqueue(
            fault_tasks.hang, *fx.args("long"), hook=fault_tasks.counting_hook
        )
        fx.wait_started()
        with pytest.raises(TaskRunning, match="is running; pass terminate=True"):
            bench.producer.cancel(task_id)
        asked = time.monotonic()
        assert bench.producer.cancel(task_id, terminate=True) == "terminating"
        record = bench.wait_all([task_id], timeout=20)[task_id]
        took = time.monotonic() - asked
        after = bench.producer.enqueue(tasks.echo, *fx.args("after"), "ok")
        assert bench.wait_all([after])[after].result == "ok"
        status = eventually(lambda: (s := bench.status()) and s["replaced"] >= 1 and s)
    assert not record.success
    assert record.result.startswith("Cancelled: the task was terminated while running")
    assert took < 5, took
    assert status["replaced"] == 1  # its worker was killed and replaced
    assert fx.counts() == {"long": 1, "hook:long": 1, "after": 1}
    assert bench.store.counts()[task_id] == 1
    assert_drained(bench)
