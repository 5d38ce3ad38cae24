"""Iterations on a real cluster: one collated record, results in the order of the arguments,
saved once, whatever order the calls finish in."""

from __future__ import annotations

import pytest

from qcore import ConfigError
from tests.cluster.support import Bench
from tests.faults.support import Effects, assert_drained
from tests.workflows import tasks


def test_results_come_in_the_order_of_the_arguments_saved_once(bench: Bench, fx: Effects) -> None:
    # Earlier arguments sleep longer: with three workers they finish last.
    calls = [(*fx.args("sq"), x, 0.3 - 0.02 * x) for x in range(12)]
    iter_id = bench.producer.iterate(tasks.square_after, calls)
    with bench.cluster(workers=3, start_method="fork"):
        record = bench.wait_all([iter_id], timeout=30)[iter_id]
    assert record.success
    assert record.result == [x * x for x in range(12)]
    assert record.group == iter_id and record.func == "tests.workflows.tasks.square_after"
    assert len(record.args) == 12 and record.args[3][3] == 3
    finished = sorted(
        range(12), key=lambda x: tasks.run_times(*fx.args(f"sq{x}"))[0] + 0.3 - 0.02 * x
    )
    assert finished != list(range(12))  # they did not finish in order
    counts = bench.store.counts()
    assert counts == {iter_id: 1}  # one collated record; the calls' successes are not saved
    assert_drained(bench)


def test_a_failed_call_gives_its_error_in_its_place(bench: Bench, fx: Effects) -> None:
    iter_id = bench.producer.iterate(
        tasks.square_after, [(*fx.args("f"), x, 0.0) for x in (2, -1, 3)]
    )
    with bench.cluster(workers=2, start_method="fork"):
        record = bench.wait_all([iter_id], timeout=30)[iter_id]
    assert not record.success
    assert record.result[0] == 4 and record.result[2] == 9
    assert record.result[1].startswith("ValueError: no negative numbers: -1")


@pytest.mark.parametrize(
    ("args_iter", "error"),
    [
        ([], "an iteration needs at least one set of arguments; args_iter is empty"),
        ("abc", "args_iter must be an iterable of arguments, not 'abc'"),
        (5, "args_iter must be an iterable of arguments, not 5"),
    ],
)
def test_a_bad_iteration_is_refused_and_nothing_is_queued(
    bench: Bench, args_iter: object, error: str
) -> None:
    with pytest.raises(ConfigError, match=error):
        bench.producer.iterate(tasks.echo, args_iter)  # type: ignore[arg-type]
    assert bench.transport.queue_size() == 0
