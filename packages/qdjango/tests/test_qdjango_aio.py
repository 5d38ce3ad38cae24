"""qdjango.aio (and the django.tasks backend's aenqueue): Django Q's API awaited, on a real
cluster and a private Redis, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from packages.qdjango.tests import djtasks

from qdjango import aio, aio_site
from qdjango.errors import ConfigError
from qdjango.tasks_api import TaskResultStatus

WAIT = 20_000


def run(coro: Any) -> Any:
    """``asyncio.run``, then close the connections the async ORM opened in asgiref's thread
    (a test database cannot be dropped while one is open)."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    async def main() -> Any:
        try:
            return await coro
        finally:
            await sync_to_async(connections.close_all, thread_sensitive=True)()

    return asyncio.run(main())


def test_many_concurrent_tasks_and_their_results(db_alias: str, cluster: Any) -> None:
    async def main() -> tuple[list[Any], int, int]:
        ids = await asyncio.gather(
            *(aio.async_task("math.floor", i + 0.5, group=f"aio-{db_alias}") for i in range(100))
        )
        threads = threading.active_count()
        results = await asyncio.gather(*(aio.result(task_id, wait=WAIT) for task_id in ids))
        grown = threading.active_count() - threads
        return results, grown, len(set(ids))

    results, grown, distinct = run(main())
    assert distinct == 100 and results == list(range(100))
    # the waits took no thread each (asgiref's one executor thread for the ORM at most)
    assert grown <= 1


def test_group_functions(db_alias: str, cluster: Any) -> None:
    group = f"aio-group-{db_alias}"

    async def main() -> tuple[Any, ...]:
        for i in range(3):
            await aio.async_task("math.floor", i + 0.5, group=group)
        got = await aio.result_group(group, count=3, wait=WAIT)
        tasks = await aio.fetch_group(group, wait=WAIT)
        ids = [task.id async for task in tasks]
        counted = await aio.count_group(group)
        failed = await aio.count_group(group, failures=True)
        deleted = await aio.delete_group(group)
        return got, len(ids), counted, failed, deleted, await aio.count_group(group)

    assert run(main()) == ([0, 1, 2], 3, 3, 0, 3, 0)


def test_fetch_by_name_and_a_task_that_never_comes(db_alias: str, cluster: Any) -> None:
    async def main() -> tuple[Any, Any]:
        task_id = await aio.async_task("math.floor", 1.5, q_options={"task_name": "aio-named"})
        await aio.result(task_id, wait=WAIT)
        return await aio.fetch("aio-named", wait=WAIT), await aio.result("0" * 32, wait=200)

    named, missing = run(main())
    assert named is not None and named.result == 1 and missing is None


def test_sync_mode_and_bad_options(db_alias: str, q_cluster: Any, settings: Any) -> None:
    settings.Q_CLUSTER = {**q_cluster, "sync": True}

    async def main() -> Any:
        task_id = await aio.async_task("math.floor", 2.5)
        return await aio.result(task_id)

    assert run(main()) == 2
    with pytest.raises(ConfigError, match="takes no redis option"):
        run(aio.async_task("math.floor", 1, q_options={"redis": None}))


def test_the_backends_aenqueue(db_alias: str, cluster: Any) -> None:
    async def main() -> Any:
        result = await djtasks.add.aenqueue(20, 22)
        assert result.status == TaskResultStatus.READY
        await aio.fetch(result.id, wait=WAIT)
        await result.arefresh()
        return result

    result = run(main())
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 42


