"""qdjango.aio as the sync API's twin: unique tasks, ``q_options`` queue, chains, iterations,
running tasks and queue sizes, awaited, on a real cluster and a private Redis, on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from packages.qdjango.tests import jobs
from packages.qdjango.tests.test_qdjango_aio import WAIT, run

from qdjango import aio, async_task
from qdjango.errors import ConfigError

UNIQUE = {"unique": True}


def test_a_unique_task_sent_twice_runs_once(db_alias: str, cluster: Any) -> None:
    group = f"aio-unique-{uuid.uuid4().hex[:8]}"
    seconds = 1.5

    async def main() -> tuple[Any, ...]:
        first = await aio.async_task(jobs.sleep, seconds, group=group, q_options=UNIQUE)
        again = await asyncio.gather(
            *(aio.async_task(jobs.sleep, seconds, group=group, q_options=UNIQUE) for _ in range(5))
        )
        # the sync API takes the same lock: the task is live (queued or running) for 1.5 s
        sync = await asyncio.to_thread(
            async_task, jobs.sleep, seconds, group=group, q_options=UNIQUE
        )
        await aio.result(first, wait=WAIT)
        # one worker, FIFO: a second run of it would be saved before this one is
        last = await aio.async_task(jobs.add, 1, 1, group=group)
        await aio.result(last, wait=WAIT)
        freed = await aio.async_task(jobs.sleep, seconds, group=group, q_options=UNIQUE)
        await aio.result(freed, wait=WAIT)
        return first, again, sync, await aio.count_group(group), freed

    first, again, sync, saved, freed = run(main())
    assert again == [first] * 5 and sync == first
    assert saved == 3  # the unique task once, the last one, and the one sent once it ended
    assert freed != first  # the lock was free once the first one ended


def test_q_options_queue_reaches_the_cluster_that_serves_it(
    db_alias: str, settings: Any, redis_url: str, queue_name: str
) -> None:
    from packages.qdjango.tests.conftest import q_cluster_value

    from qdjango.cluster import build_cluster, close_connections

    high, low = f"{queue_name}-high", f"{queue_name}-low"
    settings.Q_CLUSTER = q_cluster_value(redis_url, queue_name, db_alias, queues=[high, low])

    async def send() -> tuple[Any, ...]:
        on_low = await aio.async_task(jobs.add, 40, 2, q_options={"queue": low})
        on_high = await aio.async_task(jobs.add, 1, 1)  # the first of the queues
        with pytest.raises(ConfigError, match=f"unknown queue 'nowhere': Q_CLUSTER serves {high}"):
            await aio.async_task(jobs.add, 1, 1, q_options={"queue": "nowhere"})
        with pytest.raises(ConfigError, match="unknown queue 'nowhere'"):
            await aio.queue_size("nowhere")
        sizes = await aio.queue_size(high), await aio.queue_size(low), await aio.queue_size()
        return on_low, on_high, sizes

    on_low, on_high, sizes = run(send())
    assert sizes == (1, 1, 1)  # each on its queue, nothing sent to "nowhere"
    assert run(aio.fetch(on_low)) is None  # no cluster yet: it waits on its queue
    cluster = build_cluster()
    close_connections()
    cluster.start(wait=120)
    try:

        async def results() -> list[Any]:
            return [await aio.result(on_low, wait=WAIT), await aio.result(on_high, wait=WAIT)]

        assert run(results()) == [42, 2]
    finally:
        assert cluster.stop(timeout=30) == 0


def test_async_chain_and_async_iter(db_alias: str, cluster: Any) -> None:
    group = f"aio-chain-{uuid.uuid4().hex[:8]}"

    async def main() -> tuple[Any, ...]:
        chain = [(jobs.add, (1, 1)), (jobs.add, (2, 2)), ("math.floor", (3.5,))]
        chained = await aio.async_chain(chain, group=group)
        with pytest.raises(ConfigError, match="exists already"):
            await aio.async_chain(chain, group=group)
        links = await aio.result_group(group, count=3, wait=WAIT)
        iter_id = await aio.async_iter(jobs.add, [(i, i) for i in range(5)])
        return chained, links, await aio.result(iter_id, wait=WAIT)

    chained, links, iterated = run(main())
    assert chained == group and links == [2, 4, 3]  # saved in order: one after the other
    assert iterated == [0, 2, 4, 6, 8]


def test_a_running_task_is_seen_by_running_and_fetch(db_alias: str, cluster: Any) -> None:
    async def main() -> tuple[Any, ...]:
        task_id = await aio.async_task(jobs.sleep, 4)  # long enough on a loaded machine
        deadline = time.monotonic() + 15
        while not (seen := await aio.running(task_id)):
            assert time.monotonic() < deadline, "never seen running"
            await asyncio.sleep(0.1)
        listed = [t.task_id for t in await aio.running()]
        now = await aio.fetch(task_id, include_running=True)
        plain = await aio.fetch(task_id)
        await aio.result(task_id, wait=WAIT)
        done = await aio.fetch(task_id, include_running=True)
        return task_id, seen, listed, now, plain, done

    task_id, [seen], listed, now, plain, done = run(main())
    assert seen.consumer.startswith(cluster.cluster_id) and seen.attempt == 1
    assert task_id in listed and plain is None
    assert now is not None and now.task_id == task_id
    assert done is not None and done.id == task_id and done.result == 4


def test_cancel_a_delayed_task_and_a_finished_one(db_alias: str, cluster: Any) -> None:
    from qcore import UnknownTask

    async def main() -> tuple[Any, ...]:
        later = await aio.async_task(jobs.add, 1, 2, q_options={"countdown": 3600})
        outcome = await aio.cancel(later)
        row = await aio.fetch(later, wait=WAIT)  # the twin is due at once: it ends now
        with pytest.raises(UnknownTask, match="was cancelled already"):
            await aio.cancel(later)
        done = await aio.async_task(jobs.add, 2, 2)
        assert await aio.result(done, wait=WAIT) == 4
        with pytest.raises(UnknownTask, match=r"has finished already \(a Success\)"):
            await aio.cancel(done)
        with pytest.raises(UnknownTask, match="no task 'nope'"):
            await aio.cancel("nope")
        return outcome, row

    outcome, row = run(main())
    assert outcome == "delayed"
    assert not row.success and row.result.startswith("Cancelled: the task was cancelled before")


def test_chain_iter_and_async_task_objects(db_alias: str, cluster: Any) -> None:
    group = f"aio-objects-{uuid.uuid4().hex[:8]}"

    async def main() -> tuple[Any, ...]:
        chain = aio.Chain(group=group)
        chain.append(jobs.add, 1, 2)
        chain.append("math.floor", 7.5)
        before = await chain.result(), await chain.current()
        assert await chain.run() == group
        links = await chain.result(wait=WAIT)
        rows = [row.result async for row in await chain.fetch(wait=WAIT)]
        state = await chain.state()
        iterated = aio.Iter(jobs.add)
        for i in range(4):
            iterated.append(i, 10)
        await iterated.run()
        sums = await iterated.result(wait=WAIT)
        task = aio.AsyncTask(jobs.add, 20, 22, group=f"{group}-t")
        assert await task.result() is None  # not run yet
        await task.run()
        value = await task.result(wait=WAIT)
        grouped = await task.result_group(count=1, wait=WAIT)
        task.group = f"{group}-u"  # changed: unsent again
        return (
            before,
            links,
            sorted(rows),
            state,
            await chain.current(),
            sums,
            value,
            grouped,
            (await task.result()),
        )

    before, links, rows, state, done, sums, value, grouped, changed = run(main())
    assert before == (None, None)
    assert links == [3, 7] and rows == [3, 7]
    assert (state.length, state.done, state.state) == (2, 2, "done") and done == 2
    assert sums == [10, 11, 12, 13]
    assert value == 42 and grouped == [42] and changed is None
    with pytest.raises(ConfigError, match="takes no broker"):
        aio.AsyncTask(jobs.add, 1, 1, broker=object())


def test_q_cluster_wait_replicas_is_waited_for(
    db_alias: str, settings: Any, q_cluster: dict[str, Any]
) -> None:
    from qredis import ReplicationTimeout

    # one Redis, no replica: the enqueue is queued, then says its replica never acknowledged it
    settings.Q_CLUSTER = {**q_cluster, "wait_replicas": 1, "wait_timeout": 0.2}

    async def main() -> int:
        with pytest.raises(ReplicationTimeout, match="only 0 of wait_replicas=1"):
            await aio.async_task(jobs.add, 1, 1)
        return await aio.queue_size()

    assert run(main()) == 1
