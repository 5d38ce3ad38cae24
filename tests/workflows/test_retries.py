"""Retries on exceptions, on a real cluster: the waits through Redis's delayed set, the runs
counted by the task itself, one record and one hook call at the end."""

from __future__ import annotations

import itertools
import re

import pytest

from qcore import ConfigError, TaskResult
from tests.cluster.support import Bench
from tests.faults import tasks as fault_tasks
from tests.faults.support import Effects, assert_drained
from tests.workflows import tasks


def _gaps(fx: Effects, tag: str) -> list[float]:
    times = tasks.run_times(*fx.args(tag))
    return [b - a for a, b in itertools.pairwise(times)]


def _finish(bench: Bench, task_id: str, **settings: object) -> TaskResult:
    with bench.cluster(workers=2, start_method="fork", **settings):
        record = bench.wait_all([task_id], timeout=30)[task_id]
    assert bench.store.counts()[task_id] == 1, "the task was saved more than once"
    assert_drained(bench)
    return record


def test_a_task_failing_twice_then_succeeding_runs_three_times_with_backoff(
    bench: Bench, fx: Effects
) -> None:
    task_id = bench.producer.enqueue(
        tasks.fail_times,
        *fx.args("flaky"),
        2,
        hook=fault_tasks.counting_hook,
        retries=3,
        retry_backoff=0.4,
    )
    record = _finish(bench, task_id)
    assert record.success and record.result == 3
    assert record.attempt_count == 3
    assert fx.counts() == {"flaky": 3, "hook:flaky": 1}
    first, second = _gaps(fx, "flaky")
    # Equal jitter: retry n waits between half and all of 0.4 * 2 ** (n - 1) seconds; a
    # blocked worker wakes when the delayed task is due, so little is added on top.
    assert 0.2 <= first <= 0.4 + 0.5, first
    assert 0.4 <= second <= 0.8 + 0.5, second


def test_a_task_out_of_retries_is_one_failure_with_the_last_error_and_one_hook(
    bench: Bench, fx: Effects
) -> None:
    task_id = bench.producer.enqueue(
        tasks.fail_times,
        *fx.args("doomed"),
        99,
        hook=fault_tasks.counting_hook,
        q_options={"retries": 2, "retry_backoff": 0.05, "retry_jitter": False},
    )
    record = _finish(bench, task_id)
    assert not record.success
    assert record.result.startswith("ValueError: failing on purpose, run 3")
    assert record.attempt_count == 3
    assert fx.counts() == {"doomed": 3, "hook:doomed": 1}
    first, second = _gaps(fx, "doomed")
    assert first >= 0.05 and second >= 0.1  # without jitter: the bound itself


def test_retry_on_limits_what_is_retried(bench: Bench, fx: Effects) -> None:
    task_id = bench.producer.enqueue(
        tasks.raise_key_error, *fx.args("other"), retries=3, retry_on=[ValueError]
    )
    record = _finish(bench, task_id)
    assert not record.success and record.result.startswith("KeyError")
    assert (record.attempt_count, fx.counts()) == (1, {"other": 1})
    by_path = bench.producer.enqueue(
        tasks.raise_key_error, *fx.args("path"), retries=1, retry_on="builtins.LookupError"
    )
    record = _finish(bench, by_path)
    assert record.attempt_count == 2 and fx.count("path") == 2


def test_a_task_raising_retry_runs_again_after_its_delay(bench: Bench, fx: Effects) -> None:
    task_id = bench.producer.enqueue(
        tasks.ask_for_retry, *fx.args("patient"), 2, 0.3, retries=5, retry_backoff=30
    )
    record = _finish(bench, task_id)
    assert record.success and record.result == 3
    assert all(0.3 <= gap <= 0.3 + 0.5 for gap in _gaps(fx, "patient"))
    # Retry counts against retries: out of them, it fails like any exception.
    task_id = bench.producer.enqueue(tasks.ask_for_retry, *fx.args("impatient"), 9, 0.0, retries=1)
    record = _finish(bench, task_id)
    assert not record.success and record.result.startswith("Retry: not ready yet (run 2)")


def test_the_cluster_defaults_apply_to_tasks_without_retry_options(
    bench: Bench, fx: Effects
) -> None:
    task_id = bench.producer.enqueue(tasks.fail_times, *fx.args("default"), 1)
    record = _finish(bench, task_id, retries=1, retry_backoff=0.05)
    assert record.success and record.attempt_count == 2
    own = bench.producer.enqueue(tasks.fail_times, *fx.args("own"), 1, retries=0)
    record = _finish(bench, own, retries=1, retry_backoff=0.05)
    assert not record.success and fx.count("own") == 1  # the task's own option wins


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"retries": -1}, "retries must be an integer >= 0, not -1"),
        ({"retries": 1.5}, "retries must be an integer >= 0"),
        ({"retry_backoff": -2}, "retry_backoff must be a number of seconds >= 0"),
        ({"retry_jitter": "yes"}, "retry_jitter must be True or False"),
        ({"retry_on": "builtins.len"}, "retry_on must name exception classes; 'builtins.len'"),
        ({"retry_on": [int]}, "retry_on must name exception classes; <class 'int'>"),
        ({"retry_on": "no.such.Error"}, "retry_on: cannot resolve 'no.such.Error'"),
        ({"retry_on": 3}, "retry_on must be an exception class, a dotted path to one"),
    ],
)
def test_bad_retry_options_are_refused_at_the_call_and_nothing_is_queued(
    bench: Bench, options: dict[str, object], error: str
) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(error)):
        bench.producer.enqueue(tasks.echo, "u", "k", "t", q_options=options)
    assert bench.transport.queue_size() == 0


def test_bad_cluster_retry_settings_are_refused() -> None:
    from qcluster import ClusterConfig

    with pytest.raises(ConfigError, match="retries must be an integer >= 0"):
        ClusterConfig(retries=-1)
    with pytest.raises(ConfigError, match="retry_on must name exception classes"):
        ClusterConfig(retry_on=("builtins.len",))
    assert ClusterConfig(retry_on=(ValueError,)).retry_on == ("builtins.ValueError",)  # type: ignore[arg-type]
