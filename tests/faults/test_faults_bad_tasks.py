"""Tasks that are wrong in themselves: each gives its documented record, and the cluster goes on.

Every test ends by running one more task on the same cluster, and checks that the bad task
ran (at most) once, was saved once and is not left in the queue.
"""

from __future__ import annotations

import sys
import types
import uuid

import pytest

from qcore import DEFAULT_MAX_SIZE, TaskResult
from tests.cluster.support import Bench, eventually
from tests.faults import tasks
from tests.faults.support import Effects, assert_drained, assert_exactly_once


def _run(bench: Bench, fx: Effects, task_id: str) -> TaskResult:
    """Run the queued task on a one-worker cluster, then a good task on the same worker."""
    with bench.cluster(workers=1, start_method="fork"):
        record = bench.wait_all([task_id], timeout=30)[task_id]
        after = bench.producer.enqueue(tasks.counted, *fx.args("after"), "ok")
        assert bench.wait_all([after])[after].result == "ok"
        status = eventually(lambda: (s := bench.status()) and s["processed"] >= 2 and s)
    assert status["replaced"] == 0, "the bad task cost its worker"
    assert bench.store.counts()[task_id] == 1
    assert_drained(bench)
    return record


def test_a_function_path_that_does_not_exist(bench: Bench, fx: Effects) -> None:
    task_id = bench.producer.enqueue("tests.faults.tasks.no_such_task", *fx.args("missing"))
    record = _run(bench, fx, task_id)
    assert not record.success
    assert record.result.startswith(
        "FunctionNotFound: cannot resolve 'tests.faults.tasks.no_such_task': "
        "'tests.faults.tasks' has no attribute 'no_such_task'"
    )
    assert record.func == "tests.faults.tasks.no_such_task"
    assert fx.counts() == {"after": 1}


def test_arguments_that_cannot_be_unpickled_on_the_worker(bench: Bench, fx: Effects) -> None:
    # A class the producer has and the worker does not (a module only this process holds).
    name = f"only_in_the_producer_{uuid.uuid4().hex[:8]}"
    module = types.ModuleType(name)
    exec("class Order:\n    pass\n", module.__dict__)
    module.Order.__module__ = name  # type: ignore[attr-defined]
    sys.modules[name] = module
    try:
        order = module.Order()  # type: ignore[attr-defined]
        task_id = bench.producer.enqueue(tasks.takes_anything, *fx.args("alien"), order)
    finally:
        del sys.modules[name]  # before the cluster forks: its workers cannot import it
    record = _run(bench, fx, task_id)
    assert not record.success
    assert record.result.startswith(
        "UndecodablePayload: the payload is signed but cannot be unpickled here: "
        f"ModuleNotFoundError: No module named '{name}'"
    )
    assert record.func == "<unknown>"  # nothing of the message could be read
    assert fx.counts() == {"after": 1}  # it never ran


def test_a_result_that_cannot_be_pickled(bench: Bench, fx: Effects) -> None:
    task_id = bench.producer.enqueue(tasks.return_unpicklable, *fx.args("lock"))
    record = _run(bench, fx, task_id)
    assert not record.success
    assert record.result.startswith("SerializationError: the task returned a lock that cannot")
    assert fx.counts() == {"lock": 1, "after": 1}


def test_a_result_too_large_to_store(bench: Bench, fx: Effects) -> None:
    size = DEFAULT_MAX_SIZE + 1024
    task_id = bench.producer.enqueue(tasks.return_bytes, *fx.args("huge"), size)
    record = _run(bench, fx, task_id)
    assert not record.success
    assert record.result.startswith("SerializationError: the task's record cannot be stored")
    assert "PayloadTooLarge" in record.result
    assert fx.counts() == {"huge": 1, "after": 1}


@pytest.mark.parametrize(
    ("func", "first_line"),
    [
        (tasks.raise_unpicklable, "UnpicklableError: holds a lock"),
        (tasks.raise_unprintable, "UnprintableError: <exception str() failed>"),
    ],
    ids=["unpicklable", "unprintable"],
)
def test_an_exception_that_cannot_be_pickled_or_printed(
    bench: Bench, fx: Effects, func: object, first_line: str
) -> None:
    task_id = bench.producer.enqueue(func, *fx.args("raises"))
    record = _run(bench, fx, task_id)
    assert not record.success and record.attempt_count == 1
    assert record.result.partition("\n")[0] == first_line
    assert "Traceback (most recent call last)" in record.result
    assert fx.counts() == {"raises": 1, "after": 1}


def test_a_hook_that_raises(bench: Bench, fx: Effects) -> None:
    task_id = bench.producer.enqueue(tasks.counted, *fx.args("hooked"), 42, hook=tasks.raising_hook)
    record = _run(bench, fx, task_id)
    assert record.success and record.result == 42  # saved and acked before the hook ran
    assert fx.counts() == {"hooked": 1, "after": 1}


def test_a_hook_that_hangs(bench: Bench, fx: Effects) -> None:
    task_id = bench.producer.enqueue(tasks.counted, *fx.args("hooked"), 42, hook=tasks.hanging_hook)
    with bench.cluster(workers=1, start_method="fork", hook_timeout=0.5):
        record = bench.wait_all([task_id])[task_id]
        fx.wait_started()
        after = bench.producer.enqueue(tasks.counted, *fx.args("after"), "ok")
        assert bench.wait_all([after])[after].result == "ok"
        status = eventually(lambda: (s := bench.status()) and s["processed"] >= 2 and s)
    assert record.success and record.result == 42
    # Interrupted by its worker's alarm: the worker carries on (a hook stuck beyond the alarm's
    # reach costs its worker: tests/cluster/test_cluster_lifecycle.py).
    assert status["replaced"] == 0 and status["lost"] == 0
    # Saved and acked before the hook: never run again, and the hook is not retried either.
    assert_exactly_once(bench, fx, {"hooked": task_id, "after": after})