def test_a_site_key_no_cluster_accepts_is_warned_once(db_alias: str, cluster: Any) -> None:
    import structlog
    from django.test import override_settings
    from tests.cluster.support import eventually

    from qdjango import connection

    [status] = eventually(connection.status_board().clusters, what="the cluster's status")
    with structlog.testing.capture_logs() as logs:
        run(aio.async_task("math.floor", 0.5))  # the cluster's own key: no warning
    assert [e for e in logs if e["event"] == "producer.key_not_accepted"] == []
    other = "an-asyncio-site-secret-no-cluster-accepts-0123"
    with structlog.testing.capture_logs() as logs, override_settings(SECRET_KEY=other):
        for i in range(3):
            run(aio.async_task("math.floor", i + 0.5))
    [warning] = [e for e in logs if e["event"] == "producer.key_not_accepted"]
    assert warning["accepted"] == status["key_ids"]
    assert warning["key_id"] not in status["key_ids"] and other not in repr(logs)


def test_enqueue_many_runs_each_task_once_when_sent_again(db_alias: str, cluster: Any) -> None:
    from qdjango import signals

    group = f"aio-many-{db_alias}"
    announced: list[str] = []

    def on_enqueue(sender: Any, task: dict[str, Any], **kwargs: Any) -> None:
        if task["group"] == group:
            announced.append(task["id"])

    async def main() -> tuple[Any, ...]:
        calls = [i + 0.5 for i in range(50)]
        key = f"batch-{group}"
        ids = await aio.enqueue_many("math.floor", calls, group=group, idempotency_key=key)
        results = await asyncio.gather(*(aio.result(task_id, wait=WAIT) for task_id in ids))
        again = await aio.enqueue_many("math.floor", calls, group=group, idempotency_key=key)
        # one worker, FIFO: a copy run again would be saved before this one is
        last = await aio.async_task("math.floor", 50.5, group=group)
        await aio.result(last, wait=WAIT)
        return ids, results, again, await aio.count_group(group)

    signals.pre_enqueue.connect(on_enqueue)
    try:
        ids, results, again, saved = run(main())
    finally:
        signals.pre_enqueue.disconnect(on_enqueue)
    assert results == list(range(50)) and again == ids
    assert saved == 51  # each task of the batch once, and the last one
    assert announced == [*ids, announced[-1]]  # nothing announced for the skipped batch


def test_enqueue_many_at_a_priority_and_in_sync_mode(
    db_alias: str, q_cluster: Any, settings: Any
) -> None:
    from qdjango import connection

    async def queued() -> list[str]:
        return await aio.enqueue_many("math.floor", [1.5, 2.5], priority=7)

    ids = run(queued())  # no cluster runs this queue: the tasks wait at their level
    transport = connection.transport()
    assert transport.queue_size() == 2
    assert [d.task_id for d in transport.fetch("probe", count=2)] == ids
    assert transport.client.zrange(transport.keys.levels, 0, -1) == [b"7"]
    transport.release("probe")

    settings.Q_CLUSTER = {**q_cluster, "sync": True}

    async def ran() -> list[Any]:
        ids = await aio.enqueue_many("math.floor", [3.5, 4.5])
        return [await aio.result(task_id) for task_id in ids]

    assert run(ran()) == [3, 4]
    with pytest.raises(ConfigError, match="idempotency_key"):
        run(aio.enqueue_many("math.floor", [1], task_ids=["0" * 32], idempotency_key="k"))


def test_each_event_loop_closes_its_connections_when_it_shuts_down(
    db_alias: str, cluster: Any
) -> None:
    import redis

    from qdjango.conf import get_settings

    name = f"aio-close-{db_alias}"

    async def send_and_wait() -> Any:
        task_id = await aio.async_task("math.floor", 2.5)
        await aio_site.site().client.client_setname(name)  # the connection the task went out on
        return await aio.result(task_id, wait=WAIT)

    sites = len(aio_site.sites)
    # A script or a test that calls asyncio.run() again and again: a loop each time
    assert [run(send_and_wait()) for _ in range(3)] == [2, 2, 2]
    with redis.Redis.from_url(get_settings().redis_url) as client:
        named = [c for c in client.client_list() if c["name"] == name]
    assert named == []  # closed by each loop as it shut down, not left to the collector
    assert len(aio_site.sites) == sites  # and nothing kept of the loops
