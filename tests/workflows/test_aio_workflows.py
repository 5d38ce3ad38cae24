"""The asyncio producer's unique tasks, chains, iterations and cancel on a real cluster: what
``qredis.aio.Producer`` sends runs as what the sync producer sends (one lock, one chain, one
collated record), through the same Lua."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from qcore import ConfigError, TaskRunning, UnknownTask
from qredis.aio import Producer
from tests.cluster.support import Bench
from tests.faults import tasks as fault_tasks
from tests.faults.support import Effects, assert_drained
from tests.workflows import tasks

UNIQUE = {"unique": True}


def _producer(bench: Bench) -> Producer:
    return Producer(bench.url, bench.queue, namespace=bench.queue)


def test_an_asyncio_unique_task_enqueued_twice_runs_once(bench: Bench, fx: Effects) -> None:
    async def send() -> tuple[str, list[str], str]:
        async with _producer(bench) as q:
            first = await q.enqueue(tasks.echo, *fx.args("once"), 1, q_options=UNIQUE)
            # concurrent ones too: each its own script call, one of them holds the lock
            again = await asyncio.gather(
                *(q.enqueue(tasks.echo, *fx.args("once"), 1, q_options=UNIQUE) for _ in range(5))
            )
            other = await q.enqueue(tasks.echo, *fx.args("once"), 2, q_options=UNIQUE)
            return first, list(again), other

    first, again, other = asyncio.run(send())
    assert again == [first] * 5 and other != first  # other arguments: another key
    # The sync producer finds the same lock: one wire format, one lock name, one script.
    assert bench.producer.enqueue(tasks.echo, *fx.args("once"), 1, q_options=UNIQUE) == first
    assert bench.transport.queue_size() == 2
    with bench.cluster(workers=2, start_method="fork"):
        bench.wait_all([first, other])
    assert fx.count("once") == 2  # the first call once, the other once

    async def after() -> str:
        async with _producer(bench) as q:
            return await q.enqueue(tasks.echo, *fx.args("once"), 1, q_options=UNIQUE)

    assert asyncio.run(after()) != first  # the lock was freed by the success
    assert bench.transport.queue_size() == 1


def test_an_asyncio_chain_runs_its_links_in_order_each_once(bench: Bench, fx: Effects) -> None:
    tags = [f"l{i}" for i in range(1, 6)]
    links = [(tasks.link, fx.args(tag)) for tag in tags]

    async def start() -> tuple[list[str], Any]:
        async with _producer(bench) as q:
            ids = await q.chain(links, group="aio-chain", q_options={"priority": 5})
            with pytest.raises(ConfigError, match="exists already"):
                await q.chain(links, group="aio-chain")
            return ids, await q.chain_state("aio-chain")

    ids, state = asyncio.run(start())
    assert (state.length, state.done, state.state) == (5, 0, "running")
    with bench.cluster(workers=3, start_method="fork"):
        records = bench.wait_all(ids, timeout=30)

    async def done() -> Any:
        async with _producer(bench) as q:
            return await q.chain_state("aio-chain")

    assert [records[i].result for i in ids] == tags
    assert tasks.order(*fx.args("x")[:2]) == tags  # one after the other
    assert fx.counts() == dict.fromkeys(tags, 1)
    state = asyncio.run(done())
    assert (state.length, state.done, state.state) == (5, 5, "done")
    assert_drained(bench)


def test_an_asyncio_iteration_saves_one_record_in_order(bench: Bench, fx: Effects) -> None:
    calls = [(*fx.args("sq"), x, 0.2 - 0.03 * x) for x in range(6)]

    async def send() -> tuple[str, Any]:
        async with _producer(bench) as q:
            iter_id = await q.iterate(tasks.square_after, calls)
            return iter_id, await q.result(iter_id, wait=30)

    with bench.cluster(workers=3, start_method="fork"):
        iter_id, result = asyncio.run(send())
    assert result == [x * x for x in range(6)]
    assert bench.store.counts() == {iter_id: 1}
    assert_drained(bench)


def test_an_asyncio_cancel_of_a_queued_a_delayed_and_a_running_task(
    bench: Bench, fx: Effects
) -> None:
    hook = fault_tasks.counting_hook

    async def before() -> tuple[str, ...]:
        async with _producer(bench) as q:
            queued = await q.enqueue(tasks.echo, *fx.args("queued"), hook=hook)
            delayed = await q.enqueue(tasks.echo, *fx.args("delayed"), hook=hook, countdown=3600)
            kept = await q.enqueue(tasks.echo, *fx.args("kept"), "ok")
            assert await q.cancel(queued) == "queued"
            assert await q.cancel(delayed) == "delayed"
            with pytest.raises(UnknownTask, match="was cancelled already"):
                await q.cancel(queued)
            with pytest.raises(UnknownTask, match="no task 'nope' is queued, delayed or running"):
                await q.cancel("nope")
            return queued, delayed, kept

    queued, delayed, kept = asyncio.run(before())
    with bench.cluster(workers=1, start_method="fork"):
        records = bench.wait_all([queued, delayed, kept], timeout=30)

        async def running() -> tuple[str, Any]:
            async with _producer(bench) as q:
                task_id = await q.enqueue(fault_tasks.hang, *fx.args("long"), hook=hook)
                await asyncio.to_thread(fx.wait_started)
                with pytest.raises(TaskRunning, match="is running; pass terminate=True"):
                    await q.cancel(task_id)
                assert await q.cancel(task_id, terminate=True) == "terminating"
                record = await q.fetch(task_id, wait=20)
                with pytest.raises(UnknownTask, match="was cancelled already"):
                    await q.cancel(task_id)
                with pytest.raises(UnknownTask, match=r"has finished already \(a Success\)"):
                    await q.cancel(kept)
                return task_id, record

        long, record = asyncio.run(running())
    for task_id in (queued, delayed):
        assert not records[task_id].success
        assert records[task_id].result.startswith("Cancelled: the task was cancelled before")
    assert records[kept].result == "ok"
    assert record is not None and not record.success
    assert record.result.startswith("Cancelled: the task was terminated while running")
    assert fx.counts() == {
        "kept": 1,
        "long": 1,
        "hook:queued": 1,
        "hook:delayed": 1,
        "hook:long": 1,
    }
    assert all(bench.store.counts()[i] == 1 for i in (queued, delayed, long))
