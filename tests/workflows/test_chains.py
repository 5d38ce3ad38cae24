"""Chains on a real cluster: links in order, each once, the next link queued by the step that
acks the one before; a worker killed mid-chain; stop on failure; bad chains refused."""

from __future__ import annotations

import os
import signal

import pytest

from qcore import ConfigError
from tests.cluster.support import Bench, eventually
from tests.faults.support import Effects, assert_drained
from tests.workflows import tasks


def _links(fx: Effects, tags: list[str]) -> list[tuple[object, tuple[str, ...]]]:
    return [(tasks.link, fx.args(tag)) for tag in tags]


def test_a_chain_runs_its_links_in_order_each_once(bench: Bench, fx: Effects) -> None:
    tags = [f"l{i}" for i in range(1, 9)]
    ids = bench.producer.chain(_links(fx, tags), group="in-order")
    assert bench.producer.chain_state("in-order").state == "running"
    with bench.cluster(workers=3, start_method="fork"):
        records = bench.wait_all(ids, timeout=30)
        state = eventually(lambda: (s := bench.producer.chain_state("in-order")).done == 8 and s)
    assert [records[i].result for i in ids] == tags
    assert all(records[i].group == "in-order" for i in ids)
    assert tasks.order(*fx.args("x")[:2]) == tags  # strictly one after the other
    starts = [tasks.run_times(*fx.args(tag))[0] for tag in tags]
    stops = [records[i].stopped for i in ids]
    assert all(stops[i] <= starts[i + 1] for i in range(len(tags) - 1))
    assert (state.length, state.done, state.state) == (8, 8, "done")
    assert set(bench.store.counts().values()) == {1}
    assert_drained(bench)


def test_a_worker_killed_mid_chain_loses_and_doubles_no_link(bench: Bench, fx: Effects) -> None:
    chain = [
        *_links(fx, ["a", "b"]),
        (tasks.link_hanging_first_time, fx.args("c")),
        *_links(fx, ["d", "e"]),
    ]
    ids = bench.producer.chain(chain)
    with bench.cluster(workers=2, start_method="fork", max_attempts=3):
        os.kill(fx.wait_started(), signal.SIGKILL)
        records = bench.wait_all(ids, timeout=30)
    assert [records[i].result for i in ids] == ["a", "b", "c", "d", "e"]
    # The killed link ran again (at least once); every other link exactly once, in order.
    assert fx.counts() == {"a": 1, "b": 1, "c": 2, "d": 1, "e": 1}
    assert tasks.order(*fx.args("x")[:2]) == ["a", "b", "c", "c", "d", "e"]
    assert set(bench.store.counts().values()) == {1}
    assert_drained(bench)


def test_a_failed_link_stops_the_chain_unless_told_otherwise(bench: Bench, fx: Effects) -> None:
    stopping = bench.producer.chain(
        [*_links(fx, ["s1"]), (tasks.link_failing, fx.args("s2")), *_links(fx, ["s3"])],
        group="stops",
    )
    going_on = bench.producer.chain(
        [*_links(fx, ["g1"]), (tasks.link_failing, fx.args("g2")), *_links(fx, ["g3"])],
        group="goes-on",
        stop_on_failure=False,
    )
    with bench.cluster(workers=2, start_method="fork"):
        bench.wait_all([*stopping[:2], *going_on])
        stopped = eventually(
            lambda: (s := bench.producer.chain_state("stops")).state != "running" and s
        )
    assert (stopped.state, stopped.stopped_at, stopped.done) == ("stopped", 2, 2)
    assert bench.store.get(stopping[2]) is None and fx.count("s3") == 0
    assert bench.producer.chain_state("goes-on").state == "done" and fx.count("g3") == 1
    assert_drained(bench)


def test_a_link_with_retries_keeps_the_chain_waiting_until_it_succeeds(
    bench: Bench, fx: Effects
) -> None:
    ids = bench.producer.chain(
        [
            (tasks.fail_times, (*fx.args("flaky"), 1), {"q_options": {"retries": 1}}),
            (tasks.link, fx.args("after")),
        ],
        q_options={"retry_backoff": 0.05},
    )
    with bench.cluster(workers=2, start_method="fork"):
        records = bench.wait_all(ids)
    assert records[ids[0]].success and records[ids[0]].attempt_count == 2
    assert records[ids[1]].result == "after"


@pytest.mark.parametrize(
    ("chain", "error"),
    [
        ([], "a chain needs at least one link; this one is empty"),
        ("tests.workflows.tasks.link", "a chain is a list of links, not str"),
        ([tasks.link, 42], "link 2 of the chain is 42: a link is a callable, a dotted path"),
        ([(tasks.link, (), {}, "extra")], "link 1 of the chain is a tuple of 4 items"),
        ([(tasks.link, (), "kw")], "link 1 of the chain has kwargs 'kw', not a dict"),
        ([(tasks.link, (), {"q_options": {"retries": -1}})], "retries must be an integer >= 0"),
    ],
)
def test_a_bad_chain_is_refused_and_nothing_is_queued(
    bench: Bench, chain: object, error: str
) -> None:
    with pytest.raises(ConfigError, match=error):
        bench.producer.chain(chain)  # type: ignore[arg-type]
    assert bench.transport.queue_size() == 0


def test_a_second_chain_of_a_running_group_is_refused(bench: Bench, fx: Effects) -> None:
    bench.producer.chain(_links(fx, ["one"]), group="taken")
    with pytest.raises(ConfigError, match="a chain of group 'taken' exists already"):
        bench.producer.chain(_links(fx, ["two"]), group="taken")
    assert bench.transport.queue_size() == 1
